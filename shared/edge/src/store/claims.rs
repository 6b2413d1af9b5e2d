//! Inbound deliveries recorded once: a provider's payment event (`payment_events`, primary key
//! `(provider, event_id)`) or a logistics partner's callback (`logistics_events`, `(partner,
//! event_id)`). The claim is a plain INSERT that leads the batch of the delivery's effects, so a
//! second delivery, concurrent or late, aborts its batch and changes nothing (a constraint, never
//! a `WHERE`); a signed body that cannot be read is claimed too, once per distinct body.

use shop_domain::fulfilment::tracking::TrackingUpdate;
use shop_domain::kernel::ids::{OrderId, ShipmentId};
use shop_domain::kernel::time::Timestamp;
use shop_domain::payments::{self, Outcome, PaymentEvent};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, err, num, opt_num, opt_str, Db, Stmt, Violation};

/// Run a claim alone. `false`: the delivery was recorded before (a second delivery).
pub async fn record(claim: Stmt) -> Result<bool, StoreError> {
    match claim.run().await {
        Ok(_) => Ok(true),
        Err(e) if is_repeated(&e.to_string()) => Ok(false),
        Err(e) => Err(err("record an inbound delivery")(e)),
    }
}

/// Did a batch fail because its claim was recorded before (a second delivery)?
pub fn is_repeated(message: &str) -> bool {
    matches!(
        sql::violation(message),
        Some(Violation::Unique(columns))
            if columns.starts_with("payment_events.") || columns.starts_with("logistics_events.")
    )
}

/// The statement that records `event` (the claim): `payload` is the raw body as received.
pub fn payment(
    db: &Db,
    provider: &str,
    event: &PaymentEvent,
    order: Option<&OrderId>,
    outcome: Outcome,
    payload: &str,
    now: Timestamp,
) -> Result<Stmt, StoreError> {
    let amount = event.amount;
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
        event.payment_id.as_str().into(),
        opt_num(amount.map(|m| m.minor_units())),
        opt_str(amount.map(|m| m.currency().code())),
        num(event.occurred_at.millis()),
        outcome.as_str().into(),
        num(now.millis()),
        JsValue::from_str(payload),
    ])
    .map_err(err("record payment event"))
}

/// The statement that records a signed delivery that is not an event (see
/// `shop_domain::payments::malformed_id`).
pub fn payment_malformed(
    db: &Db,
    provider: &str,
    body: &[u8],
    signed_at: Timestamp,
    now: Timestamp,
) -> Result<Stmt, StoreError> {
    db.prepare(
        "INSERT INTO payment_events (provider, event_id, type, order_id, payment_id, amount_minor, \
           currency, occurred_at, outcome, received_at, payload) \
         VALUES (?1, ?2, 'malformed', NULL, '', NULL, NULL, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        provider.into(),
        payments::malformed_id(body).into(),
        num(signed_at.millis()),
        Outcome::Malformed.as_str().into(),
        num(now.millis()),
        JsValue::from_str(&String::from_utf8_lossy(body)),
    ])
    .map_err(err("record malformed payment event"))
}

/// The claim that records `update` (`payload`: the raw body) with `outcome`.
pub fn logistics(
    db: &Db,
    partner: &str,
    update: &TrackingUpdate,
    shipment: Option<&ShipmentId>,
    outcome: &str,
    payload: &str,
    now: Timestamp,
) -> Result<Stmt, StoreError> {
    db.prepare(
        "INSERT INTO logistics_events (partner, event_id, shipment_id, tracking_number, status, outcome, \
           received_at, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(&[
        partner.into(),
        update.event_id.as_str().into(),
        opt_str(shipment.map(ShipmentId::as_str)),
        update.tracking_number.as_str().into(),
        update.status.as_str().into(),
        outcome.into(),
        num(now.millis()),
        JsValue::from_str(payload),
    ])
    .map_err(err("record logistics event"))
}

/// The claim of a signed body that is not a callback: kept once per distinct body.
pub fn logistics_malformed(
    db: &Db,
    partner: &str,
    body: &[u8],
    now: Timestamp,
) -> Result<Stmt, StoreError> {
    db.prepare(
        "INSERT INTO logistics_events (partner, event_id, shipment_id, tracking_number, status, outcome, \
           received_at, payload) VALUES (?1, ?2, NULL, '', 'malformed', 'malformed', ?3, ?4)",
    )
    .bind(&[
        partner.into(),
        shop_domain::payments::malformed_id(body).into(),
        num(now.millis()),
        JsValue::from_str(&String::from_utf8_lossy(body)),
    ])
    .map_err(err("record malformed logistics event"))
}
