//! Payment provider events in D1 (`payment_events`): the order an event names, and the claim
//! that records the event once. The claim is a plain `INSERT` on the table's primary key
//! `(provider, event_id)`: it leads the batch of the event's effects (a paid order's batch, see
//! `D1Orders::with_receipt`), so a second delivery aborts that batch and changes nothing.

use serde::{Deserialize, Serialize};
use shop_domain::kernel::ids::{CartId, OrderId};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::Timestamp;
use shop_domain::orders::order::{OrderStatus, PaymentLedger};
use shop_domain::payments::{self, PayableOrder, PaymentEvent};
use shop_domain::StoreError;

use crate::store::refunds::RefundRow;
use crate::store::sql::{self, opt_str, Db};
use shop_domain::orders::refunds::Refund;

#[derive(Deserialize)]
struct OrderRow {
    id: OrderId,
    status: String,
    currency: String,
    total_minor: i64,
    captured_minor: i64,
    refunded_minor: i64,
}

/// The order `event` of `provider` is about: by the payment id recorded at checkout, else by
/// the order or cart id the provider's metadata names. Only an order paid through `provider`, or
/// through the offline `test` provider (so a locally placed order can be paid by a locally
/// signed event), can be found: one provider's events never touch another's orders.
pub async fn find_order(
    db: &Db,
    provider: &str,
    event: &PaymentEvent,
) -> Result<Option<PayableOrder>, StoreError> {
    let context = "find order of payment";
    let row: Option<OrderRow> = sql::first(
        db,
        "SELECT id, status, currency, total_minor, captured_minor, refunded_minor FROM orders \
         WHERE (payment_id = ?1 OR id = ?2 OR cart_id = ?3) AND payment_provider IN (?4, 'test') \
         ORDER BY payment_id = ?1 DESC LIMIT 1",
        &[
            event.payment_id.as_str().into(),
            opt_str(event.order_hint.as_ref().map(OrderId::as_str)),
            opt_str(event.cart_hint.as_ref().map(CartId::as_str)),
            provider.into(),
        ],
        context,
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let bad = |what: &str| StoreError::new(format!("{context}: stored {what} is invalid"));
    let currency: Currency = row.currency.parse().map_err(|_| bad("currency"))?;
    let total = Money::from_minor(row.total_minor, currency).map_err(|_| bad("total"))?;
    let charged = Money::from_minor(payments::charged_minor(provider, total), currency)
        .map_err(|_| bad("total"))?;
    Ok(Some(PayableOrder {
        status: OrderStatus::parse(&row.status).ok_or_else(|| bad("status"))?,
        total,
        charged,
        ledger: PaymentLedger::restore(row.captured_minor, row.refunded_minor)
            .ok_or_else(|| bad("ledger"))?,
        id: row.id,
    }))
}

/// The payment of an order: its provider, payment id and number (what a provider follow-up
/// needs).
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentOf {
    pub provider: String,
    pub payment_id: String,
    pub number: String,
}

pub async fn payment_of(db: &Db, order: &OrderId) -> Result<Option<PaymentOf>, StoreError> {
    sql::first(
        db,
        "SELECT payment_provider AS provider, payment_id, number FROM orders WHERE id = ?1",
        &[order.as_str().into()],
        "payment of order",
    )
    .await
}

/// An order's payment: its status and amounts, and its ledger (the provider events recorded for
/// it, in the provider's own order). A read model: served as stored.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub total: Money,
    pub captured: Money,
    /// Confirmed by the provider.
    pub refunded: Money,
    /// Requested, not yet confirmed.
    pub refund_pending: Money,
    pub events: Vec<LedgerEntry>,
    /// The order's refunds, newest first.
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub provider: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The amount the event reports, when it reports one.
    pub amount: Option<Money>,
    /// The provider's own time of the event.
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    /// What this system did with it (see `shop_domain::payments::Outcome`).
    pub outcome: String,
}

#[derive(Deserialize)]
struct LedgerDoc {
    id: OrderId,
    status: String,
    currency: String,
    total: i64,
    captured: i64,
    refunded: i64,
    pending: i64,
    events: Vec<EntryRow>,
    refunds: Vec<RefundRow>,
}

#[derive(Deserialize)]
struct EntryRow {
    provider: String,
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    amount_minor: Option<i64>,
    currency: Option<String>,
    occurred_at: i64,
    received_at: i64,
    outcome: String,
}

const LEDGER_SQL: &str = "\
SELECT json_object('id', o.id, 'status', o.status, 'currency', o.currency, 'total', o.total_minor,
  'captured', o.captured_minor, 'refunded', o.refunded_minor, 'pending', o.refund_pending_minor,
  'events', json((SELECT json_group_array(json_object('provider', e.provider, 'event_id', e.event_id,
      'type', e.type, 'amount_minor', e.amount_minor, 'currency', e.currency,
      'occurred_at', e.occurred_at, 'received_at', e.received_at, 'outcome', e.outcome))
    FROM (SELECT * FROM payment_events WHERE order_id = o.id
          ORDER BY occurred_at, received_at, event_id) e)),
  'refunds', json((SELECT json_group_array(json_object('id', r.id, 'order_id', r.order_id,
      'status', r.status, 'currency', r.currency, 'amount_minor', r.amount_minor,
      'shipping_minor', r.shipping_minor, 'reason', r.reason, 'lines', r.lines,
      'provider', r.provider, 'provider_refund_id', r.provider_refund_id,
      'created_at', r.created_at, 'updated_at', r.updated_at))
    FROM (SELECT * FROM refunds WHERE order_id = o.id ORDER BY created_at DESC, id) r))) AS doc
FROM orders o WHERE o.id = ?1";

/// The payment of `order`, `None` when there is no such order. One statement.
pub async fn ledger(db: &Db, order: &OrderId) -> Result<Option<PaymentView>, StoreError> {
    let context = "payment ledger";
    let Some(doc) = sql::doc(db, LEDGER_SQL, &[order.as_str().into()], context).await? else {
        return Ok(None);
    };
    let doc: LedgerDoc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
    let bad = |what: &str| StoreError::new(format!("{context}: stored {what} is invalid"));
    let currency: Currency = doc.currency.parse().map_err(|_| bad("currency"))?;
    let money = |minor: i64| Money::from_minor(minor, currency).map_err(|_| bad("amount"));
    let events = doc
        .events
        .into_iter()
        .map(|e| LedgerEntry {
            amount: e
                .currency
                .as_deref()
                .and_then(|c| c.parse::<Currency>().ok())
                .zip(e.amount_minor)
                .and_then(|(c, minor)| Money::from_minor(minor, c).ok()),
            provider: e.provider,
            event_id: e.event_id,
            kind: e.kind,
            occurred_at: Timestamp::from_millis(e.occurred_at),
            received_at: Timestamp::from_millis(e.received_at),
            outcome: e.outcome,
        })
        .collect();
    Ok(Some(PaymentView {
        order_id: doc.id,
        status: OrderStatus::parse(&doc.status).ok_or_else(|| bad("status"))?,
        total: money(doc.total)?,
        captured: money(doc.captured)?,
        refunded: money(doc.refunded)?,
        refund_pending: money(doc.pending)?,
        events,
        refunds: doc
            .refunds
            .into_iter()
            .map(RefundRow::into_refund)
            .collect::<Result<_, _>>()?,
    }))
}
