//! The `idempotency_keys` table (kept 24 h): every statement of the `Idempotency-Key` records,
//! which `crate::http::idempotency` drives (claim, decide, answer, release). The claim is a plain
//! INSERT, so a second claim aborts the batch it leads (a constraint, never a `WHERE`).

use serde::Deserialize;
use shop_domain::kernel::time::Timestamp;
use worker::wasm_bindgen::JsValue;
use worker::D1Result;

use crate::store::sql::{self, changes, Db, Stmt, Violation};

/// One request's record: who sent it (`scope`), its key, what it asked (`fingerprint`), and
/// when it claimed the key (`created_at`, the compare-and-swap token while it is held).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A record as stored: what decides a later request with the same key.
#[derive(Debug, Deserialize)]
pub struct Stored {
    pub fingerprint: String,
    pub created_at: i64,
    pub completed: i64,
    /// The answer to replay (its replayable form, JSON), once completed.
    pub response: Option<String>,
}

fn ms(t: Timestamp) -> JsValue {
    JsValue::from_f64(t.millis() as f64)
}

impl Record<'_> {
    /// `?1`–`?5`: scope, key, fingerprint, created, expires.
    fn params(&self) -> [JsValue; 5] {
        [
            self.scope.into(),
            self.key.into(),
            self.fingerprint.into(),
            ms(self.created_at),
            ms(self.expires_at),
        ]
    }

    /// `?1`–`?3`: the record while this request holds it.
    fn held(&self) -> [JsValue; 3] {
        [self.scope.into(), self.key.into(), ms(self.created_at)]
    }
}

/// The claim: a plain INSERT of the record, in flight.
pub fn claim(db: &Db, record: &Record<'_>) -> worker::Result<Stmt> {
    db.prepare(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at, completed) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0)",
    )
    .bind(&record.params())
}

/// Did a batch fail because its claim met an existing record?
pub fn is_claimed_already(error: &worker::Error) -> bool {
    matches!(
        sql::violation(&error.to_string()),
        Some(Violation::Unique(columns)) if columns.starts_with("idempotency_keys.")
    )
}

/// The record of `(scope, key)`, read in a round trip of its own (the claim's, not counted as
/// the request's work).
pub async fn read(db: &Db, scope: &str, key: &str) -> worker::Result<Option<Stored>> {
    let read = db
        .prepare(
            "SELECT fingerprint, created_at, completed, response_body AS response \
             FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
        )
        .bind(&[scope.into(), key.into()])?;
    Ok(only(db.send(vec![read]).await?)?
        .results()?
        .into_iter()
        .next())
}

/// Take over an abandoned or expired record claimed at `prior`: true if this request holds it
/// now (a compare-and-swap on `created_at`).
pub async fn reclaim(db: &Db, record: &Record<'_>, prior: Timestamp) -> worker::Result<bool> {
    let take = db
        .prepare(
            "UPDATE idempotency_keys SET fingerprint = ?3, created_at = ?4, expires_at = ?5, \
             completed = 0, response_status = NULL, response_headers = NULL, response_body = NULL \
             WHERE scope = ?1 AND key = ?2 AND created_at = ?6",
        )
        .bind(&[record.params().as_slice(), &[ms(prior)]].concat())?;
    Ok(changes(&only(db.send(vec![take]).await?)?) == 1)
}

/// Store the answer (`status`, the replayable reply as JSON) in whatever batch it joins.
pub fn answer(db: &Db, record: &Record<'_>, status: u16, reply: String) -> worker::Result<Stmt> {
    db.prepare(
        "UPDATE idempotency_keys SET completed = 1, response_status = ?4, response_body = ?5 \
         WHERE scope = ?1 AND key = ?2 AND created_at = ?3",
    )
    .bind(
        &[
            record.held().as_slice(),
            &[JsValue::from_f64(f64::from(status)), reply.into()],
        ]
        .concat(),
    )
}

/// Forget a record this request still holds unanswered, so a corrected retry can run.
pub async fn release(db: &Db, record: &Record<'_>) -> worker::Result<()> {
    db.prepare(
        "DELETE FROM idempotency_keys \
         WHERE scope = ?1 AND key = ?2 AND created_at = ?3 AND completed = 0",
    )
    .bind(&record.held())?
    .run()
    .await
    .map(|_| ())
}

/// The result of a batch of one.
fn only(mut results: Vec<D1Result>) -> worker::Result<D1Result> {
    results
        .pop()
        .ok_or_else(|| worker::Error::RustError("D1 batch returned no result".into()))
}
