//! The checkout worker (crate `checkout-worker`, deployed as `shop-checkout`): checkout
//! (`POST /v1/carts/{id}/checkout`, reached through the cart worker's service binding, since
//! production routes are path prefixes), order reads, and the maintenance cron (the back office
//! over orders, stock, merchant webhooks and dead events is `functions/admin`). Thin glue over
//! `shop_domain`: each concern is one module, and this file holds only the route table and
//! dispatch.

mod checkout;
mod maintenance;
mod orders;

use shop_domain::ids::IdSource;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Checkout,
    GetOrder,
    GetOrderPayment,
}

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/carts/{cart_id}/checkout",
        access: Access::Capability,
        endpoint: Endpoint::Checkout,
    },
    Route {
        method: "GET",
        path: "/v1/orders/{order_id}",
        access: Access::Handler,
        endpoint: Endpoint::GetOrder,
    },
    Route {
        method: "GET",
        path: "/v1/orders/{order_id}/payment",
        access: Access::Handler,
        endpoint: Endpoint::GetOrderPayment,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Checkout => checkout::checkout(&call).await,
        Endpoint::GetOrder => orders::get(&call).await,
        Endpoint::GetOrderPayment => orders::payment(&call).await,
    }
}

/// Every minute: see [`maintenance::run`].
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let run = format!("cron_{}", CryptoIds.next_u128());
    maintenance::run(&env, &run).await;
}

shop_edge::route_table_test!();
