//! A customer's saved addresses in D1 (schema/0020). Every statement is scoped to the customer,
//! so another customer's address id finds nothing; one default per customer and at most 20
//! addresses are constraints.

use serde::{Deserialize, Serialize};
use shop_domain::checkout::Address;
use shop_domain::kernel::ids::{AddressId, CustomerId};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;

use crate::store::sql::{self, err, json_err, num, Db, Violation};

/// A saved address as answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedAddress {
    pub id: String,
    #[serde(flatten)]
    pub address: Address,
    pub default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    address: String,
    is_default: i64,
    created_at: i64,
    updated_at: i64,
}

fn saved(row: Row, context: &str) -> Result<SavedAddress, StoreError> {
    Ok(SavedAddress {
        id: row.id,
        address: serde_json::from_str(&row.address).map_err(json_err(context))?,
        default: row.is_default != 0,
        created_at: Timestamp::from_millis(row.created_at),
        updated_at: Timestamp::from_millis(row.updated_at),
    })
}

const COLUMNS: &str = "id, address, is_default, created_at, updated_at";

/// The customer's addresses, the default first, then oldest first.
pub async fn list(db: &Db, customer: &CustomerId) -> Result<Vec<SavedAddress>, StoreError> {
    let context = "list addresses";
    let rows: Vec<Row> = sql::all(
        db,
        &format!(
            "SELECT {COLUMNS} FROM customer_addresses WHERE customer_id = ?1 \
             ORDER BY is_default DESC, created_at, id"
        ),
        &[customer.as_str().into()],
        context,
    )
    .await?;
    rows.into_iter().map(|r| saved(r, context)).collect()
}

/// One of the customer's addresses.
pub async fn get(
    db: &Db,
    customer: &CustomerId,
    id: &AddressId,
) -> Result<Option<SavedAddress>, StoreError> {
    let context = "get address";
    let row: Option<Row> = sql::first(
        db,
        &format!("SELECT {COLUMNS} FROM customer_addresses WHERE id = ?1 AND customer_id = ?2"),
        &[id.as_str().into(), customer.as_str().into()],
        context,
    )
    .await?;
    row.map(|r| saved(r, context)).transpose()
}

#[derive(Debug, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// The customer has the most addresses allowed.
    TooMany,
    /// No such address of this customer.
    NotFound,
}

/// The statements that make `id` the customer's default (the former default first, so the
/// partial UNIQUE index holds at every step).
fn make_default(db: &Db, customer: &CustomerId, id: &AddressId) -> worker::Result<Vec<sql::Stmt>> {
    Ok(vec![
        db.prepare(
            "UPDATE customer_addresses SET is_default = 0 \
             WHERE customer_id = ?1 AND is_default = 1 AND id <> ?2",
        )
        .bind(&[customer.as_str().into(), id.as_str().into()])?,
        db.prepare(
            "UPDATE customer_addresses SET is_default = 1 WHERE id = ?2 AND customer_id = ?1",
        )
        .bind(&[customer.as_str().into(), id.as_str().into()])?,
    ])
}

/// Save a new address; the customer's first one, or one asked to be, becomes the default.
pub async fn insert(
    db: &Db,
    customer: &CustomerId,
    id: &AddressId,
    address: &Address,
    default: bool,
    now: Timestamp,
) -> Result<SaveOutcome, StoreError> {
    let context = "save address";
    let json = serde_json::to_string(address).map_err(json_err(context))?;
    let mut statements = vec![db
        .prepare(
            "INSERT INTO customer_addresses (id, customer_id, address, is_default, created_at, updated_at) \
             VALUES (?1, ?2, ?3, NOT EXISTS (SELECT 1 FROM customer_addresses WHERE customer_id = ?2), ?4, ?4)",
        )
        .bind(&[
            id.as_str().into(),
            customer.as_str().into(),
            json.into(),
            num(now.millis()),
        ])
        .map_err(err(context))?];
    if default {
        statements.extend(make_default(db, customer, id).map_err(err(context))?);
    }
    match db.batch(statements).await {
        Ok(_) => Ok(SaveOutcome::Saved),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::Trigger("too many addresses")) => Ok(SaveOutcome::TooMany),
            _ => Err(err(context)(e)),
        },
    }
}

/// Replace the address `id` of the customer (and make it the default when asked).
pub async fn update(
    db: &Db,
    customer: &CustomerId,
    id: &AddressId,
    address: &Address,
    default: bool,
    now: Timestamp,
) -> Result<SaveOutcome, StoreError> {
    let context = "update address";
    let json = serde_json::to_string(address).map_err(json_err(context))?;
    let mut statements = vec![db
        .prepare(
            "UPDATE customer_addresses SET address = ?3, updated_at = ?4 WHERE id = ?1 AND customer_id = ?2",
        )
        .bind(&[
            id.as_str().into(),
            customer.as_str().into(),
            json.into(),
            num(now.millis()),
        ])
        .map_err(err(context))?];
    if default {
        statements.extend(make_default(db, customer, id).map_err(err(context))?);
    }
    let results = db.batch(statements).await.map_err(err(context))?;
    Ok(match results.first().map(sql::changes) {
        Some(1) => SaveOutcome::Saved,
        _ => SaveOutcome::NotFound,
    })
}

/// Forget the address `id`; when it was the default, the oldest remaining one becomes it.
pub async fn delete(
    db: &Db,
    customer: &CustomerId,
    id: &AddressId,
) -> Result<SaveOutcome, StoreError> {
    let context = "delete address";
    let statements = vec![
        db.prepare("DELETE FROM customer_addresses WHERE id = ?1 AND customer_id = ?2")
            .bind(&[id.as_str().into(), customer.as_str().into()]),
        db.prepare(
            "UPDATE customer_addresses SET is_default = 1 \
             WHERE id = (SELECT id FROM customer_addresses WHERE customer_id = ?1 ORDER BY created_at, id LIMIT 1) \
               AND NOT EXISTS (SELECT 1 FROM customer_addresses WHERE customer_id = ?1 AND is_default = 1)",
        )
        .bind(&[customer.as_str().into()]),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(err(context))?;
    let results = db.batch(statements).await.map_err(err(context))?;
    Ok(match results.first().map(sql::changes) {
        Some(1) => SaveOutcome::Saved,
        _ => SaveOutcome::NotFound,
    })
}

/// Set the customer's name (`None` clears it).
pub async fn set_name(
    db: &Db,
    customer: &CustomerId,
    name: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let context = "set name";
    db.prepare(
        "UPDATE customers SET name = ?2, updated_at = ?3 WHERE id = ?1 AND erased_at IS NULL",
    )
    .bind(&[
        customer.as_str().into(),
        sql::opt_str(name),
        num(now.millis()),
    ])
    .map_err(err(context))?
    .run()
    .await
    .map_err(err(context))?;
    Ok(())
}
