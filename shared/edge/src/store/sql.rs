//! The one home of D1 plumbing: bind helpers, running one statement, errors that say what was
//! being done, the `changes` count, and the classifier of constraint failures (how a batch
//! guard tells the adapter which guard fired).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::reply::Reply;

/// A round trip's results, as a future borrowed for `'a`.
pub type RoundTrip<'a> = Pin<Box<dyn Future<Output = worker::Result<Vec<D1Result>>> + 'a>>;

/// What rides on a request's round trips besides its own statements: the claim and answer of
/// its `Idempotency-Key` (`http::idempotency::Key` is the one implementation; the store knows
/// it only by this trait).
pub trait KeyClaim {
    /// Send `statements` as one round trip through [`Db::send`], claiming the key with them
    /// first if that is not yet done.
    fn round_trip<'a>(&'a self, db: &'a Db, statements: Vec<Stmt>) -> RoundTrip<'a>;
    /// The next round trip must go through [`KeyClaim::round_trip`].
    fn claims_next(&self) -> bool;
    /// An answer may still be written with a change.
    fn can_answer(&self) -> bool;
    /// The statement that stores `reply` as the key's answer, in whatever batch it joins.
    fn answer_statement(&self, db: &Db, reply: &Reply) -> worker::Result<Stmt>;
    /// The answer was written.
    fn answered(&self);
}

/// D1 round trips made on behalf of one request (or one queue batch, or one cron run).
#[derive(Debug, Default)]
pub struct Tally {
    round_trips: Cell<u32>,
    statements: Cell<u32>,
}

impl Tally {
    /// Calls to D1: a statement run alone, or a whole batch, is one.
    pub fn round_trips(&self) -> u32 {
        self.round_trips.get()
    }

    /// Statements D1 ran: each statement of a batch counts.
    pub fn statements(&self) -> u32 {
        self.statements.get()
    }

    fn add(&self, statements: usize) {
        self.round_trips
            .set(self.round_trips.get().saturating_add(1));
        let statements = u32::try_from(statements).unwrap_or(u32::MAX);
        self.statements
            .set(self.statements.get().saturating_add(statements));
    }
}

/// The D1 database, counting every round trip into a [`Tally`]. It has the methods of
/// `D1Database` that we use (`prepare`, `batch`), so adapters read as plain D1 code, and no
/// round trip escapes the count: the uncounted `D1Database` is not reachable through it.
///
/// A request that carries an `Idempotency-Key` hands its [`KeyClaim`] to its `Db`: the request's
/// first round trip then also claims the key (see `http::idempotency`), and
/// [`Db::batch_answering`] stores the answer in the batch that makes the change.
#[derive(Clone)]
pub struct Db {
    inner: Rc<D1Database>,
    tally: Rc<Tally>,
    key: Option<Rc<dyn KeyClaim>>,
}

impl Db {
    /// `database`, counted into `tally` (shared with whoever reports it), claiming `key` on its
    /// first round trip.
    pub fn new(database: D1Database, tally: Rc<Tally>, key: Option<Rc<dyn KeyClaim>>) -> Self {
        Db {
            inner: Rc::new(database),
            tally,
            key,
        }
    }

    /// The `DB` binding with a fresh tally (a queue batch, a cron run).
    pub fn open(env: &worker::Env) -> worker::Result<Self> {
        Ok(Db::new(env.d1("DB")?, Rc::default(), None))
    }

    pub fn prepare(&self, sql: impl Into<String>) -> Stmt {
        Stmt {
            inner: self.inner.prepare(sql),
            db: self.clone(),
        }
    }

    /// Run `statements` in one transaction: one round trip.
    pub async fn batch(&self, statements: Vec<Stmt>) -> worker::Result<Vec<D1Result>> {
        match &self.key {
            Some(key) => key.round_trip(self, statements).await,
            None => self.send(statements).await,
        }
    }

    /// Run `statements` in one transaction that also stores `answer` as the reply to this
    /// request's `Idempotency-Key` (when it has one and `answer` is given): the change and the
    /// answer a retry replays commit together, or neither does. The results are those of
    /// `statements`.
    pub async fn batch_answering(
        &self,
        mut statements: Vec<Stmt>,
        answer: Option<&Reply>,
    ) -> worker::Result<Vec<D1Result>> {
        let count = statements.len();
        let key = match (&self.key, answer) {
            (Some(key), Some(reply)) if key.can_answer() => {
                statements.push(key.answer_statement(self, reply)?);
                Some(key)
            }
            _ => None,
        };
        let mut results = self.batch(statements).await?;
        if let Some(key) = key {
            results.truncate(count);
            key.answered();
        }
        Ok(results)
    }

    /// The round trip itself, counted; nothing claimed.
    pub(crate) async fn send(&self, statements: Vec<Stmt>) -> worker::Result<Vec<D1Result>> {
        self.tally.add(statements.len());
        self.inner
            .batch(statements.into_iter().map(|s| s.inner).collect())
            .await
    }

    /// This round trip must go through the key (it claims it, or the key is not ours).
    fn through_key(&self) -> bool {
        self.key.as_ref().is_some_and(|key| key.claims_next())
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }
}

/// A prepared statement of a [`Db`]: running it alone is one counted round trip.
#[derive(Clone)]
#[must_use = "a statement does nothing until it is run or batched"]
pub struct Stmt {
    inner: D1PreparedStatement,
    db: Db,
}

impl Stmt {
    pub fn bind(self, values: &[JsValue]) -> worker::Result<Self> {
        Ok(Stmt {
            inner: self.inner.bind(values)?,
            db: self.db,
        })
    }

    /// The statement alone, as a batch of one when it must carry the key's claim.
    async fn alone(&self) -> worker::Result<D1Result> {
        self.db
            .batch(vec![self.clone()])
            .await?
            .pop()
            .ok_or_else(|| worker::Error::RustError("D1 batch returned no result".into()))
    }

    /// The first row, if any.
    pub async fn first<T: DeserializeOwned>(&self) -> worker::Result<Option<T>> {
        if self.db.through_key() {
            return Ok(self.alone().await?.results::<T>()?.into_iter().next());
        }
        self.db.tally.add(1);
        self.inner.first(None).await
    }

    pub async fn run(&self) -> worker::Result<D1Result> {
        if self.db.through_key() {
            return self.alone().await;
        }
        self.db.tally.add(1);
        self.inner.run().await
    }

    pub async fn all(&self) -> worker::Result<D1Result> {
        if self.db.through_key() {
            return self.alone().await;
        }
        self.db.tally.add(1);
        self.inner.all().await
    }
}

/// A JS number for an integer bind (D1 integers travel as JS numbers; ours stay below 2^53).
pub fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// A nullable text bind.
pub fn opt_str(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

/// A nullable integer bind.
pub fn opt_num(n: Option<i64>) -> JsValue {
    n.map_or(JsValue::NULL, num)
}

/// `value` as a JSON text bind (for `json_each(?)` and JSON columns).
pub fn json<T: serde::Serialize + ?Sized>(value: &T, context: &str) -> Result<JsValue, StoreError> {
    serde_json::to_string(value)
        .map(JsValue::from)
        .map_err(|e| StoreError::new(format!("{context}: {e}")))
}

fn store_error(context: &str, e: worker::Error) -> StoreError {
    StoreError::new(format!("{context}: {e}"))
}

/// Wrap a runtime error with what was being done: `.map_err(sql::err("place order"))`.
pub fn err(context: &str) -> impl Fn(worker::Error) -> StoreError + '_ {
    move |e| store_error(context, e)
}

/// Wrap a JSON error in stored data with what was being read.
pub fn json_err(context: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::new(format!("{context}: stored JSON does not parse: {e}"))
}

/// How many rows a write changed (0 when D1 does not say).
pub fn changes(result: &worker::D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
}

/// Which kind of guard aborted a statement or a batch (see ARCHITECTURE.md, "guards are
/// constraints"), with what SQLite says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation<'a> {
    /// A `UNIQUE` or `PRIMARY KEY` constraint: the `table.column` list.
    Unique(&'a str),
    /// A `CHECK` constraint: its expression.
    Check(&'a str),
    /// A `NOT NULL` constraint: the `table.column`.
    NotNull(&'a str),
    ForeignKey,
    /// A trigger's `RAISE(ABORT, message)`: the message.
    Trigger(&'a str),
}

/// Classify a D1 error text, e.g. `D1_ERROR: UNIQUE constraint failed: orders.cart_id:
/// SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)`. `None`: not a constraint failure
/// (a real fault, to be logged).
pub fn violation(message: &str) -> Option<Violation<'_>> {
    let (head, extended) = message.split_once(": SQLITE_CONSTRAINT")?;
    // What SQLite said starts after the last `D1_ERROR: ` (the JS message) or `Error: ` (the
    // JS error as the worker crate formats it).
    let start = ["D1_ERROR: ", "Error: "]
        .iter()
        .filter_map(|marker| head.rfind(marker).map(|i| i + marker.len()))
        .max()
        .unwrap_or(0);
    let detail = head[start..].trim();
    let after = |prefix: &str| detail.strip_prefix(prefix).map(str::trim);
    if let Some(columns) = after("UNIQUE constraint failed:") {
        return Some(Violation::Unique(columns));
    }
    if let Some(expression) = after("CHECK constraint failed:") {
        return Some(Violation::Check(expression));
    }
    if let Some(column) = after("NOT NULL constraint failed:") {
        return Some(Violation::NotNull(column));
    }
    if detail.starts_with("FOREIGN KEY constraint failed") {
        return Some(Violation::ForeignKey);
    }
    extended
        .contains("SQLITE_CONSTRAINT_TRIGGER")
        .then_some(Violation::Trigger(detail))
}

#[derive(serde::Deserialize)]
struct Doc {
    doc: Option<String>,
}

/// The one text column `doc` of a read that SQLite builds as one JSON document
/// (`json_object` / `json_group_array`): one statement, one crossing of the JS/WASM boundary.
pub async fn doc(
    db: &Db,
    sql: &str,
    binds: &[JsValue],
    context: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<Doc> = first(db, sql, binds, context).await?;
    Ok(row.and_then(|r| r.doc))
}

/// [`doc`] of a listing: `[]` when there is nothing.
pub async fn doc_or_empty(
    db: &Db,
    sql: &str,
    binds: &[JsValue],
    context: &str,
) -> Result<String, StoreError> {
    Ok(doc(db, sql, binds, context)
        .await?
        .unwrap_or_else(|| "[]".into()))
}

/// The first row of `sql`, if any.
pub async fn first<T: DeserializeOwned>(
    db: &Db,
    sql: &str,
    binds: &[JsValue],
    context: &str,
) -> Result<Option<T>, StoreError> {
    db.prepare(sql)
        .bind(binds)
        .map_err(err(context))?
        .first()
        .await
        .map_err(err(context))
}

/// Every row of `sql`.
pub async fn all<T: DeserializeOwned>(
    db: &Db,
    sql: &str,
    binds: &[JsValue],
    context: &str,
) -> Result<Vec<T>, StoreError> {
    db.prepare(sql)
        .bind(binds)
        .map_err(err(context))?
        .all()
        .await
        .map_err(err(context))?
        .results()
        .map_err(err(context))
}

/// A time stored as milliseconds since the epoch, for `#[serde(deserialize_with)]` on rows
/// read from D1 documents.
pub fn millis<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<shop_domain::kernel::time::Timestamp, D::Error> {
    <i64 as serde::Deserialize>::deserialize(d)
        .map(shop_domain::kernel::time::Timestamp::from_millis)
}

/// [`millis`] for a time that may be absent (`null`).
pub fn opt_millis<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<shop_domain::kernel::time::Timestamp>, D::Error> {
    <Option<i64> as serde::Deserialize>::deserialize(d)
        .map(|m| m.map(shop_domain::kernel::time::Timestamp::from_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts local D1 (workerd, through Miniflare) answers for each kind of guard.
    #[test]
    fn classifies_the_error_texts_of_local_d1() {
        let cases = [
            (
                "D1_ERROR: UNIQUE constraint failed: prices.sku, prices.currency: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)",
                Some(Violation::Unique("prices.sku, prices.currency")),
            ),
            (
                "D1_ERROR: UNIQUE constraint failed: orders.cart_id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)",
                Some(Violation::Unique("orders.cart_id")),
            ),
            (
                "D1_ERROR: CHECK constraint failed: available >= 0: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)",
                Some(Violation::Check("available >= 0")),
            ),
            (
                "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)",
                Some(Violation::ForeignKey),
            ),
            (
                "D1_ERROR: NOT NULL constraint failed: prices.amount_minor: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL)",
                Some(Violation::NotNull("prices.amount_minor")),
            ),
            (
                "D1_ERROR: stale cart version: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_TRIGGER)",
                Some(Violation::Trigger("stale cart version")),
            ),
            (
                "Error: price changed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_TRIGGER)",
                Some(Violation::Trigger("price changed")),
            ),
            // As the worker crate formats a failed batch (first line of its Debug output).
            (
                "adjust inventory: D1: D1Error {\n    cause: JsValue(Error: CHECK constraint failed: on_hand >= 0: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)\n    Error: CHECK constraint failed: on_hand >= 0: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)\n        at D1DatabaseSessionAlwaysPrimary._sendOrThrow (cloudflare-internal:d1-api:147:24)",
                Some(Violation::Check("on_hand >= 0")),
            ),
            (
                "D1: D1Error {\n    cause: JsValue(Error: UNIQUE constraint failed: processed_events.event_id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)\n",
                Some(Violation::Unique("processed_events.event_id")),
            ),
            (
                "D1: D1Error {\n    cause: JsValue(Error: stale cart version: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_TRIGGER)\n",
                Some(Violation::Trigger("stale cart version")),
            ),
            ("D1_ERROR: no such table: carts: SQLITE_ERROR", None),
            ("D1_ERROR: Network connection lost.", None),
        ];
        for (text, expected) in cases {
            assert_eq!(violation(text), expected, "{text}");
        }
    }
}
