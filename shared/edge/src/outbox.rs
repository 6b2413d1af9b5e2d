//! The outbox's second half: events committed in a batch are sent to the `ORDER_EVENTS` queue.
//! A row is done only when the consumer has applied it (`applied_at`, set in the consumer's own
//! effect batch); until then the cron sends it again, with backoff (`next_send_at`), for as long
//! as it takes. Messages are JSON strings: a `serde_json::Value` sent through a Queue arrives
//! empty.

use serde::{Deserialize, Serialize};
use shop_domain::time::{Duration, Timestamp};
use worker::wasm_bindgen::JsValue;
use worker::Env;

use crate::sql::{num, Db};

/// The longest wait between two sends of an unapplied row: after the n-th send the next one is
/// due `resend_after × 2^(n−1)` later, at most this.
pub const MAX_RESEND_DELAY: Duration = Duration::from_secs(3600);

/// An outbox row as returned by `RETURNING id, type, payload, created_at`.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboxRow {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: String,
    pub created_at: i64,
}

/// The envelope on the queue and to merchants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub data: serde_json::Value,
}

impl OutboxRow {
    pub fn envelope(&self) -> Envelope {
        Envelope {
            id: self.id.clone(),
            kind: self.kind.clone(),
            created_at: Timestamp::from_millis(self.created_at).to_rfc3339(),
            data: serde_json::from_str(&self.payload).unwrap_or_default(),
        }
    }
}

pub const QUEUE_BINDING: &str = "ORDER_EVENTS";

impl<E> crate::runtime::Call<E> {
    /// Send the events a store operation wrote to the queue: the one publish step of every
    /// handler. Nothing is written to D1 on the request's path: the consumer marks a row sent
    /// and applied in its effect batch, and until then the cron sends it again
    /// (`resend_after` after it was written). A failure is logged, not answered.
    pub async fn publish(&self, rows: &[OutboxRow]) {
        if let Err(e) = send(&self.env, rows).await {
            self.internal("publishing events", &e);
        }
    }
}

/// Send `rows` to the queue in one `send_batch`.
pub async fn send(env: &Env, rows: &[OutboxRow]) -> worker::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let messages = rows
        .iter()
        .map(|row| serde_json::to_string(&row.envelope()))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    env.queue(QUEUE_BINDING)?.send_batch(messages).await
}

/// Send `rows` to the queue, then record the attempt (the cron's and an admin's redrive): each
/// row is marked sent when the batch went, and gets its next re-send time (`resend_after`,
/// doubling per attempt), which only matters if the consumer has not applied it by then.
/// Returns how many were sent.
pub async fn publish(
    env: &Env,
    db: &Db,
    rows: &[OutboxRow],
    now: Timestamp,
    resend_after: Duration,
) -> worker::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let sent = send(env, rows).await;
    let ids = serde_json::to_string(&rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    // next_send_at = now + resend_after × 2^(attempts − 1), at most MAX_RESEND_DELAY (in SQL,
    // from each row's own attempt count).
    db.prepare(
        "UPDATE outbox SET attempts = attempts + 1, \
         sent_at = CASE WHEN ?1 THEN ?2 ELSE sent_at END, \
         next_send_at = ?2 + min(?4 * (1 << min(attempts, 30)), ?5) \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(&[
        JsValue::from_bool(sent.is_ok()),
        num(now.millis()),
        ids.into(),
        num(resend_after.millis()),
        num(MAX_RESEND_DELAY.millis()),
    ])?
    .run()
    .await?;
    sent.map(|()| rows.len())
}

/// Rows the consumer has not applied whose re-send is due: their last send was `next_send_at`
/// ago, or (never recorded) they were written more than `resend_after` ago.
pub async fn unapplied_due(
    db: &Db,
    now: Timestamp,
    resend_after: Duration,
    limit: u32,
) -> worker::Result<Vec<OutboxRow>> {
    db.prepare(
        "SELECT id, type, payload, created_at FROM outbox \
         WHERE applied_at IS NULL AND coalesce(next_send_at, created_at + ?2) <= ?1 \
         ORDER BY created_at LIMIT ?3",
    )
    .bind(&[
        num(now.millis()),
        num(resend_after.millis()),
        JsValue::from_f64(f64::from(limit)),
    ])?
    .all()
    .await?
    .results()
}

/// One row, by id (an admin's redrive sends it again).
pub async fn row(db: &Db, id: &str) -> worker::Result<Option<OutboxRow>> {
    db.prepare("SELECT id, type, payload, created_at FROM outbox WHERE id = ?1")
        .bind(&[id.into()])?
        .first()
        .await
}
