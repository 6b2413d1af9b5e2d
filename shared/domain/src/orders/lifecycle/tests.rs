use super::*;
use crate::cart::{CartPolicy, Carts, Precondition, Quantity};
use crate::checkout::{
    AddressInput, Checkout, CheckoutInput, CheckoutPolicy, CheckoutRequest, DynPaymentProvider,
    TestPaymentProvider,
};
use crate::events::EventKind;
use crate::kernel::ids::Sku;
use crate::kernel::money::Currency;
use crate::kernel::pricing::TaxRate;
use crate::kernel::time::Duration;
use crate::testing::{FlatRates, InMemoryCarts, InMemoryCatalog, InMemoryOrders, SequentialIds};
use futures_executor::block_on;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn request() -> CheckoutRequest {
    CheckoutRequest::parse(CheckoutInput {
        email: "a@example.com".into(),
        shipping_address: AddressInput {
            name: "A".into(),
            line1: "L".into(),
            city: "C".into(),
            postal_code: "P".into(),
            country: "NL".into(),
            ..Default::default()
        },
        billing_address: None,
        shipping_method: "standard".into(),
        payment_provider: "test".into(),
    })
    .unwrap()
}

/// Place `n` orders of 2 TEE each, at T0 + i minutes, and run `check` on the world.
fn with_orders(
    n: usize,
    check: impl AsyncFnOnce(&InMemoryOrders<'_>, &SequentialIds, Vec<OrderId>),
) {
    let catalog = InMemoryCatalog::with_sku("TEE", &[("10.00", Currency::Eur)], 100);
    let ids = SequentialIds::default();
    let policy = CartPolicy::default();
    let repo = InMemoryCarts::new(&catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 10);
    let test = TestPaymentProvider { ids: &ids };
    let providers: [&dyn DynPaymentProvider; 1] = [&test];
    let checkout_policy = CheckoutPolicy {
        tax_rate: TaxRate::ZERO,
        reservation_ttl: Duration::from_secs(900),
        max_units_per_sku: 50,
        unpaid_hold: crate::catalog::inventory::HoldShare::WHOLE,
    };
    block_on(async {
        let carts = Carts {
            repo: &repo,
            shipping: &crate::fulfilment::shipping::Zones::default(),
            ids: &ids,
            policy: &policy,
            customer: None,
        };
        let checkout = Checkout {
            carts: &repo,
            orders: &orders,
            shipping: &FlatRates,
            providers: &providers,
            ids: &ids,
            policy: &checkout_policy,
            customer: None,
        };
        let mut placed = Vec::new();
        for i in 0..n {
            let at = T0.plus(Duration::from_secs(60 * i as i64));
            let cart = carts.create(Currency::Eur, at).await.unwrap();
            let tee = Sku::parse("TEE").unwrap();
            carts
                .add_item(
                    &cart.id,
                    &Precondition::None,
                    &tee,
                    Quantity::new(2).unwrap(),
                    at,
                )
                .await
                .unwrap();
            placed.push(
                checkout
                    .checkout(&cart.id, &request(), "k", at)
                    .await
                    .unwrap()
                    .order
                    .id,
            );
        }
        check(&orders, &ids, placed).await;
    });
}

fn tee_stock(orders: &InMemoryOrders<'_>) -> (i64, i64) {
    let stock = orders.stock.borrow()[&Sku::parse("TEE").unwrap()];
    (stock.on_hand(), stock.reserved())
}

#[test]
fn expiry_takes_only_due_unpaid_orders_and_releases_their_stock() {
    with_orders(3, async |orders, ids, placed| {
        assert_eq!(tee_stock(orders), (10, 6));
        mark_paid(orders, ids, &placed[0], T0).await.unwrap();
        // 16 minutes after the first order: orders 0 and 1 are past their 15 minutes.
        let now = T0.plus(Duration::from_secs(16 * 60));
        let expired = expire_due(orders, ids, now, 10).await.unwrap();
        assert_eq!(
            expired.orders,
            vec![placed[1].clone()],
            "the paid one is not expired, the young one not yet"
        );
        assert_eq!(
            expired.events.iter().map(Event::kind).collect::<Vec<_>>(),
            vec![EventKind::OrderExpired],
            "the run returns what it wrote, to publish"
        );
        assert_eq!(
            orders.status(&placed[1]).await.unwrap(),
            Some(OrderStatus::Expired)
        );
        assert_eq!(
            tee_stock(orders),
            (8, 2),
            "sold 2, released 2, 2 still held"
        );
        assert!(
            expire_due(orders, ids, now, 10)
                .await
                .unwrap()
                .orders
                .is_empty(),
            "idempotent"
        );
        let kinds: Vec<EventKind> = orders.outbox.borrow().iter().map(Event::kind).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EventKind::OrderExpired)
                .count(),
            1
        );
    });
}

#[test]
fn expiry_pages_through_every_due_order_in_one_run() {
    with_orders(5, async |orders, ids, placed| {
        let later = T0.plus(Duration::from_days(1));
        let mut expired = expire_due(orders, ids, later, 2).await.unwrap().orders;
        expired.sort();
        let mut all = placed.clone();
        all.sort();
        assert_eq!(expired, all, "five due orders, pages of two, one run");
        assert_eq!(tee_stock(orders), (10, 0));
    });
}

#[test]
fn cancel_releases_or_restocks_and_says_when_to_refund() {
    with_orders(2, async |orders, ids, placed| {
        assert_eq!(
            cancel(orders, ids, &placed[0], T0).await.map(|m| m.status),
            Ok(OrderStatus::Cancelled)
        );
        assert_eq!(tee_stock(orders), (10, 2));
        mark_paid(orders, ids, &placed[1], T0).await.unwrap();
        assert_eq!(tee_stock(orders), (8, 0));
        assert_eq!(
            cancel(orders, ids, &placed[1], T0).await.map(|m| m.status),
            Ok(OrderStatus::Cancelled)
        );
        assert_eq!(tee_stock(orders), (10, 0), "restocked");
        let refunds: Vec<bool> = orders
            .outbox
            .borrow()
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::OrderCancelled(c) => Some(c.refund_required),
                _ => None,
            })
            .collect();
        assert_eq!(refunds, vec![false, true]);
        assert!(matches!(
            cancel(orders, ids, &placed[1], T0).await,
            Err(LifecycleError::Illegal(_))
        ));
        let missing = OrderId::parse("ord_000000000000000000000000000000ff").unwrap();
        assert_eq!(
            cancel(orders, ids, &missing, T0).await,
            Err(LifecycleError::NotFound)
        );
    });
}

#[test]
fn capture_is_once_and_in_full() {
    with_orders(1, async |orders, ids, placed| {
        assert_eq!(
            mark_paid(orders, ids, &placed[0], T0)
                .await
                .map(|m| m.status),
            Ok(OrderStatus::Paid)
        );
        let (total, ledger) = orders.amounts(&placed[0]).await.unwrap().unwrap();
        assert_eq!(ledger.captured(), total);
        assert!(matches!(
            mark_paid(orders, ids, &placed[0], T0).await,
            Err(LifecycleError::Illegal(_))
        ));
        let paid = orders
            .outbox
            .borrow()
            .iter()
            .filter(|e| e.kind() == EventKind::OrderPaid)
            .count();
        assert_eq!(paid, 1);
    });
}

fn reviewed(reason: crate::events::ReviewReason) -> ReviewedPayment {
    ReviewedPayment {
        reason,
        provider: "stripe".into(),
        payment_id: "pi_1".into(),
        provider_event_id: "evt_1".into(),
        amount: None,
    }
}

#[test]
fn review_moves_what_can_move_releases_held_stock_and_always_tells() {
    use crate::events::ReviewReason as R;
    with_orders(3, async |orders, ids, placed| {
        assert_eq!(tee_stock(orders), (10, 6));
        let pending = OrderStatus::PendingPayment;
        let moved = review(
            orders,
            ids,
            &placed[0],
            pending,
            reviewed(R::AmountMismatch),
            700,
            T0,
        )
        .await
        .unwrap();
        assert_eq!(moved.status, OrderStatus::PaymentReview);
        assert_eq!(tee_stock(orders), (10, 4), "its held stock is released");
        let ledger = |i: usize| {
            orders
                .orders
                .borrow()
                .iter()
                .find(|o| o.id == placed[i])
                .map(|o| o.ledger)
                .unwrap()
        };
        assert_eq!(
            ledger(0).captured(),
            700,
            "what the payment took is captured, to be refunded"
        );
        // A paid order stays paid; its stock stays sold.
        mark_paid(orders, ids, &placed[1], T0).await.unwrap();
        let paid = OrderStatus::Paid;
        let before = ledger(1).captured();
        let kept = review(
            orders,
            ids,
            &placed[1],
            paid,
            reviewed(R::AlreadyPaid),
            500,
            T0,
        )
        .await
        .unwrap();
        assert_eq!(kept.status, OrderStatus::Paid);
        assert_eq!(
            ledger(1).captured(),
            before,
            "an order that stays records nothing"
        );
        assert_eq!(tee_stock(orders), (8, 2));
        // Decided on a status the order has left: nothing is written.
        assert_eq!(
            review(
                orders,
                ids,
                &placed[2],
                paid,
                reviewed(R::AlreadyPaid),
                0,
                T0
            )
            .await,
            Err(LifecycleError::Moved)
        );
        // Out of review only by cancelling, which gives nothing back twice.
        assert_eq!(
            cancel(orders, ids, &placed[0], T0).await.map(|m| m.status),
            Ok(OrderStatus::Cancelled)
        );
        assert_eq!(tee_stock(orders), (8, 2));
        let told: Vec<(OrderStatus, OrderStatus, R)> = orders
            .outbox
            .borrow()
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::OrderPaymentReview(r) => Some((r.from, r.status, r.payment.reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            told,
            vec![
                (pending, OrderStatus::PaymentReview, R::AmountMismatch),
                (paid, paid, R::AlreadyPaid)
            ]
        );
    });
}

fn status_of(orders: &InMemoryOrders<'_>, id: &OrderId) -> OrderStatus {
    orders
        .orders
        .borrow()
        .iter()
        .find(|o| &o.id == id)
        .map(|o| o.status)
        .unwrap()
}

fn kinds(orders: &InMemoryOrders<'_>) -> Vec<EventKind> {
    orders.outbox.borrow().iter().map(Event::kind).collect()
}

#[test]
fn each_move_writes_its_event_and_returns_it_to_publish() {
    with_orders(2, async |orders, ids, placed| {
        let paid = mark_paid(orders, ids, &placed[0], T0).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        let [event] = paid.events.as_slice() else {
            panic!("{:?}", paid.events)
        };
        assert_eq!(Some(event), orders.outbox.borrow().last());
        assert_eq!(
            event.payload,
            Payload::OrderPaid(OrderPaid {
                order_id: placed[0].clone(),
                captured_minor: 2490,
            }),
            "two TEE at 10.00 and 4.90 shipping, all of it"
        );
        let later = T0.plus(Duration::from_days(1));
        let expired = expire_due(orders, ids, later, 10).await.unwrap();
        assert_eq!(expired.orders, [placed[1].clone()]);
        assert_eq!(
            expired.events[0].payload,
            Payload::OrderExpired(OrderClosed {
                order_id: placed[1].clone(),
                from: OrderStatus::PendingPayment,
                status: OrderStatus::Expired,
                refund_required: false,
            })
        );
        assert_eq!(expired.events[0].created_at, later);
        let updated = orders
            .orders
            .borrow()
            .iter()
            .find(|o| o.id == placed[1])
            .map(|o| o.updated_at);
        assert_eq!(updated, Some(later));
        // An expired order cannot be cancelled, nor paid: refused, nothing written.
        let written = orders.outbox.borrow().len();
        for refused in [
            cancel(orders, ids, &placed[1], later).await,
            mark_paid(orders, ids, &placed[1], later).await,
        ] {
            assert!(matches!(refused, Err(LifecycleError::Illegal(_))));
        }
        assert_eq!(orders.outbox.borrow().len(), written);
        let missing = OrderId::parse("ord_000000000000000000000000000000ff").unwrap();
        assert_eq!(
            mark_paid(orders, ids, &missing, T0).await,
            Err(LifecycleError::NotFound)
        );
    });
}

#[test]
fn a_move_that_loses_a_race_writes_nothing() {
    with_orders(1, async |orders, ids, placed| {
        let order = &placed[0];
        // Paid between the cancel's read and its batch.
        orders.race.set(Some(OrderStatus::Paid));
        assert_eq!(
            cancel(orders, ids, order, T0).await,
            Err(LifecycleError::Moved)
        );
        assert_eq!(status_of(orders, order), OrderStatus::Paid);
        assert_eq!(tee_stock(orders), (10, 2), "nothing given back");
        assert_eq!(kinds(orders), [EventKind::OrderCreated]);
    });
    with_orders(2, async |orders, ids, placed| {
        let order = &placed[0];
        // Read as pending by the payment webhook, cancelled before its batch.
        let (charged, ledger) = orders.amounts(order).await.unwrap().unwrap();
        let read = AsRead {
            status: OrderStatus::PendingPayment,
            charged,
            ledger,
        };
        cancel(orders, ids, order, T0).await.unwrap();
        assert_eq!(
            pay_as_read(orders, ids, order, read, T0).await,
            Err(LifecycleError::Moved)
        );
        assert_eq!(status_of(orders, order), OrderStatus::Cancelled);
        assert_eq!(tee_stock(orders), (10, 2), "nothing sold");
        assert_eq!(
            orders.amounts(order).await.unwrap().unwrap().1.captured(),
            0
        );
        assert_eq!(
            kinds(orders),
            [
                EventKind::OrderCreated,
                EventKind::OrderCreated,
                EventKind::OrderCancelled
            ]
        );
        // A read that says paid already is refused before anything is written.
        let paid = AsRead {
            status: OrderStatus::Paid,
            ..read
        };
        assert!(matches!(
            pay_as_read(orders, ids, order, paid, T0).await,
            Err(LifecycleError::Illegal(_))
        ));
        // The same through `mark_paid`: expired between its read and its batch.
        orders.race.set(Some(OrderStatus::Expired));
        assert_eq!(
            mark_paid(orders, ids, &placed[1], T0).await,
            Err(LifecycleError::Moved)
        );
        assert_eq!(orders.race.get(), None, "the race was run");
        assert_eq!(status_of(orders, &placed[1]), OrderStatus::Expired);
        assert_eq!(tee_stock(orders), (10, 2), "nothing sold");
        assert!(!kinds(orders).contains(&EventKind::OrderPaid));
    });
}

#[test]
fn expiry_passes_over_an_order_paid_meanwhile() {
    with_orders(2, async |orders, ids, placed| {
        orders.race.set(Some(OrderStatus::Paid));
        let later = T0.plus(Duration::from_days(1));
        let expired = expire_due(orders, ids, later, 10).await.unwrap();
        assert_eq!(
            expired.orders,
            [placed[1].clone()],
            "only the one still unpaid"
        );
        assert_eq!(expired.events.len(), 1);
        assert_eq!(status_of(orders, &placed[0]), OrderStatus::Paid);
        assert_eq!(
            kinds(orders)
                .iter()
                .filter(|k| **k == EventKind::OrderExpired)
                .count(),
            1
        );
    });
}

/// A store that lists due orders but never moves them (every close answers `Moved`).
struct Stuck<'a> {
    inner: &'a InMemoryOrders<'a>,
    reads: std::cell::Cell<u32>,
}

impl OrderLifecycle for Stuck<'_> {
    async fn due_for_expiry(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>, StoreError> {
        self.reads.set(self.reads.get() + 1);
        self.inner.due_for_expiry(now, limit).await
    }
    async fn status(&self, id: &OrderId) -> Result<Option<OrderStatus>, StoreError> {
        self.inner.status(id).await
    }
    async fn close(
        &self,
        _: &OrderId,
        _: OrderStatus,
        _: OrderStatus,
        _: &Event,
        _: Timestamp,
    ) -> Result<CloseOutcome, StoreError> {
        Ok(CloseOutcome::Moved)
    }
    async fn amounts(&self, id: &OrderId) -> Result<Option<(i64, PaymentLedger)>, StoreError> {
        self.inner.amounts(id).await
    }
    async fn review(
        &self,
        id: &OrderId,
        from: OrderStatus,
        to: OrderStatus,
        captured: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<CloseOutcome, StoreError> {
        self.inner.review(id, from, to, captured, event, now).await
    }
    async fn pay(
        &self,
        id: &OrderId,
        captured: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<CloseOutcome, StoreError> {
        self.inner.pay(id, captured, event, now).await
    }
}

#[test]
fn an_expiry_run_ends_when_the_store_keeps_listing_what_it_does_not_move() {
    with_orders(3, async |orders, ids, _| {
        let stuck = Stuck {
            inner: orders,
            reads: std::cell::Cell::new(0),
        };
        let later = T0.plus(Duration::from_days(1));
        let expired = expire_due(&stuck, ids, later, 1).await.unwrap();
        assert_eq!(expired, Expired::default());
        assert_eq!(stuck.reads.get(), 2, "the page came back unchanged: stop");
        assert_eq!(tee_stock(orders), (10, 6));
        assert_eq!(kinds(orders).len(), 3, "order.created only");
    });
}

#[test]
fn storage_failures_are_said_and_change_nothing() {
    with_orders(2, async |orders, ids, placed| {
        mark_paid(orders, ids, &placed[0], T0).await.unwrap();
        orders.fail.set(true);
        let later = T0.plus(Duration::from_days(1));
        assert!(expire_due(orders, ids, later, 10).await.is_err());
        for failed in [
            cancel(orders, ids, &placed[0], T0).await,
            mark_paid(orders, ids, &placed[1], T0).await,
            review(
                orders,
                ids,
                &placed[1],
                OrderStatus::PendingPayment,
                reviewed(crate::events::ReviewReason::AmountMismatch),
                100,
                T0,
            )
            .await,
        ] {
            assert!(
                matches!(failed, Err(LifecycleError::Store(_))),
                "{failed:?}"
            );
        }
        orders.fail.set(false);
        assert_eq!(tee_stock(orders), (8, 2));
        assert_eq!(status_of(orders, &placed[0]), OrderStatus::Paid);
        assert_eq!(status_of(orders, &placed[1]), OrderStatus::PendingPayment);
        assert_eq!(kinds(orders).len(), 3);
    });
}

#[derive(Debug, Clone)]
enum Op {
    Pay(usize),
    Cancel(usize),
    Review(usize, i64),
    Expire(i64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..4).prop_map(Op::Pay),
        (0usize..4).prop_map(Op::Cancel),
        (0usize..4, 0i64..=2490).prop_map(|(i, c)| Op::Review(i, c)),
        (0i64..30).prop_map(Op::Expire),
    ]
}

proptest::proptest! {
    /// Whatever the order of payments, cancellations, reviews and expiry runs: a move
    /// happens exactly when the state machine allows it, writes one event, and gives back
    /// exactly what the status it leaves held, so the stock held is what unpaid orders
    /// hold and what left the shelf is what paid orders bought; no ledger captures more
    /// than its order's total.
    #[test]
    fn moves_give_back_exactly_what_their_status_held(ops in proptest::collection::vec(op(), 1..25)) {
        with_orders(4, async move |orders, ids, placed| {
            let mut events = 4;
            for op in ops {
                match op {
                    Op::Pay(i) => {
                        let from = status_of(orders, &placed[i]);
                        let paid = mark_paid(orders, ids, &placed[i], T0).await;
                        assert_eq!(paid.is_ok(), from == OrderStatus::PendingPayment, "{from:?}");
                        events += usize::from(paid.is_ok());
                    }
                    Op::Cancel(i) => {
                        let from = status_of(orders, &placed[i]);
                        let cancelled = cancel(orders, ids, &placed[i], T0).await;
                        assert_eq!(cancelled.is_ok(), from.apply(Transition::Cancel).is_ok());
                        events += usize::from(cancelled.is_ok());
                    }
                    Op::Review(i, captured) => {
                        let from = status_of(orders, &placed[i]);
                        let (_, ledger) = orders.amounts(&placed[i]).await.unwrap().unwrap();
                        // As `payments::decide` does: nothing more once something is captured.
                        let captured = if ledger.captured() > 0 { 0 } else { captured };
                        let reason = crate::events::ReviewReason::AmountMismatch;
                        let moved = review(orders, ids, &placed[i], from, reviewed(reason), captured, T0)
                            .await
                            .unwrap();
                        assert_eq!(moved.status, from.apply(Transition::Review).unwrap_or(from));
                        events += 1;
                    }
                    Op::Expire(minutes) => {
                        let now = T0.plus(Duration::from_secs(60 * minutes));
                        let due = orders
                            .orders
                            .borrow()
                            .iter()
                            .filter(|o| {
                                o.status == OrderStatus::PendingPayment
                                    && o.reservation_expires_at <= now
                            })
                            .count();
                        let expired = expire_due(orders, ids, now, 2).await.unwrap();
                        assert_eq!((expired.orders.len(), expired.events.len()), (due, due));
                        events += due;
                    }
                }
                let units = |of: crate::orders::order::Stock| {
                    2 * orders.orders.borrow().iter().filter(|o| o.status.stock() == of).count() as i64
                };
                assert_eq!(tee_stock(orders), (10 - units(crate::orders::order::Stock::Sold), units(crate::orders::order::Stock::Held)));
                assert_eq!(orders.outbox.borrow().len(), events);
                for o in orders.orders.borrow().iter() {
                    assert!(o.ledger.captured() <= o.totals.grand_total.minor_units());
                }
            }
        });
    }
}
