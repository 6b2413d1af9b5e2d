//! `Idempotency-Key` records in D1 (table `idempotency_keys`, kept 24 h). The decisions
//! themselves live in `shop_domain::kernel::idempotency`; this is the storage around them.
//!
//! A record belongs to its caller: it is keyed by `(scope, key)`, where the scope names who sent
//! the request (see [`crate::http::routing::Access`]), so one caller's key never replays another
//! caller's answer. The pipeline authorizes before anything is claimed.
//!
//! The key rides on the request's own D1 round trips, so it costs none of its own:
//! claim:   the request's first round trip is sent as a batch that starts with the key's claim
//!          as in flight (`store::idempotency::claim`). A conflict aborts that batch (a constraint, not a `WHERE`), and
//!          only then is the record read to decide (replay / 422 / 409), taking over dead or
//!          expired records with a compare-and-swap on `created_at` and sending the round trip
//!          again. A request whose key is not its own runs nothing further against D1; the
//!          pipeline answers the decision.
//! answer:  [`crate::store::sql::Db::batch_answering`] adds the answer (its replayable form: secrets
//!          shown once are left out) to the batch that makes the change.
//! finish:  otherwise the pipeline stores a 2xx answer, or deletes the record so a retry can run
//!          again. Both are retried: a record left in flight would let a retry after the lease
//!          run the mutation twice.

use std::cell::RefCell;

use sha2::{Digest, Sha256};
use shop_domain::kernel::idempotency::{decide, Decision, IdempotencyKey, PriorAttempt, KEY_TTL};
use shop_domain::kernel::time::Timestamp;
use worker::D1Result;

use crate::http::problem::Problem;
use crate::reply::Reply;
use crate::store::idempotency::{self as records, Record};
use crate::store::sql::{Db, KeyClaim, RoundTrip, Stmt};

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

/// One request's `Idempotency-Key`, from its claim to its answer.
pub struct Key {
    scope: String,
    key: String,
    fingerprint: String,
    /// The request's time: the record's `created_at` while this request holds it.
    now: Timestamp,
    state: RefCell<State>,
}

/// Where a request stands with its key.
#[derive(Clone)]
pub enum State {
    /// No D1 round trip yet: the next one claims the key.
    Unclaimed,
    /// The record is this request's, in flight.
    Held,
    /// The record holds this request's answer, written with the change.
    Answered,
    /// The record is an earlier request's: this one must not run; the pipeline answers this.
    Refused(Refusal),
}

#[derive(Clone)]
pub enum Refusal {
    /// The earlier request finished: its stored answer.
    Replay(Reply),
    /// In flight (409) or the key reused for another request (422).
    Problem(Problem),
}

/// The error a round trip returns once the key turned out to be an earlier request's.
fn not_held() -> worker::Error {
    worker::Error::RustError("Idempotency-Key belongs to an earlier request".into())
}

impl Key {
    pub fn new(scope: String, key: &IdempotencyKey, fingerprint: String, now: Timestamp) -> Self {
        Key {
            scope,
            key: key.as_str().to_owned(),
            fingerprint,
            now,
            state: RefCell::new(State::Unclaimed),
        }
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    fn set(&self, state: State) {
        *self.state.borrow_mut() = state;
    }

    /// The key is an earlier request's: whatever this request does next is discarded.
    pub fn refused(&self) -> bool {
        matches!(*self.state.borrow(), State::Refused(_))
    }

    /// This request's record: held from `now` for [`KEY_TTL`].
    fn record(&self) -> Record<'_> {
        Record {
            scope: &self.scope,
            key: &self.key,
            fingerprint: &self.fingerprint,
            created_at: self.now,
            expires_at: self.now.plus(KEY_TTL),
        }
    }

    fn claim_statement(&self, db: &Db) -> worker::Result<Stmt> {
        records::claim(db, &self.record())
    }

    /// The key exists: decide from its record. `None`: this request may run (it took over an
    /// abandoned record).
    async fn settle(&self, db: &Db) -> worker::Result<Option<Refusal>> {
        // Straight to D1: these round trips are the claim's own.
        let Some(row) = records::read(db, &self.scope, &self.key).await? else {
            // Deleted between our insert and read (its first attempt failed): ask for a retry.
            return Ok(Some(Refusal::Problem(in_flight())));
        };
        let prior = PriorAttempt {
            fingerprint: row.fingerprint,
            created_at: Timestamp::from_millis(row.created_at),
            completed: row.completed == 1,
        };
        Ok(match decide(&prior, &self.fingerprint, self.now) {
            Decision::Replay => Some(
                match row.response.as_deref().map(serde_json::from_str::<Reply>) {
                    Some(Ok(reply)) => Refusal::Replay(reply),
                    _ => Refusal::Problem(in_flight()),
                },
            ),
            Decision::Mismatch => Some(Refusal::Problem(Problem::new(
                422,
                "idempotency_key_reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was used with a different request",
            ))),
            Decision::InFlight => Some(Refusal::Problem(in_flight())),
            Decision::Reclaim => {
                if records::reclaim(db, &self.record(), prior.created_at).await? {
                    None
                } else {
                    Some(Refusal::Problem(in_flight()))
                }
            }
        })
    }

    /// Store `reply` as the answer, after the fact (the handler did not answer in its batch).
    /// A request that never reached D1 claims the key and answers in one statement.
    pub async fn complete(&self, db: &Db, reply: &Reply) -> worker::Result<()> {
        let unclaimed = matches!(self.state(), State::Unclaimed);
        retry(|| async {
            let mut statements = Vec::with_capacity(2);
            if unclaimed {
                statements.push(self.claim_statement(db)?);
            }
            statements.push(self.answer_statement(db, reply)?);
            db.send(statements).await
        })
        .await?;
        self.set(State::Answered);
        Ok(())
    }

    /// Forget the record, so a corrected retry can run.
    pub async fn release(&self, db: &Db) -> worker::Result<()> {
        if !matches!(self.state(), State::Held) {
            return Ok(());
        }
        let record = self.record();
        retry(|| records::release(db, &record)).await
    }
}

impl KeyClaim for Key {
    /// Send `statements` as one round trip, claiming the key with it first if not yet done.
    fn round_trip<'a>(&'a self, db: &'a Db, statements: Vec<Stmt>) -> RoundTrip<'a> {
        Box::pin(self.claiming(db, statements))
    }

    /// The next round trip must go through [`KeyClaim::round_trip`].
    fn claims_next(&self) -> bool {
        matches!(*self.state.borrow(), State::Unclaimed | State::Refused(_))
    }

    /// An answer may still be written with a change.
    fn can_answer(&self) -> bool {
        matches!(*self.state.borrow(), State::Unclaimed | State::Held)
    }

    /// Store `reply` (its replayable form) as this request's answer, in whatever batch it joins.
    fn answer_statement(&self, db: &Db, reply: &Reply) -> worker::Result<Stmt> {
        let stored = serde_json::to_string(&reply.replayable())
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        records::answer(db, &self.record(), reply.status, stored)
    }

    fn answered(&self) {
        self.set(State::Answered);
    }
}

impl Key {
    /// [`KeyClaim::round_trip`]: claim first if not yet done, then the statements.
    async fn claiming(&self, db: &Db, statements: Vec<Stmt>) -> worker::Result<Vec<D1Result>> {
        match self.state() {
            State::Refused(_) => return Err(not_held()),
            State::Held | State::Answered => return db.send(statements).await,
            State::Unclaimed => {}
        }
        let mut claimed = Vec::with_capacity(statements.len() + 1);
        claimed.push(self.claim_statement(db)?);
        claimed.extend(statements.iter().cloned());
        match db.send(claimed).await {
            Ok(mut results) => {
                self.set(State::Held);
                results.remove(0);
                Ok(results)
            }
            Err(e) if records::is_claimed_already(&e) => match self.settle(db).await? {
                None => {
                    self.set(State::Held);
                    db.send(statements).await
                }
                Some(refusal) => {
                    self.set(State::Refused(refusal));
                    Err(not_held())
                }
            },
            Err(e) => Err(e),
        }
    }
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
