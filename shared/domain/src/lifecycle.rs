//! What happens to orders after checkout: unpaid orders expire (their stock released), and the
//! merchant cancels (stock released before payment, restocked after).

use crate::events::{Event, ORDER_CANCELLED, ORDER_EXPIRED, ORDER_PAID};
use crate::ids::{IdSource, OrderId};
use crate::order::{IllegalTransition, OrderStatus, Transition};
use crate::order::{LedgerError, PaymentLedger};
use crate::time::Timestamp;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// The order moved on meanwhile (e.g. was paid); nothing was written.
    Moved,
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
    /// The order's total and what was captured so far, in minor units.
    async fn amounts(&self, id: &OrderId) -> Result<Option<(i64, PaymentLedger)>, StoreError>;
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
    let kind = if to == OrderStatus::Expired {
        ORDER_EXPIRED
    } else {
        ORDER_CANCELLED
    };
    Event::new(
        ids,
        kind,
        now,
        serde_json::json!({
            "order_id": id,
            "from": from.as_str(),
            "status": to.as_str(),
            // A paid order that is cancelled must be refunded.
            "refund_required": from.refundable() && to == OrderStatus::Cancelled,
        }),
    )
}

/// Expire every unpaid order past its reservation (up to `limit`). Returns those expired.
pub async fn expire_due<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<OrderId>, StoreError> {
    let mut expired = Vec::new();
    for id in store.due_for_expiry(now, limit).await? {
        let from = OrderStatus::PendingPayment;
        let Ok(to) = from.apply(Transition::Expire) else {
            continue;
        };
        let event = event_for(ids, &id, from, to, now);
        if store.close(&id, from, to, &event, now).await? == CloseOutcome::Closed {
            expired.push(id);
        }
    }
    Ok(expired)
}

/// Cancel an order (merchant action): legal from `pending_payment` and `paid` only.
pub async fn cancel<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    id: &OrderId,
    now: Timestamp,
) -> Result<OrderStatus, LifecycleError> {
    let from = store.status(id).await?.ok_or(LifecycleError::NotFound)?;
    let to = from
        .apply(Transition::Cancel)
        .map_err(LifecycleError::Illegal)?;
    let event = event_for(ids, id, from, to, now);
    match store.close(id, from, to, &event, now).await? {
        CloseOutcome::Closed => Ok(to),
        CloseOutcome::Moved => Err(LifecycleError::Moved),
    }
}

/// The payment of an order was captured in full: it becomes `paid` and its stock is sold.
pub async fn mark_paid<S: OrderLifecycle>(
    store: &S,
    ids: &dyn IdSource,
    id: &OrderId,
    now: Timestamp,
) -> Result<OrderStatus, LifecycleError> {
    let from = store.status(id).await?.ok_or(LifecycleError::NotFound)?;
    let to = from
        .apply(Transition::Pay)
        .map_err(LifecycleError::Illegal)?;
    let (total, mut ledger) = store.amounts(id).await?.ok_or(LifecycleError::NotFound)?;
    let amount = total - ledger.captured();
    ledger
        .capture(amount, total)
        .map_err(LifecycleError::Ledger)?;
    let event = Event::new(
        ids,
        ORDER_PAID,
        now,
        serde_json::json!({ "order_id": id, "captured_minor": ledger.captured() }),
    );
    match store.pay(id, amount, &event, now).await? {
        CloseOutcome::Closed => Ok(to),
        CloseOutcome::Moved => Err(LifecycleError::Moved),
    }
}
