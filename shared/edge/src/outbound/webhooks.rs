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

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use shop_domain::kernel::ids::IdSource;
use shop_domain::kernel::time::{Duration, Timestamp};
use shop_domain::webhooks::{EndpointUrl, UrlPolicy};
use shop_domain::StoreError;

use crate::outbound::{self, Outcome};
use crate::store::sql::Db;
use crate::store::webhooks::{self as store, Due};

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
    // Claim before sending, in one statement: the claimed rows are not due again until the
    // lease ends, so a concurrent sender (the consumer, the cron) claims none of them. A sender
    // that dies mid-send leaves its rows to be retried when the lease ends.
    // The lease outlasts sending every claimed row one after another, each up to the timeout:
    // no row is claimed again while this sender may still send it.
    let lease = now
        .plus(Duration::from_millis(i64::from(limit).saturating_mul(
            i64::try_from(sending.timeout.as_millis()).unwrap_or(i64::MAX),
        )))
        .plus(CLAIM_MARGIN);
    let due = store::claim_due(db, event_id, now, limit, lease).await?;
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
        let outcome = store::AttemptOutcome {
            status,
            attempts,
            code,
            error,
            next,
        };
        store::record_attempt(db, delivery, &outcome, now).await?;
    }
    Ok(due.len())
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
