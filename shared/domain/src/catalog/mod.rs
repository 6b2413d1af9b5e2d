//! The catalog as the storefront sees it: products, variants, prices and stock status.

pub mod inventory;
pub mod management;
pub mod search;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::kernel::ids::{ProductId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::pagination::{Cursor, Limit, Page};
use crate::StoreError;

/// What a shopper is told about stock: never the exact count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    InStock,
    Low,
    OutOfStock,
}

impl StockStatus {
    /// `available` at or below `low_threshold` (but above zero) is low.
    pub fn of(available: i64, low_threshold: i64) -> Self {
        if available <= 0 {
            StockStatus::OutOfStock
        } else if available <= low_threshold {
            StockStatus::Low
        } else {
            StockStatus::InStock
        }
    }
}

/// A category slug: 1–40 of `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Category(String);

impl Category {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=40).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| Category(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    pub sku: Sku,
    pub options: BTreeMap<String, String>,
    pub prices: Vec<Money>,
    pub stock: StockStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    /// Its URL name (unique).
    pub handle: String,
    pub description: String,
    /// The handle of its category, if it has one.
    pub category: Option<String>,
    /// Over its visible reviews (kept with every review change).
    pub rating: crate::customers::reviews::Rating,
    pub variants: Vec<Variant>,
    /// In the order a page shows them.
    pub images: Vec<ShownImage>,
}

/// An image as a shopper's page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ShownImage {
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub alt: String,
    /// The variant it shows, when it shows one.
    pub sku: Option<Sku>,
}

/// One row of the product list: enough for a listing page, with the lowest price per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductSummary {
    pub id: ProductId,
    pub name: String,
    pub handle: String,
    pub category: Option<String>,
    pub price_from: Vec<Money>,
    pub stock: StockStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductQuery {
    pub category: Option<Category>,
    /// A collection's handle: its active products, in the collection's order.
    pub collection: Option<Category>,
    pub limit: Limit,
    pub after: Option<Cursor>,
}

/// What the cart needs to know about a SKU right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sku: Sku,
    pub product_id: ProductId,
    pub name: String,
    /// The price in the asked currency; `None` when the SKU is not sold in it.
    pub unit_price: Option<Money>,
    pub available: i64,
    pub weight_grams: u64,
}

/// Read access to the catalog (port).
pub trait CatalogReader {
    async fn list_products(&self, query: &ProductQuery)
        -> Result<Page<ProductSummary>, StoreError>;
    async fn product(&self, id: &ProductId) -> Result<Option<Product>, StoreError>;
    async fn offer(&self, sku: &Sku, currency: Currency) -> Result<Option<Offer>, StoreError>;
}

/// Price changes by the merchant (port).
pub trait PriceBook {
    /// Set `sku`'s price in `price`'s currency. `Ok(false)` when there is no such SKU.
    async fn set_price(&self, sku: &Sku, price: Money) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_status_thresholds() {
        assert_eq!(StockStatus::of(0, 5), StockStatus::OutOfStock);
        assert_eq!(StockStatus::of(-1, 5), StockStatus::OutOfStock);
        assert_eq!(StockStatus::of(5, 5), StockStatus::Low);
        assert_eq!(StockStatus::of(6, 5), StockStatus::InStock);
    }

    #[test]
    fn category_slugs() {
        assert!(Category::parse("t-shirts").is_some());
        assert!(Category::parse("T-Shirts").is_none());
        assert!(Category::parse("").is_none());
    }
}
