//! The catalog in D1: the `CatalogReader` and `PriceBook` ports.
//!
//! Reads are one statement each and come back as one JSON document built by SQLite
//! (`json_object` / `json_group_array`), so a read crosses the JS/WASM boundary once, as a
//! string, and is parsed by serde_json in Rust.

use std::collections::BTreeMap;

use serde::Deserialize;
use shop_domain::catalog::{
    CatalogReader, Offer, PriceBook, Product, ProductQuery, ProductSummary, ShownImage,
    StockStatus, Variant,
};
use shop_domain::customers::reviews::Rating;
use shop_domain::kernel::ids::{ProductId, Sku};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::pagination::Page;
use shop_domain::StoreError;

use crate::store::sql::{self, changes, err, json_err, num, opt_str, Db};

/// A price as stored: `[currency, minor units]`.
#[derive(Deserialize)]
pub(crate) struct StoredPrice(String, i64);

pub(crate) fn prices(stored: Vec<StoredPrice>) -> Vec<Money> {
    let mut prices: Vec<Money> = stored
        .into_iter()
        .filter_map(|StoredPrice(code, minor)| {
            let currency: Currency = code.parse().ok()?;
            Money::from_minor(minor, currency).ok()
        })
        .collect();
    prices.sort_by_key(|m| m.currency());
    prices
}

pub struct D1Catalog<'a> {
    pub db: &'a Db,
}

#[derive(Deserialize)]
struct SummaryRow {
    id: ProductId,
    /// Its position in the collection listed, when one is.
    pos: Option<i64>,
    name: String,
    handle: String,
    category: Option<String>,
    prices: Vec<StoredPrice>,
    /// `[available, low_threshold]` per variant.
    stock: Vec<(i64, i64)>,
}

#[derive(Deserialize)]
struct ProductRow {
    id: ProductId,
    name: String,
    handle: String,
    description: String,
    category: Option<String>,
    rating_count: u64,
    rating_sum: u64,
    variants: Vec<VariantRow>,
    images: Vec<ShownImage>,
}

#[derive(Deserialize)]
struct VariantRow {
    sku: Sku,
    options: BTreeMap<String, String>,
    available: Option<i64>,
    low_threshold: Option<i64>,
    prices: Vec<StoredPrice>,
}

#[derive(Deserialize)]
pub(crate) struct OfferRow {
    sku: Sku,
    product_id: ProductId,
    name: String,
    options: String,
    amount_minor: Option<i64>,
    available: Option<i64>,
    weight_grams: u64,
}

/// Best status over the variants: a product is in stock when any variant is.
pub(crate) fn product_stock(stock: &[(i64, i64)]) -> StockStatus {
    let statuses: Vec<StockStatus> = stock
        .iter()
        .map(|(a, low)| StockStatus::of(*a, *low))
        .collect();
    if statuses.contains(&StockStatus::InStock) {
        StockStatus::InStock
    } else if statuses.contains(&StockStatus::Low) {
        StockStatus::Low
    } else {
        StockStatus::OutOfStock
    }
}

/// "Classic Tee (M, black)": the product's name with the variant's option values.
pub fn display_name(product: &str, options: &BTreeMap<String, String>) -> String {
    if options.is_empty() {
        product.to_owned()
    } else {
        let values: Vec<&str> = options.values().map(String::as_str).collect();
        format!("{product} ({})", values.join(", "))
    }
}

const LIST_SQL: &str = "\
SELECT json_group_array(json_object(
  'id', p.id, 'name', p.name, 'handle', p.handle, 'pos', p.pos,
  'category', (SELECT handle FROM categories WHERE id = p.category_id),
  'prices', json((SELECT json_group_array(json_array(currency, m)) FROM (
      SELECT pr.currency AS currency, MIN(pr.amount_minor) AS m
      FROM variants v JOIN prices pr ON pr.sku = v.sku
      WHERE v.product_id = p.id AND v.status = 'active' GROUP BY pr.currency))),
  'stock', json((SELECT json_group_array(json_array(COALESCE(i.available, 0), COALESCE(i.low_threshold, 0)))
      FROM variants v LEFT JOIN inventory i ON i.sku = v.sku
      WHERE v.product_id = p.id AND v.status = 'active'))
)) AS doc
FROM (SELECT p.*, cp.position AS pos FROM products p
      LEFT JOIN collection_products cp ON cp.product_id = p.id
        AND cp.collection_id = (SELECT id FROM collections WHERE handle = ?4)
      WHERE p.status = 'active'
        AND (?1 IS NULL OR p.category_id IN (
              SELECT cp.descendant FROM categories c JOIN category_paths cp ON cp.ancestor = c.id
              WHERE c.handle = ?1))
        AND (?4 IS NULL OR cp.position IS NOT NULL)
        AND (?2 IS NULL OR CASE WHEN ?4 IS NULL THEN p.id > ?2
                                ELSE cp.position > CAST(?2 AS INTEGER) END)
      ORDER BY CASE WHEN ?4 IS NULL THEN 0 ELSE cp.position END, p.id LIMIT ?3) p";

const PRODUCT_SQL: &str = "\
SELECT json_object(
  'id', p.id, 'name', p.name, 'handle', p.handle, 'description', p.description,
  'category', (SELECT handle FROM categories WHERE id = p.category_id),
  'rating_count', p.rating_count, 'rating_sum', p.rating_sum,
  'variants', json((SELECT json_group_array(json_object(
      'sku', v.sku, 'options', json(v.options),
      'available', i.available, 'low_threshold', i.low_threshold,
      'prices', json((SELECT json_group_array(json_array(pr.currency, pr.amount_minor))
                      FROM prices pr WHERE pr.sku = v.sku))))
    FROM (SELECT * FROM variants WHERE product_id = p.id AND status = 'active'
          ORDER BY position, sku) v
    LEFT JOIN inventory i ON i.sku = v.sku)),
  'images', json((SELECT json_group_array(json_object(
      'url', '/v1/images/' || pi.hash, 'width', im.width, 'height', im.height, 'alt', pi.alt,
      'sku', pi.sku))
    FROM (SELECT * FROM product_images WHERE product_id = p.id
          ORDER BY position, created_at, id) pi JOIN images im ON im.hash = pi.hash))
) AS doc
FROM products p WHERE p.id = ?1 AND p.status = 'active'";

const OFFER_SQL: &str = "\
SELECT v.sku, v.product_id, p.name, v.options, pr.amount_minor, i.available, v.weight_grams
FROM variants v
JOIN products p ON p.id = v.product_id
LEFT JOIN prices pr ON pr.sku = v.sku AND pr.currency = ?2
LEFT JOIN inventory i ON i.sku = v.sku
WHERE v.sku = ?1 AND v.status = 'active' AND p.status = 'active'";

impl CatalogReader for D1Catalog<'_> {
    async fn list_products(
        &self,
        query: &ProductQuery,
    ) -> Result<Page<ProductSummary>, StoreError> {
        let context = "list products";
        let binds = [
            opt_str(query.category.as_ref().map(|c| c.as_str())),
            opt_str(query.after.as_ref().map(|c| c.key())),
            num(i64::from(query.limit.get()) + 1),
            opt_str(query.collection.as_ref().map(|c| c.as_str())),
        ];
        let doc = sql::doc(self.db, LIST_SQL, &binds, context)
            .await?
            .unwrap_or_else(|| "[]".into());
        let rows: Vec<SummaryRow> = serde_json::from_str(&doc).map_err(json_err(context))?;
        // A collection is paged by position, the whole catalog by id.
        let page = Page::from_overfetch(rows, query.limit, |r| match r.pos {
            Some(pos) => pos.to_string(),
            None => r.id.to_string(),
        });
        Ok(Page {
            data: page
                .data
                .into_iter()
                .map(|r| ProductSummary {
                    stock: product_stock(&r.stock),
                    id: r.id,
                    name: r.name,
                    handle: r.handle,
                    category: r.category,
                    price_from: prices(r.prices),
                })
                .collect(),
            next_cursor: page.next_cursor,
            has_more: page.has_more,
        })
    }

    async fn product(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        let context = "get product";
        let Some(doc) = sql::doc(self.db, PRODUCT_SQL, &[id.as_str().into()], context).await?
        else {
            return Ok(None);
        };
        let row: ProductRow = serde_json::from_str(&doc).map_err(json_err(context))?;
        Ok(Some(Product {
            id: row.id,
            name: row.name,
            handle: row.handle,
            description: row.description,
            category: row.category,
            rating: Rating::from_totals(row.rating_count, row.rating_sum),
            images: row.images,
            variants: row
                .variants
                .into_iter()
                .map(|v| Variant {
                    stock: StockStatus::of(v.available.unwrap_or(0), v.low_threshold.unwrap_or(0)),
                    sku: v.sku,
                    options: v.options,
                    prices: prices(v.prices),
                })
                .collect(),
        }))
    }

    async fn offer(&self, sku: &Sku, currency: Currency) -> Result<Option<Offer>, StoreError> {
        let context = "get offer";
        let row: Option<OfferRow> = sql::first(
            self.db,
            OFFER_SQL,
            &[sku.as_str().into(), currency.code().into()],
            context,
        )
        .await?;
        row.map(|row| offer_from_row(row, currency, context))
            .transpose()
    }
}

pub(crate) fn offer_from_row(
    row: OfferRow,
    currency: Currency,
    context: &str,
) -> Result<Offer, StoreError> {
    let options: BTreeMap<String, String> =
        serde_json::from_str(&row.options).map_err(json_err(context))?;
    let unit_price = match row.amount_minor {
        Some(minor) => Some(
            Money::from_minor(minor, currency)
                .map_err(|e| StoreError::new(format!("{context}: stored price: {e}")))?,
        ),
        None => None,
    };
    Ok(Offer {
        name: display_name(&row.name, &options),
        sku: row.sku,
        product_id: row.product_id,
        unit_price,
        available: row.available.unwrap_or(0),
        weight_grams: row.weight_grams,
    })
}

impl PriceBook for D1Catalog<'_> {
    async fn set_price(&self, sku: &Sku, price: Money) -> Result<bool, StoreError> {
        let context = "set price";
        let result = self
            .db
            .prepare(
                "INSERT INTO prices (sku, currency, amount_minor) \
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM variants WHERE sku = ?1) \
                 ON CONFLICT (sku, currency) DO UPDATE SET amount_minor = excluded.amount_minor",
            )
            .bind(&[
                sku.as_str().into(),
                price.currency().code().into(),
                num(price.minor_units()),
            ])
            .map_err(err(context))?
            .run()
            .await
            .map_err(err(context))?;
        Ok(changes(&result) == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_variants_by_their_options() {
        let mut options = BTreeMap::new();
        assert_eq!(display_name("Mug", &options), "Mug");
        options.insert("color".into(), "black".into());
        options.insert("size".into(), "M".into());
        assert_eq!(display_name("Tee", &options), "Tee (black, M)");
    }

    #[test]
    fn product_stock_is_the_best_variant() {
        assert_eq!(product_stock(&[(0, 5), (3, 5)]), StockStatus::Low);
        assert_eq!(product_stock(&[(0, 5), (30, 5)]), StockStatus::InStock);
        assert_eq!(product_stock(&[(0, 5)]), StockStatus::OutOfStock);
        assert_eq!(product_stock(&[]), StockStatus::OutOfStock);
    }
}
