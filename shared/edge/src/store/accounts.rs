//! Customer accounts in D1 (schema/0019): a customer by email (one statement), registration
//! (one batch: the customer, the verification token, `customer.registered`; the address's
//! uniqueness is a constraint), sessions (one refresh-token family per login), rotation (one
//! batch whose trigger and UNIQUE parent refuse a token that was not active) and revocation.

use serde::Deserialize;
use shop_domain::checkout::Email;
use shop_domain::customers::accounts::{
    AccountMessage, RefreshStatus, StoredOneTime, StoredRefresh, TokenPurpose,
};
use shop_domain::events::Event;
use shop_domain::kernel::ids::CustomerId;
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;

use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, err, num, opt_str, Db, Violation};
use crate::store::{account_messages, membership, outbox};

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerRow {
    pub id: CustomerId,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
}

/// The customer whose address is `email` (found by its key, `Email::key`).
pub async fn by_email(db: &Db, email: &Email) -> Result<Option<CustomerRow>, StoreError> {
    sql::first(
        db,
        "SELECT id, email, name, password_hash FROM customers WHERE email_key = ?1 AND erased_at IS NULL",
        &[email.key().into()],
        "customer by email",
    )
    .await
}

/// A new account.
pub struct Registration<'a> {
    pub id: &'a CustomerId,
    pub email: &'a Email,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    /// The verification link, for the customer alone (its token's digest is what stays).
    pub verification: &'a AccountMessage,
    pub now: Timestamp,
}

/// Record the account, its verification token's digest, the message that hands the link over
/// and `event` (`customer.registered`, which carries no link). One batch; `false` when the
/// address has an account already (nothing written).
pub async fn register(
    db: &Db,
    r: &Registration<'_>,
    event: &Event,
) -> Result<(bool, Vec<Event>), StoreError> {
    let context = "register customer";
    let now = num(r.now.millis());
    let statements = vec![
        db.prepare(
            "INSERT INTO customers (id, email, email_key, name, password_hash, password_changed_at, \
               created_at, updated_at) VALUES (?1, ?2, ?6, ?3, ?4, ?5, ?5, ?5)",
        )
        .bind(&[
            r.id.as_str().into(),
            r.email.as_str().into(),
            opt_str(r.name),
            r.password_hash.into(),
            now.clone(),
            r.email.key().into(),
        ]),
        one_time_token(db, r.verification),
        account_messages::insert(db, r.verification),
        outbox::insert(db, event),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    match db.batch(statements).await {
        Ok(results) => Ok((
            true,
            outbox::written(
                results.get(3..).unwrap_or_default(),
                std::slice::from_ref(event),
            )
            .map_err(err(context))?,
        )),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::Unique(columns)) if columns.contains("email_key") => {
                Ok((false, Vec::new()))
            }
            _ => Err(err(context)(e)),
        },
    }
}

/// A new session: the first refresh token of a new family; with `rehash`, the customer's
/// password hash is replaced in the same batch (parameters raised since it was made).
pub async fn start_session(
    db: &Db,
    customer: &CustomerId,
    token_digest: &str,
    family: &str,
    expires_at: Timestamp,
    rehash: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let context = "start session";
    let mut statements = vec![db
        .prepare(
            "INSERT INTO refresh_tokens (token_hash, family_id, customer_id, status, created_at, expires_at) \
             VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
        )
        .bind(&[
            token_digest.into(),
            family.into(),
            customer.as_str().into(),
            num(now.millis()),
            num(expires_at.millis()),
        ])];
    if let Some(hash) = rehash {
        statements.push(
            db.prepare("UPDATE customers SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
                .bind(&[customer.as_str().into(), hash.into(), num(now.millis())]),
        );
    }
    let statements = statements
        .into_iter()
        .collect::<worker::Result<Vec<_>>>()
        .map_err(err(context))?;
    db.batch(statements).await.map_err(err(context))?;
    Ok(())
}

#[derive(Deserialize)]
struct RefreshRow {
    family_id: String,
    customer_id: String,
    status: RefreshStatus,
    expires_at: i64,
}

/// The refresh token whose digest is `digest`.
pub async fn refresh_token(db: &Db, digest: &str) -> Result<Option<StoredRefresh>, StoreError> {
    let row: Option<RefreshRow> = sql::first(
        db,
        "SELECT family_id, customer_id, status, expires_at FROM refresh_tokens WHERE token_hash = ?1",
        &[digest.into()],
        "refresh token",
    )
    .await?;
    Ok(row.map(|r| StoredRefresh {
        family: r.family_id,
        customer: r.customer_id,
        status: r.status,
        expires_at: Timestamp::from_millis(r.expires_at),
    }))
}

/// Rotate the active token `old` into `new` of the same family. `false` when `old` was not
/// active any more (used concurrently, or revoked meanwhile): nothing is written.
pub async fn rotate(
    db: &Db,
    old: &str,
    new: &str,
    stored: &StoredRefresh,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let context = "rotate refresh token";
    let statements = vec![
        db.prepare(
            "UPDATE refresh_tokens SET status = 'rotated' WHERE token_hash = ?1 AND status = 'active'",
        )
        .bind(&[old.into()]),
        // The trigger refuses a child of a token that is not `rotated` now (it was revoked, or
        // this batch's UPDATE found it used already); UNIQUE (parent_hash) refuses a second one.
        db.prepare(
            "INSERT INTO refresh_tokens (token_hash, family_id, customer_id, parent_hash, status, \
               created_at, expires_at) VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6)",
        )
        .bind(&[
            new.into(),
            stored.family.as_str().into(),
            stored.customer.as_str().into(),
            old.into(),
            num(now.millis()),
            num(expires_at.millis()),
        ]),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    match db.batch(statements).await {
        Ok(_) => Ok(true),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::Unique(_)) | Some(Violation::Trigger(_)) => Ok(false),
            _ => Err(err(context)(e)),
        },
    }
}

/// Revoke every token of `family` (logout, or a rotated token used again).
pub async fn revoke_family(db: &Db, family: &str) -> Result<(), StoreError> {
    let context = "revoke refresh tokens";
    db.prepare("UPDATE refresh_tokens SET status = 'revoked' WHERE family_id = ?1")
        .bind(&[family.into()])
        .map_err(err(context))?
        .run()
        .await
        .map_err(err(context))?;
    Ok(())
}

/// The customer's own record, with their points and what they spent since the `since` of
/// [`me`] (per currency).
#[derive(Debug, Clone)]
pub struct MeRow {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub email_verified_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub points: u64,
    pub spend: Vec<shop_domain::kernel::money::Money>,
}

/// The customer's record and membership facts, in one statement (`None`: no such customer, or
/// erased).
pub async fn me(db: &Db, id: &CustomerId, since: Timestamp) -> Result<Option<MeRow>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        email: String,
        name: Option<String>,
        #[serde(deserialize_with = "sql::opt_millis")]
        email_verified_at: Option<Timestamp>,
        #[serde(deserialize_with = "sql::millis")]
        created_at: Timestamp,
        points: i64,
        spend: String,
    }
    let context = "customer";
    let row: Option<Row> = sql::first(
        db,
        &format!(
            "SELECT id, email, name, email_verified_at, created_at, {} AS points, {} AS spend \
             FROM customers WHERE id = ?1 AND erased_at IS NULL",
            membership::BALANCE_SQL,
            membership::SPEND_SQL
        ),
        &[id.as_str().into(), num(since.millis())],
        context,
    )
    .await?;
    row.map(|r| {
        Ok(MeRow {
            spend: membership::spend_from_json(&r.spend, context)?,
            points: u64::try_from(r.points).unwrap_or(0),
            id: r.id,
            email: r.email,
            name: r.name,
            email_verified_at: r.email_verified_at,
            created_at: r.created_at,
        })
    })
    .transpose()
}

#[derive(Deserialize)]
struct OneTimeRow {
    customer_id: String,
    email: String,
    purpose: TokenPurpose,
    expires_at: i64,
    used: i64,
}

/// The single-use token whose digest is `digest`, with its customer's address.
pub async fn one_time(db: &Db, digest: &str) -> Result<Option<StoredOneTime>, StoreError> {
    let row: Option<OneTimeRow> = sql::first(
        db,
        "SELECT t.customer_id, c.email, t.purpose, t.expires_at, t.used_at IS NOT NULL AS used \
         FROM customer_tokens t JOIN customers c ON c.id = t.customer_id WHERE t.token_hash = ?1",
        &[digest.into()],
        "single-use token",
    )
    .await?;
    Ok(row.map(|r| StoredOneTime {
        customer: r.customer_id,
        email: r.email,
        purpose: r.purpose,
        expires_at: Timestamp::from_millis(r.expires_at),
        used: r.used != 0,
    }))
}

/// The statement that uses the token `digest` (a second use aborts its batch: the trigger).
fn use_token(db: &Db, digest: &str, now: Timestamp) -> worker::Result<sql::Stmt> {
    db.prepare("UPDATE customer_tokens SET used_at = ?2 WHERE token_hash = ?1")
        .bind(&[digest.into(), num(now.millis())])
}

/// Run `statements`; `false` when a single-use token in them was used already.
async fn redeem(db: &Db, statements: Vec<sql::Stmt>, context: &str) -> Result<bool, StoreError> {
    match db.batch(statements).await {
        Ok(_) => Ok(true),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::Trigger("token used")) => Ok(false),
            _ => Err(err(context)(e)),
        },
    }
}

/// Use the verification token `digest` and mark `customer`'s address verified. One batch.
pub async fn verify_email(
    db: &Db,
    digest: &str,
    customer: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let context = "verify email";
    let statements = vec![
        use_token(db, digest, now),
        db.prepare(
            "UPDATE customers SET email_verified_at = coalesce(email_verified_at, ?2), updated_at = ?2 \
             WHERE id = ?1",
        )
        .bind(&[customer.into(), num(now.millis())]),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    redeem(db, statements, context).await
}

/// The statement that stores the digest of `message`'s token, of its purpose, until it expires.
fn one_time_token(db: &Db, message: &AccountMessage) -> worker::Result<sql::Stmt> {
    db.prepare(
        "INSERT INTO customer_tokens (token_hash, customer_id, purpose, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(&[
        message.token.digest().into(),
        message.customer_id.as_str().into(),
        message.purpose.as_str().into(),
        num(message.created_at.millis()),
        num(message.expires_at.millis()),
    ])
}

/// Record a password reset link (`message`, for the customer alone) and `event`, making every
/// earlier reset link of the customer unusable. One batch.
pub async fn request_reset(
    db: &Db,
    message: &AccountMessage,
    event: &Event,
) -> Result<Vec<Event>, StoreError> {
    let context = "request password reset";
    let [used, superseded] = account_messages::supersede(
        db,
        &message.customer_id,
        TokenPurpose::ResetPassword,
        message.created_at,
    )
    .map_err(err(context))?;
    let statements = vec![
        Ok(used),
        Ok(superseded),
        one_time_token(db, message),
        account_messages::insert(db, message),
        outbox::insert(db, event),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    let results = db.batch(statements).await.map_err(err(context))?;
    outbox::written(
        results.get(4..).unwrap_or_default(),
        std::slice::from_ref(event),
    )
    .map_err(err(context))
}

/// Replace `customer`'s password hash and revoke every session of theirs; with `token`, the
/// reset token that allows it is used in the same batch (`false`: it was used already, nothing
/// changed).
pub async fn set_password(
    db: &Db,
    customer: &str,
    hash: &str,
    token: Option<&str>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let context = "set password";
    let mut statements = Vec::new();
    if let Some(digest) = token {
        statements.push(use_token(db, digest, now));
    }
    statements.push(
        db.prepare(
            "UPDATE customers SET password_hash = ?2, password_changed_at = ?3, updated_at = ?3 \
             WHERE id = ?1",
        )
        .bind(&[customer.into(), hash.into(), num(now.millis())]),
    );
    statements.push(
        db.prepare(
            "UPDATE refresh_tokens SET status = 'revoked' WHERE customer_id = ?1 AND status <> 'revoked'",
        )
        .bind(&[customer.into()]),
    );
    // A new password makes every reset link still out there unusable.
    let id = CustomerId::parse(customer)
        .map_err(|_| StoreError::new(format!("{context}: invalid customer id")))?;
    statements.extend(
        account_messages::supersede(db, &id, TokenPurpose::ResetPassword, now)
            .map_err(err(context))?
            .map(Ok),
    );
    let statements = statements
        .into_iter()
        .collect::<worker::Result<Vec<_>>>()
        .map_err(err(context))?;
    redeem(db, statements, context).await
}

/// `customer`'s address and password hash.
pub async fn credentials(db: &Db, id: &CustomerId) -> Result<Option<CustomerRow>, StoreError> {
    sql::first(
        db,
        "SELECT id, email, name, password_hash FROM customers WHERE id = ?1 AND erased_at IS NULL",
        &[id.as_str().into()],
        "customer credentials",
    )
    .await
}

/// Statuses of an order still on its way: its addresses and email are needed until it is done.
const ORDER_IN_PROGRESS: &str =
    "('pending_payment', 'paid', 'partially_fulfilled', 'fulfilled', 'payment_review')";

#[derive(Debug, PartialEq, Eq)]
pub enum EraseOutcome {
    /// Erased, with the events the batch wrote.
    Erased(Vec<Event>),
    /// An order of theirs is still on its way: nothing was erased.
    OrdersInProgress,
}

/// Erase the customer's personal data in one batch, with `event` (`customer.erased`, written
/// only by the batch that erases): their addresses, single-use links and active carts go, every
/// session is revoked, their account mail goes, their reviews lose the author's name, their
/// orders, checked-out carts and tickets (linked to the account, or filed under its address once
/// verified) keep nothing that names them (email, names, street, city, postcode, phone; the
/// country stays, for the accounts), the events, webhook deliveries and dead events that carried
/// their address lose it, the payment providers' payloads of their orders are dropped (the
/// ledger's facts stay), their stored idempotent answers go, and the customer row becomes a
/// tombstone. Refused whole while an order of theirs is in progress (the tombstone's
/// `email_key` would be NULL, a constraint, so the batch aborts). From then on, triggers refuse
/// every new order, cart, address and review of the tombstone (schema/0024), so an access
/// token issued before cannot bring personal data back.
pub async fn erase(
    db: &Db,
    customer: &CustomerId,
    event: &Event,
    now: Timestamp,
) -> Result<EraseOutcome, StoreError> {
    let context = "erase customer";
    let id = || -> JsValue { customer.as_str().into() };
    let tombstone = "'erased-' || substr(?1, 5) || '@erased.invalid'";
    let address = |column: &str| {
        format!(
            "json_object('name', 'erased', 'line1', 'erased', 'city', 'erased', \
             'postal_code', 'erased', 'country', json_extract({column}, '$.country'))"
        )
    };
    // The tickets that are the customer's: linked to the account, or filed under its address
    // once the account proved it owns it (a verified address). Another person's guest tickets,
    // under an address someone registered without verifying it, are not.
    let theirs = "(SELECT t.id FROM tickets t WHERE t.customer_id = ?1 \
         OR lower(t.email) = (SELECT email_key FROM customers WHERE id = ?1 AND email_verified_at IS NOT NULL))";
    let statements = vec![
        // What announced their tickets loses the address (before the tickets do, which names
        // them).
        db.prepare(format!(
            "UPDATE outbox SET payload = json_set(payload, '$.email', {tombstone}) \
             WHERE type = 'ticket.created' AND json_extract(payload, '$.ticket_id') IN {theirs}"
        ))
        .bind(&[id()]),
        db.prepare(format!(
            "UPDATE webhook_deliveries SET payload = json_set(payload, '$.data.email', {tombstone}) \
             WHERE event_type = 'ticket.created' AND json_extract(payload, '$.data.ticket_id') IN {theirs}"
        ))
        .bind(&[id()]),
        db.prepare(format!(
            "UPDATE dead_events SET body = json_set(body, '$.data.email', {tombstone}) \
             WHERE json_valid(body) AND json_extract(body, '$.data.email') IS NOT NULL \
               AND (json_extract(body, '$.data.customer_id') = ?1 \
                 OR json_extract(body, '$.data.ticket_id') IN {theirs} \
                 OR json_extract(body, '$.data.order_id') IN (SELECT id FROM orders WHERE customer_id = ?1))"
        ))
        .bind(&[id()]),
        db.prepare(format!(
            "UPDATE tickets SET email = {tombstone}, name = NULL WHERE id IN {theirs}"
        ))
        .bind(&[id()]),
        // The providers' payloads of their orders' payments carry billing details: only what
        // the ledger shows (type, amounts, outcome, times) stays.
        db.prepare(
            "UPDATE payment_events SET payload = json_object('erased', 1) \
             WHERE order_id IN (SELECT id FROM orders WHERE customer_id = ?1)",
        )
        .bind(&[id()]),
        db.prepare(format!(
            "UPDATE orders SET email = {tombstone}, shipping_address = {}, billing_address = {} \
             WHERE customer_id = ?1",
            address("shipping_address"),
            address("billing_address")
        ))
        .bind(&[id()]),
        db.prepare("DELETE FROM customer_addresses WHERE customer_id = ?1")
            .bind(&[id()]),
        db.prepare("DELETE FROM customer_tokens WHERE customer_id = ?1")
            .bind(&[id()]),
        db.prepare("DELETE FROM account_messages WHERE customer_id = ?1")
            .bind(&[id()]),
        db.prepare(
            "UPDATE refresh_tokens SET status = 'revoked' WHERE customer_id = ?1 AND status <> 'revoked'",
        )
        .bind(&[id()]),
        db.prepare("UPDATE reviews SET author = NULL WHERE customer_id = ?1")
            .bind(&[id()]),
        db.prepare("DELETE FROM carts WHERE customer_id = ?1 AND status = 'active'")
            .bind(&[id()]),
        db.prepare("UPDATE carts SET shipping = NULL WHERE customer_id = ?1")
            .bind(&[id()]),
        db.prepare("DELETE FROM idempotency_keys WHERE instr(scope, ?1) > 0")
            .bind(&[id()]),
        db.prepare(format!(
            "UPDATE outbox SET payload = json_remove(json_set(payload, '$.email', {tombstone}), '$.name') \
             WHERE type IN ('customer.registered', 'customer.password_reset_requested') \
               AND json_extract(payload, '$.customer_id') = ?1"
        ))
        .bind(&[id()]),
        db.prepare(format!(
            "UPDATE webhook_deliveries \
             SET payload = json_remove(json_set(payload, '$.data.email', {tombstone}), '$.data.name') \
             WHERE event_type IN ('customer.registered', 'customer.password_reset_requested') \
               AND json_extract(payload, '$.data.customer_id') = ?1"
        ))
        .bind(&[id()]),
        db.prepare(format!(
            "UPDATE customers SET email = {tombstone}, \
               email_key = CASE WHEN EXISTS (SELECT 1 FROM orders WHERE customer_id = ?1 \
                 AND status IN {ORDER_IN_PROGRESS}) THEN NULL ELSE {tombstone} END, \
               name = NULL, password_hash = 'pbkdf2-sha256$erased', email_verified_at = NULL, \
               erased_at = ?2, updated_at = ?2 \
             WHERE id = ?1 AND erased_at IS NULL"
        ))
        .bind(&[id(), num(now.millis())]),
        outbox::insert_if_changed(db, event),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    let count = statements.len();
    match db.batch(statements).await {
        Ok(results) => Ok(EraseOutcome::Erased(
            outbox::written(
                results.get(count - 1..).unwrap_or_default(),
                std::slice::from_ref(event),
            )
            .map_err(err(context))?,
        )),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::NotNull(column)) if column.contains("email_key") => {
                Ok(EraseOutcome::OrdersInProgress)
            }
            _ => Err(err(context)(e)),
        },
    }
}
