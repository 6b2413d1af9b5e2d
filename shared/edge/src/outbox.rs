//! The outbox's second half: events committed in a batch are sent to the `ORDER_EVENTS` queue.
//! A row is done only when the consumer has applied it (`applied_at`, set in the consumer's own
//! effect batch); until then the cron sends it again, with backoff (`next_send_at`), for as long
//! as it takes. Messages are JSON strings: a `serde_json::Value` sent through a Queue arrives
//! empty.

use serde::{Deserialize, Serialize};
use shop_domain::time::{Duration, Timestamp};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

use crate::sql::num;

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
    /// handler. A failure is logged, not answered: the rows stay in the outbox and the cron
    /// sends them again.
    pub async fn publish(&self, db: &D1Database, rows: &[OutboxRow]) {
        let resend_after = self.config.checkout.outbox_resend_after;
        if let Err(e) = publish(&self.env, db, rows, self.now, resend_after).await {
            self.internal("publishing events", &e);
        }
    }
}

/// Send `rows` to the queue, then record the attempt: the ones that went are marked sent, and
/// every row gets its next re-send time (`resend_after`, doubling per attempt), which only
/// matters if the consumer has not applied it by then. Returns how many were sent.
pub async fn publish(
    env: &Env,
    db: &D1Database,
    rows: &[OutboxRow],
    now: Timestamp,
    resend_after: Duration,
) -> worker::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let queue = env.queue(QUEUE_BINDING)?;
    let mut sent: Vec<&str> = Vec::with_capacity(rows.len());
    let mut first_error = None;
    for row in rows {
        let message = serde_json::to_string(&row.envelope())
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        match queue.send(message).await {
            Ok(()) => sent.push(&row.id),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let ids = serde_json::to_string(&sent).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let all = serde_json::to_string(&rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    // next_send_at = now + resend_after × 2^(attempts − 1), at most MAX_RESEND_DELAY (in SQL,
    // from each row's own attempt count).
    db.prepare(
        "UPDATE outbox SET attempts = attempts + 1, \
         sent_at = CASE WHEN id IN (SELECT value FROM json_each(?1)) THEN ?2 ELSE sent_at END, \
         next_send_at = ?2 + min(?4 * (1 << min(attempts, 30)), ?5) \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(&[
        ids.into(),
        num(now.millis()),
        all.into(),
        num(resend_after.millis()),
        num(MAX_RESEND_DELAY.millis()),
    ])?
    .run()
    .await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent.len()),
    }
}

/// Rows the consumer has not applied whose re-send is due: their last send was `next_send_at`
/// ago, or (never recorded) they were written more than `resend_after` ago.
pub async fn unapplied_due(
    db: &D1Database,
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
pub async fn row(db: &D1Database, id: &str) -> worker::Result<Option<OutboxRow>> {
    db.prepare("SELECT id, type, payload, created_at FROM outbox WHERE id = ?1")
        .bind(&[id.into()])?
        .first(None)
        .await
}
