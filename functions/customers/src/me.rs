//! `/v1/me`: the customer of the access token, their orders and points, the password change and
//! erasure.

use crate::Endpoint;
use serde::{Deserialize, Serialize};
use shop_domain::checkout::Email;
use shop_domain::customers::accounts::{self, Password, PasswordHash, CURRENT_KDF};
use shop_domain::customers::membership;
use shop_domain::kernel::ids::CustomerId;
use shop_edge::http::refusals::customers as refusals;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::kdf::{random_bytes, WebCryptoKdf};
use shop_edge::store::accounts as store;
use shop_edge::store::membership as store_membership;
use shop_edge::store::order_search;
use shop_edge::{Call, Problem, Reply};

#[derive(Serialize)]
struct Me {
    id: String,
    email: String,
    name: Option<String>,
    email_verified: bool,
    created_at: shop_domain::kernel::time::Timestamp,
    membership: Membership,
}

/// Points, tier and what the next tier needs.
#[derive(Serialize)]
struct Membership {
    points: u64,
    /// Captured less refunded over the orders placed signed in within the last 12 months.
    spend_last_12_months: Vec<shop_domain::kernel::money::Money>,
    #[serde(flatten)]
    standing: membership::Standing,
}

/// The customer of the access token the pipeline verified.
pub(crate) fn customer(call: &Call<Endpoint>) -> Result<CustomerId, Problem> {
    call.customer()
        .ok_or_else(refusals::token_names_no_customer)
}

/// `GET /v1/me`: the customer of the access token, and no one else's token type.
pub(crate) async fn me(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = customer(call)?;
    let db = call.db()?;
    let since = call.now.minus(membership::TIER_WINDOW);
    let me = store::me(&db, &id, since)
        .await?
        .ok_or_else(refusals::customer_gone)?;
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
pub(crate) async fn my_orders(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
pub(crate) async fn my_points(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /v1/me/password` `{current_password, new_password}`: every session (refresh token) of
/// the account is revoked; access tokens already issued lapse within 15 minutes.
pub(crate) async fn change_password(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
pub(crate) async fn with_password(
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
        .ok_or_else(refusals::no_such_customer)?;
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
pub(crate) async fn erase_me(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: EraseBody = call.json()?;
    let db = call.db()?;
    let id = with_password(call, &db, &body.password, "/password")
        .await?
        .id;
    let event = accounts::erase(&id, &CryptoIds, call.now);
    match store::erase(&db, &id, &event, call.now).await? {
        store::EraseOutcome::Erased(events) => {
            call.publish(&events).await;
            Ok(Reply::empty(204))
        }
        store::EraseOutcome::OrdersInProgress => Err(refusals::orders_in_progress()),
    }
}
