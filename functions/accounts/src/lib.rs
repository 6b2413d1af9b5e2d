//! The accounts worker: customer registration, login, refresh and logout under `/v1/auth`, and
//! the customer's own record at `/v1/me`. Thin glue over `shop_domain::accounts` (the password
//! policy and hash, the refresh-token rules) and `shop_edge::store::accounts`; passwords are
//! derived by the runtime's WebCrypto (`shop_edge::kdf`).
//!
//! Login answers an unknown email exactly as a wrong password, after the same work (a dummy
//! hash is verified); registration answers 202 whether or not the address had an account, after
//! the same work (the password is hashed either way), so neither route tells a script which
//! addresses have accounts.

use serde::{Deserialize, Serialize};
use shop_domain::accounts::{
    self, AccountMessage, CustomerRegistered, OpaqueToken, Password, PasswordHash,
    PasswordResetRequested, Refresh, TokenPurpose, ACCESS_TOKEN_TTL, CURRENT_KDF,
    REFRESH_TOKEN_TTL,
};
use shop_domain::cart::{CartError, Carts};
use shop_domain::checkout::Email;
use shop_domain::events::{Event, Payload};
use shop_domain::ids::{CartId, CustomerId};
use shop_domain::membership;
use shop_edge::http::auth::{self, Audience, Principal};
use shop_edge::http::problem::FieldError;
use shop_edge::http::runtime::{self, log_error, CryptoIds};
use shop_edge::kdf::{random_bytes, WebCryptoKdf};
use shop_edge::outbound::account_mail::Mailer;
use shop_edge::store::accounts as store;
use shop_edge::store::carts::D1Carts;
use shop_edge::store::membership as store_membership;
use shop_edge::store::order_search;
use shop_edge::store::shipping::CachedZones;
use shop_edge::store::sql::Db;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

mod addresses;

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
        Endpoint::Register => register(&call).await,
        Endpoint::Login => login(&call).await,
        Endpoint::Refresh => refresh(&call).await,
        Endpoint::Logout => logout(&call).await,
        Endpoint::VerifyEmail => verify_email(&call).await,
        Endpoint::RequestReset => request_reset(&call).await,
        Endpoint::ConfirmReset => confirm_reset(&call).await,
        Endpoint::Me => me(&call).await,
        Endpoint::ChangePassword => change_password(&call).await,
        Endpoint::UpdateMe => addresses::patch_me(&call).await,
        Endpoint::ListAddresses => addresses::list(&call).await,
        Endpoint::CreateAddress => addresses::create(&call).await,
        Endpoint::UpdateAddress => addresses::update(&call).await,
        Endpoint::DeleteAddress => addresses::delete(&call).await,
        Endpoint::MyOrders => my_orders(&call).await,
        Endpoint::MyPoints => my_points(&call).await,
        Endpoint::EraseMe => erase_me(&call).await,
    }
}

/// Throttle by client address and by email address (the platform's limiter), before any
/// password is derived.
async fn throttle(call: &Call<Endpoint>, email: Option<&Email>) -> Result<(), Problem> {
    call.rate_limit_client("AUTH_BY_CLIENT").await?;
    if let Some(email) = email {
        call.rate_limit_email("AUTH_BY_EMAIL", email.as_str())
            .await?;
    }
    Ok(())
}

fn email(text: &str) -> Result<Email, Problem> {
    Email::parse(text)
        .ok_or_else(|| Problem::invalid_field("/email", "invalid_email", "not an email address"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/auth/register`: 202 in every case that passes validation (see the module).
async fn register(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: RegisterBody = call.json()?;
    let email = email(&body.email)?;
    let mut errors = Vec::new();
    let password = Password::new(&body.password, &email)
        .map_err(|issue| {
            errors.push(FieldError::new(
                "/password",
                "weak_password",
                issue.message(),
            ))
        })
        .ok();
    let name = match body.name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name)
            if name.chars().count() <= 200
                && !shop_domain::checkout::has_unsafe_characters(name) =>
        {
            Some(name.to_owned())
        }
        Some(_) => {
            errors.push(FieldError::new(
                "/name",
                "invalid_name",
                "name is up to 200 characters, without control characters",
            ));
            None
        }
    };
    let Some(password) = password.filter(|_| errors.is_empty()) else {
        return Err(Problem::invalid_fields(errors));
    };
    throttle(call, Some(&email)).await?;
    let hash = PasswordHash::new(&WebCryptoKdf, &password, random_bytes()?, CURRENT_KDF).await?;
    let id = CustomerId::mint(&CryptoIds);
    let verification = AccountMessage::new(
        &CryptoIds,
        TokenPurpose::VerifyEmail,
        &id,
        email.as_str(),
        name.as_deref(),
        OpaqueToken::from_random(random_bytes()?),
        call.now,
    );
    let event = Event::new(
        &CryptoIds,
        call.now,
        Payload::CustomerRegistered(CustomerRegistered {
            customer_id: id.clone(),
            email: email.as_str().to_owned(),
            name: name.clone(),
        }),
    );
    let registration = store::Registration {
        id: &id,
        email: &email,
        name: name.as_deref(),
        password_hash: &hash.encode(),
        verification: &verification,
        now: call.now,
    };
    let db = call.db()?;
    // An address that has an account already is answered the same (its owner can log in or
    // reset the password); nothing is written for it.
    let (created, events) = store::register(&db, &registration, &event).await?;
    if created {
        // After the answer, so a new address and a known one take the same time.
        send_after_answer(call, events, verification.id);
    }
    Ok(Reply::json(
        202,
        &serde_json::json!({
            "status": "accepted",
            "detail": "If this address can be registered, the account exists now and a verification link is on its way; log in with the password"
        }),
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    /// The guest cart the shopper was using: merged into the customer's cart (or made theirs).
    #[serde(default)]
    cart_id: Option<String>,
}

#[derive(Serialize)]
struct Tokens {
    access_token: String,
    token_type: &'static str,
    /// Seconds.
    expires_in: i64,
    refresh_token: String,
    customer_id: String,
    /// On login: the customer's cart after the guest cart joined it (`null`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    cart_id: Option<Option<CartId>>,
}

fn invalid_credentials() -> Problem {
    Problem::new(
        401,
        "invalid_credentials",
        "Invalid credentials",
        "The email address or the password is wrong",
    )
}

/// `POST /v1/auth/login`.
async fn login(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: LoginBody = call.json()?;
    let email = email(&body.email)?;
    let guest_cart = body
        .cart_id
        .as_deref()
        .map(|id| {
            CartId::parse(id)
                .map_err(|_| Problem::invalid_field("/cart_id", "invalid_cart_id", "Not a cart id"))
        })
        .transpose()?;
    if body.password.is_empty() || body.password.chars().count() > accounts::MAX_PASSWORD_CHARS {
        return Err(invalid_credentials());
    }
    throttle(call, Some(&email)).await?;
    let db = call.db()?;
    let customer = store::by_email(&db, &email).await?;
    let stored = customer
        .as_ref()
        .and_then(|c| PasswordHash::parse(&c.password_hash));
    // The same work for an unknown address as for a wrong password.
    let hash = stored
        .clone()
        .unwrap_or_else(|| PasswordHash::dummy(CURRENT_KDF));
    let matches = hash.verify(&WebCryptoKdf, &body.password).await?;
    let (Some(customer), Some(stored), true) = (customer, stored, matches) else {
        return Err(invalid_credentials());
    };
    // Made with less work than now: hashed again (a password from before today's policy stays).
    let rehash = match Password::new(&body.password, &email) {
        Ok(password) if stored.needs_rehash(CURRENT_KDF) => Some(
            PasswordHash::new(&WebCryptoKdf, &password, random_bytes()?, CURRENT_KDF)
                .await?
                .encode(),
        ),
        _ => None,
    };
    let refresh = OpaqueToken::from_random(random_bytes()?);
    let family = OpaqueToken::from_random(random_bytes()?).digest();
    store::start_session(
        &db,
        &customer.id,
        &refresh.digest(),
        &family,
        call.now.plus(REFRESH_TOKEN_TTL),
        rehash.as_deref(),
        call.now,
    )
    .await?;
    let cart = sign_in_cart(call, &db, &customer.id, guest_cart.as_ref()).await?;
    tokens(call, customer.id.as_str(), &refresh, Some(cart))
}

/// The customer's cart once they signed in: the guest cart they were using merged into it (see
/// `Carts::sign_in`). A guest cart that cannot join (gone, expired, another's) is left as it is.
async fn sign_in_cart(
    call: &Call<Endpoint>,
    db: &shop_edge::store::sql::Db,
    customer: &CustomerId,
    guest: Option<&CartId>,
) -> Result<Option<CartId>, Problem> {
    let repo = D1Carts::new(db);
    let zones = CachedZones { db, now: call.now };
    let carts = Carts {
        repo: &repo,
        shipping: &zones,
        ids: &CryptoIds,
        policy: &call.config.cart,
        customer: Some(customer),
    };
    match carts.sign_in(guest, call.now).await {
        Ok(cart) => Ok(cart.map(|c| c.id)),
        Err(CartError::Store(e)) => Err(e.into()),
        Err(_) => Ok(None),
    }
}

fn tokens(
    call: &Call<Endpoint>,
    customer: &str,
    refresh: &OpaqueToken,
    cart_id: Option<Option<CartId>>,
) -> Result<Reply, Problem> {
    let principal = Principal {
        sub: customer.to_owned(),
        audience: Audience::Customer,
        scopes: vec![auth::CUSTOMER_SCOPE.into()],
    };
    let access = auth::issue(
        &principal,
        call.jwt_secret()?.as_bytes(),
        call.now,
        call.now.plus(ACCESS_TOKEN_TTL),
    )
    .map_err(|e| call.internal("issuing an access token", &format!("{e:?}")))?;
    let body = Tokens {
        access_token: access,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL.millis() / 1000,
        refresh_token: refresh.as_str().to_owned(),
        customer_id: customer.to_owned(),
        cart_id,
    };
    let reply = Reply::json(200, &body)?.header("Cache-Control", "no-store");
    // What a replay with the same key finds: the handler refuses it (tokens are shown once).
    Ok(reply.complete_on_replay(String::new()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

fn invalid_refresh() -> Problem {
    Problem::new(
        401,
        "invalid_refresh_token",
        "Invalid refresh token",
        "This refresh token is unknown, expired, revoked or used; log in again",
    )
}

/// `POST /v1/auth/refresh`: a new pair; the presented token is rotated, and a rotated token
/// presented again revokes every token of its family.
async fn refresh(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: RefreshBody = call.json()?;
    throttle(call, None).await?;
    let presented = OpaqueToken::parse(&body.refresh_token).ok_or_else(invalid_refresh)?;
    let db = call.db()?;
    let digest = presented.digest();
    let stored = store::refresh_token(&db, &digest).await?;
    match accounts::refresh(stored.as_ref(), call.now) {
        Refresh::Refuse => Err(invalid_refresh()),
        Refresh::RevokeFamily { family } => {
            store::revoke_family(&db, &family).await?;
            Err(invalid_refresh())
        }
        Refresh::Rotate { customer, .. } => {
            let Some(stored) = stored else {
                return Err(invalid_refresh());
            };
            let next = OpaqueToken::from_random(random_bytes()?);
            let rotated = store::rotate(
                &db,
                &digest,
                &next.digest(),
                &stored,
                call.now.plus(REFRESH_TOKEN_TTL),
                call.now,
            )
            .await?;
            if !rotated {
                return Err(invalid_refresh());
            }
            tokens(call, &customer, &next, None)
        }
    }
}

/// `POST /v1/auth/logout`: the session (the refresh token's family) ends; 204 whatever the
/// token was, so logging out twice is harmless.
async fn logout(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: RefreshBody = call.json()?;
    if let Some(token) = OpaqueToken::parse(&body.refresh_token) {
        let db = call.db()?;
        if let Some(stored) = store::refresh_token(&db, &token.digest()).await? {
            store::revoke_family(&db, &stored.family).await?;
        }
    }
    Ok(Reply::empty(204))
}

#[derive(Serialize)]
struct Me {
    id: String,
    email: String,
    name: Option<String>,
    email_verified: bool,
    created_at: shop_domain::time::Timestamp,
    membership: Membership,
}

/// Points, tier and what the next tier needs.
#[derive(Serialize)]
struct Membership {
    points: u64,
    /// Captured less refunded over the orders placed signed in within the last 12 months.
    spend_last_12_months: Vec<shop_domain::money::Money>,
    #[serde(flatten)]
    standing: membership::Standing,
}

/// The customer of the access token the pipeline verified.
pub(crate) fn customer(call: &Call<Endpoint>) -> Result<CustomerId, Problem> {
    call.customer().ok_or_else(|| {
        Problem::new(
            401,
            "invalid_token",
            "Unauthorized",
            "The token names no customer",
        )
    })
}

/// `GET /v1/me`: the customer of the access token, and no one else's token type.
pub(crate) async fn me(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = customer(call)?;
    let db = call.db()?;
    let since = call.now.minus(membership::TIER_WINDOW);
    let me = store::me(&db, &id, since).await?.ok_or_else(|| {
        Problem::new(
            401,
            "invalid_token",
            "Unauthorized",
            "The token's customer no longer exists",
        )
    })?;
    Ok(Reply::json(
        200,
        &Me {
            id: me.id,
            email: me.email,
            name: me.name,
            email_verified: me.email_verified_at.is_some(),
            created_at: me.created_at,
            membership: Membership {
                points: me.points,
                standing: call.config.membership.standing(&me.spend),
                spend_last_12_months: me.spend,
            },
        },
    )?
    .header("Cache-Control", "private, no-store"))
}

/// `GET /v1/me/orders`: the orders the customer placed signed in, newest first, cursor-paged.
async fn my_orders(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor"])?;
    let filter = order_search::OrderFilter {
        customer: Some(customer(call)?.as_str().to_owned()),
        after: call.time_cursor()?,
        ..order_search::OrderFilter::default()
    };
    let db = call.db()?;
    let page = order_search::list_orders(&db, &filter, call.limit()?).await?;
    Ok(Reply::json(200, &page)?.header("Cache-Control", "private, no-store"))
}

/// `GET /v1/me/points`: the customer's points ledger, newest first, cursor-paged.
async fn my_points(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor"])?;
    let before = call
        .cursor()?
        .map(|c| {
            c.key()
                .parse::<i64>()
                .map_err(|_| shop_edge::http::params::invalid_cursor())
        })
        .transpose()?;
    let db = call.db()?;
    let page = store_membership::entries(&db, &customer(call)?, before, call.limit()?).await?;
    Ok(Reply::json(200, &page)?.header("Cache-Control", "private, no-store"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    token: String,
}

fn unusable_token() -> Problem {
    Problem::invalid_field(
        "/token",
        "invalid_or_used_token",
        "This link is unknown, expired or used already",
    )
}

/// `POST /v1/auth/verify-email` `{token}`: the link of `customer.registered`, used once.
async fn verify_email(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: TokenBody = call.json()?;
    let token = OpaqueToken::parse(&body.token).ok_or_else(unusable_token)?;
    let db = call.db()?;
    let digest = token.digest();
    let stored = store::one_time(&db, &digest).await?;
    let customer = accounts::redeemable(stored.as_ref(), TokenPurpose::VerifyEmail, call.now)
        .ok_or_else(unusable_token)?
        .customer
        .clone();
    if !store::verify_email(&db, &digest, &customer, call.now).await? {
        return Err(unusable_token());
    }
    Ok(Reply::json(
        200,
        &serde_json::json!({ "email_verified": true }),
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    email: String,
}

/// `POST /v1/auth/password-reset` `{email}`: 202 for every address; an account's owner gets a
/// single-use link through `customer.password_reset_requested`.
async fn request_reset(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: ResetBody = call.json()?;
    let email = email(&body.email)?;
    throttle(call, Some(&email)).await?;
    let db = call.db()?;
    // The same work before the answer for every address: one lookup. What an account's owner
    // gets (the link, its batch, the events, the mail) happens after the answer.
    if let Some(customer) = store::by_email(&db, &email).await? {
        let reset = AccountMessage::new(
            &CryptoIds,
            TokenPurpose::ResetPassword,
            &customer.id,
            &customer.email,
            customer.name.as_deref(),
            OpaqueToken::from_random(random_bytes()?),
            call.now,
        );
        let event = Event::new(
            &CryptoIds,
            call.now,
            Payload::CustomerPasswordResetRequested(PasswordResetRequested {
                customer_id: customer.id.clone(),
                email: customer.email.clone(),
                reset_expires_at: reset.expires_at,
            }),
        );
        let env = call.env.clone();
        let config = call.config.clone();
        let request_id = call.request_id.clone();
        call.after_answer(async move {
            let outcome = async {
                let db = Db::open(&env).map_err(|e| e.to_string())?;
                let events = store::request_reset(&db, &reset, &event)
                    .await
                    .map_err(|e| e.to_string())?;
                shop_edge::store::outbox::send(&env, &events)
                    .await
                    .map_err(|e| e.to_string())?;
                Mailer::from_env(&env, &config)
                    .deliver_due(&db, Some(&reset.id), reset.created_at)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = outcome {
                log_error(&request_id, "password reset after the answer", &e);
            }
        });
    }
    Ok(Reply::json(
        202,
        &serde_json::json!({
            "status": "accepted",
            "detail": "If this address has an account, a password reset link is on its way"
        }),
    )?)
}

/// After the answer: publish the committed `events` and hand the account message `id` to the
/// account mail endpoint (the outbox cron and this worker's cron retry what fails here).
fn send_after_answer(call: &Call<Endpoint>, events: Vec<Event>, id: String) {
    let env = call.env.clone();
    let config = call.config.clone();
    let request_id = call.request_id.clone();
    let now = call.now;
    call.after_answer(async move {
        if let Err(e) = shop_edge::store::outbox::send(&env, &events).await {
            log_error(&request_id, "publishing events", &e);
        }
        let sent = match Db::open(&env) {
            Ok(db) => Mailer::from_env(&env, &config)
                .deliver_due(&db, Some(&id), now)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            log_error(&request_id, "account mail", &e);
        }
    });
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmResetBody {
    token: String,
    password: String,
}

/// `POST /v1/auth/password-reset/confirm` `{token, password}`: the new password; every session
/// of the account is revoked; the link is used.
async fn confirm_reset(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: ConfirmResetBody = call.json()?;
    let token = OpaqueToken::parse(&body.token).ok_or_else(unusable_token)?;
    let db = call.db()?;
    let digest = token.digest();
    let stored = store::one_time(&db, &digest).await?;
    let owner = accounts::redeemable(stored.as_ref(), TokenPurpose::ResetPassword, call.now)
        .ok_or_else(unusable_token)?;
    let email = Email::parse(&owner.email)
        .ok_or_else(|| call.internal("password reset", &"stored email is invalid"))?;
    let password = Password::new(&body.password, &email)
        .map_err(|issue| Problem::invalid_field("/password", "weak_password", issue.message()))?;
    let hash = PasswordHash::new(&WebCryptoKdf, &password, random_bytes()?, CURRENT_KDF).await?;
    let changed = store::set_password(
        &db,
        &owner.customer,
        &hash.encode(),
        Some(&digest),
        call.now,
    )
    .await?;
    if !changed {
        return Err(unusable_token());
    }
    Ok(Reply::empty(204))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /v1/me/password` `{current_password, new_password}`: every session (refresh token) of
/// the account is revoked; access tokens already issued lapse within 15 minutes.
async fn change_password(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: ChangePasswordBody = call.json()?;
    let db = call.db()?;
    let row = with_password(call, &db, &body.current_password, "/current_password").await?;
    let email = Email::parse(&row.email)
        .ok_or_else(|| call.internal("change password", &"stored email is invalid"))?;
    let new = Password::new(&body.new_password, &email).map_err(|issue| {
        Problem::invalid_field("/new_password", "weak_password", issue.message())
    })?;
    let hash = PasswordHash::new(&WebCryptoKdf, &new, random_bytes()?, CURRENT_KDF).await?;
    store::set_password(&db, row.id.as_str(), &hash.encode(), None, call.now).await?;
    Ok(Reply::empty(204))
}

/// The token's customer, once the password they sent (at `pointer`) is theirs: 422
/// `wrong_password` otherwise. What a change of the account asks for, so that a stolen access
/// token alone cannot make it; throttled per customer (`PASSWORD_CHECKS_BY_CUSTOMER`) and per
/// client (`AUTH_BY_CLIENT`), so it cannot guess either.
async fn with_password(
    call: &Call<Endpoint>,
    db: &shop_edge::store::sql::Db,
    password: &str,
    pointer: &str,
) -> Result<store::CustomerRow, Problem> {
    let id = customer(call)?;
    // Throttled per customer and per client before anything is derived.
    call.rate_limit("PASSWORD_CHECKS_BY_CUSTOMER", &format!("customer:{id}"))
        .await?;
    call.rate_limit_client("AUTH_BY_CLIENT").await?;
    let row = store::credentials(db, &id)
        .await?
        .ok_or_else(|| Problem::new(401, "invalid_token", "Unauthorized", "No such customer"))?;
    let current = PasswordHash::parse(&row.password_hash)
        .ok_or_else(|| call.internal("password check", &"stored hash is invalid"))?;
    if !current.verify(&WebCryptoKdf, password).await? {
        return Err(Problem::invalid_field(
            pointer,
            "wrong_password",
            "The password is wrong",
        ));
    }
    Ok(row)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    password: String,
}

/// `DELETE /v1/me` `{password}`: the customer's personal data is erased (see
/// `store::erase`), in one batch with `customer.erased`; the current password is asked for, so a
/// stolen access token alone cannot erase an account. 409 while an order is in progress.
async fn erase_me(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: EraseBody = call.json()?;
    let db = call.db()?;
    let id = with_password(call, &db, &body.password, "/password")
        .await?
        .id;
    let event = Event::new(
        &CryptoIds,
        call.now,
        Payload::CustomerErased(accounts::CustomerErased {
            customer_id: id.clone(),
            erased_at: call.now,
        }),
    );
    match store::erase(&db, &id, &event, call.now).await? {
        store::EraseOutcome::Erased(events) => {
            call.publish(&events).await;
            Ok(Reply::empty(204))
        }
        store::EraseOutcome::OrdersInProgress => Err(Problem::new(
            409,
            "orders_in_progress",
            "Orders in progress",
            "An order of this account is still on its way; erase the account once it is delivered or cancelled",
        )),
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
