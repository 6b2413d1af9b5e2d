//! Membership points in D1 (schema/0023): the ledger entries the queue consumer writes inside
//! an event's effect batch, and what `/v1/me` shows. The balance is kept by a trigger on the
//! ledger and can never go below zero (CHECK).

use serde::Deserialize;
use shop_domain::customers::membership::MembershipPolicy;
use shop_domain::events::{OrderPaid, OrderRefunded};
use shop_domain::kernel::ids::{CustomerId, OrderId};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;

use crate::store::sql::{self, json_err, num, Db, Stmt};

/// `order.paid`'s entries: for an order placed signed in, the points it earns under `policy`
/// (once per order), and what refunds applied before the payment was found take back; nothing
/// for a guest's order or one that earns nothing. `event_id` names the entries.
pub async fn earned(
    db: &Db,
    event_id: &str,
    paid: &OrderPaid,
    policy: &MembershipPolicy,
    now: Timestamp,
) -> Result<Vec<Stmt>, StoreError> {
    let Some((customer, total)) = paid_order(db, &paid.order_id).await? else {
        return Ok(Vec::new());
    };
    let points = policy.points_for(total);
    if points == 0 {
        return Ok(Vec::new());
    }
    let refunds = format!("{event_id}:refunds");
    [
        earn(db, event_id, &paid.order_id, &customer, points, now),
        take_back(db, &refunds, &paid.order_id, None, now),
    ]
    .into_iter()
    .collect::<worker::Result<Vec<_>>>()
    .map_err(|e| StoreError::new(format!("points of order.paid: {e}")))
}

/// `order.refunded`'s entry: the points the order earned, taken back in proportion to what is
/// refunded of it in all.
pub fn taken_back(
    db: &Db,
    event_id: &str,
    refunded: &OrderRefunded,
    now: Timestamp,
) -> worker::Result<Stmt> {
    take_back(
        db,
        event_id,
        &refunded.order_id,
        Some(refunded.refunded_minor),
        now,
    )
}

/// Who placed a paid order signed in, and what it cost: `None` for a guest's order (or none).
pub async fn paid_order(
    db: &Db,
    order: &OrderId,
) -> Result<Option<(CustomerId, Money)>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        customer_id: Option<CustomerId>,
        currency: String,
        total_minor: i64,
    }
    let context = "the order's customer and total";
    let row: Option<Row> = sql::first(
        db,
        "SELECT customer_id, currency, total_minor FROM orders WHERE id = ?1",
        &[order.as_str().into()],
        context,
    )
    .await?;
    let Some(Row {
        customer_id: Some(customer),
        currency,
        total_minor,
    }) = row
    else {
        return Ok(None);
    };
    let bad = || StoreError::new(format!("{context}: stored total is invalid"));
    let currency: Currency = currency.parse().map_err(|_| bad())?;
    let total = Money::from_minor(total_minor, currency).map_err(|_| bad())?;
    Ok(Some((customer, total)))
}

/// The entry of the points an order earned (once per order: a second is ignored).
pub fn earn(
    db: &Db,
    event_id: &str,
    order: &OrderId,
    customer: &CustomerId,
    points: u64,
    now: Timestamp,
) -> worker::Result<Stmt> {
    db.prepare(
        "INSERT INTO points_ledger (customer_id, order_id, kind, points, event_id, created_at) \
         VALUES (?1, ?2, 'earned', ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )
    .bind(&[
        customer.as_str().into(),
        order.as_str().into(),
        num(i64::try_from(points).unwrap_or(i64::MAX)),
        event_id.into(),
        num(now.millis()),
    ])
}

/// The entry that takes back what an order's refunds are due once `refunded_minor` of it is
/// refunded in all, or what the order records as refunded now when that is more (a refund
/// confirmed after the event was written; `None`: the order's record alone, for the earning of
/// an order whose refunds were applied before its payment was): `shop_domain::customers::membership::taken_back` (earned × refunded ÷ total, rounded
/// down) less what its earlier refunds took, computed inside the statement so concurrent or
/// out-of-order refunds take back exactly the proportion of the largest amount refunded; never
/// more than the balance holds. Nothing when the order earned nothing or nothing is due.
pub fn take_back(
    db: &Db,
    event_id: &str,
    order: &OrderId,
    refunded_minor: Option<i64>,
    now: Timestamp,
) -> worker::Result<Stmt> {
    db.prepare(
        "INSERT INTO points_ledger (customer_id, order_id, kind, points, event_id, created_at) \
         SELECT customer_id, order_id, 'refunded', -due, ?3, ?4 FROM ( \
           SELECT e.customer_id, e.order_id, min( \
             max(0, min(e.points, (e.points * min(max(CAST(coalesce(?2, 0) AS INTEGER), o.refunded_minor), o.total_minor)) / o.total_minor) \
               - coalesce((SELECT -sum(r.points) FROM points_ledger r \
                           WHERE r.order_id = e.order_id AND r.kind = 'refunded'), 0)), \
             coalesce((SELECT balance FROM customer_points WHERE customer_id = e.customer_id), 0)) AS due \
           FROM points_ledger e JOIN orders o ON o.id = e.order_id \
           WHERE e.order_id = ?1 AND e.kind = 'earned' AND o.total_minor > 0) \
         WHERE due > 0 ON CONFLICT DO NOTHING",
    )
    .bind(&[
        order.as_str().into(),
        sql::opt_num(refunded_minor),
        event_id.into(),
        num(now.millis()),
    ])
}

/// SQL: the points balance of customer `?1` (read with their record, `store::accounts::me`).
pub(crate) const BALANCE_SQL: &str =
    "coalesce((SELECT balance FROM customer_points WHERE customer_id = ?1), 0)";

/// SQL: what customer `?1` spent per currency since `?2` (captured less refunded, over the
/// orders they placed signed in), as a JSON array of `[currency, minor units]`.
pub(crate) const SPEND_SQL: &str = "(SELECT json_group_array(json_array(currency, spent)) FROM ( \
  SELECT currency, sum(captured_minor - refunded_minor) AS spent FROM orders \
  WHERE customer_id = ?1 AND created_at >= ?2 AND captured_minor > 0 \
  GROUP BY currency ORDER BY currency))";

/// [`SPEND_SQL`]'s array read back.
pub(crate) fn spend_from_json(doc: &str, context: &str) -> Result<Vec<Money>, StoreError> {
    let spend: Vec<(String, i64)> = serde_json::from_str(doc).map_err(json_err(context))?;
    Ok(spend
        .into_iter()
        .filter_map(|(currency, minor)| Money::from_minor(minor, currency.parse().ok()?).ok())
        .collect())
}

/// One entry of a customer's points ledger, as they see it.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct PointsEntry {
    #[serde(skip_serializing)]
    pub id: i64,
    pub kind: String,
    pub points: i64,
    pub order_id: Option<String>,
    #[serde(deserialize_with = "sql::millis")]
    pub created_at: Timestamp,
}

/// The customer's ledger, newest first, after the entry `before` (the cursor).
pub async fn entries(
    db: &Db,
    customer: &CustomerId,
    before: Option<i64>,
    limit: shop_domain::kernel::pagination::Limit,
) -> Result<shop_domain::kernel::pagination::Page<PointsEntry>, StoreError> {
    let rows: Vec<PointsEntry> = sql::all(
        db,
        "SELECT id, kind, points, order_id, created_at FROM points_ledger \
         WHERE customer_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        &[
            customer.as_str().into(),
            sql::opt_num(before),
            num(i64::from(limit.get()) + 1),
        ],
        "points ledger",
    )
    .await?;
    Ok(shop_domain::kernel::pagination::Page::from_overfetch(
        rows,
        limit,
        |e| e.id.to_string(),
    ))
}
