use super::*;
use futures_executor::block_on;
use proptest::prelude::*;
use std::cell::RefCell;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn open_refund(n: u128, minor: i64, provider_id: &str) -> Refund {
    use crate::kernel::ids::IdSource;
    let ids = crate::testing::SequentialIds::default();
    for _ in 0..n {
        ids.next_u128();
    }
    let eur = |m| Money::from_minor(m, Currency::Eur).unwrap();
    Refund {
        id: RefundId::mint(&ids),
        order_id: order_id(),
        status: RefundStatus::Pending,
        amount: eur(minor),
        shipping: eur(0),
        reason: "damaged".into(),
        lines: Vec::new(),
        provider: "stripe".into(),
        provider_refund_id: Some(provider_id.into()),
        created_at: NOW,
        updated_at: NOW,
    }
}

#[test]
fn settling_confirms_what_the_event_names_or_reaches_with_the_running_total() {
    let ids = crate::testing::SequentialIds::default();
    let open = [open_refund(10, 500, "re_1"), open_refund(20, 300, "re_2")];
    // Named: only that refund, its event carrying what was refunded before plus it.
    let Settlement::Confirmed(named) =
        settle(&open, 1_000, &["re_2".into()], None, false, &ids, NOW)
    else {
        panic!("confirmed");
    };
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].0.id, open[1].id);
    let crate::events::Payload::OrderRefunded(refunded) = &named[0].1.payload else {
        panic!("order.refunded");
    };
    assert_eq!(refunded.refunded_minor, 1_300);
    // A cumulative amount that reaches both: both, oldest first, totals running.
    let Settlement::Confirmed(both) = settle(&open, 1_000, &[], Some(1_800), false, &ids, NOW)
    else {
        panic!("confirmed");
    };
    let totals: Vec<i64> = both
        .iter()
        .map(|(_, e)| match &e.payload {
            crate::events::Payload::OrderRefunded(r) => r.refunded_minor,
            _ => 0,
        })
        .collect();
    assert_eq!(totals, [1_500, 1_800]);
    // A failure releases the named refund; an event about none is recorded only.
    assert_eq!(
        settle(&open, 0, &["re_1".into()], Some(9_999), true, &ids, NOW),
        Settlement::Failed(open[0].clone())
    );
    assert_eq!(
        settle(&open, 0, &["re_9".into()], None, false, &ids, NOW),
        Settlement::RecordOnly
    );
}

fn order_id() -> OrderId {
    OrderId::parse("ord_0000000000000000000000000000000a").unwrap()
}

/// An order of 3 × A at 10.00 (30.00) and 1 × B at 5.99, shipping 4.90: 40.89 captured.
fn refundable() -> Refundable {
    let line = |position, sku: &str, quantity, total| RefundableLine {
        position,
        id: LineId::parse(&format!("line_{position:032x}")).unwrap(),
        sku: Sku::parse(sku).unwrap(),
        quantity,
        total,
        refunded_quantity: 0,
        refunded: 0,
    };
    Refundable {
        order_id: order_id(),
        status: OrderStatus::Paid,
        currency: Currency::Eur,
        provider: "test".into(),
        payment_id: "pay_1".into(),
        captured: 4089,
        refunded: 0,
        pending: 0,
        shipping: 490,
        shipping_refunded: 0,
        lines: vec![line(0, "A", 3, 3000), line(1, "B", 1, 599)],
    }
}

fn request(amount: Option<i64>, lines: Option<Vec<(&str, u32, bool)>>) -> RefundRequest {
    RefundRequest {
        amount: amount.map(|m| Money::from_minor(m, Currency::Eur).unwrap()),
        reason: RefundReason::parse("damaged").unwrap(),
        lines: lines.map(|lines| {
            lines
                .into_iter()
                .map(|(sku, quantity, restock)| LineRequest {
                    line: LineRef::Sku(Sku::parse(sku).unwrap()),
                    quantity,
                    restock,
                })
                .collect()
        }),
    }
}

fn id() -> RefundId {
    refund_id(&order_id(), "admin", "key-1")
}

fn parts(refund: &Refund) -> Vec<i64> {
    refund
        .lines
        .iter()
        .map(|l| l.amount.minor_units())
        .chain([refund.shipping.minor_units()])
        .collect()
}

#[test]
fn the_id_follows_the_order_the_caller_and_the_key() {
    assert_eq!(id(), refund_id(&order_id(), "admin", "key-1"));
    assert_ne!(id(), refund_id(&order_id(), "admin", "key-2"));
    assert_ne!(id(), refund_id(&order_id(), "other", "key-1"));
    assert!(RefundId::parse(id().as_str()).is_ok());
}

#[test]
fn stripe_refunds_a_three_decimal_currency_in_tens_within_what_it_charged() {
    // 40.890 KWD of lines and shipping plus 7 fils: Stripe charged 40.890 (rounded down).
    let mut kwd = refundable();
    kwd.currency = Currency::Kwd;
    kwd.provider = "stripe".into();
    kwd.lines[1].total = 606;
    kwd.captured = crate::payments::charged_minor(
        "stripe",
        Money::from_minor(3000 + 606 + 490, Currency::Kwd).unwrap(),
    );
    assert_eq!(kwd.captured, 4090);
    let request = |amount: Option<i64>, lines| RefundRequest {
        amount: amount.map(|m| Money::from_minor(m, Currency::Kwd).unwrap()),
        ..super::tests::request(None, lines)
    };
    let full = plan(&kwd, &request(None, None), id(), NOW).unwrap();
    assert_eq!(
        full.amount.minor_units(),
        4090,
        "everything charged, no more"
    );
    assert_eq!(parts(&full).iter().sum::<i64>(), 4090);
    assert_eq!(
        plan(&kwd, &request(Some(1005), None), id(), NOW),
        Err(RefundError::InvalidAmount {
            currency: Currency::Kwd,
            step: 10
        })
    );
    assert!(plan(&kwd, &request(Some(1000), None), id(), NOW).is_ok());
    // One unit of A is worth 1.000; B's one unit 0.606, refunded as 0.600.
    let b = plan(&kwd, &request(None, Some(vec![("B", 1, true)])), id(), NOW).unwrap();
    assert_eq!(b.amount.minor_units(), 600);
    // The same order paid through a provider that takes any amount refunds to the fils.
    kwd.provider = "test".into();
    kwd.captured = 4096;
    let b = plan(&kwd, &request(None, Some(vec![("B", 1, true)])), id(), NOW).unwrap();
    assert_eq!(b.amount.minor_units(), 606);
}

#[test]
fn a_whole_refund_spreads_over_lines_and_shipping_exactly() {
    let full = plan(&refundable(), &request(None, None), id(), NOW).unwrap();
    assert_eq!(full.amount.minor_units(), 4089);
    assert_eq!(parts(&full), vec![3000, 599, 490]);
    let partial = plan(&refundable(), &request(Some(1000), None), id(), NOW).unwrap();
    assert_eq!(parts(&partial).iter().sum::<i64>(), 1000);
    assert_eq!(parts(&partial), vec![734, 146, 120], "largest remainder");
    assert_eq!(
        plan(&refundable(), &request(Some(4090), None), id(), NOW),
        Err(RefundError::Exceeds {
            refundable: Money::from_minor(4089, Currency::Eur).unwrap()
        })
    );
}

#[test]
fn units_are_refunded_at_their_share_and_the_last_ones_at_what_is_left() {
    let mut order = refundable();
    order.lines[0].total = 1000; // 3 units of 3.33⅓
    order.captured = 1000 + 599 + 490;
    let one = plan(
        &order,
        &request(None, Some(vec![("A", 1, true)])),
        id(),
        NOW,
    )
    .unwrap();
    assert_eq!(one.amount.minor_units(), 333);
    assert!(one.lines[0].restock && one.lines[0].quantity == 1);
    order.lines[0].refunded_quantity = 1;
    order.lines[0].refunded = 333;
    order.pending = 333;
    let rest = plan(
        &order,
        &request(None, Some(vec![("A", 2, false)])),
        id(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        rest.amount.minor_units(),
        667,
        "exactly what the line has left"
    );
    assert_eq!(
        plan(
            &order,
            &request(None, Some(vec![("A", 3, false)])),
            id(),
            NOW
        ),
        Err(RefundError::TooManyUnits { index: 0, left: 2 })
    );
    // An amount below the units' value is spread over them; above it is refused.
    let two = request(Some(500), Some(vec![("A", 2, false), ("B", 1, true)]));
    let spread = plan(&order, &two, id(), NOW).unwrap();
    assert_eq!(parts(&spread), vec![263, 237, 0], "by largest remainder");
    let too_much = request(Some(1267), Some(vec![("A", 2, false), ("B", 1, false)]));
    assert!(matches!(
        plan(&order, &too_much, id(), NOW),
        Err(RefundError::Exceeds { .. })
    ));
}

#[test]
fn refuses_what_cannot_be_refunded() {
    let mut unpaid = refundable();
    unpaid.captured = 0;
    assert_eq!(
        plan(&unpaid, &request(None, None), id(), NOW),
        Err(RefundError::NotPaid)
    );
    let usd = RefundRequest {
        amount: Some(Money::from_minor(100, Currency::Usd).unwrap()),
        ..request(None, None)
    };
    assert_eq!(
        plan(&refundable(), &usd, id(), NOW),
        Err(RefundError::InvalidAmount {
            currency: Currency::Eur,
            step: 1
        })
    );
    for lines in [
        vec![("C", 1, false)],
        vec![("B", 1, false), ("B", 1, false)],
    ] {
        assert!(matches!(
            plan(&refundable(), &request(None, Some(lines)), id(), NOW),
            Err(RefundError::UnknownLine { .. })
        ));
    }
    assert!(RefundReason::parse("").is_none());
    assert!(RefundReason::parse("a\u{0007}b").is_none());
    assert!(RefundReason::parse(&"x".repeat(MAX_REASON_CHARS + 1)).is_none());
}

proptest! {
    #[test]
    fn refunds_sum_exactly_and_never_exceed_what_is_left(
        totals in proptest::collection::vec(0i64..50_000, 1..6),
        shipping in 0i64..2_000,
        steps in proptest::collection::vec(1i64..60_000, 1..12),
    ) {
        let mut order = refundable();
        order.lines = totals.iter().enumerate().map(|(i, total)| RefundableLine {
            position: i as u32,
            id: LineId::parse(&format!("line_{i:032x}")).unwrap(),
            sku: Sku::parse(&format!("S{i}")).unwrap(),
            quantity: 2,
            total: *total,
            refunded_quantity: 0,
            refunded: 0,
        }).collect();
        order.shipping = shipping;
        order.captured = totals.iter().sum::<i64>() + shipping;
        for amount in steps {
            let left = order.left();
            match plan(&order, &request(Some(amount), None), id(), NOW) {
                Ok(refund) => {
                    prop_assert!(amount <= left);
                    prop_assert_eq!(parts(&refund).iter().sum::<i64>(), amount);
                    for line in &refund.lines {
                        let stored = order.lines.iter_mut().find(|l| l.position == line.position).unwrap();
                        stored.refunded += line.amount.minor_units();
                        prop_assert!(stored.refunded <= stored.total, "a line never gives back more than it cost");
                    }
                    order.shipping_refunded += refund.shipping.minor_units();
                    prop_assert!(order.shipping_refunded <= order.shipping);
                    order.pending += amount;
                }
                Err(RefundError::Exceeds { refundable }) => {
                    prop_assert!(amount > left);
                    prop_assert_eq!(refundable.minor_units(), left);
                }
                Err(e) => prop_assert!(false, "{:?}", e),
            }
            prop_assert!(order.refunded + order.pending <= order.captured);
        }
    }
}

/// A store that commits in memory as the D1 batch does (the amount pending on the order,
/// units and amounts on the lines, shipping; nothing when any would exceed what it may
/// hold), and can be told to lose the next commits to a concurrent refund that takes
/// `stolen` first (`races`), to lose the next `conflicts` commits to changes since undone,
/// or to fail every call.
struct Memory {
    order: RefCell<Refundable>,
    refunds: RefCell<Vec<Refund>>,
    races: RefCell<Vec<i64>>,
    conflicts: std::cell::Cell<u32>,
    commits: std::cell::Cell<u32>,
    fail: std::cell::Cell<bool>,
}

impl Memory {
    fn new() -> Self {
        Memory {
            order: RefCell::new(refundable()),
            refunds: RefCell::new(Vec::new()),
            races: RefCell::new(Vec::new()),
            conflicts: std::cell::Cell::new(0),
            commits: std::cell::Cell::new(0),
            fail: std::cell::Cell::new(false),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail.get() {
            Err(StoreError::new("told to fail"))
        } else {
            Ok(())
        }
    }

    fn stored(&self, id: &RefundId) -> Option<Refund> {
        self.refunds.borrow().iter().find(|r| r.id == *id).cloned()
    }
}

/// `order` with `refund`'s commitment taken (`sign` 1) or released (`sign` -1).
fn committed(order: &Refundable, refund: &Refund, sign: i64) -> Refundable {
    let mut next = order.clone();
    next.pending += sign * refund.amount.minor_units();
    next.shipping_refunded += sign * refund.shipping.minor_units();
    for taken in &refund.lines {
        if let Some(line) = next.lines.iter_mut().find(|l| l.position == taken.position) {
            line.refunded += sign * taken.amount.minor_units();
            if sign > 0 {
                line.refunded_quantity += taken.quantity;
            } else {
                line.refunded_quantity -= taken.quantity;
            }
        }
    }
    next
}

/// The constraints of schema/0012.
fn within(order: &Refundable) -> bool {
    order.refunded + order.pending <= order.captured
        && order.shipping_refunded <= order.shipping
        && order
            .lines
            .iter()
            .all(|l| l.refunded <= l.total && l.refunded_quantity <= l.quantity)
}

impl RefundStore for Memory {
    async fn refundable(&self, id: &OrderId) -> Result<Option<Refundable>, StoreError> {
        self.check()?;
        let order = self.order.borrow();
        Ok((order.order_id == *id).then(|| order.clone()))
    }
    async fn get(&self, id: &RefundId) -> Result<Option<Refund>, StoreError> {
        self.check()?;
        Ok(self.stored(id))
    }
    async fn commit(&self, refund: &Refund) -> Result<Committed, StoreError> {
        self.check()?;
        self.commits.set(self.commits.get() + 1);
        if let Some(stored) = self.stored(&refund.id) {
            return Ok(Committed::Exists(Box::new(stored)));
        }
        if self.conflicts.get() > 0 {
            self.conflicts.set(self.conflicts.get() - 1);
            return Ok(Committed::Conflict);
        }
        let mut order = self.order.borrow_mut();
        if let Some(stolen) = self.races.borrow_mut().pop() {
            order.pending += stolen;
        }
        let next = committed(&order, refund, 1);
        if !within(&next) {
            return Ok(Committed::Conflict);
        }
        *order = next;
        self.refunds.borrow_mut().push(refund.clone());
        Ok(Committed::Committed)
    }
    async fn sent(&self, id: &RefundId, provider: &str, now: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        for r in self.refunds.borrow_mut().iter_mut().filter(|r| r.id == *id) {
            if r.status == RefundStatus::Requested {
                r.status = RefundStatus::Pending;
            }
            r.provider_refund_id.get_or_insert_with(|| provider.into());
            r.updated_at = now;
        }
        Ok(())
    }
    async fn refused(&self, refund: &Refund, now: Timestamp) -> Result<(), StoreError> {
        self.check()?;
        let mut order = self.order.borrow_mut();
        *order = committed(&order, refund, -1);
        for r in self
            .refunds
            .borrow_mut()
            .iter_mut()
            .filter(|r| r.id == refund.id)
        {
            r.status = RefundStatus::Failed;
            r.updated_at = now;
        }
        Ok(())
    }
}

/// A provider that answers with `answers` in turn (then accepts), counting the keys it saw.
struct Provider {
    answers: RefCell<Vec<PaymentError>>,
    keys: RefCell<Vec<String>>,
}

impl RefundProvider for Provider {
    async fn refund(&self, _: &str, _: &Refund, key: &str) -> Result<String, PaymentError> {
        self.keys.borrow_mut().push(key.to_owned());
        match self.answers.borrow_mut().pop() {
            Some(e) => Err(e),
            None => Ok(format!("re_{key}")),
        }
    }
}

fn provider(answers: Vec<PaymentError>) -> Provider {
    Provider {
        answers: RefCell::new(answers),
        keys: RefCell::new(Vec::new()),
    }
}

#[test]
fn a_refund_is_committed_then_sent_and_a_retry_continues_it() {
    block_on(async {
        let store = Memory::new();
        let down = provider(vec![PaymentError::Unavailable("timeout".into())]);
        let all = request(None, None);
        let first = refund(&store, &down, &order_id(), &all, id(), NOW).await;
        assert!(matches!(
            first,
            Err(RefundError::Provider(PaymentError::Unavailable(_)))
        ));
        assert_eq!(
            store.order.borrow().pending,
            4089,
            "unknown outcome: still committed"
        );
        // The retry (same key, so same id) asks the provider again with the same key.
        let again = refund(&store, &down, &order_id(), &all, id(), NOW)
            .await
            .unwrap();
        assert_eq!(again.status, RefundStatus::Pending);
        assert_eq!(
            *down.keys.borrow(),
            vec![id().to_string(), id().to_string()]
        );
        assert_eq!(store.order.borrow().pending, 4089, "committed once");
        // And once sent, a retry answers it as it is.
        let replay = refund(&store, &down, &order_id(), &all, id(), NOW)
            .await
            .unwrap();
        assert_eq!(replay, again);
        assert_eq!(down.keys.borrow().len(), 2);
    });
}

#[test]
fn a_declined_refund_releases_its_commitment_and_a_lost_race_is_decided_again() {
    block_on(async {
        let store = Memory::new();
        let declines = provider(vec![PaymentError::Declined("no".into())]);
        let some = request(Some(3000), None);
        let declined = refund(&store, &declines, &order_id(), &some, id(), NOW).await;
        assert!(matches!(
            declined,
            Err(RefundError::Provider(PaymentError::Declined(_)))
        ));
        assert_eq!(store.order.borrow().pending, 0);
        // A concurrent refund takes 2000 between the read and the commit: 3000 no longer
        // fits, and the answer says what is left.
        store.races.borrow_mut().push(2000);
        let other = refund_id(&order_id(), "admin", "key-2");
        let lost = refund(&store, &provider(vec![]), &order_id(), &some, other, NOW).await;
        assert_eq!(
            lost,
            Err(RefundError::Exceeds {
                refundable: Money::from_minor(2089, Currency::Eur).unwrap()
            })
        );
    });
}

fn stored_status(store: &Memory, id: &RefundId) -> Option<RefundStatus> {
    store.stored(id).map(|r| r.status)
}

#[test]
fn a_units_refund_commits_them_on_their_line_and_keeps_the_providers_id() {
    block_on(async {
        let store = Memory::new();
        let accepts = provider(vec![]);
        let units = request(None, Some(vec![("A", 2, true)]));
        let later = NOW.plus(crate::kernel::time::Duration::from_secs(5));
        let sent = refund(&store, &accepts, &order_id(), &units, id(), later)
            .await
            .unwrap();
        assert_eq!(sent.status, RefundStatus::Pending);
        assert_eq!(sent.amount.minor_units(), 2000);
        assert_eq!(sent.shipping.minor_units(), 0);
        assert_eq!(
            sent.lines,
            [RefundLine {
                position: 0,
                sku: Sku::parse("A").unwrap(),
                quantity: 2,
                amount: Money::from_minor(2000, Currency::Eur).unwrap(),
                restock: true,
            }]
        );
        let provider_id = format!("re_{}", id());
        assert_eq!(
            sent.provider_refund_id.as_deref(),
            Some(provider_id.as_str())
        );
        assert_eq!((sent.created_at, sent.updated_at), (later, later));
        assert_eq!(store.stored(&id()), Some(sent));
        let order = store.order.borrow().clone();
        assert_eq!(order.pending, 2000);
        assert_eq!(
            (order.lines[0].refunded_quantity, order.lines[0].refunded),
            (2, 2000)
        );
        assert_eq!((order.lines[1].refunded, order.shipping_refunded), (0, 0));
        assert_eq!(*accepts.keys.borrow(), [id().to_string()]);
        // The last unit of A is all that line has left.
        let two = refund_id(&order_id(), "admin", "key-2");
        assert_eq!(
            refund(&store, &accepts, &order_id(), &units, two, later).await,
            Err(RefundError::TooManyUnits { index: 0, left: 1 })
        );
        assert_eq!(store.refunds.borrow().len(), 1);
    });
}

#[test]
fn a_key_that_made_another_refund_of_the_order_is_refused() {
    block_on(async {
        let store = Memory::new();
        let accepts = provider(vec![]);
        refund(
            &store,
            &accepts,
            &order_id(),
            &request(Some(1000), None),
            id(),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(
            refund(
                &store,
                &accepts,
                &order_id(),
                &request(Some(500), None),
                id(),
                NOW
            )
            .await,
            Err(RefundError::KeyReused)
        );
        assert_eq!(store.order.borrow().pending, 1000, "nothing more committed");
        assert_eq!(accepts.keys.borrow().len(), 1, "the provider was not asked");
    });
}

#[test]
fn a_refund_that_keeps_losing_to_concurrent_changes_is_busy_after_three_tries() {
    block_on(async {
        let store = Memory::new();
        let accepts = provider(vec![]);
        let some = request(Some(1000), None);
        store.conflicts.set(3);
        assert_eq!(
            refund(&store, &accepts, &order_id(), &some, id(), NOW).await,
            Err(RefundError::Busy)
        );
        assert_eq!(store.commits.get(), 3);
        assert_eq!(store.order.borrow().pending, 0);
        assert!(store.refunds.borrow().is_empty());
        assert!(accepts.keys.borrow().is_empty());
        // Two lost commits: planned again and committed by the third.
        store.conflicts.set(2);
        let sent = refund(&store, &accepts, &order_id(), &some, id(), NOW)
            .await
            .unwrap();
        assert_eq!(sent.status, RefundStatus::Pending);
        assert_eq!(store.commits.get(), 6);
        assert_eq!(store.order.borrow().pending, 1000);
        assert_eq!(accepts.keys.borrow().len(), 1);
    });
}

#[test]
fn an_unknown_order_or_a_failing_store_asks_the_provider_nothing() {
    block_on(async {
        let store = Memory::new();
        let accepts = provider(vec![]);
        let other = OrderId::parse("ord_000000000000000000000000000000ff").unwrap();
        let all = request(None, None);
        assert_eq!(
            refund(&store, &accepts, &other, &all, id(), NOW).await,
            Err(RefundError::NotFound)
        );
        store.fail.set(true);
        assert!(matches!(
            refund(&store, &accepts, &order_id(), &all, id(), NOW).await,
            Err(RefundError::Store(_))
        ));
        store.fail.set(false);
        assert!(accepts.keys.borrow().is_empty());
        assert_eq!(store.order.borrow().pending, 0);
        // Refused before the commitment: an amount in another currency, or not positive.
        for bad in [
            RefundRequest {
                amount: Some(Money::from_minor(100, Currency::Gbp).unwrap()),
                ..all.clone()
            },
            request(Some(0), None),
        ] {
            assert!(matches!(
                refund(&store, &accepts, &order_id(), &bad, id(), NOW).await,
                Err(RefundError::InvalidAmount { .. })
            ));
        }
        assert_eq!(store.commits.get(), 0);
    });
}

#[test]
fn a_retry_after_a_decline_answers_the_failed_refund_and_asks_nothing_again() {
    block_on(async {
        let store = Memory::new();
        let declines = provider(vec![PaymentError::Declined("insufficient".into())]);
        let some = request(Some(3000), None);
        assert!(matches!(
            refund(&store, &declines, &order_id(), &some, id(), NOW).await,
            Err(RefundError::Provider(PaymentError::Declined(_)))
        ));
        assert_eq!(stored_status(&store, &id()), Some(RefundStatus::Failed));
        let order = store.order.borrow().clone();
        assert_eq!(order, refundable(), "every commitment released");
        let again = refund(&store, &declines, &order_id(), &some, id(), NOW)
            .await
            .unwrap();
        assert_eq!(again.status, RefundStatus::Failed);
        assert_eq!(declines.keys.borrow().len(), 1);
        assert_eq!(store.order.borrow().pending, 0);
        // Another key refunds the same amount anew.
        let two = refund_id(&order_id(), "admin", "key-2");
        let sent = refund(&store, &declines, &order_id(), &some, two, NOW)
            .await
            .unwrap();
        assert_eq!(sent.status, RefundStatus::Pending);
        assert_eq!(store.order.borrow().pending, 3000);
    });
}

/// A retry is recognised by its id and its request, not planned again: after the first
/// attempt's own commitment the unit asked for is the line's last, valued at what the line
/// has left (5.00), not at the 5.01 committed; the retry continues the 5.01 refund.
#[test]
fn a_retry_of_a_units_refund_continues_it_after_its_own_commitment() {
    block_on(async {
        let store = Memory::new();
        {
            let mut order = store.order.borrow_mut();
            // Two units of A for 10.01: one is worth 5.01 (rounded half up), the last 5.00.
            order.lines[0].quantity = 2;
            order.lines[0].total = 1001;
            order.captured = 1001 + 599 + 490;
        }
        let down = provider(vec![PaymentError::Unavailable("timeout".into())]);
        let one = request(None, Some(vec![("A", 1, true)]));
        let first = refund(&store, &down, &order_id(), &one, id(), NOW).await;
        assert!(matches!(first, Err(RefundError::Provider(_))));
        assert_eq!(store.order.borrow().pending, 501);
        let again = refund(&store, &down, &order_id(), &one, id(), NOW).await;
        assert_eq!(
            again.map(|r| (r.status, r.amount.minor_units())),
            Ok((RefundStatus::Pending, 501))
        );
    });
}

/// Retrying a declined refund answers it as failed, and asks the provider nothing, whether
/// or not other refunds changed what the order has left since (planned again on the order
/// as it now is, the same request would come to another amount, or to none).
#[test]
fn a_retry_of_a_declined_refund_answers_it_whatever_other_refunds_did_since() {
    block_on(async {
        let store = Memory::new();
        let declines = provider(vec![PaymentError::Declined("no".into())]);
        let everything = request(None, None);
        let declined = refund(&store, &declines, &order_id(), &everything, id(), NOW).await;
        assert!(matches!(
            declined,
            Err(RefundError::Provider(PaymentError::Declined(_)))
        ));
        let failed = store.stored(&id()).unwrap();
        assert_eq!(
            (failed.status, failed.amount.minor_units()),
            (RefundStatus::Failed, 4089)
        );
        let order = order_id();
        let retry = || refund(&store, &declines, &order, &everything, id(), NOW);
        assert_eq!(retry().await, Ok(failed.clone()), "the order unchanged");
        // Other keys refund 10.00 of the order, then the unit of B (what B has left).
        let two = refund_id(&order_id(), "admin", "key-2");
        let three = refund_id(&order_id(), "admin", "key-3");
        refund(
            &store,
            &declines,
            &order_id(),
            &request(Some(1000), None),
            two,
            NOW,
        )
        .await
        .unwrap();
        let b = request(None, Some(vec![("B", 1, false)]));
        refund(&store, &declines, &order_id(), &b, three, NOW)
            .await
            .unwrap();
        assert_eq!(retry().await, Ok(failed.clone()), "the order changed");
        // And once nothing is left at all.
        let four = refund_id(&order_id(), "admin", "key-4");
        refund(&store, &declines, &order_id(), &everything, four, NOW)
            .await
            .unwrap();
        assert_eq!(store.order.borrow().left(), 0);
        assert_eq!(retry().await, Ok(failed.clone()), "nothing left");
        assert_eq!(
            declines.keys.borrow().len(),
            4,
            "the declined one asked once"
        );
        assert_eq!(store.order.borrow().pending, 4089, "the three others");
        assert_eq!(store.stored(&id()), Some(failed));
        // The declined refund's key with another request is refused.
        assert_eq!(
            refund(
                &store,
                &declines,
                &order_id(),
                &request(Some(500), None),
                id(),
                NOW
            )
            .await,
            Err(RefundError::KeyReused)
        );
    });
}

/// What a retry must repeat: the reason, the lines named with their units and restock (by
/// id or by SKU alike) or none, and the amount when it names one. Anything else with the
/// same key is refused and changes nothing; the retry that repeats it continues it.
#[test]
fn a_key_continues_only_the_request_it_was_made_with() {
    block_on(async {
        let store = Memory::new();
        let down = provider(vec![PaymentError::Unavailable("timeout".into())]);
        let units = request(Some(1500), Some(vec![("A", 2, true)]));
        let first = refund(&store, &down, &order_id(), &units, id(), NOW).await;
        assert!(matches!(first, Err(RefundError::Provider(_))));
        let committed = store.order.borrow().clone();
        assert_eq!(committed.pending, 1500);
        let other_reason = RefundRequest {
            reason: RefundReason::parse("changed their mind").unwrap(),
            ..units.clone()
        };
        for other in [
            other_reason,
            request(Some(1000), Some(vec![("A", 2, true)])),
            request(Some(1500), Some(vec![("A", 1, true)])),
            request(Some(1500), Some(vec![("A", 2, false)])),
            request(Some(1500), Some(vec![("B", 1, true)])),
            request(Some(1500), Some(vec![("A", 2, true), ("B", 1, true)])),
            request(Some(1500), None),
            request(None, None),
        ] {
            assert_eq!(
                refund(&store, &down, &order_id(), &other, id(), NOW).await,
                Err(RefundError::KeyReused),
                "{other:?}"
            );
        }
        assert_eq!(*store.order.borrow(), committed, "nothing more committed");
        assert_eq!(down.keys.borrow().len(), 1, "the provider was asked once");
        assert_eq!(stored_status(&store, &id()), Some(RefundStatus::Requested));
        // The same request, its line named by id: continued.
        let by_id = RefundRequest {
            lines: Some(vec![LineRequest {
                line: LineRef::Id(committed.lines[0].id.clone()),
                quantity: 2,
                restock: true,
            }]),
            ..units.clone()
        };
        let sent = refund(&store, &down, &order_id(), &by_id, id(), NOW)
            .await
            .unwrap();
        assert_eq!(
            (sent.status, sent.amount.minor_units()),
            (RefundStatus::Pending, 1500)
        );
        // The stored refund keeps no trace of whether the amount was named: a request
        // without one is taken for the same.
        let unnamed = request(None, Some(vec![("A", 2, true)]));
        assert_eq!(
            refund(&store, &down, &order_id(), &unnamed, id(), NOW).await,
            Ok(sent.clone())
        );
        assert_eq!(store.order.borrow().pending, 1500);
        assert_eq!(down.keys.borrow().len(), 2);
    });
}

#[derive(Debug, Clone)]
enum Ask {
    /// A whole-order refund of this amount (everything left when `None`).
    Amount(Option<i64>),
    /// Units of the line at this index.
    Units(usize, u32, bool),
    /// An earlier request again, with its key, whatever became of it (requested, pending,
    /// failed, or refused before anything was committed).
    Retry(usize),
    /// The key of an earlier request that made a refund, with another request.
    Reuse(usize),
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![
        2 => proptest::option::of(1i64..2_500).prop_map(Ask::Amount),
        2 => (0usize..2, 1u32..4, any::<bool>()).prop_map(|(l, q, r)| Ask::Units(l, q, r)),
        2 => any::<usize>().prop_map(Ask::Retry),
        1 => any::<usize>().prop_map(Ask::Reuse),
    ]
}

proptest! {
    /// Whatever refunds are asked for and whatever the provider answers (accepted, declined,
    /// unknown): the commitments are exactly those of the refunds not failed, on the order,
    /// its lines and its shipping, never beyond what each may give back; a declined refund
    /// is failed and released, an unknown outcome stays requested and committed. A retry
    /// (any earlier request with its key) continues its refund as stored without committing
    /// anything twice: still requested, it is sent; otherwise it is answered as it is and
    /// the provider is asked nothing. Its key with another request is refused, changing
    /// nothing. A's units do not divide its total evenly (its last units are worth what is
    /// left), so a retry of units can come to another amount when planned again.
    #[test]
    fn commitments_are_the_refunds_not_failed_and_never_exceed_the_capture(
        a_total in 3i64..4_000,
        asks in proptest::collection::vec((ask(), 0u8..3), 1..20),
    ) {
        let mut base = refundable();
        base.lines[0].total = a_total;
        base.captured = a_total + 599 + 490;
        let store = Memory::new();
        *store.order.borrow_mut() = base.clone();
        let mut asked: Vec<(RefundRequest, RefundId)> = Vec::new();
        block_on(async {
            for (n, (ask, answer)) in asks.into_iter().enumerate() {
                let answers = match answer {
                    0 => vec![],
                    1 => vec![PaymentError::Declined("no".into())],
                    _ => vec![PaymentError::Unavailable("timeout".into())],
                };
                let provider = provider(answers);
                let fresh = refund_id(&order_id(), "admin", &n.to_string());
                let (request, id, reused) = match ask {
                    Ask::Amount(amount) => (request(amount, None), fresh, false),
                    Ask::Units(line, quantity, restock) => (
                        request(None, Some(vec![(["A", "B"][line], quantity, restock)])),
                        fresh,
                        false,
                    ),
                    Ask::Retry(pick) if !asked.is_empty() => {
                        let (request, id) = asked[pick % asked.len()].clone();
                        (request, id, false)
                    }
                    Ask::Reuse(pick) if !asked.is_empty() => {
                        let (request, id) = asked[pick % asked.len()].clone();
                        if store.stored(&id).is_none() {
                            continue;
                        }
                        let other = RefundRequest {
                            reason: RefundReason::parse("another reason").unwrap(),
                            ..request
                        };
                        (other, id, true)
                    }
                    Ask::Retry(_) | Ask::Reuse(_) => continue,
                };
                if matches!(ask, Ask::Amount(_) | Ask::Units(..)) {
                    asked.push((request.clone(), id.clone()));
                }
                let before = store.stored(&id);
                let order_before = store.order.borrow().clone();
                let count = store.refunds.borrow().len();
                let outcome = refund(&store, &provider, &order_id(), &request, id.clone(), NOW).await;
                let now_stored = store.stored(&id);
                let asks_made = provider.keys.borrow().len();
                if let Some(before) = &before {
                    prop_assert_eq!(store.refunds.borrow().len(), count, "continued, not made again");
                    if reused || before.status != RefundStatus::Requested {
                        prop_assert_eq!(asks_made, 0, "the provider is asked nothing");
                        prop_assert_eq!(now_stored.as_ref(), Some(before));
                        prop_assert_eq!(&*store.order.borrow(), &order_before);
                    }
                }
                if reused {
                    prop_assert_eq!(&outcome, &Err(RefundError::KeyReused));
                }
                match &outcome {
                    Ok(r) => {
                        prop_assert_eq!(Some(r), now_stored.as_ref());
                        match &before {
                            Some(b) if b.status != RefundStatus::Requested => prop_assert_eq!(r, b),
                            Some(b) => {
                                prop_assert_eq!(r.status, RefundStatus::Pending);
                                prop_assert_eq!((&r.amount, &r.lines), (&b.amount, &b.lines));
                            }
                            None => prop_assert_eq!(r.status, RefundStatus::Pending),
                        }
                    }
                    Err(RefundError::Provider(PaymentError::Declined(_))) => {
                        prop_assert!(before.as_ref().is_none_or(|b| b.status == RefundStatus::Requested));
                        prop_assert_eq!(now_stored.map(|r| r.status), Some(RefundStatus::Failed));
                    }
                    Err(RefundError::Provider(PaymentError::Unavailable(_))) => {
                        prop_assert!(before.as_ref().is_none_or(|b| b.status == RefundStatus::Requested));
                        prop_assert_eq!(now_stored.map(|r| r.status), Some(RefundStatus::Requested));
                    }
                    Err(RefundError::Exceeds { .. } | RefundError::TooManyUnits { .. }) => {
                        prop_assert!(before.is_none(), "a retry is never planned again");
                        prop_assert_eq!(now_stored, None);
                        prop_assert_eq!(store.refunds.borrow().len(), count);
                    }
                    Err(RefundError::KeyReused) => prop_assert!(reused),
                    Err(e) => prop_assert!(false, "{:?}", e),
                }
                let order = store.order.borrow().clone();
                prop_assert!(within(&order));
                let open: Vec<Refund> = store
                    .refunds
                    .borrow()
                    .iter()
                    .filter(|r| r.status != RefundStatus::Failed)
                    .cloned()
                    .collect();
                let expected = open.iter().fold(base.clone(), |o, r| committed(&o, r, 1));
                prop_assert_eq!(&order, &expected);
            }
            Ok(())
        })?;
    }

    /// Without names, a cumulative amount confirms the open refunds oldest first as far as
    /// it reaches beyond what was confirmed before, each `order.refunded` carrying the
    /// running total; an event naming one refund settles that one alone; a failure never
    /// confirms anything.
    #[test]
    fn settling_confirms_what_the_cumulative_amount_reaches_oldest_first(
        amounts in proptest::collection::vec(1i64..5_000, 0..8),
        before in 0i64..10_000,
        beyond in 0i64..20_000,
        failed in any::<bool>(),
        pick in 0usize..8,
    ) {
        let ids = crate::testing::SequentialIds::default();
        let oldest_first: Vec<Refund> = amounts
            .iter()
            .enumerate()
            .map(|(i, minor)| {
                let mut r = open_refund(100 * i as u128, *minor, &format!("re_{i}"));
                r.created_at = NOW.plus(crate::kernel::time::Duration::from_secs(i as i64));
                r
            })
            .collect();
        // Handed over newest first: the order is theirs to find.
        let open: Vec<Refund> = oldest_first.iter().rev().cloned().collect();
        let cumulative = before + beyond;
        let mut reached = before;
        let expected: Vec<(RefundId, i64)> = oldest_first
            .iter()
            .map_while(|r| {
                reached += r.amount.minor_units();
                (reached <= cumulative).then(|| (r.id.clone(), reached))
            })
            .collect();
        match settle(&open, before, &[], Some(cumulative), failed, &ids, NOW) {
            Settlement::RecordOnly => prop_assert!(failed || expected.is_empty()),
            Settlement::Confirmed(confirmed) => {
                prop_assert!(!failed);
                let got: Vec<(RefundId, i64)> = confirmed
                    .iter()
                    .map(|(r, e)| match &e.payload {
                        crate::events::Payload::OrderRefunded(p) => {
                            assert_eq!((&p.refund_id, p.amount), (&r.id, r.amount));
                            (r.id.clone(), p.refunded_minor)
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect();
                prop_assert_eq!(got, expected);
            }
            Settlement::Failed(r) => prop_assert!(false, "failed without a name: {:?}", r),
        }
        if let Some(named) = oldest_first.get(pick) {
            let name = [named.provider_refund_id.clone().unwrap()];
            match settle(&open, before, &name, Some(cumulative), failed, &ids, NOW) {
                Settlement::Failed(r) => prop_assert!(failed && r == *named),
                Settlement::Confirmed(confirmed) => {
                    prop_assert!(!failed);
                    prop_assert_eq!(confirmed.len(), 1);
                    prop_assert_eq!(&confirmed[0].0, named);
                    let crate::events::Payload::OrderRefunded(p) = &confirmed[0].1.payload else {
                        panic!("order.refunded");
                    };
                    prop_assert_eq!(p.refunded_minor, before + named.amount.minor_units());
                }
                Settlement::RecordOnly => prop_assert!(false, "a named open refund is settled"),
            }
        }
    }
}
