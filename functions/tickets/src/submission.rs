//! `POST /v1/tickets`: a submission (and its replay), answered with the ticket token.

use crate::Endpoint;
use serde::{Deserialize, Serialize};
use shop_domain::kernel::ids::TicketId;
use shop_domain::support::tickets::{self, NewTicket, TicketInput};
use shop_edge::http::auth::Audience;
use shop_edge::http::reply::JSON;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::tickets::{self as store};
use shop_edge::{Call, Problem, Reply};

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

/// `POST /v1/tickets`.
pub(crate) async fn submit(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
pub(crate) fn submitted<T: Serialize>(
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

pub(crate) fn ticket_token(call: &Call<Endpoint>, id: &TicketId) -> Result<String, Problem> {
    call.mint(
        id.as_str(),
        Audience::Ticket,
        &["ticket:read", "ticket:write"],
        call.config.ticket_token_ttl,
    )
}
