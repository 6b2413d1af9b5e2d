//! What happens to orders after checkout: unpaid orders expire (their stock released), and the
//! merchant cancels (stock released before payment, restocked after).

use crate::events::{Event, OrderClosed, OrderPaid, Payload, PaymentReview, ReviewedPayment};
use crate::kernel::ids::{IdSource, OrderId};
use crate::kernel::time::Timestamp;
use crate::orders::order::{IllegalTransition, OrderStatus, Transition};
use crate::orders::order::{LedgerError, PaymentLedger};
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Done, with the events the change wrote (for the caller to publish).
    Closed(Vec<Event>),
    /// The order moved on meanwhile (e.g. was paid); nothing was written.
    Moved,
    /// The provider event that came with the change (its receipt) was recorded before: this is
    /// a second delivery of it, and nothing was written.
    AlreadyRecorded,
}

/// Order storage for the lifecycle (port).
pub trait OrderLifecycle {
    /// Unpaid orders whose reservation expired at or before `now`, oldest first.
    async fn due_for_expiry(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>, StoreError>;
    async fn status(&self, id: &OrderId) -> Result<Option<OrderStatus>, StoreError>;
    /// Atomically move the order from `from` to `to`, give its stock back (release what is
    /// held when unpaid, restock what was sold when paid) and write `event`.
    async fn close(
        &self,
        id: &OrderId,
        from: OrderStatus,
        to: OrderStatus,
        event: &Event,
        now: Timestamp,
    ) -> Result<CloseOutcome, StoreError>;
    /// What the order's payment provider charges for its total (`payments::charged_minor`) and
    /// what was captured so far, in minor units.
    async fn amounts(&self, id: &OrderId) -> Result<Option<(i64, PaymentLedger)>, StoreError>;
    /// Atomically: move the order from `from` to `to` (the same status when it cannot move),
    /// release what `from` holds, record `captured` more (what the reviewed payment took), and
    /// write `event` (an `order.payment_review`).
    async fn review(
        &self,
        id: &OrderId,
        from: OrderStatus,
        to: OrderStatus,
        captured: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<CloseOutcome, StoreError>;
    /// Atomically: `pending_payment` → `paid`, record `captured` more, turn the order's held
    /// reservations into sales (stock leaves the shelf) and write `event`.
    async fn pay(
        &self,
        id: &OrderId,
        captured: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<CloseOutcome, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
    NotFound,
    Illegal(IllegalTransition),
    /// The order changed while we acted; retry.
    Moved,
    /// The provider event behind this change was applied before (a redelivery).
    AlreadyRecorded,
    Ledger(LedgerError),
    Store(StoreError),
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        LifecycleError::Store(e)
    }
}

fn event_for(
    ids: &dyn IdSource,
    id: &OrderId,
    from: OrderStatus,
    to: OrderStatus,
    now: Timestamp,
) -> Event {
    let closed = OrderClosed {
        order_id: id.clone(),
        from,
        status: to,
        refund_required: from.refundable() && to == OrderStatus::Cancelled,
    };
    let payload = if to == OrderStatus::Expired {
        Payload::OrderExpired(closed)
    } else {
        Payload::OrderCancelled(closed)
    };
    Event::new(ids, now, payload)
}

/// An order moved by the lifecycle: its new status and the events the move wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub status: OrderStatus,
    pub events: Vec<Event>,
}

/// What an expiry run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expired {
    pub orders: Vec<OrderId>,
    pub events: Vec<Event>,
}

/// Expire every unpaid order past its reservation, reading them `page` at a time until none is
/// due (no cap per run: a backlog of any size releases its stock in one run). Returns those
/// expired.
pub async fn expire_due<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    now: Timestamp,
    page: u32,
) -> Result<Expired, StoreError> {
    let mut expired = Expired::default();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let due = store.due_for_expiry(now, page).await?;
        let last_page = due.len() < page as usize;
        let mut progressed = false;
        for id in due {
            // An order handled once (closed, or moved on meanwhile) is never due again; one that
            // comes back means the store did not move it, and paging would never end.
            if !seen.insert(id.clone()) {
                continue;
            }
            progressed = true;
            let from = OrderStatus::PendingPayment;
            let Ok(to) = from.apply(Transition::Expire) else {
                continue;
            };
            let event = event_for(ids, &id, from, to, now);
            if let CloseOutcome::Closed(events) = store.close(&id, from, to, &event, now).await? {
                expired.orders.push(id);
                expired.events.extend(events);
            }
        }
        if last_page || !progressed {
            return Ok(expired);
        }
    }
}

/// Cancel an order (merchant action): legal from `pending_payment` and `paid` only.
pub async fn cancel<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    id: &OrderId,
    now: Timestamp,
) -> Result<Moved, LifecycleError> {
    let from = store.status(id).await?.ok_or(LifecycleError::NotFound)?;
    let to = from
        .apply(Transition::Cancel)
        .map_err(LifecycleError::Illegal)?;
    let event = event_for(ids, id, from, to, now);
    match store.close(id, from, to, &event, now).await? {
        CloseOutcome::Closed(events) => Ok(Moved { status: to, events }),
        CloseOutcome::Moved => Err(LifecycleError::Moved),
        CloseOutcome::AlreadyRecorded => Err(LifecycleError::AlreadyRecorded),
    }
}

/// The payment of an order was captured in full: it becomes `paid` and its stock is sold.
pub async fn mark_paid<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    id: &OrderId,
    now: Timestamp,
) -> Result<Moved, LifecycleError> {
    let status = store.status(id).await?.ok_or(LifecycleError::NotFound)?;
    let (charged, ledger) = store.amounts(id).await?.ok_or(LifecycleError::NotFound)?;
    let read = AsRead {
        status,
        charged,
        ledger,
    };
    pay_as_read(store, ids, id, read, now).await
}

/// An order as its caller read it just before paying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsRead {
    pub status: OrderStatus,
    /// What the payment provider charges for the order's total (`payments::charged_minor`),
    /// in minor units: what paying it captures.
    pub charged: i64,
    pub ledger: PaymentLedger,
}

/// [`mark_paid`] for an order its caller has just read (a payment webhook reads it to find it):
/// one batch, no read. The batch is guarded by the status, so an order that moved since the read
/// is `Moved` and nothing is written.
pub async fn pay_as_read<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    id: &OrderId,
    read: AsRead,
    now: Timestamp,
) -> Result<Moved, LifecycleError> {
    let to = read
        .status
        .apply(Transition::Pay)
        .map_err(LifecycleError::Illegal)?;
    let mut ledger = read.ledger;
    let amount = read.charged - ledger.captured();
    ledger
        .capture(amount, read.charged)
        .map_err(LifecycleError::Ledger)?;
    let event = Event::new(
        ids,
        now,
        Payload::OrderPaid(OrderPaid {
            order_id: id.clone(),
            captured_minor: ledger.captured(),
        }),
    );
    match store.pay(id, amount, &event, now).await? {
        CloseOutcome::Closed(events) => Ok(Moved { status: to, events }),
        CloseOutcome::Moved => Err(LifecycleError::Moved),
        CloseOutcome::AlreadyRecorded => Err(LifecycleError::AlreadyRecorded),
    }
}

/// A payment that cannot pay its order as it stands (see `payments::decide`): the order, last
/// seen in `from`, moves to `payment_review` where it can (from pending, expired or cancelled;
/// a pending order's stock is released, since nothing pays for it) and stays where it is
/// otherwise (paid already, in review already); either way `order.payment_review` tells the
/// merchant that money was taken and a refund may be due. `Moved`: the order left `from`
/// meanwhile; decide again.
pub async fn review<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    id: &OrderId,
    from: OrderStatus,
    payment: ReviewedPayment,
    captured: i64,
    now: Timestamp,
) -> Result<Moved, LifecycleError> {
    let to = from.apply(Transition::Review).unwrap_or(from);
    // Only a move into review records what the payment took.
    let captured = if to == from { 0 } else { captured.max(0) };
    let event = Event::new(
        ids,
        now,
        Payload::OrderPaymentReview(PaymentReview {
            order_id: id.clone(),
            from,
            status: to,
            payment,
        }),
    );
    match store.review(id, from, to, captured, &event, now).await? {
        CloseOutcome::Closed(events) => Ok(Moved { status: to, events }),
        CloseOutcome::Moved => Err(LifecycleError::Moved),
        CloseOutcome::AlreadyRecorded => Err(LifecycleError::AlreadyRecorded),
    }
}

#[cfg(test)]
mod tests;
