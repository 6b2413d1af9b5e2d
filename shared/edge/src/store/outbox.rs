//! The outbox's second half: events committed in a batch are sent to the `ORDER_EVENTS` queue.
//! A row is done only when the consumer has applied it (`applied_at`, set in the consumer's own
//! effect batch); until then the cron sends it again, with backoff (`next_send_at`), for as long
//! as it takes. Messages are JSON strings: a `serde_json::Value` sent through a Queue arrives
//! empty.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use shop_domain::events::{Event, Payload};
use shop_domain::kernel::ids::{EventId, OrderId, Sku};
use shop_domain::kernel::time::{Duration, Timestamp};
use worker::wasm_bindgen::JsValue;
use worker::{D1Result, Env};

use crate::store::sql::{num, Db, Stmt};

/// The longest wait between two sends of an unapplied row: after the n-th send the next one is
/// due `resend_after × 2^(n−1)` later, at most this.
pub const MAX_RESEND_DELAY: Duration = Duration::from_secs(3600);

/// An outbox row as stored (and returned by `RETURNING id, type, payload, created_at`).
#[derive(Debug, Clone, Deserialize)]
struct OutboxRow {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    payload: String,
    created_at: i64,
}

/// An outbox row's id, as a batch's `RETURNING` gives it back.
#[derive(Deserialize)]
struct RowId {
    id: String,
}

impl OutboxRow {
    fn bad(&self, what: &str) -> worker::Error {
        worker::Error::RustError(format!("outbox row {}: {what}", self.id))
    }

    /// The row read as an event of any kind (the cron's re-send, a redrive).
    fn event(self) -> worker::Result<Event> {
        let payload = Payload::from_parts(&self.kind, &self.payload)
            .map_err(|e| self.bad(&format!("not a {} payload: {e}", self.kind)))?;
        self.with(payload)
    }

    /// The row read as the one payload type `T` its statement writes, made a [`Payload`] by
    /// `payload`: only that type's reader is linked into the worker.
    fn event_as<T: DeserializeOwned>(self, payload: fn(T) -> Payload) -> worker::Result<Event> {
        let data = serde_json::from_str(&self.payload)
            .map_err(|e| self.bad(&format!("not a {} payload: {e}", self.kind)))?;
        let payload = payload(data);
        if payload.kind().as_str() != self.kind {
            return Err(self.bad(&format!(
                "a {} row read as {}",
                self.kind,
                payload.kind().as_str()
            )));
        }
        self.with(payload)
    }

    fn with(self, payload: Payload) -> worker::Result<Event> {
        Ok(Event {
            id: EventId::parse(&self.id).map_err(|_| self.bad("invalid id"))?,
            created_at: Timestamp::from_millis(self.created_at),
            payload,
        })
    }
}

/// The statement that writes `event` to the outbox, for the batch that makes its change.
/// [`written`] reads it back from the batch's results.
pub fn insert(db: &Db, event: &Event) -> worker::Result<Stmt> {
    insert_where(db, event, "?3", "1", None)
}

/// `event`'s outbox row, written when `condition` (constant SQL) holds, its payload the
/// `payload` SQL expression over `?3` (the event's data) and `?5` (`key`, bound when given).
fn insert_where(
    db: &Db,
    event: &Event,
    payload: &str,
    condition: &'static str,
    key: Option<JsValue>,
) -> worker::Result<Stmt> {
    let data = event
        .payload
        .data_json()
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    db.prepare(format!(
        "INSERT INTO outbox (id, type, payload, created_at) SELECT ?1, ?2, {payload}, ?4 \
         WHERE {condition} RETURNING id, type, payload, created_at"
    ))
    .bind(
        &[
            event.id.as_str().into(),
            event.kind().as_str().into(),
            data.into(),
            num(event.created_at.millis()),
        ]
        .into_iter()
        .chain(key)
        .collect::<Vec<_>>(),
    )
}

/// `event`'s outbox row with `number` in its payload, from `number_sql` (constant SQL, a
/// `SELECT` of one value that reads `?5`, bound to `key`): for an event announcing a record
/// whose human number the same batch gives it (a ticket).
pub fn insert_with_number(
    db: &Db,
    event: &Event,
    number_sql: &'static str,
    key: &JsValue,
) -> worker::Result<Stmt> {
    let payload = format!("json_set(?3, '$.number', ({number_sql}))");
    insert_where(db, event, &payload, "1", Some(key.clone()))
}

/// `order.refunded`'s outbox row, its `refunded_minor` (what is refunded of the order in all) read
/// inside the batch after the statement that added the refund to the order: exact however many
/// confirmations of one order's refunds run concurrently.
pub fn insert_refunded(db: &Db, event: &Event, order: &OrderId) -> worker::Result<Stmt> {
    insert_where(
        db,
        event,
        "json_set(?3, '$.refunded_minor', (SELECT refunded_minor FROM orders WHERE id = ?5))",
        "1",
        Some(order.as_str().into()),
    )
}

/// The statement that writes `event` only if the statement just before it in the batch changed
/// a row (SQLite's `changes()`): for events that announce a change a guarded UPDATE may or may
/// not make (a shipment's status moving forward). [`written`] reads it back when it was written.
pub fn insert_if_changed(db: &Db, event: &Event) -> worker::Result<Stmt> {
    insert_where(db, event, "?3", "changes() > 0", None)
}

/// What took stock from a SKU, named in its `inventory.low` payload.
pub enum Taker<'a> {
    Order(&'a OrderId),
    Adjustment(&'a str),
}

/// `inventory.low` for every SKU that `taken` (`(sku, units taken)`; a non-positive amount gave
/// stock back) took from above its threshold to at or below it: computed in SQL, after the
/// change, inside its batch, so it is exact under any concurrency. The one statement that writes
/// this event. [`written`] reads what it wrote from the batch's results.
pub fn low_stock_crossings(
    db: &Db,
    taker: Taker<'_>,
    taken: &[(&Sku, i64)],
    now: Timestamp,
) -> worker::Result<Stmt> {
    let (field, id) = match taker {
        Taker::Order(id) => ("order_id", id.as_str()),
        Taker::Adjustment(id) => ("adjustment_id", id),
    };
    let taken: Vec<(&str, i64)> = taken.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    let taken =
        serde_json::to_string(&taken).map_err(|e| worker::Error::RustError(e.to_string()))?;
    db.prepare(
        "INSERT INTO outbox (id, type, payload, created_at) \
         SELECT 'evt_' || lower(hex(randomblob(16))), 'inventory.low', \
           json_object('sku', i.sku, 'available', i.available, 'low_threshold', i.low_threshold, ?1, ?2), ?3 \
         FROM inventory i JOIN json_each(?4) r ON json_extract(r.value, '$[0]') = i.sku \
         WHERE json_extract(r.value, '$[1]') > 0 AND i.available <= i.low_threshold \
           AND i.available + json_extract(r.value, '$[1]') > i.low_threshold \
         RETURNING id, type, payload, created_at",
    )
    .bind(&[field.into(), id.into(), num(now.millis()), taken.into()])
}

/// Which of `events` the [`insert`] and [`insert_if_changed`] statements among `results` wrote:
/// each whose row came back. Their payloads are the events' own, so nothing is parsed. (Other
/// statements return no outbox rows and are skipped by the caller's choice of `results`.)
pub fn written(results: &[D1Result], events: &[Event]) -> worker::Result<Vec<Event>> {
    let mut out = Vec::new();
    for result in results {
        for row in result.results::<RowId>()? {
            let event = events
                .iter()
                .find(|e| e.id.as_str() == row.id)
                .ok_or_else(|| {
                    worker::Error::RustError(format!(
                        "outbox row {} is none of the batch's events",
                        row.id
                    ))
                })?;
            out.push(event.clone());
        }
    }
    Ok(out)
}

/// The events written by the statements whose payload SQL completes ([`insert_with_number`],
/// [`insert_refunded`], [`low_stock_crossings`]) among `results`, read back as stored: each
/// payload as `T`, the one payload type those statements write, made a [`Payload`] by `payload`
/// (e.g. `Payload::InventoryLow`).
pub fn written_as<T: DeserializeOwned>(
    results: &[D1Result],
    payload: fn(T) -> Payload,
) -> worker::Result<Vec<Event>> {
    let mut events = Vec::new();
    for result in results {
        for row in result.results::<OutboxRow>()? {
            events.push(row.event_as(payload)?);
        }
    }
    Ok(events)
}

pub const QUEUE_BINDING: &str = "ORDER_EVENTS";

/// How many due rows the cron reads and re-sends at a time (it pages until none is due).
pub const RESEND_PAGE: u32 = 100;

/// Send `events` to the queue in one `send_batch`, each as the JSON text of the envelope.
pub async fn send(env: &Env, events: &[Event]) -> worker::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let messages = events
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<String>, _>>()
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    env.queue(QUEUE_BINDING)?.send_batch(messages).await
}

/// Send `events` to the queue, then record the attempt (the cron's and an admin's redrive): see
/// [`record_attempts`]. Returns how many were sent.
pub async fn publish(
    env: &Env,
    db: &Db,
    events: &[Event],
    now: Timestamp,
    resend_after: Duration,
) -> worker::Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let sent = send(env, events).await;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    record_attempts(db, &ids, sent.is_ok(), now, resend_after).await?;
    sent.map(|()| events.len())
}

/// Record a send attempt of the rows `ids`: marked sent when it went, and each row's next
/// re-send time (`resend_after`, doubling per attempt, at most [`MAX_RESEND_DELAY`]), which only
/// matters if the consumer has not applied it by then.
pub async fn record_attempts(
    db: &Db,
    ids: &[&str],
    sent: bool,
    now: Timestamp,
    resend_after: Duration,
) -> worker::Result<()> {
    let ids = serde_json::to_string(ids).map_err(|e| worker::Error::RustError(e.to_string()))?;
    // next_send_at = now + resend_after × 2^(attempts − 1), at most MAX_RESEND_DELAY (in SQL,
    // from each row's own attempt count).
    db.prepare(
        "UPDATE outbox SET attempts = attempts + 1, \
         sent_at = CASE WHEN ?1 THEN ?2 ELSE sent_at END, \
         next_send_at = ?2 + min(?4 * (1 << min(attempts, 30)), ?5) \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(&[
        JsValue::from_bool(sent),
        num(now.millis()),
        ids.into(),
        num(resend_after.millis()),
        num(MAX_RESEND_DELAY.millis()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Unapplied rows due for a re-send, read as events; rows that do not read as an event (never
/// written by this system's code) are listed apart, for the caller to log and to push back.
pub struct Due {
    pub events: Vec<Event>,
    pub unreadable: Vec<(String, worker::Error)>,
}

impl Due {
    pub fn len(&self) -> usize {
        self.events.len() + self.unreadable.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Rows the consumer has not applied whose re-send is due: their last send was `next_send_at`
/// ago, or (never recorded) they were written more than `resend_after` ago.
pub async fn unapplied_due(
    db: &Db,
    now: Timestamp,
    resend_after: Duration,
    limit: u32,
) -> worker::Result<Due> {
    let rows: Vec<OutboxRow> = db
        .prepare(
            "SELECT id, type, payload, created_at FROM outbox \
             WHERE applied_at IS NULL AND coalesce(next_send_at, created_at + ?2) <= ?1 \
             ORDER BY created_at LIMIT ?3",
        )
        .bind(&[
            num(now.millis()),
            num(resend_after.millis()),
            JsValue::from_f64(f64::from(limit)),
        ])?
        .all()
        .await?
        .results()?;
    let mut due = Due {
        events: Vec::with_capacity(rows.len()),
        unreadable: Vec::new(),
    };
    for row in rows {
        let id = row.id.clone();
        match row.event() {
            Ok(event) => due.events.push(event),
            Err(e) => due.unreadable.push((id, e)),
        }
    }
    Ok(due)
}

/// One event of the outbox, by id (an admin's redrive sends it again).
pub async fn event(db: &Db, id: &str) -> worker::Result<Option<Event>> {
    let row: Option<OutboxRow> = db
        .prepare("SELECT id, type, payload, created_at FROM outbox WHERE id = ?1")
        .bind(&[id.into()])?
        .first()
        .await?;
    row.map(OutboxRow::event).transpose()
}
