//! Applying order events (the queue consumer's storage side): each event's effects, the claim
//! of its id and the mark on its outbox row (`applied_at`: the cron stops re-sending it) in one
//! D1 batch, so a redelivered event changes nothing; failures counted for backoff; messages that
//! cannot be applied recorded in `dead_events`.

use serde::Deserialize;
use shop_domain::customers::membership::MembershipPolicy;
use shop_domain::events::{Event, Payload};
use shop_domain::kernel::time::Timestamp;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, num, Db, Stmt, Violation};
use crate::store::webhooks;
use crate::store::{inventory, membership, rollups};

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// Its data can never be read as its type says: retrying cannot help.
    Undecodable(String),
    /// Storage failed; a retry may succeed.
    Storage(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Undecodable(e) => write!(f, "undecodable event: {e}"),
            ApplyError::Storage(e) => write!(f, "storage: {e}"),
        }
    }
}

fn err(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Storage(e.to_string())
}

/// Apply one event: its effects, its claim and its outbox mark in one batch. `"duplicate"` when
/// it was applied before. `policy`: how many points a paid order earns. Each family of effects
/// is its own store module: `rollups` (sales), `membership` (points), `inventory` (stock alerts),
/// `webhooks` (the merchant deliveries every event fans out to).
pub async fn apply(
    db: &Db,
    event: &Event,
    policy: &MembershipPolicy,
    now: Timestamp,
) -> Result<&'static str, ApplyError> {
    let mut statements: Vec<Stmt> = vec![db
        .prepare("INSERT INTO processed_events (event_id, type, processed_at) VALUES (?1, ?2, ?3)")
        .bind(&[
            event.id.as_str().into(),
            event.kind().as_str().into(),
            num(now.millis()),
        ])
        .map_err(err)?];
    let day = event.created_at.to_rfc3339();
    let day = day.get(..10).unwrap_or("1970-01-01");
    match &event.payload {
        Payload::OrderCreated(created) => {
            statements.push(rollups::placed(db, day, created).map_err(err)?);
        }
        Payload::OrderPaid(paid) => {
            statements.extend(rollups::paid(db, day, &paid.order_id).map_err(err)?);
            statements.extend(
                membership::earned(db, event.id.as_str(), paid, policy, now)
                    .await
                    .map_err(err)?,
            );
        }
        Payload::OrderRefunded(refunded) => {
            statements.push(rollups::refunded(db, day, refunded).map_err(err)?);
            statements
                .push(membership::taken_back(db, event.id.as_str(), refunded, now).map_err(err)?);
        }
        Payload::InventoryLow(low) => {
            statements.push(inventory::stock_alert(db, event.id.as_str(), low, now).map_err(err)?);
        }
        // No effect here yet; claiming them keeps the log complete.
        Payload::OrderCancelled(_)
        | Payload::OrderExpired(_)
        | Payload::OrderPaymentReview(_)
        | Payload::ShipmentCreated(_)
        | Payload::ShipmentUpdated(_)
        | Payload::OrderDelivered(_)
        | Payload::TicketCreated(_)
        | Payload::TicketReplied(_)
        | Payload::TicketResolved(_)
        | Payload::CustomerRegistered(_)
        | Payload::CustomerPasswordResetRequested(_)
        | Payload::CustomerErased(_)
        | Payload::ProductCreated(_)
        | Payload::ProductUpdated(_)
        | Payload::ProductArchived(_)
        | Payload::VariantCreated(_)
        | Payload::VariantUpdated(_)
        | Payload::VariantArchived(_)
        | Payload::CategoryCreated(_)
        | Payload::CategoryUpdated(_) => {}
    }
    // Outbound webhooks: created once, with the claim; sent below and by the cron.
    statements.push(webhooks::enqueue(db, event, now).map_err(err)?);
    // Done end to end: the cron stops re-sending the outbox row.
    let mark = mark_applied(db, event.id.as_str(), now)?;
    statements.push(mark);
    match db.batch(statements).await {
        Ok(_) => Ok("applied"),
        Err(e)
            if matches!(
                sql::violation(&e.to_string()),
                Some(Violation::Unique(columns)) if columns.contains("processed_events.event_id")
            ) =>
        {
            // Applied before; make sure its outbox row says so (a lost mark would only cost
            // re-sends, each answered "duplicate").
            mark_applied(db, event.id.as_str(), now)?
                .run()
                .await
                .map_err(err)?;
            Ok("duplicate")
        }
        Err(e) => Err(err(e)),
    }
}

fn mark_applied(db: &Db, event_id: &str, now: Timestamp) -> Result<Stmt, ApplyError> {
    // Sent, too: the request that wrote it records nothing after sending (see outbox.rs).
    db.prepare(
        "UPDATE outbox SET applied_at = coalesce(applied_at, ?2), sent_at = coalesce(sent_at, ?2) \
         WHERE id = ?1",
    )
    .bind(&[event_id.into(), num(now.millis())])
    .map_err(err)
}

/// Why a message is recorded as dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// It can never be applied (not an envelope, or data that does not fit its type).
    Undecodable,
    /// The queue gave up retrying it (it arrived on the dead-letter queue).
    RetriesExhausted,
}

impl DeadReason {
    fn as_str(self) -> &'static str {
        match self {
            DeadReason::Undecodable => "undecodable",
            DeadReason::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// Record a message that could not be applied, once per queue message (a redelivered dead
/// letter is recorded already).
pub async fn record_dead(
    db: &Db,
    message_id: &str,
    body: &str,
    reason: DeadReason,
    now: Timestamp,
) -> worker::Result<()> {
    // What can be read of it, for the record (it may not be an event at all).
    let header: Option<Header> = serde_json::from_str(body).ok();
    let event_id = header.as_ref().map(|e| e.id.as_str());
    db.prepare(
        "INSERT INTO dead_events (id, message_id, event_id, type, body, reason, last_error, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT last_error FROM event_failures WHERE event_id = ?3), ?7) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&[
        format!("dead_{}", uuid::Uuid::new_v4().simple()).into(),
        message_id.into(),
        event_id.map_or(JsValue::NULL, JsValue::from_str),
        header
            .as_ref()
            .map_or(JsValue::NULL, |e| JsValue::from_str(&e.kind)),
        body.into(),
        reason.as_str().into(),
        num(now.millis()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The envelope's header, read from a message that may not be an event.
#[derive(Deserialize)]
struct Header {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Attempts {
    attempts: i64,
}

/// Count the failure (for backoff and for the operator) and keep the last error.
pub async fn record_failure(
    db: &Db,
    event: &Event,
    error: &str,
    now: Timestamp,
) -> worker::Result<u32> {
    let row: Option<Attempts> = db
        .prepare(
            "INSERT INTO event_failures (event_id, type, attempts, last_error, updated_at) VALUES (?1, ?2, 1, ?3, ?4) \
             ON CONFLICT (event_id) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error, \
             updated_at = excluded.updated_at RETURNING attempts",
        )
        .bind(&[
            event.id.as_str().into(),
            event.kind().as_str().into(),
            error.into(),
            num(now.millis()),
        ])?
        .first()
        .await?;
    Ok(row.map_or(1, |r| u32::try_from(r.attempts).unwrap_or(1)))
}
