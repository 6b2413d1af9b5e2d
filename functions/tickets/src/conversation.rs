//! A ticket and its conversation: read it, page its messages, reply, triage, rate; every change
//! decided by `shop_domain::support::tickets` and saved in one batch.

use crate::Endpoint;
use serde::Deserialize;
use shop_domain::events::Event;
use shop_domain::kernel::ids::TicketId;
use shop_domain::support::tickets::{self, Author, MessageBody, Priority, Rating, TicketStatus};
use shop_edge::http::auth::{Audience, Principal};
use shop_edge::http::problem::FieldError;
use shop_edge::http::refusals::tickets as refusals;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::tickets::{self as store, ChangeOutcome, TicketView};
use shop_edge::{Call, Problem, Reply};

/// Is the caller an agent (an admin token) rather than the ticket's customer?
pub(crate) fn agent(call: &Call<Endpoint>) -> Option<&Principal> {
    call.principal
        .as_ref()
        .filter(|p| p.audience == Audience::Admin)
}

/// The ticket in the path, as the caller may see it.
pub(crate) async fn load(call: &Call<Endpoint>) -> Result<TicketView, Problem> {
    let id = call.path_param(0, TicketId::parse, refusals::ticket_not_found)?;
    let db = call.db()?;
    store::get(&db, &id)
        .await?
        .ok_or_else(refusals::ticket_not_found)
}

pub(crate) fn view_for(call: &Call<Endpoint>, view: TicketView) -> TicketView {
    if agent(call).is_some() {
        view
    } else {
        view.for_customer()
    }
}

/// `GET /v1/tickets/{id}`: the ticket and its conversation; an agent also sees the linked
/// order's status and its latest tracking status.
pub(crate) async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let view = view_for(call, load(call).await?);
    Ok(Reply::json(200, &view)?.header("Cache-Control", "private, no-store"))
}

/// `GET /v1/tickets/{id}/messages?limit=&cursor=`: the conversation in order, a page at a time
/// (the customer sees no agent names).
pub(crate) async fn messages(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor"])?;
    let id = call.path_param(0, TicketId::parse, refusals::ticket_not_found)?;
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
        .ok_or_else(refusals::ticket_not_found)?;
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

/// `POST /v1/tickets/{id}/messages`: the customer (ticket token) or an agent (admin token)
/// adds a message; the status follows (`shop_domain::support::tickets::TicketState::apply`).
pub(crate) async fn reply(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: MessageBodyIn = call.json()?;
    let message = MessageBody::parse(&body.message).map_err(Problem::invalid_inputs)?;
    let id = call.path_param(0, TicketId::parse, refusals::ticket_not_found)?;
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
    let decided =
        tickets::reply(&ticket.facts(), author, &CryptoIds, call.now).map_err(Problem::from)?;
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
pub(crate) async fn save(
    call: &Call<Endpoint>,
    change: &store::Change<'_>,
    events: &[Event],
) -> Result<Reply, Problem> {
    let db = call.db()?;
    match store::change(&db, change, events).await? {
        ChangeOutcome::Stale => Err(refusals::ticket_changed()),
        ChangeOutcome::Full => Err(refusals::ticket_full()),
        ChangeOutcome::Saved(written) => {
            call.publish(&written).await;
            let view = store::get(&db, &change.ticket.id)
                .await?
                .ok_or_else(refusals::ticket_not_found)?;
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
pub(crate) async fn update(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
        .map_err(Problem::from)?;
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
pub(crate) async fn rate(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let by = if agent(call).is_some() {
        Author::Agent
    } else {
        Author::Customer
    };
    tickets::may_rate(by).map_err(Problem::from)?;
    let body: RatingBody = call.json()?;
    let rating = Rating::parse(body.rating).map_err(Problem::from)?;
    let ticket = load(call).await?;
    let rating = tickets::rate(&ticket.facts(), rating).map_err(Problem::from)?;
    let db = call.db()?;
    if !store::rate(&db, &ticket.id, rating.get(), call.now).await? {
        return Err(refusals::not_ratable(
            "This ticket was rated already, or reopened",
        ));
    }
    let view = store::get(&db, &ticket.id)
        .await?
        .ok_or_else(refusals::ticket_not_found)?;
    Ok(Reply::json(200, &view.for_customer())?)
}
