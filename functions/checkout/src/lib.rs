//! The checkout worker (crate `checkout-worker`, deployed as `shop-checkout`): checkout
//! (`POST /v1/carts/{id}/checkout`, reached through the cart worker's service binding, since
//! production routes are path prefixes): it has no route of its own on the zone. Order reads are
//! `functions/orders`; the back office `functions/admin` and `functions/operations`. Thin glue over
//! `shop_domain`: each concern is one module, and this file holds only the route table and
//! dispatch.

mod checkout;

use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Checkout,
}

pub const ROUTES: &[Route<Endpoint>] = &[Route {
    method: "POST",
    path: "/v1/carts/{cart_id}/checkout",
    access: Access::Capability,
    endpoint: Endpoint::Checkout,
}];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Checkout => checkout::checkout(&call).await,
    }
}

shop_edge::route_table_test!();
