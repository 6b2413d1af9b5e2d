//! Products and their variants: list, create, read, change (under `If-Match`), add and change
//! variants. A change is decided by the domain over the product as read, then saved in one
//! batch guarded by the product's version; when another change was saved first, the request is
//! decided again over the new version (and a request made under an `If-Match` then fails 412).

use shop_domain::catalog::management::image::{self, ImageChange, Placement};
use shop_domain::catalog::management::product::{self, NewProduct, ProductPatch};
use shop_domain::catalog::management::variant::{self, NewVariant, VariantChange, VariantPatch};
use shop_domain::catalog::management::{ProductStatus, Refusal};
use shop_domain::kernel::ids::{ProductId, Sku};
use shop_domain::kernel::pagination::Cursor;
use shop_edge::http::refusals::catalog::product_not_found;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::products::{self as store, ManagedProduct};
use shop_edge::store::sql::Db;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

/// How many times a change is decided again after losing a race to another change.
const ATTEMPTS: usize = 3;

fn product_id(call: &Call<Endpoint>) -> Result<ProductId, Problem> {
    call.path_param(0, ProductId::parse, product_not_found)
}

/// The product with its `ETag`.
fn answer(status: u16, product: &ManagedProduct) -> Result<Reply, Problem> {
    Ok(Reply::json(status, product)?.header("ETag", product.product.etag()))
}

async fn load(db: &Db, id: &ProductId) -> Result<ManagedProduct, Problem> {
    store::product(db, id).await?.ok_or_else(product_not_found)
}

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "status"])?;
    let status = call.parsed_query(
        "status",
        "invalid_status",
        "draft, active or archived",
        |s| ProductStatus::parse(s).ok(),
    )?;
    let after = call.cursor()?;
    let db = call.db()?;
    let page =
        store::list_products(&db, status, after.as_ref().map(Cursor::key), call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}

pub async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = product_id(call)?;
    let db = call.db()?;
    answer(200, &load(&db, &id).await?)
}

pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let input: NewProduct = call.json()?;
    let change = product::create(input, &CryptoIds, call.now).map_err(Refusal::from)?;
    let db = call.db()?;
    store::create_product(&db, &change).await??;
    call.publish(std::slice::from_ref(&change.event)).await;
    let created = ManagedProduct {
        product: change.product,
        variants: Vec::new(),
        images: Vec::new(),
    };
    Ok(answer(201, &created)?.header(
        "Location",
        format!("/v1/admin/products/{}", created.product.id),
    ))
}

/// What a request decides over the product as read.
enum Decided {
    Product(product::ProductChange),
    NewVariant(VariantChange),
    Variant(VariantChange),
    Image(ImageChange),
}

/// Decide and save one change of product `id` (see the module's note on races), and answer the
/// product as it then stands.
async fn change(
    call: &Call<Endpoint>,
    id: &ProductId,
    created: u16,
    decide: impl Fn(&ManagedProduct) -> Result<Option<Decided>, Refusal>,
) -> Result<Reply, Problem> {
    let precondition = call.precondition();
    let db = call.db()?;
    for _ in 0..ATTEMPTS {
        let mut current = load(&db, id).await?;
        // The request's own faults first: a bad body is 422 whatever the ETag says.
        let decided = decide(&current)?;
        let etag = current.product.etag();
        if !precondition.admits(&etag) {
            return Err(Refusal::Stale {
                current: Some(etag),
            }
            .into());
        }
        let Some(decided) = decided else {
            return answer(200, &current);
        };
        let now = call.now.millis();
        let (saved, event, status) = match &decided {
            Decided::Product(c) => (store::save_product(&db, c).await?, &c.event, 200),
            Decided::NewVariant(c) => (store::add_variant(&db, c, now).await?, &c.event, created),
            Decided::Variant(c) => (store::save_variant(&db, c, now).await?, &c.event, 200),
            Decided::Image(c) => (store::add_image(&db, id, c, now).await?, &c.event, created),
        };
        match saved {
            Ok(()) => {}
            Err(Refusal::Stale { .. }) => continue,
            Err(refused) => return Err(refused.into()),
        }
        call.publish(std::slice::from_ref(event)).await;
        match decided {
            Decided::Product(c) => current.product = c.product,
            Decided::NewVariant(c) | Decided::Variant(c) => {
                current.product.version = c.product_version;
                current.product.updated_at = call.now;
                current.variants.retain(|v| v.sku != c.variant.sku);
                current.variants.push(c.variant);
                current
                    .variants
                    .sort_by(|a, b| (a.position, &a.sku).cmp(&(b.position, &b.sku)));
            }
            Decided::Image(c) => {
                current.product.version = c.product_version;
                current.product.updated_at = call.now;
                // After the images already in its place (they were added earlier).
                let at = current
                    .images
                    .iter()
                    .position(|i| i.position > c.image.position)
                    .unwrap_or(current.images.len());
                current.images.insert(at, c.image);
            }
        }
        return answer(status, &current);
    }
    Err(Refusal::Stale { current: None }.into())
}

pub async fn update(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = product_id(call)?;
    let patch: ProductPatch = call.json()?;
    change(call, &id, 200, |current| {
        let revised = current
            .product
            .revise(patch.clone(), &CryptoIds, call.now)?;
        Ok(revised.map(Decided::Product))
    })
    .await
}

pub async fn add_variant(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = product_id(call)?;
    let input: NewVariant = call.json()?;
    change(call, &id, 201, |current| {
        let added = variant::add(&current.product, input.clone(), &CryptoIds, call.now)?;
        Ok(Some(Decided::NewVariant(added)))
    })
    .await
}

pub async fn update_variant(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = product_id(call)?;
    let not_found = || Problem::from(Refusal::VariantNotFound);
    let sku = call.path_param(1, Sku::parse, not_found)?;
    let patch: VariantPatch = call.json()?;
    change(call, &id, 200, |current| {
        let variant = current
            .variants
            .iter()
            .find(|v| v.sku == sku)
            .ok_or(Refusal::VariantNotFound)?;
        let revised = variant.revise(&current.product, patch.clone(), &CryptoIds, call.now)?;
        Ok(revised.map(Decided::Variant))
    })
    .await
}

/// `PUT …/images`: the body is the image itself (at most 10 MiB); `alt`, `position` and `sku`
/// (the variant it shows) come in the query. The bytes go to the bucket once the request is
/// known to be good, before the batch (named by their hash: a batch that then loses a race
/// leaves only an object the next upload of the same bytes reuses).
pub async fn upload_image(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["alt", "position", "sku"])?;
    let id = product_id(call)?;
    let bytes = call.raw_body();
    let facts = image::inspect(bytes).map_err(Refusal::from)?;
    let placement = Placement {
        alt: call.query("alt"),
        position: call.query("position"),
        sku: call.query("sku"),
    };
    let attach = |current: &ManagedProduct| {
        image::attach(
            &current.product,
            &current.variants,
            &facts,
            &placement,
            &CryptoIds,
            call.now,
        )
    };
    let db = call.db()?;
    let current = load(&db, &id).await?;
    // The placement's faults (a bad request is 422 whatever its If-Match), then a stale
    // If-Match, before anything is stored.
    attach(&current)?;
    let etag = current.product.etag();
    if !call.precondition().admits(&etag) {
        return Err(Refusal::Stale {
            current: Some(etag),
        }
        .into());
    }
    call.images()?
        .put(&facts, bytes)
        .await
        .map_err(|e| call.internal("store image", &e))?;
    change(call, &id, 201, |current| {
        Ok(Some(Decided::Image(attach(current)?)))
    })
    .await
}
