//! Payment provider events in D1 (`payment_events`): the order an event names, and the claim
//! that records the event once. The claim is a plain `INSERT` on the table's primary key
//! `(provider, event_id)`: it leads the batch of the event's effects (a paid order's batch, see
//! `D1Orders::with_receipt`), so a second delivery aborts that batch and changes nothing.

use serde::Deserialize;
use shop_domain::ids::{CartId, OrderId};
use shop_domain::money::{Currency, Money};
use shop_domain::order::OrderStatus;
use shop_domain::payments::{Outcome, PayableOrder, StripeEvent};
use shop_domain::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, err, num, opt_num, opt_str, Db, Stmt, Violation};

#[derive(Deserialize)]
struct OrderRow {
    id: OrderId,
    status: String,
    currency: String,
    total_minor: i64,
}

/// The order a payment belongs to: by the payment id recorded at checkout, else by the order or
/// cart id the provider's metadata names.
pub async fn find_order(
    db: &Db,
    payment_id: &str,
    order: Option<&OrderId>,
    cart: Option<&CartId>,
) -> Result<Option<PayableOrder>, StoreError> {
    let context = "find order of payment";
    let row: Option<OrderRow> = sql::first(
        db,
        "SELECT id, status, currency, total_minor FROM orders \
         WHERE payment_id = ?1 OR id = ?2 OR cart_id = ?3 ORDER BY payment_id = ?1 DESC LIMIT 1",
        &[
            payment_id.into(),
            opt_str(order.map(OrderId::as_str)),
            opt_str(cart.map(CartId::as_str)),
        ],
        context,
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let bad = |what: &str| StoreError::new(format!("{context}: stored {what} is invalid"));
    let currency: Currency = row.currency.parse().map_err(|_| bad("currency"))?;
    Ok(Some(PayableOrder {
        status: OrderStatus::parse(&row.status).ok_or_else(|| bad("status"))?,
        total: Money::from_minor(row.total_minor, currency).map_err(|_| bad("total"))?,
        id: row.id,
    }))
}

/// The statement that records `event` (the claim): `payload` is the raw body as received.
pub fn claim(
    db: &Db,
    provider: &str,
    event: &StripeEvent,
    order: Option<&OrderId>,
    outcome: Outcome,
    payload: &str,
    now: Timestamp,
) -> Result<Stmt, StoreError> {
    let amount = event.amount();
    db.prepare(
        "INSERT INTO payment_events (provider, event_id, type, order_id, payment_id, amount_minor, \
           currency, occurred_at, outcome, received_at, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind(&[
        provider.into(),
        event.id.as_str().into(),
        event.kind.as_str().into(),
        opt_str(order.map(OrderId::as_str)),
        event.payment_id().into(),
        opt_num(amount.map(|m| m.minor_units())),
        opt_str(amount.map(|m| m.currency().code())),
        num(event.occurred_at().millis()),
        outcome.as_str().into(),
        num(now.millis()),
        JsValue::from_str(payload),
    ])
    .map_err(err("record payment event"))
}

/// Run a claim alone. `false`: the event was recorded before (a second delivery).
pub async fn record(claim: Stmt) -> Result<bool, StoreError> {
    match claim.run().await {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate(&e) => Ok(false),
        Err(e) => Err(err("record payment event")(e)),
    }
}

fn is_duplicate(e: &worker::Error) -> bool {
    matches!(
        sql::violation(&e.to_string()),
        Some(Violation::Unique(columns)) if columns.starts_with("payment_events.")
    )
}
