//! Customer accounts in D1 (schema/0019): a customer by email (one statement), registration
//! (one batch: the customer, the verification token, `customer.registered`; the address's
//! uniqueness is a constraint), sessions (one refresh-token family per login), rotation (one
//! batch whose trigger and UNIQUE parent refuse a token that was not active) and revocation.

use serde::Deserialize;
use shop_domain::accounts::{RefreshStatus, StoredRefresh};
use shop_domain::events::Event;
use shop_domain::ids::CustomerId;
use shop_domain::time::Timestamp;
use shop_domain::StoreError;

use crate::store::outbox;
use crate::store::sql::{self, err, num, opt_str, Db, Violation};

#[derive(Debug, Clone, Deserialize)]
pub struct CustomerRow {
    pub id: CustomerId,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
}

/// The customer whose address is `email_key` (lowercase).
pub async fn by_email(db: &Db, email_key: &str) -> Result<Option<CustomerRow>, StoreError> {
    sql::first(
        db,
        "SELECT id, email, name, password_hash FROM customers WHERE email_key = ?1",
        &[email_key.into()],
        "customer by email",
    )
    .await
}

/// A new account.
pub struct Registration<'a> {
    pub id: &'a CustomerId,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    /// The digest of the email verification token, and when it expires.
    pub verification: (&'a str, Timestamp),
    pub now: Timestamp,
}

/// Record the account, its verification token and `event` (`customer.registered`). One batch;
/// `false` when the address has an account already (nothing written).
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
               created_at, updated_at) VALUES (?1, ?2, lower(?2), ?3, ?4, ?5, ?5, ?5)",
        )
        .bind(&[
            r.id.as_str().into(),
            r.email.into(),
            opt_str(r.name),
            r.password_hash.into(),
            now.clone(),
        ]),
        db.prepare(
            "INSERT INTO customer_tokens (token_hash, customer_id, purpose, created_at, expires_at) \
             VALUES (?1, ?2, 'verify_email', ?3, ?4)",
        )
        .bind(&[
            r.verification.0.into(),
            r.id.as_str().into(),
            now,
            num(r.verification.1.millis()),
        ]),
        outbox::insert(db, event),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    match db.batch(statements).await {
        Ok(results) => Ok((
            true,
            outbox::written(results.get(2..).unwrap_or_default()).map_err(err(context))?,
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

/// The customer's own record.
#[derive(Debug, Clone, Deserialize)]
pub struct MeRow {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    #[serde(deserialize_with = "sql::opt_millis")]
    pub email_verified_at: Option<Timestamp>,
    #[serde(deserialize_with = "sql::millis")]
    pub created_at: Timestamp,
}

pub async fn me(db: &Db, id: &CustomerId) -> Result<Option<MeRow>, StoreError> {
    sql::first(
        db,
        "SELECT id, email, name, email_verified_at, created_at FROM customers WHERE id = ?1",
        &[id.as_str().into()],
        "customer",
    )
    .await
}
