//! The order search of the admin and of a customer (their own orders): filtered, newest first,
//! cursor-paged; the page is built by SQLite as one JSON document.

use serde::{Deserialize, Serialize};
use shop_domain::kernel::ids::{CustomerId, OrderId};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::pagination::{Limit, Page};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;

use crate::store::sql::{self, num, opt_num, opt_str as opt, Db};

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub email: Option<String>,
    /// Only the orders this customer placed signed in.
    pub customer: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// `(created_at, id)` of the last order of the previous page.
    pub after: Option<(i64, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderSummary {
    pub id: String,
    pub number: String,
    pub status: String,
    pub email: String,
    pub total: Money,
    pub created_at: Timestamp,
}

#[derive(Deserialize)]
struct OrderSummaryRow {
    id: String,
    number: String,
    status: String,
    email: String,
    currency: String,
    total: i64,
    created_at: i64,
}

/// A page of order summaries from the orders `$from_where` selects, newest first (`?7` + 1 rows).
macro_rules! order_page {
    ($from_where:literal) => {
        concat!(
            "SELECT json_group_array(json_object('id', id, 'number', number, 'status', status, 'email', email,
  'currency', currency, 'total', total_minor, 'created_at', created_at)) AS doc
FROM (SELECT * FROM orders ",
            $from_where,
            " ORDER BY created_at DESC, id DESC LIMIT ?7)"
        )
    };
}

const LIST_ORDERS_SQL: &str = order_page!(
    "WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR email = ?2)
    AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)
    AND (?5 IS NULL OR (created_at, id) < (?5, ?6))"
);

/// A customer's orders: `customer_id = ?8` at the top level, so the partial index
/// `orders_customer_created` serves it (inside an `OR` it could not).
const CUSTOMER_ORDERS_SQL: &str = order_page!(
    "WHERE customer_id = ?8 AND (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR email = ?2)
    AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)
    AND (?5 IS NULL OR (created_at, id) < (?5, ?6))"
);

/// Newest first; the cursor is `<created_at>:<id>` of the last order returned.
pub async fn list_orders(
    db: &Db,
    filter: &OrderFilter,
    limit: Limit,
) -> Result<Page<OrderSummary>, StoreError> {
    let context = "list orders";
    let mut binds = vec![
        opt(filter.status.as_deref()),
        opt(filter.email.as_deref()),
        opt_num(filter.created_from.map(Timestamp::millis)),
        opt_num(filter.created_before.map(Timestamp::millis)),
        opt_num(filter.after.as_ref().map(|a| a.0)),
        opt(filter.after.as_ref().map(|a| a.1.as_str())),
        num(i64::from(limit.get()) + 1),
    ];
    // D1 refuses a value bound to a parameter the statement does not have: `?8` only for a
    // customer's listing.
    let statement = match filter.customer.as_deref() {
        Some(customer) => {
            binds.push(customer.into());
            CUSTOMER_ORDERS_SQL
        }
        None => LIST_ORDERS_SQL,
    };
    let rows: Vec<OrderSummaryRow> =
        serde_json::from_str(&sql::doc_or_empty(db, statement, &binds, context).await?)
            .map_err(|e| StoreError::new(format!("{context}: {e}")))?;
    let summaries = rows
        .into_iter()
        .map(|r| {
            let currency: Currency = r
                .currency
                .parse()
                .map_err(|_| StoreError::new("stored currency is invalid"))?;
            Ok(OrderSummary {
                total: Money::from_minor(r.total, currency)
                    .map_err(|_| StoreError::new("stored total is invalid"))?,
                id: r.id,
                number: r.number,
                status: r.status,
                email: r.email,
                created_at: Timestamp::from_millis(r.created_at),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Page::from_overfetch(summaries, limit, |o| {
        format!("{}:{}", o.created_at.millis(), o.id)
    }))
}

/// Who placed order `id` signed in: `None` when there is no such order, `Some(None)` for a
/// guest's order.
pub async fn customer_of(db: &Db, id: &OrderId) -> Result<Option<Option<CustomerId>>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        customer_id: Option<CustomerId>,
    }
    let row: Option<Row> = sql::first(
        db,
        "SELECT customer_id FROM orders WHERE id = ?1",
        &[id.as_str().into()],
        "order's customer",
    )
    .await?;
    Ok(row.map(|r| r.customer_id))
}
