//! `Idempotency-Key` rules (IETF draft "The Idempotency-Key HTTP Header Field"), independent
//! of storage: what to do when a key arrives that has been seen before.

use std::fmt;

use crate::kernel::time::{Duration, Timestamp};

/// How long a key is remembered (documented in the API).
pub const KEY_TTL: Duration = Duration::from_days(1);
/// How long a first attempt may run before a retry may take the key over (its worker died).
pub const IN_FLIGHT_LEASE: Duration = Duration::from_secs(60);

/// A client-chosen key: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIdempotencyKey;

impl fmt::Display for InvalidIdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Idempotency-Key must be 1 to 255 visible ASCII characters")
    }
}

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, InvalidIdempotencyKey> {
        // Structured-field strings arrive quoted; accept both forms.
        let inner = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        if (1..=255).contains(&inner.len()) && inner.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(IdempotencyKey(inner.to_owned()))
        } else {
            Err(InvalidIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is stored about an earlier request with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorAttempt {
    pub fingerprint: String,
    pub created_at: Timestamp,
    pub completed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Same request, finished: answer with the stored response.
    Replay,
    /// Same key, different request: 422.
    Mismatch,
    /// Same request, still running: 409.
    InFlight,
    /// The record is expired or its first attempt died: take the key over and run.
    Reclaim,
}

pub fn decide(prior: &PriorAttempt, fingerprint: &str, now: Timestamp) -> Decision {
    if now >= prior.created_at.plus(KEY_TTL) {
        return Decision::Reclaim;
    }
    if prior.fingerprint != fingerprint {
        return Decision::Mismatch;
    }
    if prior.completed {
        Decision::Replay
    } else if now >= prior.created_at.plus(IN_FLIGHT_LEASE) {
        Decision::Reclaim
    } else {
        Decision::InFlight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior(completed: bool) -> PriorAttempt {
        PriorAttempt {
            fingerprint: "abc".into(),
            created_at: Timestamp::from_millis(1_000_000),
            completed,
        }
    }

    #[test]
    fn decisions() {
        let t = |ms: i64| Timestamp::from_millis(1_000_000 + ms);
        assert_eq!(decide(&prior(true), "abc", t(5)), Decision::Replay);
        assert_eq!(decide(&prior(true), "xyz", t(5)), Decision::Mismatch);
        assert_eq!(decide(&prior(false), "abc", t(5)), Decision::InFlight);
        assert_eq!(decide(&prior(false), "xyz", t(5)), Decision::Mismatch);
        assert_eq!(decide(&prior(false), "abc", t(60_000)), Decision::Reclaim);
        assert_eq!(
            decide(&prior(true), "abc", t(86_400_000)),
            Decision::Reclaim
        );
        assert_eq!(
            decide(&prior(true), "xyz", t(86_400_000)),
            Decision::Reclaim
        );
    }

    #[test]
    fn keys() {
        assert!(IdempotencyKey::parse("8e03978e-40d5-43e8-bc93-6894a57f9324").is_ok());
        assert_eq!(IdempotencyKey::parse("\"k1\"").unwrap().as_str(), "k1");
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
