//! The catalog-admin worker (crate `catalog-admin-worker`, deployed as `shop-catalog-admin`):
//! products, their variants and the category tree as the merchant manages them, behind admin
//! tokens with the `catalog:read` / `catalog:write` scopes. Thin glue over
//! `shop_domain::catalog::management`: each concern is one module, and this file holds only the
//! route table and dispatch.

mod categories;
mod products;

use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListProducts,
    CreateProduct,
    GetProduct,
    UpdateProduct,
    AddVariant,
    UpdateVariant,
    UploadImage,
    ListCategories,
    CreateCategory,
    UpdateCategory,
}

const READ: Access = Access::Admin("catalog:read");
const WRITE: Access = Access::Admin("catalog:write");

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "GET",
        path: "/v1/admin/products",
        access: READ,
        endpoint: Endpoint::ListProducts,
    },
    Route {
        method: "POST",
        path: "/v1/admin/products",
        access: WRITE,
        endpoint: Endpoint::CreateProduct,
    },
    Route {
        method: "GET",
        path: "/v1/admin/products/{product_id}",
        access: READ,
        endpoint: Endpoint::GetProduct,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/products/{product_id}",
        access: WRITE,
        endpoint: Endpoint::UpdateProduct,
    },
    Route {
        method: "POST",
        path: "/v1/admin/products/{product_id}/variants",
        access: WRITE,
        endpoint: Endpoint::AddVariant,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/products/{product_id}/variants/{sku}",
        access: WRITE,
        endpoint: Endpoint::UpdateVariant,
    },
    Route {
        method: "PUT",
        path: "/v1/admin/products/{product_id}/images",
        access: WRITE,
        endpoint: Endpoint::UploadImage,
    },
    Route {
        method: "GET",
        path: "/v1/admin/categories",
        access: READ,
        endpoint: Endpoint::ListCategories,
    },
    Route {
        method: "POST",
        path: "/v1/admin/categories",
        access: WRITE,
        endpoint: Endpoint::CreateCategory,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/categories/{category_id}",
        access: WRITE,
        endpoint: Endpoint::UpdateCategory,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::ListProducts => products::list(&call).await,
        Endpoint::CreateProduct => products::create(&call).await,
        Endpoint::GetProduct => products::get(&call).await,
        Endpoint::UpdateProduct => products::update(&call).await,
        Endpoint::AddVariant => products::add_variant(&call).await,
        Endpoint::UpdateVariant => products::update_variant(&call).await,
        Endpoint::UploadImage => products::upload_image(&call).await,
        Endpoint::ListCategories => categories::list(&call).await,
        Endpoint::CreateCategory => categories::create(&call).await,
        Endpoint::UpdateCategory => categories::update(&call).await,
    }
}

shop_edge::route_table_test!();
