//! The back office over orders (crate `admin-worker`, deployed as `shop-admin`): the listing,
//! cancel, capture, refunds and shipments, every route behind an admin token with its scope
//! (stock, merchant webhooks and dead events are `functions/operations`). Thin glue over `shop_domain`: each concern is one
//! module, and this file holds only the route table and dispatch.

mod orders;
mod refunds;
mod shipments;

use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    CancelOrder,
    RefundOrder,
    ShipOrder,
    CaptureOrder,
    ListOrders,
}

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/admin/orders/{order_id}/cancel",
        access: Access::Admin("orders:write"),
        endpoint: Endpoint::CancelOrder,
    },
    Route {
        method: "POST",
        path: "/v1/admin/orders/{order_id}/refunds",
        access: Access::Admin("orders:write"),
        endpoint: Endpoint::RefundOrder,
    },
    Route {
        method: "POST",
        path: "/v1/admin/orders/{order_id}/shipments",
        access: Access::Admin("orders:write"),
        endpoint: Endpoint::ShipOrder,
    },
    Route {
        method: "POST",
        path: "/v1/admin/orders/{order_id}/capture",
        access: Access::Admin("orders:write"),
        endpoint: Endpoint::CaptureOrder,
    },
    Route {
        method: "GET",
        path: "/v1/admin/orders",
        access: Access::Admin("orders:read"),
        endpoint: Endpoint::ListOrders,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::CancelOrder => orders::transition(&call, orders::Action::Cancel).await,
        Endpoint::CaptureOrder => orders::transition(&call, orders::Action::Capture).await,
        Endpoint::RefundOrder => refunds::create(&call).await,
        Endpoint::ShipOrder => shipments::create(&call).await,
        Endpoint::ListOrders => orders::list(&call).await,
    }
}

shop_edge::route_table_test!();
