//! Products as shoppers read them (the list and a product's page, served through the isolate
//! cache every storefront read shares), and the admin price route.

use serde::{Deserialize, Serialize};
use shop_domain::catalog::{CatalogReader, Category, PriceBook, ProductQuery};
use shop_domain::kernel::ids::{ProductId, Sku};
use shop_domain::kernel::money::{Currency, Money};
use shop_edge::http::memo;
use shop_edge::store::catalog::D1Catalog;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    cached(call, LIST_PARAMS, list_products).await
}

pub async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    cached(call, &[], get_product).await
}

/// The query parameters of `GET /v1/products`.
const LIST_PARAMS: &[&str] = &["limit", "cursor", "category", "collection"];

/// Serve catalog reads from the isolate's memory for `CATALOG_CACHE_TTL_SECONDS` (5 s); browsers
/// and CDNs may keep them as long. That is the whole staleness bound of a catalog read: a change
/// written at t is on every read path by t + the TTL (the isolate's copy expires, and so does
/// any copy a client or CDN kept). Each answer has a strong `ETag` of its body, so a client
/// revalidates with `If-None-Match` for a bodiless 304 while nothing changed. Unknown
/// query parameters are refused before the cache is consulted, so a hit answers exactly what a
/// miss would.
pub(crate) async fn cached<'a, F, Fut>(
    call: &'a Call<Endpoint>,
    known: &[&str],
    load: F,
) -> Result<Reply, Problem>
where
    F: FnOnce(&'a Call<Endpoint>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, Problem>>,
{
    call.only_query_params(known)?;
    // Every pair as given (repeated names and their order included), each quoted so that no
    // value can pass for another pair: `?category=` (refused) is not the same request as no
    // category at all.
    let query = call
        .query_pairs()
        .iter()
        .map(|(k, v)| format!("{k:?}={v:?}"))
        .collect::<Vec<_>>()
        .join("&");
    let key = format!(
        "{}?{}|{query}",
        call.route.template,
        call.route.params.join("/")
    );
    let if_none_match = call.header("If-None-Match");
    let answer = |reply: Reply| match reply.not_modified(if_none_match.as_deref()) {
        Some(not_modified) => not_modified,
        None => reply,
    };
    if let Some(hit) = memo::get(&key, call.now) {
        return Ok(answer(hit));
    }
    let ttl = call.config.catalog_cache_ttl;
    let reply = load(call)
        .await?
        .header(
            "Cache-Control",
            format!("public, max-age={}", ttl.millis() / 1000),
        )
        .tagged();
    memo::put(&key, &reply, call.now, ttl);
    Ok(answer(reply))
}

async fn list_products(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let limit = call.limit()?;
    let after = call.cursor()?;
    let category = category_filter(call)?;
    let collection = call.parsed_query(
        "collection",
        "invalid_collection",
        "a collection's handle (a-z, 0-9 and -)",
        Category::parse,
    )?;
    let db = call.db()?;
    let page = D1Catalog { db: &db }
        .list_products(&ProductQuery {
            category,
            collection,
            limit,
            after,
        })
        .await?;
    Ok(Reply::json(200, &page)?)
}

/// `?category=`: a category's handle (its products and those of every category below it).
pub(crate) fn category_filter(call: &Call<Endpoint>) -> Result<Option<Category>, Problem> {
    call.parsed_query(
        "category",
        "invalid_category",
        "a slug of a-z, 0-9 and -",
        Category::parse,
    )
}

async fn get_product(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let not_found = || Problem::not_found("product_not_found", "No product with this id");
    let id = call.path_param(0, ProductId::parse, not_found)?;
    let db = call.db()?;
    let product = D1Catalog { db: &db }
        .product(&id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Reply::json(200, &product)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPriceBody {
    amount: String,
}

#[derive(Serialize)]
struct PriceSet {
    sku: Sku,
    price: Money,
}

pub async fn set_price(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let not_found = || Problem::not_found("variant_not_found", "No variant with this SKU");
    let sku = call.path_param(0, Sku::parse, not_found)?;
    let currency: Currency = call.route.param(1).parse().map_err(|_| {
        Problem::not_found(
            "unsupported_currency",
            "Prices exist only in supported currencies",
        )
    })?;
    let body: SetPriceBody = call.json()?;
    let price = Money::parse(&body.amount, currency)
        .map_err(|e| Problem::invalid_field("/amount", "invalid_amount", e.to_string()))?;
    if price.amount().is_sign_negative() {
        return Err(Problem::invalid_field(
            "/amount",
            "invalid_amount",
            "a price cannot be negative",
        ));
    }
    let db = call.db()?;
    let found = D1Catalog { db: &db }.set_price(&sku, price).await?;
    if !found {
        return Err(not_found());
    }
    memo::clear();
    Ok(Reply::json(200, &PriceSet { sku, price })?)
}
