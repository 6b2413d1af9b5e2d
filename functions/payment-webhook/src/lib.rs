//! The payment webhooks: `POST /v1/webhooks/payments/stripe` (Stripe's signature and events)
//! and `POST /v1/webhooks/payments/{provider}` (providers that sign with Standard Webhooks, in
//! the small vocabulary of `shop_domain::payments::StandardEvent`). Thin glue over
//! `shop_domain::payments`: verify the signature on the raw body (before anything is read or
//! written), read the event, find its order, decide, and write the claim with the effects.
//!
//! A delivery is recorded once (`payment_events`, primary key `(provider, event_id)`): the claim
//! leads the batch of its effects, so a second delivery, concurrent or late, changes nothing
//! and is answered 200. A success pays its order only when the amount and currency are the
//! order's total and the order is pending payment; nothing here ever un-pays an order.

use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

mod apply;
mod receive;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Stripe,
    Standard,
}

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
/// The first route that matches wins, so `stripe` is never read as a Standard Webhooks provider.
pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/webhooks/payments/stripe",
        access: Access::Signed,
        endpoint: Endpoint::Stripe,
    },
    Route {
        method: "POST",
        path: "/v1/webhooks/payments/{provider}",
        access: Access::Signed,
        endpoint: Endpoint::Standard,
    },
];

const STRIPE: &str = "stripe";

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Stripe => receive::stripe(&call).await,
        Endpoint::Standard => receive::standard(&call).await,
    }
}

shop_edge::route_table_test!();
