//! The catalog worker: product listing and pages, their reviews, the OpenAPI document, and the
//! admin price and review moderation routes. Also the origin's fallback: paths no worker owns get a problem+json 404 here.

use shop_edge::http::auth::{Audience, CUSTOMER_SCOPE};
use shop_edge::http::reply::JSON;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

mod images;
mod products;
mod reviews;
mod search;

/// The checked-in OpenAPI 3.1 document, served as is.
pub const OPENAPI: &str = include_str!("../../../schema/openapi.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListProducts,
    GetProduct,
    OpenApi,
    SetPrice,
    ListReviews,
    CreateReview,
    ReviewHelpful,
    ModerateReview,
    ModerationList,
    GetImage,
    Search,
    Suggest,
}

const CUSTOMER: Access = Access::Bearer {
    audience: Audience::Customer,
    scope: CUSTOMER_SCOPE,
};

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "GET",
        path: "/v1/products",
        access: Access::Public,
        endpoint: Endpoint::ListProducts,
    },
    Route {
        method: "GET",
        path: "/v1/products/{product_id}",
        access: Access::Public,
        endpoint: Endpoint::GetProduct,
    },
    Route {
        method: "GET",
        path: "/v1/search",
        access: Access::Public,
        endpoint: Endpoint::Search,
    },
    Route {
        method: "GET",
        path: "/v1/search/suggest",
        access: Access::Public,
        endpoint: Endpoint::Suggest,
    },
    Route {
        method: "GET",
        path: "/v1/images/{hash}",
        access: Access::Public,
        endpoint: Endpoint::GetImage,
    },
    Route {
        method: "GET",
        path: "/v1/openapi.json",
        access: Access::Public,
        endpoint: Endpoint::OpenApi,
    },
    Route {
        method: "PUT",
        path: "/v1/admin/variants/{sku}/prices/{currency}",
        access: Access::Admin("catalog:write"),
        endpoint: Endpoint::SetPrice,
    },
    Route {
        method: "GET",
        path: "/v1/products/{product_id}/reviews",
        access: Access::Public,
        endpoint: Endpoint::ListReviews,
    },
    Route {
        method: "POST",
        path: "/v1/products/{product_id}/reviews",
        access: CUSTOMER,
        endpoint: Endpoint::CreateReview,
    },
    Route {
        method: "POST",
        path: "/v1/products/{product_id}/reviews/{review_id}/helpful",
        access: CUSTOMER,
        endpoint: Endpoint::ReviewHelpful,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/reviews/{review_id}",
        access: Access::Admin("reviews:write"),
        endpoint: Endpoint::ModerateReview,
    },
    Route {
        method: "GET",
        path: "/v1/admin/reviews",
        access: Access::Admin("reviews:read"),
        endpoint: Endpoint::ModerationList,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::OpenApi => Ok(Reply::raw(200, JSON, OPENAPI.to_owned())
            .header("Cache-Control", "public, max-age=300")),
        Endpoint::ListProducts => products::list(&call).await,
        Endpoint::GetProduct => products::get(&call).await,
        Endpoint::SetPrice => products::set_price(&call).await,
        Endpoint::ListReviews => reviews::list(&call).await,
        Endpoint::CreateReview => reviews::create(&call).await,
        Endpoint::ReviewHelpful => reviews::helpful(&call).await,
        Endpoint::ModerateReview => reviews::moderate(&call).await,
        Endpoint::ModerationList => reviews::moderation_list(&call).await,
        Endpoint::GetImage => images::get(&call).await,
        Endpoint::Search => products::cached(&call, search::PARAMS, search::search).await,
        Endpoint::Suggest => products::cached(&call, &["q"], search::suggest).await,
    }
}

shop_edge::route_table_test!();
