//! `/v1/auth`: registration, login (with the guest cart's merge), refresh and logout.

use crate::guard::{email, throttle};
use crate::links::send_after_answer;
use crate::Endpoint;
use serde::{Deserialize, Serialize};
use shop_domain::cart::{CartError, Carts};
use shop_domain::customers::accounts::DisplayName;
use shop_domain::customers::accounts::{
    self, OpaqueToken, Password, PasswordHash, Refresh, ACCESS_TOKEN_TTL, CURRENT_KDF,
    REFRESH_TOKEN_TTL,
};
use shop_domain::kernel::ids::{CartId, CustomerId};
use shop_edge::http::auth::{self, Audience};
use shop_edge::http::problem::FieldError;
use shop_edge::http::refusals::customers as refusals;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::kdf::{random_bytes, WebCryptoKdf};
use shop_edge::store::accounts as store;
use shop_edge::store::carts::D1Carts;
use shop_edge::store::shipping::CachedZones;
use shop_edge::{Call, Problem, Reply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/auth/register`: 202 in every case that passes validation (see the module).
pub(crate) async fn register(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
    let name = DisplayName::parse(body.name.as_deref())
        .map_err(|issue| errors.push(FieldError::new("/name", "invalid_name", issue.message())))
        .ok()
        .flatten();
    let Some(password) = password.filter(|_| errors.is_empty()) else {
        return Err(Problem::invalid_fields(errors));
    };
    throttle(call, Some(&email)).await?;
    let hash = PasswordHash::new(&WebCryptoKdf, &password, random_bytes()?, CURRENT_KDF).await?;
    let token = OpaqueToken::from_random(random_bytes()?);
    let account = accounts::register(&email, name.as_ref(), token, &CryptoIds, call.now);
    let registration = store::Registration {
        id: &account.id,
        email: &email,
        name: name.as_ref().map(DisplayName::as_str),
        password_hash: &hash.encode(),
        verification: &account.verification,
        now: call.now,
    };
    let db = call.db()?;
    // An address that has an account already is answered the same (its owner can log in or
    // reset the password); nothing is written for it.
    let (created, events) = store::register(&db, &registration, &account.event).await?;
    if created {
        // After the answer, so a new address and a known one take the same time.
        send_after_answer(call, events, account.verification.id);
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

/// `POST /v1/auth/login`.
pub(crate) async fn login(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
        return Err(refusals::invalid_credentials());
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
        return Err(refusals::invalid_credentials());
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
pub(crate) async fn sign_in_cart(
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

pub(crate) fn tokens(
    call: &Call<Endpoint>,
    customer: &str,
    refresh: &OpaqueToken,
    cart_id: Option<Option<CartId>>,
) -> Result<Reply, Problem> {
    let access = call.mint(
        customer,
        Audience::Customer,
        &[auth::CUSTOMER_SCOPE],
        ACCESS_TOKEN_TTL,
    )?;
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

/// `POST /v1/auth/refresh`: a new pair; the presented token is rotated, and a rotated token
/// presented again revokes every token of its family.
pub(crate) async fn refresh(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: RefreshBody = call.json()?;
    throttle(call, None).await?;
    let presented =
        OpaqueToken::parse(&body.refresh_token).ok_or_else(refusals::invalid_refresh)?;
    let db = call.db()?;
    let digest = presented.digest();
    let stored = store::refresh_token(&db, &digest).await?;
    match accounts::refresh(stored.as_ref(), call.now) {
        Refresh::Refuse => Err(refusals::invalid_refresh()),
        Refresh::RevokeFamily { family } => {
            store::revoke_family(&db, &family).await?;
            Err(refusals::invalid_refresh())
        }
        Refresh::Rotate { customer, .. } => {
            let Some(stored) = stored else {
                return Err(refusals::invalid_refresh());
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
                return Err(refusals::invalid_refresh());
            }
            tokens(call, &customer, &next, None)
        }
    }
}

/// `POST /v1/auth/logout`: the session (the refresh token's family) ends; 204 whatever the
/// token was, so logging out twice is harmless.
pub(crate) async fn logout(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: RefreshBody = call.json()?;
    if let Some(token) = OpaqueToken::parse(&body.refresh_token) {
        let db = call.db()?;
        if let Some(stored) = store::refresh_token(&db, &token.digest()).await? {
            store::revoke_family(&db, &stored.family).await?;
        }
    }
    Ok(Reply::empty(204))
}
