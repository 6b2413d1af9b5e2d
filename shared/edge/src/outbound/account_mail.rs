//! Account mail: the single-use links a customer receives (email verification, password
//! reset) go to one endpoint of the merchant's, configured on its own: `ACCOUNT_MAIL_URL` (a
//! setting) and `ACCOUNT_MAIL_SECRET` (a `whsec_` secret, `wrangler secret put`). Each message
//! is signed with Standard Webhooks (`webhook-id` is the message id) and sent once it is
//! committed, after the answer (`Call::after_answer`); the accounts worker's cron retries what
//! is due. Unset settings fail closed: nothing is sent anywhere, the messages wait (and expire
//! with their links), and every attempt logs why. The endpoint is never one of the webhook
//! endpoints an admin creates, and the messages are never events: no `*` subscription, dead
//! event or delivery log ever holds a link.

use shop_domain::kernel::time::{Duration, Timestamp};
use shop_domain::webhooks::EndpointUrl;
use shop_domain::StoreError;

use crate::config::Config;
use crate::outbound::{self, Outcome};
use crate::store::account_messages::{self as store, Attempted, Due};
use crate::store::sql::Db;

/// Attempts before a message is given up (its link can be asked for again).
pub const MAX_ATTEMPTS: i64 = 6;
/// Messages sent per run.
const BATCH: u32 = 20;

/// Where and how account messages go.
pub struct Mailer {
    url: Option<String>,
    secret: Option<String>,
    config: Config,
}

impl Mailer {
    pub fn from_env(env: &worker::Env, config: &Config) -> Self {
        let setting = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        Mailer {
            url: setting(env.var("ACCOUNT_MAIL_URL").ok().map(|v| v.to_string())),
            secret: setting(
                env.secret("ACCOUNT_MAIL_SECRET")
                    .ok()
                    .map(|v| v.to_string()),
            ),
            config: config.clone(),
        }
    }

    /// Send the pending messages that are due (`only`: that one), recording each attempt.
    /// Returns how many were attempted; the error names what is misconfigured or failed.
    pub async fn deliver_due(
        &self,
        db: &Db,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let (Some(url), Some(secret)) = (&self.url, &self.secret) else {
            return Err(StoreError::new(
                "account mail: ACCOUNT_MAIL_URL or ACCOUNT_MAIL_SECRET is not set; nothing sent",
            ));
        };
        if let Err(why) = EndpointUrl::parse(url, self.config.webhooks) {
            return Err(StoreError::new(format!(
                "account mail: ACCOUNT_MAIL_URL is refused: {why}"
            )));
        }
        let timeout = self.config.outbound_timeout;
        // The lease outlasts sending every claimed message one after another, plus a minute.
        let lease = Duration::from_millis(
            i64::try_from(timeout.as_millis())
                .unwrap_or(i64::MAX)
                .saturating_mul(i64::from(BATCH))
                .saturating_add(60_000),
        );
        let due = store::claim_due(db, only, now, BATCH, lease).await?;
        for message in &due {
            let attempted = send(url, secret, message, now, timeout).await;
            let recorded = match attempted {
                Sent::Delivered(code) => Attempted::Delivered(code),
                Sent::Final(ref why) => Attempted::Failed(why),
                Sent::Again(ref why) if message.attempts + 1 >= MAX_ATTEMPTS => {
                    Attempted::Failed(why)
                }
                Sent::Again(ref why) => Attempted::Retry(
                    why,
                    now.plus(crate::outbound::webhooks::retry_delay(message.attempts + 1)),
                ),
            };
            store::record(db, message, recorded, now).await?;
        }
        Ok(due.len())
    }
}

enum Sent {
    Delivered(u16),
    Final(String),
    Again(String),
}

async fn send(
    url: &str,
    secret: &str,
    message: &Due,
    now: Timestamp,
    timeout: std::time::Duration,
) -> Sent {
    let signed = outbound::standard_webhooks_post(
        secret,
        &message.id,
        now,
        &message.body,
        "edge-commerce-account-mail/1",
    );
    let mut init = match signed {
        Ok(init) => init,
        Err(why) => return Sent::Again(format!("ACCOUNT_MAIL_SECRET: {why}")),
    };
    match outbound::send(url, &mut init, timeout).await {
        Outcome::Answered(response) => match response.status_code() {
            code @ 200..=299 => Sent::Delivered(code),
            code @ (429 | 500..=599) => Sent::Again(format!("answered {code}")),
            code => Sent::Final(format!("answered {code}; not retried")),
        },
        Outcome::TimedOut => Sent::Again(format!("no answer within {} ms", timeout.as_millis())),
        Outcome::Failed(e) => Sent::Again(e.to_string()),
    }
}
