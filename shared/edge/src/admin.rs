//! D1 reads and writes behind the admin routes: order listing, inventory listing and
//! adjustments. Listing answers are built by SQLite as one JSON document.

use serde::{Deserialize, Serialize};
use shop_domain::ids::Sku;
use shop_domain::inventory::{AdjustmentReason, LowThreshold, StockDelta};
use shop_domain::money::{Currency, Money};
use shop_domain::pagination::{Limit, Page};
use shop_domain::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::sql::{self, changes, err, num, opt_num, opt_str as opt, Db, Violation};

use crate::outbox::OutboxRow;

#[derive(Deserialize)]
struct Doc {
    doc: Option<String>,
}

async fn doc(
    db: &Db,
    sql: &str,
    binds: &[JsValue],
    context: &'static str,
) -> Result<String, StoreError> {
    let row: Option<Doc> = sql::first(db, sql, binds, context).await?;
    Ok(row.and_then(|r| r.doc).unwrap_or_else(|| "[]".into()))
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub email: Option<String>,
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

const LIST_ORDERS_SQL: &str = "\
SELECT json_group_array(json_object('id', id, 'number', number, 'status', status, 'email', email,
  'currency', currency, 'total', total_minor, 'created_at', created_at)) AS doc
FROM (SELECT * FROM orders
  WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR email = ?2)
    AND (?3 IS NULL OR created_at >= ?3) AND (?4 IS NULL OR created_at < ?4)
    AND (?5 IS NULL OR (created_at, id) < (?5, ?6))
  ORDER BY created_at DESC, id DESC LIMIT ?7)";

/// Newest first; the cursor is `<created_at>:<id>` of the last order returned.
pub async fn list_orders(
    db: &Db,
    filter: &OrderFilter,
    limit: Limit,
) -> Result<Page<OrderSummary>, StoreError> {
    let context = "list orders";
    let binds = [
        opt(filter.status.as_deref()),
        opt(filter.email.as_deref()),
        opt_num(filter.created_from.map(Timestamp::millis)),
        opt_num(filter.created_before.map(Timestamp::millis)),
        opt_num(filter.after.as_ref().map(|a| a.0)),
        opt(filter.after.as_ref().map(|a| a.1.as_str())),
        num(i64::from(limit.get()) + 1),
    ];
    let rows: Vec<OrderSummaryRow> =
        serde_json::from_str(&doc(db, LIST_ORDERS_SQL, &binds, context).await?)
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockRow {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub low_threshold: i64,
    pub low: bool,
}

const LIST_INVENTORY_SQL: &str = "\
SELECT json_group_array(json_object('sku', sku, 'on_hand', on_hand, 'reserved', reserved,
  'available', available, 'low_threshold', low_threshold, 'low', json(CASE WHEN available <= low_threshold THEN 'true' ELSE 'false' END))) AS doc
FROM (SELECT * FROM inventory
  WHERE (?1 IS NULL OR sku > ?1) AND (?2 = 0 OR available <= low_threshold)
  ORDER BY sku LIMIT ?3)";

pub async fn list_inventory(
    db: &Db,
    after: Option<&str>,
    low_only: bool,
    limit: Limit,
) -> Result<Page<StockRow>, StoreError> {
    let context = "list inventory";
    let binds = [
        opt(after),
        num(i64::from(low_only)),
        num(i64::from(limit.get()) + 1),
    ];
    let rows: Vec<StockRow> =
        serde_json::from_str(&doc(db, LIST_INVENTORY_SQL, &binds, context).await?)
            .map_err(|e| StoreError::new(format!("{context}: {e}")))?;
    Ok(Page::from_overfetch(rows, limit, |r| r.sku.clone()))
}

#[derive(Debug)]
pub enum AdjustOutcome {
    Adjusted {
        stock: StockRow,
        events: Vec<OutboxRow>,
    },
    UnknownSku,
    /// Would take away reserved units (available below zero).
    Short {
        available: i64,
    },
}

/// Adjust `sku` by `delta` with its audit row and, when availability falls to the threshold,
/// `inventory.low` — one batch.
pub async fn adjust_inventory(
    db: &Db,
    adjustment_id: &str,
    sku: &Sku,
    delta: StockDelta,
    reason: &AdjustmentReason,
    actor: &str,
    now: Timestamp,
) -> Result<AdjustOutcome, StoreError> {
    let context = "adjust inventory";
    let (delta, reason) = (delta.get(), reason.as_str());
    let sku_js: JsValue = sku.as_str().into();
    let crossing = serde_json::to_string(&[(sku.as_str(), -delta)])
        .map_err(|e| StoreError::new(e.to_string()))?;
    let statements = vec![
        // CHECK (available >= 0) aborts the batch when this would take reserved units.
        db.prepare("UPDATE inventory SET on_hand = on_hand + ?2 WHERE sku = ?1")
            .bind(&[sku_js.clone(), num(delta)])
            .map_err(err(context))?,
        // The foreign key aborts the batch for an unknown SKU.
        db.prepare(
            "INSERT INTO inventory_adjustments (id, sku, delta, reason, actor, on_hand_after, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, COALESCE((SELECT on_hand FROM inventory WHERE sku = ?2), -1), ?6)",
        )
        .bind(&[adjustment_id.into(), sku_js.clone(), num(delta), reason.into(), actor.into(), num(now.millis())])
        .map_err(err(context))?,
        db.prepare(
            "INSERT INTO outbox (id, type, payload, created_at) \
             SELECT 'evt_' || lower(hex(randomblob(16))), 'inventory.low', \
               json_object('sku', i.sku, 'available', i.available, 'low_threshold', i.low_threshold, 'adjustment_id', ?1), ?2 \
             FROM inventory i JOIN json_each(?3) r ON json_extract(r.value, '$[0]') = i.sku \
             WHERE json_extract(r.value, '$[1]') > 0 AND i.available <= i.low_threshold \
               AND i.available + json_extract(r.value, '$[1]') > i.low_threshold \
             RETURNING id, type, payload, created_at",
        )
        .bind(&[adjustment_id.into(), num(now.millis()), crossing.into()])
        .map_err(err(context))?,
        db.prepare(
            "SELECT sku, on_hand, reserved, available, low_threshold, available <= low_threshold AS low \
             FROM inventory WHERE sku = ?1",
        )
        .bind(std::slice::from_ref(&sku_js))
        .map_err(err(context))?,
    ];
    match db.batch(statements).await {
        Ok(results) => {
            let events = results
                .get(2)
                .map(|r| r.results::<OutboxRow>())
                .transpose()
                .map_err(err(context))?
                .unwrap_or_default();
            let stock = results
                .get(3)
                .map(|r| r.results::<StockRowSql>())
                .transpose()
                .map_err(err(context))?
                .and_then(|rows| rows.into_iter().next())
                .ok_or_else(|| StoreError::new("adjust inventory: row vanished"))?;
            Ok(AdjustOutcome::Adjusted {
                stock: stock.into(),
                events,
            })
        }
        Err(e) => {
            let message = e.to_string();
            let violation = sql::violation(&message);
            if violation == Some(Violation::ForeignKey) {
                Ok(AdjustOutcome::UnknownSku)
            } else if matches!(violation, Some(Violation::Check(_))) {
                #[derive(Deserialize)]
                struct Available {
                    available: i64,
                }
                let row: Option<Available> = sql::first(
                    db,
                    "SELECT available FROM inventory WHERE sku = ?1",
                    &[sku_js],
                    context,
                )
                .await?;
                Ok(AdjustOutcome::Short {
                    available: row.map_or(0, |r| r.available),
                })
            } else {
                Err(StoreError::new(format!("{context}: {message}")))
            }
        }
    }
}

#[derive(Deserialize)]
struct StockRowSql {
    sku: String,
    on_hand: i64,
    reserved: i64,
    available: i64,
    low_threshold: i64,
    low: i64,
}

impl From<StockRowSql> for StockRow {
    fn from(r: StockRowSql) -> Self {
        StockRow {
            sku: r.sku,
            on_hand: r.on_hand,
            reserved: r.reserved,
            available: r.available,
            low_threshold: r.low_threshold,
            low: r.low == 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Purged {
    pub idempotency_keys: usize,
    pub carts: usize,
}

/// How long an expired cart is kept (answering 404 `cart_expired`) before it is deleted.
pub const EXPIRED_CART_RETENTION: shop_domain::time::Duration =
    shop_domain::time::Duration::from_days(30);

/// Forget idempotency records past their 24 h and active carts expired for longer than
/// [`EXPIRED_CART_RETENTION`] (checked-out carts stay: their orders point at them). One batch.
pub async fn purge_expired(db: &Db, now: Timestamp) -> Result<Purged, StoreError> {
    let context = "purge expired";
    let statements = vec![
        db.prepare("DELETE FROM idempotency_keys WHERE expires_at <= ?1")
            .bind(&[num(now.millis())])
            .map_err(err(context))?,
        db.prepare("DELETE FROM carts WHERE status = 'active' AND expires_at <= ?1")
            .bind(&[num(now.minus(EXPIRED_CART_RETENTION).millis())])
            .map_err(err(context))?,
    ];
    let results = db.batch(statements).await.map_err(err(context))?;
    let changed = |i: usize| results.get(i).map_or(0, changes);
    Ok(Purged {
        idempotency_keys: changed(0),
        carts: changed(1),
    })
}

/// Set a SKU's low-stock threshold; `None` when there is no stock record for it.
pub async fn set_low_threshold(
    db: &Db,
    sku: &Sku,
    threshold: LowThreshold,
) -> Result<Option<StockRow>, StoreError> {
    let row: Option<StockRowSql> = sql::first(
        db,
        "UPDATE inventory SET low_threshold = ?2 WHERE sku = ?1 \
         RETURNING sku, on_hand, reserved, available, low_threshold, available <= low_threshold AS low",
        &[sku.as_str().into(), num(threshold.get())],
        "set low threshold",
    )
    .await?;
    Ok(row.map(Into::into))
}
