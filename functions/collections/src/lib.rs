//! The collections worker (crate `collections-worker`, deployed as `shop-collections`):
//! collections, the manual, ordered product lists of the back office, behind admin tokens with
//! the `catalog:read` / `catalog:write` scopes. Apart from `functions/catalog-admin` so that each
//! stays under 300 KiB of gzip wasm; this file holds only the route table and dispatch.

mod collections;

use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListCollections,
    CreateCollection,
    SetCollectionProducts,
}

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "GET",
        path: "/v1/admin/collections",
        access: Access::Admin("catalog:read"),
        endpoint: Endpoint::ListCollections,
    },
    Route {
        method: "POST",
        path: "/v1/admin/collections",
        access: Access::Admin("catalog:write"),
        endpoint: Endpoint::CreateCollection,
    },
    Route {
        method: "PUT",
        path: "/v1/admin/collections/{collection_id}/products",
        access: Access::Admin("catalog:write"),
        endpoint: Endpoint::SetCollectionProducts,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::ListCollections => collections::list(&call).await,
        Endpoint::CreateCollection => collections::create(&call).await,
        Endpoint::SetCollectionProducts => collections::set_products(&call).await,
    }
}

shop_edge::route_table_test!();
