//! The accounts worker: customer registration, login, refresh and logout, email verification and
//! password reset under `/v1/auth` (the customer's own record at `/v1/me` is
//! `functions/customers`). Thin glue over `shop_domain::customers::accounts` (the password
//! policy and hash, the refresh-token rules) and `shop_edge::store::accounts`; passwords are
//! derived by the runtime's WebCrypto (`shop_edge::kdf`).
//!
//! Login answers an unknown email exactly as a wrong password, after the same work (a dummy
//! hash is verified); registration answers 202 whether or not the address had an account, after
//! the same work (the password is hashed either way), so neither route tells a script which
//! addresses have accounts.

use shop_edge::http::runtime::{self, log_error};
use shop_edge::outbound::account_mail::Mailer;
use shop_edge::store::sql::Db;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

mod guard;
mod identity;
mod links;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Login,
    Refresh,
    Logout,
    VerifyEmail,
    RequestReset,
    ConfirmReset,
}

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
        return Err(Problem::credentials_shown_once());
    }
    match call.route.endpoint {
        Endpoint::Register => identity::register(&call).await,
        Endpoint::Login => identity::login(&call).await,
        Endpoint::Refresh => identity::refresh(&call).await,
        Endpoint::Logout => identity::logout(&call).await,
        Endpoint::VerifyEmail => links::verify_email(&call).await,
        Endpoint::RequestReset => links::request_reset(&call).await,
        Endpoint::ConfirmReset => links::confirm_reset(&call).await,
    }
}

shop_edge::route_table_test!();
