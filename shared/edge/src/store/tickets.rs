//! Tickets in D1 (schema/0018): the order a submission names (by number and email, one
//! statement), a ticket with its conversation and linked order (one statement), a new ticket
//! (one batch: its number from the per-year counter, the ticket, its first message,
//! `ticket.created`) and a change (one batch guarded by the version trigger: the status, the
//! message, the events). The rules are `shop_domain::support::tickets`.

use serde::{Deserialize, Serialize};
use shop_domain::events::{Event, Payload};
use shop_domain::kernel::ids::{CustomerId, OrderId, TicketId};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::Timestamp;
use shop_domain::support::tickets::{
    Author, Category, LinkedOrder, NewTicket, Priority, TicketFacts, TicketState, TicketStatus,
};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::outbox;
use crate::store::sql::{self, err, num, opt_str, Db, Violation};

#[derive(Deserialize)]
struct OrderRow {
    id: OrderId,
    currency: String,
    total_minor: i64,
}

/// The order numbered `number` if it was placed with `email` (compared case-insensitively);
/// `None` for an unknown number and for another customer's order alike.
pub async fn linked_order(
    db: &Db,
    number: &str,
    email: &str,
) -> Result<Option<LinkedOrder>, StoreError> {
    let context = "ticket's order";
    let row: Option<OrderRow> = sql::first(
        db,
        "SELECT id, currency, total_minor FROM orders WHERE number = ?1 AND lower(email) = lower(?2)",
        &[number.into(), email.into()],
        context,
    )
    .await?;
    row.map(|row| {
        let total = row
            .currency
            .parse::<Currency>()
            .ok()
            .and_then(|c| Money::from_minor(row.total_minor, c).ok())
            .ok_or_else(|| StoreError::new(format!("{context}: stored total is invalid")))?;
        Ok(LinkedOrder { id: row.id, total })
    })
    .transpose()
}

/// A message of the conversation. `agent` (the admin who wrote it) is for agents' eyes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageView {
    pub seq: u32,
    pub author: Author,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub body: String,
    #[serde(deserialize_with = "sql::millis")]
    pub created_at: Timestamp,
}

/// The order a ticket is about, with its latest tracking status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderView {
    pub id: OrderId,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The status of the order's most recently updated shipment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_status: Option<String>,
}

/// A ticket as stored, with its conversation (read from D1's document; answered as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketView {
    pub id: TicketId,
    pub number: String,
    pub email: String,
    pub name: Option<String>,
    pub subject: String,
    pub category: Category,
    pub priority: Priority,
    pub status: TicketStatus,
    pub order: Option<OrderView>,
    #[serde(deserialize_with = "sql::millis")]
    pub created_at: Timestamp,
    #[serde(deserialize_with = "sql::millis")]
    pub updated_at: Timestamp,
    #[serde(deserialize_with = "sql::opt_millis")]
    pub first_response_at: Option<Timestamp>,
    #[serde(deserialize_with = "sql::opt_millis")]
    pub resolved_at: Option<Timestamp>,
    pub rating: Option<u8>,
    pub messages: Vec<MessageView>,
    #[serde(skip_serializing)]
    pub version: u64,
}

impl TicketView {
    /// What the help desk's decisions (`shop_domain::support::tickets`) read of this ticket.
    pub fn facts(&self) -> TicketFacts<'_> {
        TicketFacts {
            id: &self.id,
            number: &self.number,
            state: TicketState {
                status: self.status,
                resolved_at: self.resolved_at,
            },
            priority: self.priority,
            messages: self.messages.len(),
            rated: self.rating.is_some(),
        }
    }

    /// The ticket as its customer sees it: no agent names, and of the order only its number.
    pub fn for_customer(mut self) -> Self {
        for message in &mut self.messages {
            message.agent = None;
        }
        if let Some(order) = &mut self.order {
            order.status = None;
            order.tracking_status = None;
        }
        self
    }
}

const GET_SQL: &str = "\
SELECT json_object('id', t.id, 'number', t.number, 'email', t.email, 'name', t.name,
  'subject', t.subject, 'category', t.category, 'priority', t.priority, 'status', t.status,
  'version', t.version, 'created_at', t.created_at, 'updated_at', t.updated_at,
  'first_response_at', t.first_response_at, 'resolved_at', t.resolved_at, 'rating', t.rating,
  'order', json((SELECT json_object('id', o.id, 'number', o.number, 'status', o.status,
      'tracking_status', (SELECT s.status FROM shipments s WHERE s.order_id = o.id
                          ORDER BY s.updated_at DESC, s.id LIMIT 1))
    FROM orders o WHERE o.id = t.order_id)),
  'messages', json((SELECT json_group_array(json_object('seq', m.seq, 'author', m.author,
      'agent', m.agent, 'body', m.body, 'created_at', m.created_at))
    FROM (SELECT * FROM ticket_messages WHERE ticket_id = t.id ORDER BY seq) m))
) AS doc
FROM tickets t WHERE t.id = ?1";

/// The ticket `id` with its conversation and linked order. One statement.
pub async fn get(db: &Db, id: &TicketId) -> Result<Option<TicketView>, StoreError> {
    let context = "load ticket";
    let doc = sql::doc(db, GET_SQL, &[id.as_str().into()], context).await?;
    doc.map(|doc| serde_json::from_str(&doc).map_err(sql::json_err(context)))
        .transpose()
}

/// A page of ticket `id`'s conversation in order, the messages after `after_seq` (at most
/// `limit`); `None` when there is no such ticket. One statement.
pub async fn messages(
    db: &Db,
    id: &TicketId,
    after_seq: u32,
    limit: shop_domain::kernel::pagination::Limit,
) -> Result<Option<shop_domain::kernel::pagination::Page<MessageView>>, StoreError> {
    #[derive(Deserialize)]
    struct Doc {
        found: bool,
        messages: Vec<MessageView>,
    }
    let context = "ticket messages";
    let doc = sql::doc(
        db,
        "SELECT json_object('found', json(CASE WHEN EXISTS (SELECT 1 FROM tickets WHERE id = ?1) \
           THEN 'true' ELSE 'false' END), \
           'messages', json((SELECT json_group_array(json_object('seq', m.seq, 'author', m.author, \
             'agent', m.agent, 'body', m.body, 'created_at', m.created_at)) \
           FROM (SELECT * FROM ticket_messages WHERE ticket_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3) m))) AS doc",
        &[
            id.as_str().into(),
            num(i64::from(after_seq)),
            num(i64::from(limit.get()) + 1),
        ],
        context,
    )
    .await?
    .ok_or_else(|| StoreError::new(format!("{context}: no answer")))?;
    let doc: Doc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
    Ok(doc.found.then(|| {
        shop_domain::kernel::pagination::Page::from_overfetch(doc.messages, limit, |m| {
            m.seq.to_string()
        })
    }))
}

/// What a new ticket is.
pub struct Submission<'a> {
    pub id: &'a TicketId,
    pub ticket: &'a NewTicket,
    pub priority: Priority,
    pub order: Option<&'a OrderId>,
    /// The signed-in customer who filed it (their access token was sent), if any.
    pub customer: Option<&'a CustomerId>,
    pub now: Timestamp,
}

/// Record a new ticket, its first message and `event` (`ticket.created`, whose `number` the
/// batch fills in from the counter). One batch. Returns the events as written.
pub async fn create(
    db: &Db,
    submission: &Submission<'_>,
    event: &Event,
) -> Result<Vec<Event>, StoreError> {
    let context = "create ticket";
    let s = submission;
    let now = num(s.now.millis());
    let year = num(i64::from(s.now.year()));
    let id: JsValue = s.id.as_str().into();
    let statements = vec![
        db.prepare(
            "INSERT INTO ticket_counters (year, value) VALUES (?1, 0) ON CONFLICT (year) DO NOTHING",
        )
        .bind(std::slice::from_ref(&year)),
        db.prepare("UPDATE ticket_counters SET value = value + 1 WHERE year = ?1")
            .bind(std::slice::from_ref(&year)),
        db.prepare(
            "INSERT INTO tickets (id, number, email, name, subject, category, priority, status, \
               order_id, version, created_at, updated_at, customer_id) \
             VALUES (?1, (SELECT printf('T-%d-%06d', year, value) FROM ticket_counters WHERE year = ?2), \
               ?3, ?4, ?5, ?6, ?7, 'open', ?8, 1, ?9, ?9, ?10)",
        )
        .bind(&[
            id.clone(),
            year,
            s.ticket.email.as_str().into(),
            opt_str(s.ticket.name.as_deref()),
            s.ticket.subject.as_str().into(),
            s.ticket.category.as_str().into(),
            s.priority.as_str().into(),
            opt_str(s.order.map(OrderId::as_str)),
            now.clone(),
            opt_str(s.customer.map(CustomerId::as_str)),
        ]),
        db.prepare(
            "INSERT INTO ticket_messages (ticket_id, seq, author, body, created_at) \
             VALUES (?1, 1, 'customer', ?2, ?3)",
        )
        .bind(&[id.clone(), s.ticket.message.as_str().into(), now]),
        outbox::insert_with_number(db, event, "SELECT number FROM tickets WHERE id = ?5", &id),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    let results = db.batch(statements).await.map_err(err(context))?;
    outbox::written_as(results.get(4..).unwrap_or_default(), Payload::TicketCreated)
        .map_err(err(context))
}

/// A change to a ticket: its new status (and priority), with a message or not.
pub struct Change<'a> {
    pub ticket: &'a TicketView,
    pub status: TicketStatus,
    pub priority: Priority,
    /// `(author, the admin's subject for an agent, body)`.
    pub message: Option<(Author, Option<&'a str>, &'a str)>,
    pub now: Timestamp,
}

#[derive(Debug)]
pub enum ChangeOutcome {
    Saved(Vec<Event>),
    /// The ticket changed since it was read; nothing was written.
    Stale,
    /// The conversation holds as many messages as it may; nothing was written.
    Full,
}

/// Save `change` only if the ticket is still the version that was read, with `events`. One
/// batch: the ticket's row (a first agent message sets `first_response_at`; a resolution
/// `resolved_at`, cleared by a reopening), the message, the events.
pub async fn change(
    db: &Db,
    change: &Change<'_>,
    events: &[Event],
) -> Result<ChangeOutcome, StoreError> {
    let context = "change ticket";
    let c = change;
    let id: JsValue = c.ticket.id.as_str().into();
    let now = num(c.now.millis());
    let agent_message = matches!(c.message, Some((Author::Agent, _, _)));
    let mut statements = vec![db
        .prepare(
            "UPDATE tickets SET status = ?2, priority = ?3, version = ?4, updated_at = ?5, \
               first_response_at = CASE WHEN ?6 = 1 THEN coalesce(first_response_at, ?5) ELSE first_response_at END, \
               resolved_at = CASE ?2 WHEN 'resolved' THEN (CASE status WHEN 'resolved' THEN resolved_at ELSE ?5 END) \
                 WHEN 'closed' THEN resolved_at ELSE NULL END \
             WHERE id = ?1",
        )
        .bind(&[
            id.clone(),
            c.status.as_str().into(),
            c.priority.as_str().into(),
            num(i64::try_from(c.ticket.version.saturating_add(1)).unwrap_or(i64::MAX)),
            now.clone(),
            num(i64::from(agent_message)),
        ])];
    if let Some((author, agent, body)) = c.message {
        let seq = c.ticket.messages.len().saturating_add(1);
        statements.push(
            db.prepare(
                "INSERT INTO ticket_messages (ticket_id, seq, author, agent, body, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(&[
                id.clone(),
                num(i64::try_from(seq).unwrap_or(i64::MAX)),
                author.as_str().into(),
                opt_str(agent),
                body.into(),
                now.clone(),
            ]),
        );
    }
    let first_event = statements.len();
    for event in events {
        statements.push(outbox::insert(db, event));
    }
    let statements = statements
        .into_iter()
        .collect::<worker::Result<Vec<_>>>()
        .map_err(err(context))?;
    match db.batch(statements).await {
        Ok(results) => Ok(ChangeOutcome::Saved(
            outbox::written(results.get(first_event..).unwrap_or_default(), events)
                .map_err(err(context))?,
        )),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::Trigger("stale ticket version")) | Some(Violation::Unique(_)) => {
                Ok(ChangeOutcome::Stale)
            }
            Some(Violation::Trigger("ticket message limit")) => Ok(ChangeOutcome::Full),
            _ => Err(err(context)(e)),
        },
    }
}

/// What the agents' ticket list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub category: Option<Category>,
    pub priority: Option<Priority>,
    pub email: Option<String>,
    pub order_number: Option<String>,
    /// `(created_at, id)` of the last ticket of the previous page.
    pub after: Option<(i64, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketSummary {
    pub id: String,
    pub number: String,
    pub email: String,
    pub subject: String,
    pub category: Category,
    pub priority: Priority,
    pub status: TicketStatus,
    pub order_number: Option<String>,
    #[serde(deserialize_with = "sql::millis")]
    pub created_at: Timestamp,
    #[serde(deserialize_with = "sql::millis")]
    pub updated_at: Timestamp,
}

const LIST_SQL: &str = "\
SELECT json_group_array(json_object('id', t.id, 'number', t.number, 'email', t.email,
  'subject', t.subject, 'category', t.category, 'priority', t.priority, 'status', t.status,
  'order_number', (SELECT o.number FROM orders o WHERE o.id = t.order_id),
  'created_at', t.created_at, 'updated_at', t.updated_at)) AS doc
FROM (SELECT * FROM tickets
  WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR category = ?2)
    AND (?3 IS NULL OR priority = ?3) AND (?4 IS NULL OR lower(email) = lower(?4))
    AND (?5 IS NULL OR order_id = (SELECT id FROM orders WHERE number = ?5))
    AND (?6 IS NULL OR (created_at, id) < (?6, ?7))
  ORDER BY created_at DESC, id DESC LIMIT ?8) t";

/// Newest first; the cursor is `<created_at>:<id>` of the last ticket returned. One statement.
pub async fn list(
    db: &Db,
    filter: &TicketFilter,
    limit: shop_domain::kernel::pagination::Limit,
) -> Result<shop_domain::kernel::pagination::Page<TicketSummary>, StoreError> {
    let context = "list tickets";
    let binds = [
        opt_str(filter.status.map(TicketStatus::as_str)),
        opt_str(filter.category.map(Category::as_str)),
        opt_str(filter.priority.map(Priority::as_str)),
        opt_str(filter.email.as_deref()),
        opt_str(filter.order_number.as_deref()),
        sql::opt_num(filter.after.as_ref().map(|a| a.0)),
        opt_str(filter.after.as_ref().map(|a| a.1.as_str())),
        num(i64::from(limit.get()) + 1),
    ];
    let rows: Vec<TicketSummary> =
        serde_json::from_str(&sql::doc_or_empty(db, LIST_SQL, &binds, context).await?)
            .map_err(sql::json_err(context))?;
    Ok(shop_domain::kernel::pagination::Page::from_overfetch(
        rows,
        limit,
        |t| format!("{}:{}", t.created_at.millis(), t.id),
    ))
}

/// The stats of the tickets created in a range, computed by SQLite in one statement (nothing
/// per ticket leaves the database): counts by status, the nearest-rank median and 90th
/// percentile of first-response and resolution times (`tickets::Percentiles::of`, in SQL:
/// the value at rank max(ceil(p × n / 100), 1)), SLA breaches at `now`, and the ratings' count
/// and sum.
#[derive(Debug, Deserialize)]
pub struct StatsFacts {
    pub tickets: usize,
    pub by_status: std::collections::BTreeMap<String, usize>,
    pub first_response: RankedMillis,
    pub resolution: RankedMillis,
    pub sla_breaches: usize,
    pub rating_count: usize,
    pub rating_sum: u64,
}

/// How many durations, and the median and 90th percentile of them (milliseconds).
#[derive(Debug, Deserialize)]
pub struct RankedMillis {
    pub count: usize,
    pub median: Option<i64>,
    pub p90: Option<i64>,
}

const STATS_SQL: &str = "\
WITH t AS (SELECT status, created_at, first_response_at, resolved_at, rating FROM tickets
           WHERE created_at >= ?1 AND created_at < ?2),
  fr AS (SELECT first_response_at - created_at AS d,
           row_number() OVER (ORDER BY first_response_at - created_at) AS rn, count(*) OVER () AS n
         FROM t WHERE first_response_at IS NOT NULL),
  rs AS (SELECT resolved_at - created_at AS d,
           row_number() OVER (ORDER BY resolved_at - created_at) AS rn, count(*) OVER () AS n
         FROM t WHERE resolved_at IS NOT NULL)
SELECT json_object(
  'tickets', (SELECT count(*) FROM t),
  'by_status', json((SELECT json_group_object(status, n) FROM
                      (SELECT status, count(*) AS n FROM t GROUP BY status))),
  'first_response', json_object('count', (SELECT count(*) FROM fr),
    'median', (SELECT d FROM fr WHERE rn = max((n * 50 + 99) / 100, 1)),
    'p90', (SELECT d FROM fr WHERE rn = max((n * 90 + 99) / 100, 1))),
  'resolution', json_object('count', (SELECT count(*) FROM rs),
    'median', (SELECT d FROM rs WHERE rn = max((n * 50 + 99) / 100, 1)),
    'p90', (SELECT d FROM rs WHERE rn = max((n * 90 + 99) / 100, 1))),
  'sla_breaches', (SELECT count(*) FROM t
                   WHERE coalesce(first_response_at, ?3) - created_at > ?4),
  'rating_count', (SELECT count(rating) FROM t),
  'rating_sum', (SELECT coalesce(sum(rating), 0) FROM t)) AS doc";

/// The stats of the tickets created in `[from, to)` at `now`, with first responses later than
/// `sla` counted as breaches. One statement, whatever the number of tickets.
pub async fn stats(
    db: &Db,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    sla: shop_domain::kernel::time::Duration,
) -> Result<StatsFacts, StoreError> {
    let context = "ticket stats";
    let doc = sql::doc(
        db,
        STATS_SQL,
        &[
            num(from.millis()),
            num(to.millis()),
            num(now.millis()),
            num(sla.millis()),
        ],
        context,
    )
    .await?
    .ok_or_else(|| StoreError::new(format!("{context}: no answer")))?;
    serde_json::from_str(&doc).map_err(sql::json_err(context))
}

/// Record the customer's rating of a resolved (or closed) ticket, once: `false` when the ticket
/// is not resolved or already rated.
pub async fn rate(db: &Db, id: &TicketId, rating: u8, now: Timestamp) -> Result<bool, StoreError> {
    let context = "rate ticket";
    let result = db
        .prepare(
            "UPDATE tickets SET rating = ?2, updated_at = ?3 \
             WHERE id = ?1 AND rating IS NULL AND status IN ('resolved', 'closed')",
        )
        .bind(&[
            id.as_str().into(),
            num(i64::from(rating)),
            num(now.millis()),
        ])
        .map_err(err(context))?
        .run()
        .await
        .map_err(err(context))?;
    Ok(sql::changes(&result) == 1)
}
