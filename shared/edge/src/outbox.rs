//! The outbox's second half: events committed in a batch are sent to the `ORDER_EVENTS` queue
//! and marked sent. A send that fails leaves the row unsent; the cron trigger sends it again.
//! Messages are JSON strings: a `serde_json::Value` sent through a Queue arrives empty.

use serde::{Deserialize, Serialize};
use shop_domain::time::Timestamp;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};

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

/// Send `rows` to the queue, then mark the ones that went as sent. Returns how many were sent.
pub async fn publish(
    env: &Env,
    db: &D1Database,
    rows: &[OutboxRow],
    now: Timestamp,
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
    db.prepare(
        "UPDATE outbox SET attempts = attempts + 1, \
         sent_at = CASE WHEN id IN (SELECT value FROM json_each(?1)) THEN ?2 ELSE sent_at END \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(&[
        ids.into(),
        JsValue::from_f64(now.millis() as f64),
        all.into(),
    ])?
    .run()
    .await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent.len()),
    }
}

/// Rows not sent `delay_ms` after they were written (their first send failed or never ran).
pub async fn unsent(
    db: &D1Database,
    older_than: Timestamp,
    limit: u32,
) -> worker::Result<Vec<OutboxRow>> {
    db.prepare(
        "SELECT id, type, payload, created_at FROM outbox \
         WHERE sent_at IS NULL AND created_at <= ?1 ORDER BY created_at LIMIT ?2",
    )
    .bind(&[
        JsValue::from_f64(older_than.millis() as f64),
        JsValue::from_f64(f64::from(limit)),
    ])?
    .all()
    .await?
    .results()
}
