//! The merchant's webhook endpoints and their deliveries in D1: an endpoint's creation, the
//! deliveries an event fans out to (in the consumer's batch), the sender's lease on what is due
//! and each attempt's record, redelivery, and the delivery log. Sending is
//! `crate::outbound::webhooks`.

use serde::{Deserialize, Serialize};
use shop_domain::events::Event;
use shop_domain::kernel::pagination::{Limit, Page};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, err, num, Db, Stmt};

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    /// Shown once, in the answer that created the endpoint; never stored for replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// True in an idempotent replay of the creation: the secret was already issued, once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret_already_issued: bool,
    pub created_at: Timestamp,
}

pub async fn create_endpoint(db: &Db, endpoint: &Endpoint, secret: &str) -> Result<(), StoreError> {
    let types =
        serde_json::to_string(&endpoint.event_types).map_err(|e| StoreError::new(e.to_string()))?;
    db.prepare("INSERT INTO webhook_endpoints (id, url, event_types, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(&[
            endpoint.id.as_str().into(),
            endpoint.url.as_str().into(),
            types.into(),
            secret.into(),
            num(endpoint.created_at.millis()),
        ])
        .map_err(err("create endpoint"))?
        .run()
        .await
        .map_err(err("create endpoint"))?;
    Ok(())
}

/// For the consumer's batch: one pending delivery per enabled endpoint subscribed to the event.
pub fn enqueue(db: &Db, event: &Event, now: Timestamp) -> worker::Result<Stmt> {
    let payload =
        serde_json::to_string(event).map_err(|e| worker::Error::RustError(e.to_string()))?;
    db.prepare(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, \
           next_attempt_at, created_at, updated_at) \
         SELECT 'whd_' || lower(hex(randomblob(16))), e.id, ?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4 \
         FROM webhook_endpoints e \
         WHERE e.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(e.event_types) t WHERE t.value IN ('*', ?2))",
    )
    .bind(&[event.id.as_str().into(), event.kind().as_str().into(), payload.into(), num(now.millis())])
}

/// A delivery a sender claimed: what it sends, and where.
#[derive(Deserialize)]
pub struct Due {
    pub id: String,
    pub event_id: String,
    pub payload: String,
    pub attempts: i64,
    pub url: String,
    pub secret: String,
}

/// Claim what is due (of one event, or all), at most `limit`, in one statement: the claimed rows
/// are not due again until `lease`, so a concurrent sender (the consumer, the cron) claims none
/// of them. A sender that dies mid-send leaves its rows to be retried when the lease ends.
pub async fn claim_due(
    db: &Db,
    event_id: Option<&str>,
    now: Timestamp,
    limit: u32,
    lease: Timestamp,
) -> Result<Vec<Due>, StoreError> {
    sql::all(
        db,
        "UPDATE webhook_deliveries SET next_attempt_at = ?4 \
         WHERE status = 'pending' AND next_attempt_at <= ?1 AND id IN ( \
           SELECT id FROM webhook_deliveries \
           WHERE status = 'pending' AND next_attempt_at <= ?1 AND (?2 IS NULL OR event_id = ?2) \
           ORDER BY next_attempt_at LIMIT ?3) \
         RETURNING id, event_id, payload, attempts, \
           (SELECT url FROM webhook_endpoints e WHERE e.id = endpoint_id) AS url, \
           (SELECT secret FROM webhook_endpoints e WHERE e.id = endpoint_id) AS secret",
        &[
            num(now.millis()),
            event_id.map_or(JsValue::NULL, JsValue::from_str),
            num(i64::from(limit)),
            num(lease.millis()),
        ],
        "claim due webhook deliveries",
    )
    .await
}

/// What one attempt came to.
#[derive(Debug)]
pub struct AttemptOutcome {
    /// `succeeded`, `failed` or `pending` (to be retried at `next`).
    pub status: &'static str,
    pub attempts: i64,
    pub code: Option<u16>,
    pub error: Option<String>,
    pub next: Timestamp,
}

/// Record the attempt on `delivery`: only the row this attempt read (its attempts unchanged),
/// so a concurrent sender cannot double-count.
pub async fn record_attempt(
    db: &Db,
    delivery: &Due,
    outcome: &AttemptOutcome,
    now: Timestamp,
) -> Result<(), StoreError> {
    let context = "record webhook attempt";
    db.prepare(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, last_status_code = ?4, last_error = ?5, \
         next_attempt_at = ?6, updated_at = ?7 WHERE id = ?1 AND attempts = ?8",
    )
    .bind(&[
        delivery.id.as_str().into(),
        outcome.status.into(),
        num(outcome.attempts),
        outcome.code.map_or(JsValue::NULL, |c| num(i64::from(c))),
        outcome.error.as_deref().map_or(JsValue::NULL, JsValue::from_str),
        num(outcome.next.millis()),
        num(now.millis()),
        num(delivery.attempts),
    ])
    .map_err(err(context))?
    .run()
    .await
    .map_err(err(context))?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryLog {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Deserialize)]
struct DeliveryRow {
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    next_attempt_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    fn into_log(self) -> DeliveryLog {
        DeliveryLog {
            next_attempt_at: (self.status == "pending")
                .then(|| Timestamp::from_millis(self.next_attempt_at).to_rfc3339()),
            id: self.id,
            endpoint_id: self.endpoint_id,
            event_id: self.event_id,
            event_type: self.event_type,
            status: self.status,
            attempts: self.attempts,
            last_status_code: self.last_status_code,
            last_error: self.last_error,
            created_at: Timestamp::from_millis(self.created_at).to_rfc3339(),
            updated_at: Timestamp::from_millis(self.updated_at).to_rfc3339(),
        }
    }
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, status, attempts, \
  last_status_code, last_error, next_attempt_at, created_at, updated_at";

/// What asking for a delivery again did.
#[derive(Debug)]
pub enum Redelivery {
    /// It had failed: it is pending again, due now, with a fresh set of attempts.
    Again(DeliveryLog),
    /// It is pending or succeeded: left as it is (asking again changes nothing).
    AsItIs(DeliveryLog),
    NotFound,
}

/// Send the failed delivery `id` again (the consumer's cron, or the caller, sends it). One
/// statement moves it back to pending only if it failed, so repeating the request is harmless.
pub async fn redeliver(db: &Db, id: &str, now: Timestamp) -> Result<Redelivery, StoreError> {
    let context = "redeliver";
    let moved: Option<DeliveryRow> = sql::first(
        db,
        &format!(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2, \
               last_error = NULL, last_status_code = NULL, updated_at = ?2 \
             WHERE id = ?1 AND status = 'failed' RETURNING {DELIVERY_COLUMNS}"
        ),
        &[id.into(), num(now.millis())],
        context,
    )
    .await?;
    if let Some(row) = moved {
        return Ok(Redelivery::Again(row.into_log()));
    }
    let current: Option<DeliveryRow> = sql::first(
        db,
        &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1"),
        &[id.into()],
        context,
    )
    .await?;
    Ok(current.map_or(Redelivery::NotFound, |row| {
        Redelivery::AsItIs(row.into_log())
    }))
}

/// Send again every failed delivery of `endpoint` created at or after `since`: how many, or
/// `None` when there is no such endpoint. One statement (and one read when it moved none).
pub async fn redeliver_since(
    db: &Db,
    endpoint: &str,
    since: Timestamp,
    now: Timestamp,
) -> Result<Option<usize>, StoreError> {
    #[derive(Deserialize)]
    struct Moved {
        #[allow(dead_code)]
        id: String,
    }
    let context = "redeliver endpoint";
    let moved: Vec<Moved> = sql::all(
        db,
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?3, \
           last_error = NULL, last_status_code = NULL, updated_at = ?3 \
         WHERE endpoint_id = ?1 AND status = 'failed' AND created_at >= ?2 RETURNING id",
        &[endpoint.into(), num(since.millis()), num(now.millis())],
        context,
    )
    .await?;
    if !moved.is_empty() {
        return Ok(Some(moved.len()));
    }
    #[derive(Deserialize)]
    struct Found {
        #[allow(dead_code)]
        id: String,
    }
    let found: Option<Found> = sql::first(
        db,
        "SELECT id FROM webhook_endpoints WHERE id = ?1",
        &[endpoint.into()],
        context,
    )
    .await?;
    Ok(found.map(|_| 0))
}

/// Newest first; the cursor is `<created_at>:<id>`.
pub async fn list_deliveries(
    db: &Db,
    endpoint_id: Option<&str>,
    status: Option<&str>,
    after: Option<(i64, String)>,
    limit: Limit,
) -> Result<Page<DeliveryLog>, StoreError> {
    let context = "list deliveries";
    let rows: Vec<DeliveryRow> = db
        .prepare(
            "SELECT id, endpoint_id, event_id, event_type, status, attempts, last_status_code, last_error, \
               next_attempt_at, created_at, updated_at FROM webhook_deliveries \
             WHERE (?1 IS NULL OR endpoint_id = ?1) AND (?2 IS NULL OR status = ?2) \
               AND (?3 IS NULL OR (created_at, id) < (?3, ?4)) \
             ORDER BY created_at DESC, id DESC LIMIT ?5",
        )
        .bind(&[
            endpoint_id.map_or(JsValue::NULL, JsValue::from_str),
            status.map_or(JsValue::NULL, JsValue::from_str),
            after.as_ref().map_or(JsValue::NULL, |a| num(a.0)),
            after.as_ref().map_or(JsValue::NULL, |a| JsValue::from_str(&a.1)),
            num(i64::from(limit.get()) + 1),
        ])
        .map_err(err(context))?
        .all()
        .await
        .map_err(err(context))?
        .results()
        .map_err(err(context))?;
    let logs = rows.into_iter().map(DeliveryRow::into_log).collect();
    Ok(Page::from_overfetch(logs, limit, |d| {
        format!(
            "{}:{}",
            Timestamp::parse_rfc3339(&d.created_at).map_or(0, Timestamp::millis),
            d.id
        )
    }))
}
