use super::*;
use crate::kernel::ids::IdSource;

struct Fixed;
impl IdSource for Fixed {
    fn next_u128(&self) -> u128 {
        7
    }
}

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn order(status: OrderStatus, shipped: [u32; 2]) -> Shippable {
    let line = |position, sku: &str, quantity, shipped| ShippableLine {
        position,
        id: LineId::parse(&format!("line_{position:032x}")).unwrap(),
        sku: Sku::parse(sku).unwrap(),
        quantity,
        shipped,
    };
    Shippable {
        order_id: OrderId::parse("ord_0000000000000000000000000000000a").unwrap(),
        status,
        lines: vec![line(0, "A", 3, shipped[0]), line(1, "B", 1, shipped[1])],
    }
}

fn request(lines: &[(&str, u32)]) -> ShipmentRequest {
    ShipmentRequest {
        carrier: Carrier::parse("DHL").unwrap(),
        tracking_number: TrackingNumber::parse(" 1z999aa10123456784 ").unwrap(),
        lines: lines
            .iter()
            .map(|(sku, q)| (LineRef::Sku(Sku::parse(sku).unwrap()), *q))
            .collect(),
    }
}

fn planned(order: &Shippable, lines: &[(&str, u32)]) -> Result<OrderStatus, ShipmentError> {
    plan(order, &request(lines), ShipmentId::mint(&Fixed), NOW).map(|(_, to)| to)
}

#[test]
fn partial_then_full() {
    let paid = order(OrderStatus::Paid, [0, 0]);
    assert_eq!(
        planned(&paid, &[("A", 2)]),
        Ok(OrderStatus::PartiallyFulfilled)
    );
    assert_eq!(
        planned(&paid, &[("A", 3), ("B", 1)]),
        Ok(OrderStatus::Fulfilled)
    );
    let part = order(OrderStatus::PartiallyFulfilled, [2, 1]);
    assert_eq!(planned(&part, &[("A", 1)]), Ok(OrderStatus::Fulfilled));
    assert_eq!(
        planned(&part, &[("A", 2)]),
        Err(ShipmentError::TooManyUnits { index: 0, left: 1 })
    );
    assert!(matches!(
        planned(&part, &[("B", 1)]),
        Err(ShipmentError::TooManyUnits { left: 0, .. })
    ));
    assert!(
        matches!(
            planned(&order(OrderStatus::Fulfilled, [3, 1]), &[("B", 1)]),
            Err(ShipmentError::Illegal(_))
        ),
        "a fulfilled order has nothing left to ship: its state says so"
    );
    assert!(matches!(
        planned(&paid, &[("C", 1)]),
        Err(ShipmentError::UnknownLine { index: 0, .. })
    ));
    assert!(matches!(
        planned(&paid, &[("A", 1), ("A", 1)]),
        Err(ShipmentError::UnknownLine { index: 1, .. })
    ));
    for status in [
        OrderStatus::PendingPayment,
        OrderStatus::Cancelled,
        OrderStatus::PaymentReview,
    ] {
        assert!(
            matches!(
                planned(&order(status, [0, 0]), &[("A", 1)]),
                Err(ShipmentError::Illegal(_))
            ),
            "{status:?}"
        );
    }
}

/// A store over one order whose first `record` finds that another shipment of the order's
/// last units committed meanwhile (as the database's trigger does): it records that one and
/// answers `Moved`; every later `record` is checked against the lines it then holds.
struct Racing {
    order: std::cell::RefCell<Shippable>,
    rival: std::cell::Cell<Option<(u32, u32)>>,
    recorded: std::cell::RefCell<Vec<OrderStatus>>,
}

impl ShipmentStore for Racing {
    async fn shippable(&self, _: &OrderId) -> Result<Option<Shippable>, StoreError> {
        Ok(Some(self.order.borrow().clone()))
    }

    async fn record(
        &self,
        shipment: &Shipment,
        from: OrderStatus,
        to: OrderStatus,
        _: &Event,
    ) -> Result<Recorded, StoreError> {
        let mut order = self.order.borrow_mut();
        if let Some((position, quantity)) = self.rival.take() {
            order.lines[position as usize].shipped += quantity;
            order.status = OrderStatus::PartiallyFulfilled;
            return Ok(Recorded::Moved);
        }
        let fits = order.status == from
            && shipment.lines.iter().all(|l| {
                let line = &order.lines[l.position as usize];
                line.shipped + l.quantity <= line.quantity
            });
        if !fits {
            return Ok(Recorded::Moved);
        }
        for l in &shipment.lines {
            order.lines[l.position as usize].shipped += l.quantity;
        }
        let all = order.lines.iter().all(|l| l.shipped == l.quantity);
        if all != (to == OrderStatus::Fulfilled) {
            return Ok(Recorded::Moved);
        }
        order.status = to;
        self.recorded.borrow_mut().push(to);
        Ok(Recorded::Recorded(Vec::new()))
    }
}

#[test]
fn a_shipment_that_loses_a_race_is_planned_again_on_what_the_winner_wrote() {
    // Line A ships under this request while line B's last unit ships concurrently: planned on
    // the stale read it would leave the order partially fulfilled with everything shipped.
    let store = Racing {
        order: std::cell::RefCell::new(order(OrderStatus::Paid, [0, 0])),
        rival: std::cell::Cell::new(Some((1, 1))),
        recorded: std::cell::RefCell::new(Vec::new()),
    };
    let id = OrderId::parse("ord_0000000000000000000000000000000a").unwrap();
    let (shipment, _) =
        futures_executor::block_on(ship(&store, &Fixed, &id, &request(&[("A", 3)]), NOW)).unwrap();
    assert_eq!(shipment.lines.len(), 1);
    assert_eq!(*store.recorded.borrow(), vec![OrderStatus::Fulfilled]);
    assert_eq!(store.order.borrow().status, OrderStatus::Fulfilled);
}

#[test]
fn a_shipment_that_keeps_losing_gives_up() {
    struct Always;
    impl ShipmentStore for Always {
        async fn shippable(&self, _: &OrderId) -> Result<Option<Shippable>, StoreError> {
            Ok(Some(order(OrderStatus::Paid, [0, 0])))
        }
        async fn record(
            &self,
            _: &Shipment,
            _: OrderStatus,
            _: OrderStatus,
            _: &Event,
        ) -> Result<Recorded, StoreError> {
            Ok(Recorded::Moved)
        }
    }
    let id = OrderId::parse("ord_0000000000000000000000000000000a").unwrap();
    let outcome =
        futures_executor::block_on(ship(&Always, &Fixed, &id, &request(&[("A", 1)]), NOW));
    assert_eq!(outcome.unwrap_err(), ShipmentError::Moved);
}

#[test]
fn names_are_parsed() {
    assert_eq!(Carrier::parse(" UPS ").unwrap().as_str(), "ups");
    assert!(Carrier::parse("").is_none() && Carrier::parse("u p s").is_none());
    assert_eq!(
        TrackingNumber::parse("1z999-aa1").unwrap().as_str(),
        "1Z999-AA1"
    );
    for bad in ["", "abc", "1Z 999", "1Z\n999", &"9".repeat(65)] {
        assert!(TrackingNumber::parse(bad).is_none(), "{bad:?}");
    }
    for status in TrackingStatus::ALL {
        assert_eq!(TrackingStatus::parse(status.as_str()), Some(status));
    }
}

use crate::testing::{InMemoryShipments, SequentialIds};
use futures_executor::block_on;

fn order_id() -> OrderId {
    OrderId::parse("ord_0000000000000000000000000000000a").unwrap()
}

fn shipped(store: &InMemoryShipments) -> (OrderStatus, Vec<u32>) {
    let orders = store.orders.borrow();
    let order = &orders[&order_id()];
    (
        order.status,
        order.lines.iter().map(|l| l.shipped).collect(),
    )
}

fn numbered(number: &str, lines: &[(&str, u32)]) -> ShipmentRequest {
    ShipmentRequest {
        tracking_number: TrackingNumber::parse(number).unwrap(),
        ..request(lines)
    }
}

#[test]
fn a_shipment_counts_its_units_moves_the_order_and_names_shipment_created() {
    let store = InMemoryShipments::with_order(order(OrderStatus::Paid, [0, 0]));
    let ids = SequentialIds::default();
    block_on(async {
        let (first, events) = ship(&store, &ids, &order_id(), &request(&[("A", 2)]), NOW)
            .await
            .unwrap();
        assert_eq!(
            shipped(&store),
            (OrderStatus::PartiallyFulfilled, vec![2, 0])
        );
        assert_eq!(first.status, TrackingStatus::PreTransit);
        assert_eq!((first.created_at, first.updated_at), (NOW, NOW));
        assert_eq!(first.carrier.as_str(), "dhl");
        assert_eq!(first.tracking_number.as_str(), "1Z999AA10123456784");
        assert_eq!(
            store.shipments.borrow().as_slice(),
            std::slice::from_ref(&first)
        );
        assert_eq!(events, *store.outbox.borrow());
        let [event] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_ne!(event.id.as_str(), first.id.as_str());
        assert_eq!(
            event.payload,
            Payload::ShipmentCreated(ShipmentCreated {
                shipment_id: first.id.clone(),
                order_id: order_id(),
                carrier: first.carrier.clone(),
                tracking_number: first.tracking_number.clone(),
                lines: vec![ShipmentLine {
                    position: 0,
                    line_id: LineId::parse(&format!("line_{:032x}", 0)).unwrap(),
                    sku: Sku::parse("A").unwrap(),
                    quantity: 2,
                }],
                order_status: OrderStatus::PartiallyFulfilled,
            })
        );
        // The rest, B named by its line id: fulfilled.
        let b = LineRef::Id(LineId::parse(&format!("line_{:032x}", 1)).unwrap());
        let rest = ShipmentRequest {
            lines: vec![(LineRef::Sku(Sku::parse("A").unwrap()), 1), (b, 1)],
            ..numbered("JD0002", &[])
        };
        let (second, events) = ship(&store, &ids, &order_id(), &rest, NOW).await.unwrap();
        assert_eq!(shipped(&store), (OrderStatus::Fulfilled, vec![3, 1]));
        assert_eq!(second.lines.len(), 2);
        let Payload::ShipmentCreated(created) = &events[0].payload else {
            panic!("shipment.created")
        };
        assert_eq!(created.order_status, OrderStatus::Fulfilled);
        // Nothing is left to ship: refused, nothing written.
        assert!(matches!(
            ship(
                &store,
                &ids,
                &order_id(),
                &numbered("JD0003", &[("A", 1)]),
                NOW
            )
            .await,
            Err(ShipmentError::Illegal(_))
        ));
        assert_eq!(store.shipments.borrow().len(), 2);
        assert_eq!(store.outbox.borrow().len(), 2);
    });
}

#[test]
fn a_carriers_tracking_number_ships_once() {
    let store = InMemoryShipments::with_order(order(OrderStatus::Paid, [0, 0]));
    let ids = SequentialIds::default();
    block_on(async {
        ship(&store, &ids, &order_id(), &request(&[("A", 1)]), NOW)
            .await
            .unwrap();
        // Given in another case, it is the same number.
        let again = numbered("1z999aa10123456784", &[("A", 1)]);
        assert_eq!(
            ship(&store, &ids, &order_id(), &again, NOW).await,
            Err(ShipmentError::TrackingNumberTaken)
        );
        assert_eq!(
            shipped(&store),
            (OrderStatus::PartiallyFulfilled, vec![1, 0])
        );
        assert_eq!(store.shipments.borrow().len(), 1);
        assert_eq!(store.outbox.borrow().len(), 1);
        // Another carrier's parcel may have the same number.
        let ups = ShipmentRequest {
            carrier: Carrier::parse("ups").unwrap(),
            ..again
        };
        ship(&store, &ids, &order_id(), &ups, NOW).await.unwrap();
        assert_eq!(
            shipped(&store),
            (OrderStatus::PartiallyFulfilled, vec![2, 0])
        );
    });
}

#[test]
fn an_unknown_order_or_a_failing_store_records_nothing() {
    let store = InMemoryShipments::with_order(order(OrderStatus::Paid, [0, 0]));
    let ids = SequentialIds::default();
    let other = OrderId::parse("ord_000000000000000000000000000000ff").unwrap();
    block_on(async {
        assert_eq!(
            ship(&store, &ids, &other, &request(&[("A", 1)]), NOW).await,
            Err(ShipmentError::NotFound)
        );
        store.fail.set(true);
        assert!(matches!(
            ship(&store, &ids, &order_id(), &request(&[("A", 1)]), NOW).await,
            Err(ShipmentError::Store(_))
        ));
    });
    assert_eq!(shipped(&store), (OrderStatus::Paid, vec![0, 0]));
    assert!(store.shipments.borrow().is_empty() && store.outbox.borrow().is_empty());
}

#[test]
fn a_shipment_that_loses_a_race_is_planned_again_on_what_the_winner_shipped() {
    let ids = SequentialIds::default();
    block_on(async {
        // B's last unit ships meanwhile: shipping all of A now fulfils the order.
        let store = InMemoryShipments::with_order(order(OrderStatus::Paid, [0, 0]));
        store.rivals.borrow_mut().push_back((1, 1));
        let (shipment, events) = ship(&store, &ids, &order_id(), &request(&[("A", 3)]), NOW)
            .await
            .unwrap();
        assert_eq!(shipment.lines.len(), 1);
        assert_eq!(shipped(&store), (OrderStatus::Fulfilled, vec![3, 1]));
        let Payload::ShipmentCreated(created) = &events[0].payload else {
            panic!("shipment.created")
        };
        assert_eq!(created.order_status, OrderStatus::Fulfilled);
        // Two of A ship meanwhile: two more no longer fit, and the answer says what is left.
        let store = InMemoryShipments::with_order(order(OrderStatus::Paid, [0, 0]));
        store.rivals.borrow_mut().push_back((0, 2));
        assert_eq!(
            ship(&store, &ids, &order_id(), &request(&[("A", 2)]), NOW).await,
            Err(ShipmentError::TooManyUnits { index: 0, left: 1 })
        );
        assert_eq!(
            shipped(&store),
            (OrderStatus::PartiallyFulfilled, vec![2, 0])
        );
        assert!(store.shipments.borrow().is_empty() && store.outbox.borrow().is_empty());
    });
}

proptest::proptest! {
    /// Whatever shipments are asked for, in any order: no line ships more than it holds,
    /// the order is partially fulfilled while a unit is left and fulfilled when none is,
    /// every shipment recorded is announced once with the status it left the order in,
    /// and a refused one writes nothing.
    #[test]
    fn units_ship_once_and_the_status_follows_the_lines(
        requests in proptest::collection::vec(
            proptest::collection::vec((0usize..2, 0u32..4), 1..3),
            1..8,
        ),
    ) {
        use proptest::prelude::*;
        let store = InMemoryShipments::with_order(order(OrderStatus::Paid, [0, 0]));
        let ids = SequentialIds::default();
        block_on(async {
            for (n, lines) in requests.iter().enumerate() {
                let named: Vec<(&str, u32)> = lines.iter().map(|(l, q)| (["A", "B"][*l], *q)).collect();
                let before = shipped(&store);
                let recorded = store.shipments.borrow().len();
                let outcome = ship(&store, &ids, &order_id(), &numbered(&format!("JD{n:04}"), &named), NOW).await;
                let after = shipped(&store);
                match outcome {
                    Ok((shipment, events)) => {
                        for l in &shipment.lines {
                            prop_assert_eq!(
                                after.1[l.position as usize],
                                before.1[l.position as usize] + l.quantity
                            );
                        }
                        let Payload::ShipmentCreated(created) = &events[0].payload else {
                            panic!("shipment.created")
                        };
                        prop_assert_eq!(created.order_status, after.0);
                        prop_assert_eq!(store.shipments.borrow().len(), recorded + 1);
                    }
                    Err(
                        ShipmentError::TooManyUnits { .. }
                        | ShipmentError::UnknownLine { .. }
                        | ShipmentError::Illegal(_),
                    ) => {
                        prop_assert_eq!(&after, &before);
                        prop_assert_eq!(store.shipments.borrow().len(), recorded);
                    }
                    Err(e) => prop_assert!(false, "{:?}", e),
                }
                let (status, units) = after;
                prop_assert!(units[0] <= 3 && units[1] <= 1);
                let expected = match units.iter().sum::<u32>() {
                    0 => OrderStatus::Paid,
                    4 => OrderStatus::Fulfilled,
                    _ => OrderStatus::PartiallyFulfilled,
                };
                prop_assert_eq!(status, expected);
                prop_assert_eq!(store.outbox.borrow().len(), store.shipments.borrow().len());
            }
            Ok(())
        })?;
    }
}
