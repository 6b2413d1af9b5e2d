//! Catalog management in D1: products, their variants and the category tree as the merchant
//! writes them. Each change is one batch with its outbox event; the guards are the schema's
//! (0031, 0032): a unique handle, one active variant per option combination, a version that moves
//! by one, the category tree without cycles. A guard that aborts the batch comes back as the
//! [`Refusal`] it stands for, and nothing was written.

use serde::Deserialize;
use shop_domain::catalog::management::category::{CategoryChange, CategoryRecord};
use shop_domain::catalog::management::image::{ImageChange, ProductImage};
use shop_domain::catalog::management::product::{ProductChange, ProductRecord};
use shop_domain::catalog::management::variant::{VariantChange, VariantRecord};
use shop_domain::catalog::management::{ProductStatus, Refusal};
use shop_domain::kernel::ids::{CategoryId, ProductId};
use shop_domain::kernel::pagination::{Limit, Page};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::catalog::{prices, StoredPrice};
use crate::store::outbox;
use crate::store::sql::{self, changes, err, json_err, num, opt_str, Db, Stmt, Violation};

/// A change's result: done, refused (nothing written), or a fault of the store.
pub type Outcome<T> = Result<Result<T, Refusal>, StoreError>;

/// A product with its variants, as the admin routes show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManagedProduct {
    #[serde(flatten)]
    pub product: ProductRecord,
    pub variants: Vec<VariantRecord>,
    /// In the order a page shows them.
    pub images: Vec<ProductImage>,
}

/// Milliseconds as the RFC 3339 text `Timestamp` reads.
macro_rules! iso {
    ($column:literal) => {
        concat!(
            "strftime('%Y-%m-%dT%H:%M:%fZ', ",
            $column,
            " / 1000.0, 'unixepoch')"
        )
    };
}

const PRODUCT_JSON: &str = concat!(
    "json_object('id', p.id, 'title', p.name, 'handle', p.handle, 'description', p.description, \
     'status', p.status, 'category_id', p.category_id, 'tags', json(p.tags), \
     'attributes', json(p.attributes), 'options', json(p.options), 'seo_title', p.seo_title, \
     'seo_description', p.seo_description, 'version', p.version, 'created_at', ",
    iso!("p.created_at"),
    ", 'updated_at', ",
    iso!("p.updated_at"),
    ", 'variants', json((SELECT json_group_array(json_object('sku', v.sku, \
     'product_id', v.product_id, 'options', json(v.options), 'weight_grams', v.weight_grams, \
     'barcode', v.barcode, 'position', v.position, 'status', v.status, \
     'prices', json((SELECT json_group_array(json_array(pr.currency, pr.amount_minor)) \
                     FROM prices pr WHERE pr.sku = v.sku)))) \
     FROM (SELECT * FROM variants WHERE product_id = p.id ORDER BY position, sku) v)), 'images', json((SELECT json_group_array(json_object('id', pi.id, 'hash', pi.hash, \
     'url', '/v1/images/' || pi.hash, 'content_type', im.content_type, 'width', im.width, \
     'height', im.height, 'alt', pi.alt, 'position', pi.position, 'sku', pi.sku)) \
     FROM (SELECT * FROM product_images WHERE product_id = p.id \
           ORDER BY position, created_at, id) pi JOIN images im ON im.hash = pi.hash)))"
);

const CATEGORY_JSON: &str = concat!(
    "json_object('id', c.id, 'parent_id', c.parent_id, 'handle', c.handle, 'name', c.name, \
     'position', c.position, 'created_at', ",
    iso!("c.created_at"),
    ", 'updated_at', ",
    iso!("c.updated_at"),
    ")"
);

/// A product with its variants as stored: prices are `[currency, minor units]`.
#[derive(Deserialize)]
struct ProductDoc {
    #[serde(flatten)]
    product: ProductRecord,
    variants: Vec<VariantDoc>,
    images: Vec<ProductImage>,
}

#[derive(Deserialize)]
struct VariantDoc {
    sku: shop_domain::kernel::ids::Sku,
    product_id: ProductId,
    options: shop_domain::catalog::management::OptionValues,
    weight_grams: u32,
    barcode: Option<shop_domain::catalog::management::Gtin>,
    position: u32,
    status: shop_domain::catalog::management::variant::VariantStatus,
    prices: Vec<StoredPrice>,
}

impl ProductDoc {
    fn managed(self) -> ManagedProduct {
        ManagedProduct {
            product: self.product,
            variants: self.variants.into_iter().map(VariantDoc::record).collect(),
            images: self.images,
        }
    }
}

impl VariantDoc {
    fn record(self) -> VariantRecord {
        VariantRecord {
            sku: self.sku,
            product_id: self.product_id,
            options: self.options,
            prices: prices(self.prices),
            weight_grams: self.weight_grams,
            barcode: self.barcode,
            position: self.position,
            status: self.status,
        }
    }
}

/// The product `id` with its variants (any status).
pub async fn product(db: &Db, id: &ProductId) -> Result<Option<ManagedProduct>, StoreError> {
    let context = "read managed product";
    let sql = format!("SELECT {PRODUCT_JSON} AS doc FROM products p WHERE p.id = ?1");
    let Some(doc) = sql::doc(db, &sql, &[id.as_str().into()], context).await? else {
        return Ok(None);
    };
    let doc: ProductDoc = serde_json::from_str(&doc).map_err(json_err(context))?;
    Ok(Some(doc.managed()))
}

/// A page of products (any status, or only `status`), by id, each with its variants.
pub async fn list_products(
    db: &Db,
    status: Option<ProductStatus>,
    after: Option<&str>,
    limit: Limit,
) -> Result<Page<ManagedProduct>, StoreError> {
    let context = "list managed products";
    let sql = format!(
        "SELECT json_group_array(json({PRODUCT_JSON})) AS doc FROM (SELECT * FROM products \
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3) p"
    );
    let binds = [
        opt_str(status.map(ProductStatus::as_str)),
        opt_str(after),
        num(i64::from(limit.get()) + 1),
    ];
    let doc = sql::doc_or_empty(db, &sql, &binds, context).await?;
    let docs: Vec<ProductDoc> = serde_json::from_str(&doc).map_err(json_err(context))?;
    let products = docs.into_iter().map(ProductDoc::managed).collect();
    Ok(Page::from_overfetch(
        products,
        limit,
        |p: &ManagedProduct| p.product.id.to_string(),
    ))
}

/// What a failed batch stands for, when it is one of the guards of catalog management.
fn refusal(error: &worker::Error) -> Option<Refusal> {
    let message = error.to_string();
    Some(match sql::violation(&message)? {
        Violation::Unique(what)
            if what.contains("products.handle") || what.contains("products_handle") =>
        {
            Refusal::HandleTaken
        }
        Violation::Unique(what) if what.contains("categories_handle_among_siblings") => {
            Refusal::CategoryHandleTaken
        }
        Violation::Unique(what) if what.contains("variants_one_per_combination") => {
            Refusal::CombinationTaken
        }
        Violation::Unique(what) if what.contains("variants.sku") => Refusal::SkuTaken,
        Violation::Trigger("stale product version") => Refusal::Stale { current: None },
        Violation::Trigger("category cycle") => Refusal::CategoryCycle,
        Violation::Trigger("product options in use") => Refusal::OptionsInUse,
        // The product's options changed between the read and the batch.
        Violation::Trigger("options not declared") => Refusal::Stale { current: None },
        _ => return None,
    })
}

/// Run `statements` as one batch: `Ok(Err(refusal))` when a catalog guard aborted it.
async fn run(
    db: &Db,
    statements: Vec<Stmt>,
    context: &str,
    foreign_key: Refusal,
) -> Outcome<Vec<worker::D1Result>> {
    match db.batch(statements).await {
        Ok(results) => Ok(Ok(results)),
        Err(e) => {
            if let Some(refused) = refusal(&e) {
                return Ok(Err(refused));
            }
            if sql::violation(&e.to_string()) == Some(Violation::ForeignKey) {
                return Ok(Err(foreign_key));
            }
            Err(err(context)(e))
        }
    }
}

fn json<T: serde::Serialize>(value: &T, context: &str) -> Result<JsValue, StoreError> {
    serde_json::to_string(value)
        .map(JsValue::from)
        .map_err(json_err(context))
}

fn product_binds(product: &ProductRecord, context: &str) -> Result<Vec<JsValue>, StoreError> {
    Ok(vec![
        product.id.as_str().into(),
        product.handle.as_str().into(),
        product.title.as_str().into(),
        product.description.as_str().into(),
        product.status.as_str().into(),
        opt_str(product.category_id.as_ref().map(CategoryId::as_str)),
        json(&product.tags, context)?,
        json(&product.attributes, context)?,
        json(&product.options, context)?,
        opt_str(product.seo_title.as_ref().map(|s| s.as_str())),
        opt_str(product.seo_description.as_ref().map(|s| s.as_str())),
        num(i64::from(product.version)),
        num(product.created_at.millis()),
        num(product.updated_at.millis()),
    ])
}

const UNKNOWN_CATEGORY: Refusal = Refusal::UnknownCategory {
    pointer: "/category_id",
};

/// A new product and its `product.created` event.
pub async fn create_product(db: &Db, change: &ProductChange) -> Outcome<()> {
    let context = "create product";
    let insert = db
        .prepare(
            "INSERT INTO products (id, handle, name, description, status, category_id, tags, \
             attributes, options, seo_title, seo_description, version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .bind(&product_binds(&change.product, context)?)
        .map_err(err(context))?;
    let event = outbox::insert(db, &change.event).map_err(err(context))?;
    Ok(run(db, vec![insert, event], context, UNKNOWN_CATEGORY)
        .await?
        .map(drop))
}

/// The statement that moves product `id` from `expected` to `next` (its version guard aborts the
/// batch when another change came first).
fn bump(db: &Db, id: &ProductId, next: u32, updated_at: i64) -> worker::Result<Stmt> {
    db.prepare("UPDATE products SET version = ?2, updated_at = ?3 WHERE id = ?1")
        .bind(&[id.as_str().into(), num(i64::from(next)), num(updated_at)])
}

/// Save a revised product over the version it was revised from.
pub async fn save_product(db: &Db, change: &ProductChange) -> Outcome<()> {
    let context = "save product";
    let update = db
        .prepare(
            "UPDATE products SET handle = ?2, name = ?3, description = ?4, status = ?5, \
             category_id = ?6, tags = ?7, attributes = ?8, options = ?9, seo_title = ?10, \
             seo_description = ?11, version = ?12, updated_at = ?14 WHERE id = ?1",
        )
        .bind(&product_binds(&change.product, context)?)
        .map_err(err(context))?;
    let event = outbox::insert(db, &change.event).map_err(err(context))?;
    Ok(run(db, vec![update, event], context, UNKNOWN_CATEGORY)
        .await?
        .map(drop))
}

fn variant_binds(variant: &VariantRecord, context: &str) -> Result<Vec<JsValue>, StoreError> {
    Ok(vec![
        variant.sku.as_str().into(),
        variant.product_id.as_str().into(),
        json(&variant.options, context)?,
        num(i64::from(variant.weight_grams)),
        opt_str(variant.barcode.as_ref().map(|b| b.as_str())),
        num(i64::from(variant.position)),
        variant.status.as_str().into(),
    ])
}

/// A new variant of its product, with its prices and an empty stock record, one version on.
pub async fn add_variant(db: &Db, change: &VariantChange, now: i64) -> Outcome<()> {
    let context = "add variant";
    let variant = &change.variant;
    let mut statements = vec![
        bump(db, &variant.product_id, change.product_version, now).map_err(err(context))?,
        db.prepare(
            "INSERT INTO variants (sku, product_id, options, weight_grams, barcode, position, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&variant_binds(variant, context)?)
        .map_err(err(context))?,
        db.prepare("INSERT INTO inventory (sku, on_hand, reserved) VALUES (?1, 0, 0)")
            .bind(&[variant.sku.as_str().into()])
            .map_err(err(context))?,
    ];
    for price in &variant.prices {
        statements.push(
            db.prepare("INSERT INTO prices (sku, currency, amount_minor) VALUES (?1, ?2, ?3)")
                .bind(&[
                    variant.sku.as_str().into(),
                    price.currency().code().into(),
                    num(price.minor_units()),
                ])
                .map_err(err(context))?,
        );
    }
    statements.push(outbox::insert(db, &change.event).map_err(err(context))?);
    Ok(run(db, statements, context, Refusal::ProductNotFound)
        .await?
        .map(drop))
}

/// Save a revised variant, its product one version on.
pub async fn save_variant(db: &Db, change: &VariantChange, now: i64) -> Outcome<()> {
    let context = "save variant";
    let variant = &change.variant;
    let statements = vec![
        bump(db, &variant.product_id, change.product_version, now).map_err(err(context))?,
        db.prepare(
            "UPDATE variants SET options = ?3, weight_grams = ?4, barcode = ?5, position = ?6, \
             status = ?7 WHERE sku = ?1 AND product_id = ?2",
        )
        .bind(&variant_binds(variant, context)?)
        .map_err(err(context))?,
        outbox::insert(db, &change.event).map_err(err(context))?,
    ];
    Ok(run(db, statements, context, Refusal::ProductNotFound)
        .await?
        .map(drop))
}

/// Attach an image (its object already in the bucket) to its product, one version on: the
/// image's row once per hash, its place on the product, the event.
pub async fn add_image(
    db: &Db,
    product: &ProductId,
    change: &ImageChange,
    now: i64,
) -> Outcome<()> {
    let context = "add image";
    let image = &change.image;
    let statements = vec![
        bump(db, product, change.product_version, now).map_err(err(context))?,
        db.prepare(
            "INSERT INTO images (hash, content_type, bytes, width, height, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&[
            image.hash.as_str().into(),
            image.content_type.content_type().into(),
            num(i64::try_from(change.bytes).unwrap_or(i64::MAX)),
            num(i64::from(image.width)),
            num(i64::from(image.height)),
            num(now),
        ])
        .map_err(err(context))?,
        db.prepare(
            "INSERT INTO product_images (id, product_id, hash, alt, position, sku, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&[
            image.id.as_str().into(),
            product.as_str().into(),
            image.hash.as_str().into(),
            image.alt.as_str().into(),
            num(i64::from(image.position)),
            opt_str(image.sku.as_ref().map(|s| s.as_str())),
            num(now),
        ])
        .map_err(err(context))?,
        outbox::insert(db, &change.event).map_err(err(context))?,
    ];
    Ok(run(db, statements, context, Refusal::ProductNotFound)
        .await?
        .map(drop))
}

/// Every category, parents before children, siblings by position.
pub async fn categories(db: &Db) -> Result<Vec<CategoryRecord>, StoreError> {
    let context = "list categories";
    let sql = format!(
        "SELECT json_group_array(json(doc)) AS doc FROM (SELECT {CATEGORY_JSON} AS doc \
         FROM categories c ORDER BY (SELECT max(depth) FROM category_paths WHERE descendant = c.id), \
                  c.parent_id, c.position, c.id)"
    );
    let doc = sql::doc_or_empty(db, &sql, &[], context).await?;
    serde_json::from_str(&doc).map_err(json_err(context))
}

pub async fn category(db: &Db, id: &CategoryId) -> Result<Option<CategoryRecord>, StoreError> {
    let context = "read category";
    let sql = format!("SELECT {CATEGORY_JSON} AS doc FROM categories c WHERE c.id = ?1");
    match sql::doc(db, &sql, &[id.as_str().into()], context).await? {
        Some(doc) => serde_json::from_str(&doc)
            .map(Some)
            .map_err(json_err(context)),
        None => Ok(None),
    }
}

fn category_binds(category: &CategoryRecord) -> Vec<JsValue> {
    vec![
        category.id.as_str().into(),
        opt_str(category.parent_id.as_ref().map(CategoryId::as_str)),
        category.handle.as_str().into(),
        category.name.as_str().into(),
        num(i64::from(category.position)),
        num(category.created_at.millis()),
        num(category.updated_at.millis()),
    ]
}

const UNKNOWN_PARENT: Refusal = Refusal::UnknownCategory {
    pointer: "/parent_id",
};

pub async fn create_category(db: &Db, change: &CategoryChange) -> Outcome<()> {
    let context = "create category";
    let insert = db
        .prepare(
            "INSERT INTO categories (id, parent_id, handle, name, position, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&category_binds(&change.category))
        .map_err(err(context))?;
    let event = outbox::insert(db, &change.event).map_err(err(context))?;
    Ok(run(db, vec![insert, event], context, UNKNOWN_PARENT)
        .await?
        .map(drop))
}

/// Save a renamed, moved or reordered category; the tree's triggers move its subtree's paths
/// and refuse a cycle.
pub async fn save_category(db: &Db, change: &CategoryChange) -> Outcome<()> {
    let context = "save category";
    let update = db
        .prepare(
            "UPDATE categories SET parent_id = ?2, handle = ?3, name = ?4, position = ?5, \
             updated_at = ?7 WHERE id = ?1",
        )
        .bind(&category_binds(&change.category))
        .map_err(err(context))?;
    let event = outbox::insert_if_changed(db, &change.event).map_err(err(context))?;
    let results = run(db, vec![update, event], context, UNKNOWN_PARENT).await?;
    Ok(results.and_then(|results| {
        if results.first().map(changes) == Some(0) {
            Err(Refusal::CategoryNotFound)
        } else {
            Ok(())
        }
    }))
}
