//! `Idempotency-Key` records in D1 (table `idempotency_keys`, kept 24 h). The decisions
//! themselves live in `shop_domain::idempotency`; this is the storage around them.
//!
//! A record belongs to its caller: it is keyed by `(scope, key)`, where the scope names who sent
//! the request (see [`crate::routing::Access`]), so one caller's key never replays another
//! caller's answer. The pipeline authorizes before it claims.
//!
//! claim:   INSERT the key as in flight; on conflict read it and decide (replay / 422 / 409),
//!          taking over dead or expired records with a compare-and-swap on `created_at`.
//! finish:  store a 2xx response for replay (its replayable form: secrets shown once are left
//!          out), or delete the record so a retry can run again. Both are retried: a record
//!          left in flight would let a retry after the lease run the mutation twice.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use shop_domain::idempotency::{decide, Decision, IdempotencyKey, PriorAttempt, KEY_TTL};
use shop_domain::time::Timestamp;
use worker::wasm_bindgen::JsValue;
use worker::D1Database;

use crate::problem::Problem;
use crate::reply::Reply;

/// Proof that this request holds the key.
pub struct Token {
    scope: String,
    key: String,
    created_at: Timestamp,
}

pub enum Claim {
    Proceed(Token),
    Replay(Reply),
    Refused(Problem),
}

/// What identifies "the same request": method, path and the exact body bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

#[derive(Deserialize)]
struct Row {
    fingerprint: String,
    created_at: i64,
    completed: i64,
    response: Option<String>,
}

fn ms(t: Timestamp) -> JsValue {
    JsValue::from_f64(t.millis() as f64)
}

fn changes(result: &worker::D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
}

pub async fn claim(
    db: &D1Database,
    scope: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: Timestamp,
) -> worker::Result<Claim> {
    let token = || Token {
        scope: scope.to_owned(),
        key: key.as_str().to_owned(),
        created_at: now,
    };
    let inserted = db
        .prepare(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at, completed) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(&[
            scope.into(),
            key.as_str().into(),
            fingerprint.into(),
            ms(now),
            ms(now.plus(KEY_TTL)),
        ])?
        .run()
        .await?;
    if changes(&inserted) == 1 {
        return Ok(Claim::Proceed(token()));
    }
    let row: Option<Row> = db
        .prepare(
            "SELECT fingerprint, created_at, completed, response_body AS response \
             FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
        )
        .bind(&[scope.into(), key.as_str().into()])?
        .first(None)
        .await?;
    let Some(row) = row else {
        // Deleted between our insert and read (its first attempt failed): ask for a retry.
        return Ok(Claim::Refused(in_flight()));
    };
    let prior = PriorAttempt {
        fingerprint: row.fingerprint,
        created_at: Timestamp::from_millis(row.created_at),
        completed: row.completed == 1,
    };
    Ok(match decide(&prior, fingerprint, now) {
        Decision::Replay => match row.response.as_deref().map(serde_json::from_str::<Reply>) {
            Some(Ok(reply)) => Claim::Replay(reply),
            _ => Claim::Refused(in_flight()),
        },
        Decision::Mismatch => Claim::Refused(Problem::new(
            422,
            "idempotency_key_reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different request",
        )),
        Decision::InFlight => Claim::Refused(in_flight()),
        Decision::Reclaim => {
            let taken = db
                .prepare(
                    "UPDATE idempotency_keys SET fingerprint = ?3, created_at = ?4, expires_at = ?5, \
                     completed = 0, response_status = NULL, response_headers = NULL, response_body = NULL \
                     WHERE scope = ?1 AND key = ?2 AND created_at = ?6",
                )
                .bind(&[
                    scope.into(),
                    key.as_str().into(),
                    fingerprint.into(),
                    ms(now),
                    ms(now.plus(KEY_TTL)),
                    ms(prior.created_at),
                ])?
                .run()
                .await?;
            if changes(&taken) == 1 {
                Claim::Proceed(token())
            } else {
                Claim::Refused(in_flight())
            }
        }
    })
}

fn in_flight() -> Problem {
    Problem::new(
        409,
        "idempotency_key_in_use",
        "Request in progress",
        "A request with this Idempotency-Key is still being processed; retry later",
    )
    .with_header("Retry-After", "1")
}

/// How many times finishing a record is tried before giving up (and logging).
const FINISH_ATTEMPTS: usize = 3;

/// Store `reply` (its replayable form) for replay.
pub async fn complete(db: &D1Database, token: &Token, reply: &Reply) -> worker::Result<()> {
    let stored = serde_json::to_string(&reply.replayable())
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    retry(|| async {
        db.prepare(
            "UPDATE idempotency_keys SET completed = 1, response_status = ?4, response_body = ?5 \
             WHERE scope = ?1 AND key = ?2 AND created_at = ?3",
        )
        .bind(&[
            token.scope.as_str().into(),
            token.key.as_str().into(),
            ms(token.created_at),
            JsValue::from_f64(f64::from(reply.status)),
            stored.as_str().into(),
        ])?
        .run()
        .await
    })
    .await
}

/// Forget the record, so a corrected retry can run.
pub async fn release(db: &D1Database, token: &Token) -> worker::Result<()> {
    retry(|| async {
        db.prepare(
            "DELETE FROM idempotency_keys \
             WHERE scope = ?1 AND key = ?2 AND created_at = ?3 AND completed = 0",
        )
        .bind(&[
            token.scope.as_str().into(),
            token.key.as_str().into(),
            ms(token.created_at),
        ])?
        .run()
        .await
    })
    .await
}

/// Run `attempt` until it succeeds, at most [`FINISH_ATTEMPTS`] times; the last error if none did.
async fn retry<T, F, Fut>(mut attempt: F) -> worker::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = worker::Result<T>>,
{
    let mut last = None;
    for _ in 0..FINISH_ATTEMPTS {
        match attempt().await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| worker::Error::RustError("no attempt made".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finishing_a_record_survives_transient_failures_and_gives_up_after_three() {
        use std::cell::Cell;
        let calls = Cell::new(0);
        let flaky = |fail_first: usize| {
            calls.set(0);
            futures_executor::block_on(retry(|| {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n <= fail_first {
                        Err(worker::Error::RustError(format!("D1 unavailable ({n})")))
                    } else {
                        Ok(())
                    }
                }
            }))
        };
        assert!(flaky(2).is_ok(), "two failures, then stored");
        assert_eq!(calls.get(), 3);
        let err = flaky(5).unwrap_err();
        assert_eq!(calls.get(), 3, "at most three attempts");
        assert!(
            err.to_string().contains("(3)"),
            "the last error is kept: {err}"
        );
    }

    #[test]
    fn fingerprint_covers_method_path_and_body() {
        let a = fingerprint("POST", "/v1/carts", b"{}");
        assert_eq!(a, fingerprint("POST", "/v1/carts", b"{}"));
        assert_ne!(a, fingerprint("POST", "/v1/carts", b"{ }"));
        assert_ne!(a, fingerprint("PATCH", "/v1/carts", b"{}"));
        assert_ne!(a, fingerprint("POST", "/v1/cart", b"{}"));
    }
}
