//! The orders worker (crate `orders-worker`, deployed as `shop-orders`): an order and its
//! payment ledger, read by the holder of the order's own token, the customer who placed it
//! signed in, or an admin (`orders:read`). Orders are placed by `functions/checkout`.

mod orders;

use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    GetOrder,
    GetOrderPayment,
}

pub const ROUTES: &[Route<Endpoint>] = &[
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
        Endpoint::GetOrder => orders::get(&call).await,
        Endpoint::GetOrderPayment => orders::payment(&call).await,
    }
}

shop_edge::route_table_test!();
