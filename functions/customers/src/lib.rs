//! The customers worker: a signed-in customer's own record at `/v1/me` (profile, saved
//! addresses, orders, points, the password change and erasure), every route behind the customer
//! access token that `functions/accounts` signs (`Access::Bearer`, audience `shop-customer`,
//! verified by the pipeline before anything is read).

use shop_edge::http::auth::{self, Audience};
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

mod addresses;
mod me;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Me,
    UpdateMe,
    ChangePassword,
    ListAddresses,
    CreateAddress,
    UpdateAddress,
    DeleteAddress,
    MyOrders,
    MyPoints,
    EraseMe,
}

const CUSTOMER: Access = Access::Bearer {
    audience: Audience::Customer,
    scope: auth::CUSTOMER_SCOPE,
};

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "GET",
        path: "/v1/me",
        access: CUSTOMER,
        endpoint: Endpoint::Me,
    },
    Route {
        method: "PATCH",
        path: "/v1/me",
        access: CUSTOMER,
        endpoint: Endpoint::UpdateMe,
    },
    Route {
        method: "DELETE",
        path: "/v1/me",
        access: CUSTOMER,
        endpoint: Endpoint::EraseMe,
    },
    Route {
        method: "POST",
        path: "/v1/me/password",
        access: CUSTOMER,
        endpoint: Endpoint::ChangePassword,
    },
    Route {
        method: "GET",
        path: "/v1/me/addresses",
        access: CUSTOMER,
        endpoint: Endpoint::ListAddresses,
    },
    Route {
        method: "POST",
        path: "/v1/me/addresses",
        access: CUSTOMER,
        endpoint: Endpoint::CreateAddress,
    },
    Route {
        method: "PATCH",
        path: "/v1/me/addresses/{address_id}",
        access: CUSTOMER,
        endpoint: Endpoint::UpdateAddress,
    },
    Route {
        method: "DELETE",
        path: "/v1/me/addresses/{address_id}",
        access: CUSTOMER,
        endpoint: Endpoint::DeleteAddress,
    },
    Route {
        method: "GET",
        path: "/v1/me/orders",
        access: CUSTOMER,
        endpoint: Endpoint::MyOrders,
    },
    Route {
        method: "GET",
        path: "/v1/me/points",
        access: CUSTOMER,
        endpoint: Endpoint::MyPoints,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    // As in functions/accounts, whose routes these were: a replayed key is answered 409.
    if call.replayed.is_some() {
        return Err(Problem::credentials_shown_once());
    }
    match call.route.endpoint {
        Endpoint::Me => me::me(&call).await,
        Endpoint::ChangePassword => me::change_password(&call).await,
        Endpoint::UpdateMe => addresses::patch_me(&call).await,
        Endpoint::ListAddresses => addresses::list(&call).await,
        Endpoint::CreateAddress => addresses::create(&call).await,
        Endpoint::UpdateAddress => addresses::update(&call).await,
        Endpoint::DeleteAddress => addresses::delete(&call).await,
        Endpoint::MyOrders => me::my_orders(&call).await,
        Endpoint::MyPoints => me::my_points(&call).await,
        Endpoint::EraseMe => me::erase_me(&call).await,
    }
}

shop_edge::route_table_test!();
