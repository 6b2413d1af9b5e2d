//! Stock in D1 behind the admin routes: the listing (one JSON document built by SQLite), audited
//! adjustments (one batch with the `inventory.low` crossing) and low-stock thresholds.

use serde::{Deserialize, Serialize};
use shop_domain::catalog::inventory::{AdjustmentReason, LowThreshold, StockDelta};
use shop_domain::events::{Event, InventoryLow, Payload};
use shop_domain::kernel::ids::Sku;
use shop_domain::kernel::pagination::{Limit, Page};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::outbox::{self, Taker};
use crate::store::sql::{self, err, num, opt_str as opt, Db, Violation};

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
        serde_json::from_str(&sql::doc_or_empty(db, LIST_INVENTORY_SQL, &binds, context).await?)
            .map_err(|e| StoreError::new(format!("{context}: {e}")))?;
    Ok(Page::from_overfetch(rows, limit, |r| r.sku.clone()))
}

#[derive(Debug)]
pub enum AdjustOutcome {
    Adjusted {
        stock: StockRow,
        /// What the adjustment wrote to the outbox (an `inventory.low`), to publish.
        events: Vec<Event>,
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
        // inventory.low when this removal takes availability to the threshold.
        outbox::low_stock_crossings(db, Taker::Adjustment(adjustment_id), &[(sku, -delta)], now)
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
            let events =
                outbox::written_as(results.get(2..3).unwrap_or_default(), Payload::InventoryLow)
                    .map_err(err(context))?;
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

/// `inventory.low`'s stock alert, in the consumer's effect batch (`event_id` once).
pub fn stock_alert(
    db: &Db,
    event_id: &str,
    low: &InventoryLow,
    now: Timestamp,
) -> worker::Result<crate::store::sql::Stmt> {
    db.prepare(
        "INSERT INTO stock_alerts (event_id, sku, available, low_threshold, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(&[
        event_id.into(),
        low.sku.as_str().into(),
        num(low.available),
        num(low.low_threshold),
        num(now.millis()),
    ])
}
