//! Stock administration: the inventory listing, manual adjustments (audited) and low-stock
//! thresholds.

use serde::Deserialize;
use shop_domain::catalog::inventory::{
    AdjustmentReason, LowThreshold, Shortage, StockDelta, MAX_ADJUSTMENT, MAX_LOW_THRESHOLD,
    MAX_REASON_CHARS,
};
use shop_domain::kernel::ids::{IdSource, Sku};
use shop_domain::kernel::pagination::Cursor;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::inventory as stock;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

fn not_found() -> Problem {
    Problem::not_found("sku_not_found", "No stock record for this SKU")
}

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "low"])?;
    let low = call.flag_query("low")?;
    let after = call.cursor()?;
    let db = call.db()?;
    let page =
        stock::list_inventory(&db, after.as_ref().map(Cursor::key), low, call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdBody {
    low_threshold: i64,
}

pub async fn set_low_threshold(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let sku = call.path_param(0, Sku::parse, not_found)?;
    let body: ThresholdBody = call.json()?;
    let threshold = LowThreshold::parse(body.low_threshold).ok_or_else(|| {
        Problem::invalid_field(
            "/low_threshold",
            "invalid_threshold",
            format!("low_threshold is a whole number from 0 to {MAX_LOW_THRESHOLD}"),
        )
    })?;
    let db = call.db()?;
    let stock = stock::set_low_threshold(&db, &sku, threshold)
        .await?
        .ok_or_else(not_found)?;
    Ok(Reply::json(200, &stock)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustBody {
    delta: i64,
    reason: String,
}

pub async fn adjust(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.require_idempotency_key()?;
    let principal = call.admin()?;
    let sku = call.path_param(0, Sku::parse, not_found)?;
    let body: AdjustBody = call.json()?;
    let delta = StockDelta::parse(body.delta).ok_or_else(|| {
        Problem::invalid_field(
            "/delta",
            "invalid_delta",
            format!("delta is a non-zero whole number, at most {MAX_ADJUSTMENT} either way"),
        )
    })?;
    let reason = AdjustmentReason::parse(&body.reason).ok_or_else(|| {
        Problem::invalid_field(
            "/reason",
            "invalid_reason",
            format!("reason is 1 to {MAX_REASON_CHARS} characters, without control characters"),
        )
    })?;
    let db = call.db()?;
    let id = format!("adj_{:032x}", CryptoIds.next_u128());
    match stock::adjust_inventory(&db, &id, &sku, delta, &reason, &principal.sub, call.now).await? {
        stock::AdjustOutcome::UnknownSku => Err(not_found()),
        // Only what no order holds can be removed.
        stock::AdjustOutcome::Short { available } => {
            Err(Problem::insufficient_stock(&[Shortage {
                sku,
                requested: u32::try_from(delta.get().unsigned_abs()).unwrap_or(u32::MAX),
                available,
            }]))
        }
        stock::AdjustOutcome::Adjusted { stock, events } => {
            call.publish(&events).await;
            Ok(Reply::json(200, &stock)?)
        }
    }
}
