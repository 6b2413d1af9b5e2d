//! The accounts worker: customer registration, login, refresh and logout under `/v1/auth`, and
//! the customer's own record at `/v1/me`. Thin glue over `shop_domain::accounts` (the password
//! policy and hash, the refresh-token rules) and `shop_edge::store::accounts`; passwords are
//! derived by the runtime's WebCrypto (`shop_edge::kdf`).
//!
//! Login answers an unknown email exactly as a wrong password, after the same work (a dummy
//! hash is verified); registration answers 202 whether or not the address had an account, after
//! the same work (the password is hashed either way), so neither route tells a script which
//! addresses have accounts.

use shop_edge::http::auth::{self, Audience};
use shop_edge::http::runtime::{self, log_error};
use shop_edge::outbound::account_mail::Mailer;
use shop_edge::store::sql::Db;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

mod addresses;
mod guard;
mod identity;
mod links;
mod me;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Login,
    Refresh,
    Logout,
    VerifyEmail,
    RequestReset,
    ConfirmReset,
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
        method: "POST",
        path: "/v1/auth/register",
        access: Access::Public,
        endpoint: Endpoint::Register,
    },
    Route {
        method: "POST",
        path: "/v1/auth/login",
        access: Access::Public,
        endpoint: Endpoint::Login,
    },
    Route {
        method: "POST",
        path: "/v1/auth/refresh",
        access: Access::Public,
        endpoint: Endpoint::Refresh,
    },
    Route {
        method: "POST",
        path: "/v1/auth/logout",
        access: Access::Public,
        endpoint: Endpoint::Logout,
    },
    Route {
        method: "POST",
        path: "/v1/auth/verify-email",
        access: Access::Public,
        endpoint: Endpoint::VerifyEmail,
    },
    Route {
        method: "POST",
        path: "/v1/auth/password-reset",
        access: Access::Public,
        endpoint: Endpoint::RequestReset,
    },
    Route {
        method: "POST",
        path: "/v1/auth/password-reset/confirm",
        access: Access::Public,
        endpoint: Endpoint::ConfirmReset,
    },
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

/// Every minute: hand over the account messages that are due (retries), and let go of those
/// whose links expired.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let outcome = async {
        let config = runtime::config(&env).map_err(|e| e.to_string())?;
        let db = Db::open(&env).map_err(|e| e.to_string())?;
        Mailer::from_env(&env, &config)
            .deliver_due(&db, None, runtime::now())
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = outcome {
        log_error("cron", "account mail", &e);
    }
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    // A replayed login or refresh showed its tokens once; they are never stored.
    if call.replayed.is_some() {
        return Err(Problem::new(
            409,
            "credentials_shown_once",
            "Already answered",
            "The request with this Idempotency-Key succeeded; the tokens it answered are shown only once. Log in (or refresh) again with a new key",
        ));
    }
    match call.route.endpoint {
        Endpoint::Register => identity::register(&call).await,
        Endpoint::Login => identity::login(&call).await,
        Endpoint::Refresh => identity::refresh(&call).await,
        Endpoint::Logout => identity::logout(&call).await,
        Endpoint::VerifyEmail => links::verify_email(&call).await,
        Endpoint::RequestReset => links::request_reset(&call).await,
        Endpoint::ConfirmReset => links::confirm_reset(&call).await,
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

#[cfg(test)]
mod tests {
    use super::*;
    const OPENAPI: &str = include_str!("../../../schema/openapi.json");

    #[test]
    fn every_route_is_documented_and_authorized_by_the_pipeline() {
        assert_eq!(
            shop_edge::http::routing::route_table_faults(ROUTES, OPENAPI),
            Vec::<String>::new()
        );
    }
}
