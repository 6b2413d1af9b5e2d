//! Outbound webhooks to the merchant's endpoints, signed with Standard Webhooks:
//! `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"<id>.<timestamp>.<body>"` with the base64-decoded `whsec_` secret.
//!
//! Deliveries are created once, in the consumer's batch that applies the event (so exactly one
//! per endpoint and event); sending happens after, and again from the cron for retries. A
//! sender claims the deliveries it sends in one statement first (a lease on `next_attempt_at`),
//! so the consumer and the cron never both send one. Only 5xx, 429, timeouts and network
//! failures are retried, with backoff; any other answer is final, and a redirect is never
//! followed (a 3xx is a failed delivery). Endpoint URLs must be https to a named host; plain
//! http and loopback, and IP-literal hosts, only where settings allow (see [`UrlPolicy`]), checked
//! when the endpoint is created and again before every send.

use crate::store::sql::{self, err, num, Db, Stmt};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use shop_domain::ids::IdSource;
use shop_domain::pagination::{Limit, Page};
use shop_domain::time::{Duration, Timestamp};
use shop_domain::webhooks::{EndpointUrl, UrlPolicy};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::outbound::{self, Outcome};
use shop_domain::events::Event;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// Margin added to a claim's lease beyond the time its sends can take.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

/// A fresh `whsec_` secret: 32 random bytes, base64.
pub fn new_secret(ids: &dyn IdSource) -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&ids.next_u128().to_be_bytes());
    bytes.extend_from_slice(&ids.next_u128().to_be_bytes());
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Retry after 30 s, 1, 2, 4 … minutes, at most 6 hours.
pub fn retry_delay(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs((30_i64.saturating_mul(2_i64.saturating_pow(exponent))).min(6 * 3600))
}

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

#[derive(Deserialize)]
struct Due {
    id: String,
    event_id: String,
    payload: String,
    attempts: i64,
    url: String,
    secret: String,
}

enum Attempt {
    Delivered(u16),
    /// Final: a client error other than 429, or a redirect.
    Rejected(u16, &'static str),
    /// Final: the endpoint's URL is not allowed (any more) by the URL policy.
    Refused(&'static str),
    /// Worth retrying: 5xx, 429, timeout or network failure.
    Retry(Option<u16>, String),
}

async fn send(due: &Due, now: Timestamp, sending: &Sending) -> Attempt {
    let policy = sending.policy;
    if let Err(why) = EndpointUrl::parse(&due.url, policy) {
        return Attempt::Refused(why);
    }
    let signed = outbound::standard_webhooks_post(
        &due.secret,
        &due.event_id,
        now,
        &due.payload,
        "edge-commerce-webhooks/1",
    );
    let mut init = match signed {
        Ok(init) => init,
        Err(why) => return Attempt::Retry(None, format!("endpoint secret: {why}")),
    };
    match outbound::send(&due.url, &mut init, sending.timeout).await {
        Outcome::Answered(response) => {
            let status = response.status_code();
            match status {
                200..=299 => Attempt::Delivered(status),
                429 | 500..=599 => Attempt::Retry(Some(status), format!("answered {status}")),
                300..=399 => Attempt::Rejected(status, "redirect not followed"),
                _ => Attempt::Rejected(status, "not retried"),
            }
        }
        Outcome::TimedOut => Attempt::Retry(
            None,
            format!("no answer within {} ms", sending.timeout.as_millis()),
        ),
        Outcome::Failed(e) => Attempt::Retry(None, e.to_string()),
    }
}

/// How deliveries are sent: which URLs are allowed, how long an endpoint may take.
#[derive(Debug, Clone, Copy)]
pub struct Sending {
    pub policy: UrlPolicy,
    pub timeout: std::time::Duration,
}

impl Sending {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Sending {
            policy: config.webhooks,
            timeout: config.outbound_timeout,
        }
    }
}

/// Send every pending delivery that is due (of one event, or all), and record the outcome.
/// Returns how many were attempted.
pub async fn deliver_due(
    db: &Db,
    event_id: Option<&str>,
    now: Timestamp,
    limit: u32,
    sending: Sending,
) -> Result<usize, StoreError> {
    let context = "deliver webhooks";
    // Claim before sending, in one statement: the claimed rows are not due again until the
    // lease ends, so a concurrent sender (the consumer, the cron) claims none of them. A sender
    // that dies mid-send leaves its rows to be retried when the lease ends.
    let due: Vec<Due> = sql::all(
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
            // The lease outlasts sending every claimed row one after another, each up to the
            // timeout: no row is claimed again while this sender may still send it.
            num(now
                .plus(Duration::from_millis(i64::from(limit).saturating_mul(
                    i64::try_from(sending.timeout.as_millis()).unwrap_or(i64::MAX),
                )))
                .plus(CLAIM_MARGIN)
                .millis()),
        ],
        context,
    )
    .await?;
    for delivery in &due {
        let attempts = delivery.attempts + 1;
        let (status, code, error, next) = match send(delivery, now, &sending).await {
            Attempt::Delivered(code) => ("succeeded", Some(code), None, now),
            Attempt::Rejected(code, why) => (
                "failed",
                Some(code),
                Some(format!("answered {code}; {why}")),
                now,
            ),
            Attempt::Refused(why) => ("failed", None, Some(why.to_owned()), now),
            Attempt::Retry(code, why) if attempts >= MAX_ATTEMPTS => {
                ("failed", code, Some(format!("{why}; gave up")), now)
            }
            Attempt::Retry(code, why) => {
                ("pending", code, Some(why), now.plus(retry_delay(attempts)))
            }
        };
        // Only the row this attempt read: a concurrent sender cannot double-count.
        db.prepare(
            "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, last_status_code = ?4, last_error = ?5, \
             next_attempt_at = ?6, updated_at = ?7 WHERE id = ?1 AND attempts = ?8",
        )
        .bind(&[
            delivery.id.as_str().into(),
            status.into(),
            num(attempts),
            code.map_or(JsValue::NULL, |c| num(i64::from(c))),
            error.map_or(JsValue::NULL, JsValue::from),
            num(next.millis()),
            num(now.millis()),
            num(delivery.attempts),
        ])
        .map_err(err(context))?
        .run()
        .await
        .map_err(err(context))?;
    }
    Ok(due.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff() {
        assert_eq!(retry_delay(1), Duration::from_secs(30));
        assert_eq!(retry_delay(3), Duration::from_secs(120));
        assert_eq!(retry_delay(20), Duration::from_secs(6 * 3600));
    }
}
