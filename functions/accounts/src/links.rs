//! The single-use links: email verification and password reset (request and confirmation),
//! and account mail handed over after the answer.

use crate::guard::{email, throttle};
use crate::Endpoint;
use serde::Deserialize;
use shop_domain::checkout::Email;
use shop_domain::customers::accounts::ResetLink;
use shop_domain::customers::accounts::{
    self, OpaqueToken, Password, PasswordHash, TokenPurpose, CURRENT_KDF,
};
use shop_domain::events::Event;
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::kdf::{random_bytes, WebCryptoKdf};
use shop_edge::outbound::account_mail::Mailer;
use shop_edge::store::accounts as store;
use shop_edge::store::sql::Db;
use shop_edge::{Call, Problem, Reply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    token: String,
}

pub(crate) fn unusable_token() -> Problem {
    Problem::invalid_field(
        "/token",
        "invalid_or_used_token",
        "This link is unknown, expired or used already",
    )
}

/// `POST /v1/auth/verify-email` `{token}`: the link of `customer.registered`, used once.
pub(crate) async fn verify_email(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
pub(crate) async fn request_reset(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: ResetBody = call.json()?;
    let email = email(&body.email)?;
    throttle(call, Some(&email)).await?;
    let db = call.db()?;
    // The same work before the answer for every address: one lookup. What an account's owner
    // gets (the link, its batch, the events, the mail) happens after the answer.
    if let Some(customer) = store::by_email(&db, &email).await? {
        let token = OpaqueToken::from_random(random_bytes()?);
        let ResetLink {
            message: reset,
            event,
        } = accounts::request_reset(
            &customer.id,
            &customer.email,
            customer.name.as_deref(),
            token,
            &CryptoIds,
            call.now,
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
pub(crate) fn send_after_answer(call: &Call<Endpoint>, events: Vec<Event>, id: String) {
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
pub(crate) async fn confirm_reset(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
