//! The dead-letter record (`dead_events`): messages the consumer could not apply, for an
//! operator to list and redrive. Recording happens in `effects::record_dead`.

use serde::{Deserialize, Serialize};
use shop_domain::kernel::pagination::{Limit, Page};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, num, Db};

#[derive(Debug, Clone, Serialize)]
pub struct DeadEvent {
    pub id: String,
    pub message_id: String,
    pub event_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `undecodable` (recorded at once) or `retries_exhausted` (from the dead-letter queue).
    pub reason: String,
    pub last_error: Option<String>,
    /// The message as it arrived.
    pub body: String,
    /// Whether the event's outbox row has been applied since (by a re-send or a redrive).
    pub applied: bool,
    pub created_at: Timestamp,
    pub redriven_at: Option<Timestamp>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    message_id: String,
    event_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: String,
    last_error: Option<String>,
    body: String,
    applied: i64,
    created_at: i64,
    redriven_at: Option<i64>,
}

impl From<Row> for DeadEvent {
    fn from(r: Row) -> Self {
        DeadEvent {
            id: r.id,
            message_id: r.message_id,
            event_id: r.event_id,
            kind: r.kind,
            reason: r.reason,
            last_error: r.last_error,
            body: r.body,
            applied: r.applied == 1,
            created_at: Timestamp::from_millis(r.created_at),
            redriven_at: r.redriven_at.map(Timestamp::from_millis),
        }
    }
}

const COLUMNS: &str = "d.id, d.message_id, d.event_id, d.type, d.reason, d.last_error, d.body, \
     (SELECT count(*) FROM outbox o WHERE o.id = d.event_id AND o.applied_at IS NOT NULL) AS applied, \
     d.created_at, d.redriven_at";

/// Newest first; the cursor is `<created_at>:<id>` of the last record returned.
pub async fn list(
    db: &Db,
    after: Option<(i64, String)>,
    limit: Limit,
) -> Result<Page<DeadEvent>, StoreError> {
    let (at, id) = match &after {
        Some((at, id)) => (num(*at), JsValue::from_str(id)),
        None => (JsValue::NULL, JsValue::NULL),
    };
    let rows: Vec<Row> = sql::all(
        db,
        &format!(
            "SELECT {COLUMNS} FROM dead_events d \
             WHERE (?1 IS NULL OR (d.created_at, d.id) < (?1, ?2)) \
             ORDER BY d.created_at DESC, d.id DESC LIMIT ?3"
        ),
        &[at, id, num(i64::from(limit.get()) + 1)],
        "list dead events",
    )
    .await?;
    let records: Vec<DeadEvent> = rows.into_iter().map(Into::into).collect();
    Ok(Page::from_overfetch(records, limit, |d| {
        format!("{}:{}", d.created_at.millis(), d.id)
    }))
}

pub async fn get(db: &Db, id: &str) -> Result<Option<DeadEvent>, StoreError> {
    let row: Option<Row> = sql::first(
        db,
        &format!("SELECT {COLUMNS} FROM dead_events d WHERE d.id = ?1"),
        &[id.into()],
        "get dead event",
    )
    .await?;
    Ok(row.map(Into::into))
}

pub async fn mark_redriven(db: &Db, id: &str, now: Timestamp) -> Result<(), StoreError> {
    sql::first::<serde_json::Value>(
        db,
        "UPDATE dead_events SET redriven_at = ?2 WHERE id = ?1 RETURNING id",
        &[id.into(), num(now.millis())],
        "mark dead event redriven",
    )
    .await?;
    Ok(())
}
