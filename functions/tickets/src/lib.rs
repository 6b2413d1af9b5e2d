//! The tickets worker: customer-service tickets under `/v1/tickets` (the customer, with the
//! ticket token the submission answers) and `/v1/admin/tickets` (agents, with admin tokens).
//! Thin glue over `shop_domain::tickets` (what may be submitted, the status machine, priority,
//! service times) and `shop_edge::store::tickets` (one statement per read, one batch per change).

use serde::{Deserialize, Serialize};
use shop_domain::events::Event;
use shop_domain::ids::TicketId;
use shop_domain::tickets::{
    self, Author, Category, MessageBody, NewTicket, Priority, Rating, TicketInput, TicketRefusal,
    TicketStatus,
};
use shop_domain::time::Duration;
use shop_edge::http::auth::{self, Audience, Principal};
use shop_edge::http::problem::FieldError;
use shop_edge::http::reply::JSON;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::tickets::{self as store, ChangeOutcome, TicketFilter, TicketView};
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Submit,
    Get,
    Messages,
    Reply,
    Rate,
    List,
    Stats,
    Update,
}

const OWNER_READS: Access = Access::OwnerOrAdmin {
    audience: Audience::Ticket,
    scope: "ticket:read",
    admin_scope: "tickets:read",
};

const OWNER_WRITES: Access = Access::OwnerOrAdmin {
    audience: Audience::Ticket,
    scope: "ticket:write",
    admin_scope: "tickets:write",
};

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/tickets",
        // A customer's access token, when sent, is verified first and links the ticket to them.
        access: Access::Shopper,
        endpoint: Endpoint::Submit,
    },
    Route {
        method: "GET",
        path: "/v1/tickets/{ticket_id}",
        access: OWNER_READS,
        endpoint: Endpoint::Get,
    },
    Route {
        method: "GET",
        path: "/v1/tickets/{ticket_id}/messages",
        access: OWNER_READS,
        endpoint: Endpoint::Messages,
    },
    Route {
        method: "POST",
        path: "/v1/tickets/{ticket_id}/messages",
        access: OWNER_WRITES,
        endpoint: Endpoint::Reply,
    },
    Route {
        method: "POST",
        path: "/v1/tickets/{ticket_id}/rating",
        access: OWNER_WRITES,
        endpoint: Endpoint::Rate,
    },
    Route {
        method: "GET",
        path: "/v1/admin/tickets/stats",
        access: Access::Admin("tickets:read"),
        endpoint: Endpoint::Stats,
    },
    Route {
        method: "GET",
        path: "/v1/admin/tickets",
        access: Access::Admin("tickets:read"),
        endpoint: Endpoint::List,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/tickets/{ticket_id}",
        access: Access::Admin("tickets:write"),
        endpoint: Endpoint::Update,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Submit => submit(&call).await,
        Endpoint::Get => get(&call).await,
        Endpoint::Messages => messages(&call).await,
        Endpoint::Reply => reply(&call).await,
        Endpoint::Rate => rate(&call).await,
        Endpoint::List => list(&call).await,
        Endpoint::Stats => stats(&call).await,
        Endpoint::Update => update(&call).await,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    email: String,
    #[serde(default)]
    name: Option<String>,
    subject: String,
    message: String,
    category: String,
    #[serde(default)]
    order_number: Option<String>,
}

#[derive(Serialize)]
struct Submitted<'a, T> {
    ticket: &'a T,
    /// Opens this ticket (read, answer, rate) and nothing else: for the customer's link.
    ticket_token: String,
}

/// What a submission's idempotency record keeps: the ticket as answered, without its token (a
/// credential, issued again on a replay).
#[derive(Serialize, Deserialize)]
struct StoredSubmission<T> {
    ticket: T,
}

fn ticket_not_found() -> Problem {
    Problem::not_found("ticket_not_found", "No ticket with this id")
}

/// `POST /v1/tickets`.
async fn submit(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    if let Some(stored) = &call.replayed {
        // The stored answer, as it was: only the token is new.
        let record: StoredSubmission<serde_json::Value> = serde_json::from_str(&stored.body)?;
        let id = record
            .ticket
            .get("id")
            .and_then(|id| id.as_str())
            .and_then(|id| TicketId::parse(id).ok())
            .ok_or_else(|| call.internal("stored submission", &"it names no ticket"))?;
        return submitted(call, &id, &record.ticket);
    }
    let body: SubmitBody = call.json()?;
    let ticket = NewTicket::parse(TicketInput {
        email: body.email,
        name: body.name,
        subject: body.subject,
        message: body.message,
        category: body.category,
        order_number: body.order_number,
    })
    .map_err(Problem::invalid_inputs)?;
    // Abuse limits (the platform's rate limiter), per client address then per email address,
    // before anything is read.
    call.rate_limit_client("TICKETS_BY_CLIENT").await?;
    call.rate_limit_email("TICKETS_BY_EMAIL", ticket.email.as_str())
        .await?;
    let customer = call.customer();
    let db = call.db()?;
    let order = match &ticket.order_number {
        None => None,
        // An unknown number and another customer's order get the same answer.
        Some(number) => Some(
            store::linked_order(&db, number, ticket.email.as_str())
                .await?
                .ok_or_else(|| {
                    Problem::invalid_field(
                        "/order_number",
                        "unknown_order",
                        "No order with this number was placed with this email address",
                    )
                })?,
        ),
    };
    let opened = tickets::open(
        &ticket,
        order.as_ref().map(|o| (&o.id, o.total)),
        &call.config.tickets,
        &CryptoIds,
        call.now,
    );
    let submission = store::Submission {
        id: &opened.id,
        ticket: &ticket,
        priority: opened.priority,
        order: order.as_ref().map(|o| &o.id),
        customer: customer.as_ref(),
        now: call.now,
    };
    let events = store::create(&db, &submission, &opened.event).await?;
    call.publish(&events).await;
    let view = store::get(&db, &opened.id)
        .await?
        .ok_or_else(|| call.internal("submitted ticket", &"not found after its batch"))?
        .for_customer();
    submitted(call, &opened.id, &view)
}

/// The answer to a submission (and to its replays): the ticket and a fresh ticket token.
fn submitted<T: Serialize>(
    call: &Call<Endpoint>,
    id: &TicketId,
    ticket: &T,
) -> Result<Reply, Problem> {
    let token = ticket_token(call, id)?;
    let body = serde_json::to_string(&Submitted {
        ticket,
        ticket_token: token,
    })?;
    let stored = serde_json::to_string(&StoredSubmission { ticket })?;
    Ok(Reply::raw(201, JSON, body)
        .header("Location", format!("/v1/tickets/{id}"))
        .complete_on_replay(stored))
}

fn ticket_token(call: &Call<Endpoint>, id: &TicketId) -> Result<String, Problem> {
    let principal = Principal {
        sub: id.to_string(),
        audience: Audience::Ticket,
        scopes: vec!["ticket:read".into(), "ticket:write".into()],
    };
    let expires = call.now.plus(call.config.ticket_token_ttl);
    auth::issue(&principal, call.jwt_secret()?.as_bytes(), call.now, expires)
        .map_err(|e| call.internal("issuing a ticket token", &format!("{e:?}")))
}

/// Is the caller an agent (an admin token) rather than the ticket's customer?
fn agent(call: &Call<Endpoint>) -> Option<&Principal> {
    call.principal
        .as_ref()
        .filter(|p| p.audience == Audience::Admin)
}

/// The ticket in the path, as the caller may see it.
async fn load(call: &Call<Endpoint>) -> Result<TicketView, Problem> {
    let id = call.path_param(0, TicketId::parse, ticket_not_found)?;
    let db = call.db()?;
    store::get(&db, &id).await?.ok_or_else(ticket_not_found)
}

fn view_for(call: &Call<Endpoint>, view: TicketView) -> TicketView {
    if agent(call).is_some() {
        view
    } else {
        view.for_customer()
    }
}

/// `GET /v1/tickets/{id}`: the ticket and its conversation; an agent also sees the linked
/// order's status and its latest tracking status.
async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let view = view_for(call, load(call).await?);
    Ok(Reply::json(200, &view)?.header("Cache-Control", "private, no-store"))
}

/// `GET /v1/tickets/{id}/messages?limit=&cursor=`: the conversation in order, a page at a time
/// (the customer sees no agent names).
async fn messages(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor"])?;
    let id = call.path_param(0, TicketId::parse, ticket_not_found)?;
    let after = match call.cursor()? {
        None => 0,
        Some(cursor) => cursor
            .key()
            .parse::<u32>()
            .map_err(|_| shop_edge::http::params::invalid_cursor())?,
    };
    let limit = call.limit()?;
    let db = call.db()?;
    let mut page = store::messages(&db, &id, after, limit)
        .await?
        .ok_or_else(ticket_not_found)?;
    if agent(call).is_none() {
        for message in &mut page.data {
            message.agent = None;
        }
    }
    Ok(Reply::json(200, &page)?.header("Cache-Control", "private, no-store"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBodyIn {
    message: String,
}

/// The one answer for each of the desk's refusals.
fn refused(refusal: TicketRefusal) -> Problem {
    match refusal {
        TicketRefusal::Full => ticket_full(),
        TicketRefusal::Illegal(e) => {
            Problem::new(409, "illegal_transition", "Illegal transition", e.reason)
                .with_extra("ticket_status", e.from.as_str().into())
        }
        TicketRefusal::NothingToChange => Problem::invalid_field(
            "/status",
            "nothing_to_change",
            "name a status or a priority",
        ),
        TicketRefusal::InvalidRating => Problem::invalid_field(
            "/rating",
            "invalid_rating",
            "rating is a whole number from 1 to 5",
        ),
        TicketRefusal::AlreadyRated => not_ratable("This ticket was rated already"),
        TicketRefusal::NotResolved => not_ratable("A ticket is rated once it is resolved"),
        TicketRefusal::CustomersOnly => Problem::new(
            403,
            "customers_only",
            "Forbidden",
            "Only the ticket's customer rates it (with the ticket token)",
        ),
        TicketRefusal::InvalidRange => Problem::invalid_field(
            "/query/from",
            "invalid_range",
            "from is before to, at most 366 days before it",
        ),
    }
}

fn not_ratable(detail: &str) -> Problem {
    Problem::new(409, "not_ratable", "Cannot rate", detail)
}

fn ticket_full() -> Problem {
    Problem::new(
        409,
        "ticket_full",
        "Conversation full",
        format!(
            "A ticket holds at most {} messages; open a new ticket (it may name the same order)",
            tickets::MAX_MESSAGES
        ),
    )
}

fn ticket_changed() -> Problem {
    Problem::new(
        409,
        "ticket_changed",
        "Ticket changed",
        "The ticket changed while this request was handled; read it again and retry",
    )
    .with_header("Retry-After", "1")
}

/// `POST /v1/tickets/{id}/messages`: the customer (ticket token) or an agent (admin token)
/// adds a message; the status follows (`shop_domain::tickets::TicketState::apply`).
async fn reply(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: MessageBodyIn = call.json()?;
    let message = MessageBody::parse(&body.message).map_err(Problem::invalid_inputs)?;
    let id = call.path_param(0, TicketId::parse, ticket_not_found)?;
    // Throttled before anything is read: per ticket (whoever writes), and a customer per client.
    call.rate_limit("TICKET_REPLIES_BY_TICKET", &format!("ticket:{id}"))
        .await?;
    if agent(call).is_none() {
        call.rate_limit_client("TICKET_REPLIES_BY_CLIENT").await?;
    }
    let ticket = load(call).await?;
    let (author, agent_sub) = match agent(call) {
        Some(p) => (Author::Agent, Some(p.sub.as_str())),
        None => (Author::Customer, None),
    };
    let decided = tickets::reply(&ticket.facts(), author, &CryptoIds, call.now).map_err(refused)?;
    let change = store::Change {
        ticket: &ticket,
        status: decided.status,
        priority: decided.priority,
        message: Some((author, agent_sub, message.as_str())),
        now: call.now,
    };
    save(call, &change, &decided.events).await
}

/// Save a change and answer the ticket as it is now (201 with a message, 200 without).
async fn save(
    call: &Call<Endpoint>,
    change: &store::Change<'_>,
    events: &[Event],
) -> Result<Reply, Problem> {
    let db = call.db()?;
    match store::change(&db, change, events).await? {
        ChangeOutcome::Stale => Err(ticket_changed()),
        ChangeOutcome::Full => Err(ticket_full()),
        ChangeOutcome::Saved(written) => {
            call.publish(&written).await;
            let view = store::get(&db, &change.ticket.id)
                .await?
                .ok_or_else(ticket_not_found)?;
            let status = if change.message.is_some() { 201 } else { 200 };
            Ok(Reply::json(status, &view_for(call, view))?)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
}

/// `PATCH /v1/admin/tickets/{id}` `{status?, priority?}`: an agent moves the status (illegal
/// moves 409) or adjusts the priority.
async fn update(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: UpdateBody = call.json()?;
    let mut errors = Vec::new();
    let status = body.status.as_deref().map(|s| {
        TicketStatus::parse(s).ok_or_else(|| {
            errors.push(FieldError::new(
                "/status",
                "invalid_status",
                "status is one of open, pending, resolved, closed",
            ))
        })
    });
    let priority = body.priority.as_deref().map(|p| {
        Priority::parse(p).ok_or_else(|| {
            errors.push(FieldError::new(
                "/priority",
                "invalid_priority",
                "priority is one of low, normal, high, urgent",
            ))
        })
    });
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }
    let (status, priority) = (status.and_then(Result::ok), priority.and_then(Result::ok));
    let ticket = load(call).await?;
    let decided = tickets::triage(&ticket.facts(), status, priority, &CryptoIds, call.now)
        .map_err(refused)?;
    let change = store::Change {
        ticket: &ticket,
        status: decided.status,
        priority: decided.priority,
        message: None,
        now: call.now,
    };
    save(call, &change, &decided.events).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingBody {
    rating: u8,
}

/// `POST /v1/tickets/{id}/rating` `{rating}`: the customer rates a resolved ticket, once.
async fn rate(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let by = if agent(call).is_some() {
        Author::Agent
    } else {
        Author::Customer
    };
    tickets::may_rate(by).map_err(refused)?;
    let body: RatingBody = call.json()?;
    let rating = Rating::parse(body.rating).map_err(refused)?;
    let ticket = load(call).await?;
    let rating = tickets::rate(&ticket.facts(), rating).map_err(refused)?;
    let db = call.db()?;
    if !store::rate(&db, &ticket.id, rating.get(), call.now).await? {
        return Err(not_ratable("This ticket was rated already, or reopened"));
    }
    let view = store::get(&db, &ticket.id)
        .await?
        .ok_or_else(ticket_not_found)?;
    Ok(Reply::json(200, &view.for_customer())?)
}

/// `GET /v1/admin/tickets`: newest first, filtered, cursor-paged.
async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[
        "limit",
        "cursor",
        "status",
        "category",
        "priority",
        "email",
        "order_number",
    ])?;
    let filter = TicketFilter {
        status: call.parsed_query(
            "status",
            "invalid_status",
            "one of open, pending, resolved, closed",
            TicketStatus::parse,
        )?,
        category: call.parsed_query(
            "category",
            "invalid_category",
            "a ticket category",
            Category::parse,
        )?,
        priority: call.parsed_query(
            "priority",
            "invalid_priority",
            "one of low, normal, high, urgent",
            Priority::parse,
        )?,
        email: call.parsed_query("email", "invalid_email", "an email address", |e| {
            shop_domain::checkout::Email::parse(e).map(|e| e.as_str().to_owned())
        })?,
        order_number: call.query("order_number").map(str::to_owned),
        after: call.time_cursor()?,
    };
    let db = call.db()?;
    let page = store::list(&db, &filter, call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}

#[derive(Serialize)]
struct Stats {
    from: shop_domain::time::Timestamp,
    to: shop_domain::time::Timestamp,
    tickets: usize,
    by_status: std::collections::BTreeMap<&'static str, usize>,
    first_response: tickets::Percentiles,
    resolution: tickets::Percentiles,
    sla_seconds: i64,
    sla_breaches: usize,
    rating: RatingStats,
}

#[derive(Serialize)]
struct RatingStats {
    count: usize,
    /// The mean of the ratings, to two decimals (as a string); `null` without ratings.
    average: Option<String>,
}

/// `GET /v1/admin/tickets/stats?from=&to=&sla_seconds=`: the tickets created in `[from, to)`
/// (default the last 30 days, at most a year): count by status, median and 90th percentile
/// first-response and resolution times, SLA breaches, satisfaction.
async fn stats(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["from", "to", "sla_seconds"])?;
    let to = call.timestamp_query("to")?.unwrap_or(call.now);
    let from = call
        .timestamp_query("from")?
        .unwrap_or(to.minus(Duration::from_days(30)));
    tickets::stats_range(from, to).map_err(refused)?;
    let sla = match call.parsed_query(
        "sla_seconds",
        "invalid_sla",
        "a whole number of seconds from 1",
        |s| s.parse::<i64>().ok().filter(|s| *s > 0),
    )? {
        Some(seconds) => Duration::from_secs(seconds),
        None => call.config.tickets.first_response_sla,
    };
    let db = call.db()?;
    let facts = store::stats(&db, from, to, call.now, sla).await?;
    let by_status = TicketStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                facts.by_status.get(s.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    let ranked =
        |r: &store::RankedMillis| tickets::Percentiles::from_ranks(r.count, r.median, r.p90);
    let answer = Stats {
        from,
        to,
        tickets: facts.tickets,
        by_status,
        first_response: ranked(&facts.first_response),
        resolution: ranked(&facts.resolution),
        sla_seconds: sla.millis() / 1000,
        sla_breaches: facts.sla_breaches,
        rating: RatingStats {
            count: facts.rating_count,
            average: tickets::average_rating_of(facts.rating_sum, facts.rating_count),
        },
    };
    Ok(Reply::json(200, &answer)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    const OPENAPI: &str = include_str!("../../../schema/openapi.json");

    #[test]
    fn every_route_is_documented_and_authorized_by_the_pipeline() {
        assert_eq!(
            shop_edge::http::routing::route_table_faults(ROUTES, OPENAPI),
            Vec::<String>::new()
        );
    }
}
