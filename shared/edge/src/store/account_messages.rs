//! Account messages in D1 (schema/0026): the single-use links a customer receives (email
//! verification, password reset), kept only until they are handed over. A message is written in
//! the batch that stores its token's digest, and its body (which holds the plaintext token)
//! exists only while the message is `pending`: delivered, given up, superseded or expired, the
//! body is NULL, and a CHECK makes every other combination impossible. Nothing here is part of
//! the event stream, the webhook deliveries or the dead events.

use serde::Deserialize;
use shop_domain::customers::accounts::{AccountMessage, TokenPurpose};
use shop_domain::kernel::ids::CustomerId;
use shop_domain::kernel::time::{Duration, Timestamp};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, err, num, Db, Stmt};

/// The statement that keeps `message` for delivery, for the batch that stores its digest.
pub fn insert(db: &Db, message: &AccountMessage) -> worker::Result<Stmt> {
    db.prepare(
        "INSERT INTO account_messages (id, customer_id, type, body, status, attempts, next_attempt_at, \
           expires_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?5, ?5)",
    )
    .bind(&[
        message.id.as_str().into(),
        message.customer_id.as_str().into(),
        message.purpose.message_type().into(),
        message.body().into(),
        num(message.created_at.millis()),
        num(message.expires_at.millis()),
    ])
}

/// The statement that makes every earlier link of `purpose` of `customer` unusable: its tokens
/// count as used, and the messages not yet handed over lose their body (`superseded`).
pub fn supersede(
    db: &Db,
    customer: &CustomerId,
    purpose: TokenPurpose,
    now: Timestamp,
) -> worker::Result<[Stmt; 2]> {
    let binds = [
        JsValue::from(customer.as_str()),
        purpose.as_str().into(),
        num(now.millis()),
        purpose.message_type().into(),
    ];
    Ok([
        db.prepare(
            "UPDATE customer_tokens SET used_at = ?3 \
             WHERE customer_id = ?1 AND purpose = ?2 AND used_at IS NULL",
        )
        .bind(&binds[..3])?,
        db.prepare(
            "UPDATE account_messages SET status = 'superseded', body = NULL, updated_at = ?3 \
             WHERE customer_id = ?1 AND type = ?4 AND status = 'pending'",
        )
        .bind(&[
            binds[0].clone(),
            binds[1].clone(),
            binds[2].clone(),
            binds[3].clone(),
        ])?,
    ])
}

/// A message claimed for sending.
#[derive(Debug, Deserialize)]
pub struct Due {
    pub id: String,
    pub body: String,
    pub attempts: i64,
}

/// Claim the pending messages that are due (`only`: that one), in one statement that moves
/// their next attempt `lease` ahead, so two senders never send one; messages past their link's
/// expiry are let go first (their body with them).
pub async fn claim_due(
    db: &Db,
    only: Option<&str>,
    now: Timestamp,
    limit: u32,
    lease: Duration,
) -> Result<Vec<Due>, StoreError> {
    let context = "claim account messages";
    db.prepare(
        "UPDATE account_messages SET status = 'expired', body = NULL, updated_at = ?1 \
         WHERE status = 'pending' AND expires_at <= ?1",
    )
    .bind(&[num(now.millis())])
    .map_err(err(context))?
    .run()
    .await
    .map_err(err(context))?;
    sql::all(
        db,
        "UPDATE account_messages SET next_attempt_at = ?4 \
         WHERE id IN (SELECT id FROM account_messages \
           WHERE status = 'pending' AND next_attempt_at <= ?1 AND (?2 IS NULL OR id = ?2) \
           ORDER BY next_attempt_at LIMIT ?3) \
         RETURNING id, body, attempts",
        &[
            num(now.millis()),
            only.map_or(JsValue::NULL, JsValue::from_str),
            num(i64::from(limit)),
            num(now.plus(lease).millis()),
        ],
        context,
    )
    .await
}

/// What an attempt came to.
pub enum Attempted<'a> {
    /// Handed over: the body goes.
    Delivered(u16),
    /// Given up (a final answer, or too many attempts): the body goes.
    Failed(&'a str),
    /// Tried again at `next`.
    Retry(&'a str, Timestamp),
}

/// Record the attempt on `due` (only if no other sender recorded one since it was claimed).
pub async fn record(
    db: &Db,
    due: &Due,
    attempted: Attempted<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let context = "record account message";
    let (status, error, next) = match attempted {
        Attempted::Delivered(_) => ("delivered", None, now),
        Attempted::Failed(why) => ("failed", Some(why), now),
        Attempted::Retry(why, next) => ("pending", Some(why), next),
    };
    db.prepare(
        "UPDATE account_messages SET status = ?2, attempts = attempts + 1, last_error = ?3, \
           next_attempt_at = ?4, updated_at = ?5, \
           body = CASE WHEN ?2 = 'pending' THEN body ELSE NULL END \
         WHERE id = ?1 AND attempts = ?6 AND status = 'pending'",
    )
    .bind(&[
        due.id.as_str().into(),
        status.into(),
        error.map_or(JsValue::NULL, JsValue::from_str),
        num(next.millis()),
        num(now.millis()),
        num(due.attempts),
    ])
    .map_err(err(context))?
    .run()
    .await
    .map_err(err(context))?;
    Ok(())
}
