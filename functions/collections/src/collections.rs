//! Collections: list, create, and set a collection's products (the whole ordered list).

use serde::{Deserialize, Serialize};
use shop_domain::catalog::management::collection::{self, CollectionRecord, NewCollection};
use shop_domain::catalog::management::Refusal;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::collections as store;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

#[derive(Serialize)]
struct Collections {
    data: Vec<CollectionRecord>,
}

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[])?;
    let db = call.db()?;
    let data = store::collections(&db).await?;
    Ok(Reply::json(200, &Collections { data })?)
}

pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let input: NewCollection = call.json()?;
    let made = collection::create(input, &CryptoIds, call.now).map_err(Refusal::from)?;
    let db = call.db()?;
    store::create_collection(&db, &made).await??;
    Ok(Reply::json(201, &made)?.header("Location", "/v1/admin/collections"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductsBody {
    product_ids: Vec<String>,
}

pub async fn set_products(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let not_found = || Problem::from(Refusal::CollectionNotFound);
    let id = call.path_param(
        0,
        |id: &str| id.starts_with("col_").then_some(id.to_owned()).ok_or(()),
        not_found,
    )?;
    let body: ProductsBody = call.json()?;
    let products = collection::products(&body.product_ids).map_err(Refusal::from)?;
    let db = call.db()?;
    if store::collection(&db, &id).await?.is_none() {
        return Err(not_found());
    }
    store::set_products(&db, &id, &products, call.now.millis()).await??;
    let saved = store::collection(&db, &id).await?.ok_or_else(not_found)?;
    Ok(Reply::json(200, &saved)?)
}
