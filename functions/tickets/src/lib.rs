//! The tickets worker: customer-service tickets under `/v1/tickets` (the customer, with the
//! ticket token the submission answers) and `/v1/admin/tickets` (agents, with admin tokens).
//! Thin glue over `shop_domain::support::tickets` (what may be submitted, the status machine, priority,
//! service times) and `shop_edge::store::tickets` (one statement per read, one batch per change).

use shop_edge::http::auth::Audience;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

mod conversation;
mod reports;
mod submission;

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
        Endpoint::Submit => submission::submit(&call).await,
        Endpoint::Get => conversation::get(&call).await,
        Endpoint::Messages => conversation::messages(&call).await,
        Endpoint::Reply => conversation::reply(&call).await,
        Endpoint::Rate => conversation::rate(&call).await,
        Endpoint::List => reports::list(&call).await,
        Endpoint::Stats => reports::stats(&call).await,
        Endpoint::Update => conversation::update(&call).await,
    }
}

shop_edge::route_table_test!();
