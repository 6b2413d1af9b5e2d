//! A product's variants as the merchant manages them: added with a [`NewVariant`], changed with a
//! [`VariantPatch`], archived (never deleted once an order line names it). The SKU is chosen
//! once and never changes. A variant change is also a change of its product: the product's
//! version (its `ETag`) moves on with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::product::ProductRecord;
use super::{nullable, position, Gtin, OptionValues, ProductStatus, Refusal};
use crate::events::{Event, Payload};
use crate::kernel::contact::FieldIssue;
use crate::kernel::ids::{IdSource, ProductId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::time::Timestamp;

/// The heaviest variant a merchant may describe, in grams (1 tonne).
pub const MAX_WEIGHT_GRAMS: i64 = 1_000_000;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    Active,
    Archived,
}

impl VariantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantStatus::Active => "active",
            VariantStatus::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        match text {
            "active" => Ok(VariantStatus::Active),
            "archived" => Ok(VariantStatus::Archived),
            _ => Err(FieldIssue::new(
                "/status",
                "invalid_status",
                "a variant's status is active or archived",
            )),
        }
    }
}

/// A variant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantRecord {
    pub sku: Sku,
    pub product_id: ProductId,
    pub options: OptionValues,
    /// One per currency it is sold in, in currency order.
    pub prices: Vec<Money>,
    pub weight_grams: u32,
    pub barcode: Option<Gtin>,
    pub position: u32,
    pub status: VariantStatus,
}

/// `variant.created`, `variant.updated` and `variant.archived`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantChanged {
    pub sku: Sku,
    pub product_id: ProductId,
    pub status: VariantStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    pub sku: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub prices: Vec<Money>,
    #[serde(default)]
    pub weight_grams: Option<i64>,
    #[serde(default)]
    pub barcode: Option<String>,
    #[serde(default)]
    pub position: Option<i64>,
}

/// A change to a variant: each field present is set (`barcode: null` clears it). Its SKU and
/// prices are not here: a SKU never changes, prices have their own route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub weight_grams: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub barcode: Option<Option<String>>,
    #[serde(default)]
    pub position: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
}

/// A variant change decided: the variant to store, the product's next version, the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantChange {
    pub variant: VariantRecord,
    pub product_version: u32,
    pub event: Event,
}

fn weight(grams: i64) -> Result<u32, FieldIssue> {
    u32::try_from(grams)
        .ok()
        .filter(|g| i64::from(*g) <= MAX_WEIGHT_GRAMS)
        .ok_or_else(|| {
            FieldIssue::new(
                "/weight_grams",
                "invalid_weight",
                format!("weight_grams is a whole number from 0 to {MAX_WEIGHT_GRAMS}"),
            )
        })
}

/// Prices as given: not negative, one per currency; stored in currency order.
fn prices(mut prices: Vec<Money>) -> Result<Vec<Money>, FieldIssue> {
    if let Some(i) = prices.iter().position(|p| p.amount().is_sign_negative()) {
        return Err(FieldIssue::new(
            format!("/prices/{i}/amount"),
            "invalid_amount",
            "a price cannot be negative",
        ));
    }
    let mut seen: Vec<Currency> = Vec::with_capacity(prices.len());
    for (i, price) in prices.iter().enumerate() {
        if seen.contains(&price.currency()) {
            return Err(FieldIssue::new(
                format!("/prices/{i}/currency"),
                "duplicate_currency",
                "a variant has one price per currency",
            ));
        }
        seen.push(price.currency());
    }
    prices.sort_by_key(Money::currency);
    Ok(prices)
}

/// A new variant of `product`, or why not.
pub fn add(
    product: &ProductRecord,
    input: NewVariant,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<VariantChange, Refusal> {
    if product.status == ProductStatus::Archived {
        return Err(Refusal::ProductArchived);
    }
    let sku = Sku::parse(&input.sku).map_err(|_| {
        FieldIssue::new(
            "/sku",
            "invalid_sku",
            "sku is 1 to 64 of A-Z, 0-9 and -, not starting with -",
        )
    })?;
    let variant = VariantRecord {
        sku,
        product_id: product.id.clone(),
        options: product.options.values(input.options)?,
        prices: prices(input.prices)?,
        weight_grams: input.weight_grams.map(weight).transpose()?.unwrap_or(0),
        barcode: input.barcode.as_deref().map(Gtin::parse).transpose()?,
        position: input.position.map(position).transpose()?.unwrap_or(0),
        status: VariantStatus::Active,
    };
    let event = Event::new(ids, now, Payload::VariantCreated(changed(&variant)));
    Ok(VariantChange {
        variant,
        product_version: product.version + 1,
        event,
    })
}

fn changed(variant: &VariantRecord) -> VariantChanged {
    VariantChanged {
        sku: variant.sku.clone(),
        product_id: variant.product_id.clone(),
        status: variant.status,
    }
}

impl VariantRecord {
    /// This variant of `product` with `patch` applied; `None` when nothing changes. A move to
    /// `archived` is `variant.archived`, any other change `variant.updated`.
    pub fn revise(
        &self,
        product: &ProductRecord,
        patch: VariantPatch,
        ids: &dyn IdSource,
        now: Timestamp,
    ) -> Result<Option<VariantChange>, Refusal> {
        let mut next = self.clone();
        if let Some(options) = patch.options {
            next.options = product.options.values(options)?;
        }
        if let Some(grams) = patch.weight_grams {
            next.weight_grams = weight(grams)?;
        }
        if let Some(barcode) = patch.barcode {
            next.barcode = barcode.as_deref().map(Gtin::parse).transpose()?;
        }
        if let Some(n) = patch.position {
            next.position = position(n)?;
        }
        if let Some(status) = patch.status.as_deref() {
            next.status = VariantStatus::parse(status)?;
        }
        if next == *self {
            return Ok(None);
        }
        let payload = if next.status == VariantStatus::Archived && self.status != next.status {
            Payload::VariantArchived(changed(&next))
        } else {
            Payload::VariantUpdated(changed(&next))
        };
        Ok(Some(VariantChange {
            event: Event::new(ids, now, payload),
            variant: next,
            product_version: product.version + 1,
        }))
    }
}
