//! The category tree: list, create, rename, move and reorder. The database refuses a sibling
//! with the same handle and a move that would make a cycle, inside the change's batch.

use shop_domain::catalog::management::category::{self, CategoryPatch, NewCategory};
use shop_domain::catalog::management::Refusal;
use shop_domain::kernel::ids::CategoryId;
use shop_edge::http::refusals::catalog::category_not_found;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::products as store;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

#[derive(serde::Serialize)]
struct Categories {
    data: Vec<category::CategoryRecord>,
}

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[])?;
    let db = call.db()?;
    let data = store::categories(&db).await?;
    Ok(Reply::json(200, &Categories { data })?)
}

pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let input: NewCategory = call.json()?;
    let change = category::create(input, &CryptoIds, call.now).map_err(Refusal::from)?;
    let db = call.db()?;
    store::create_category(&db, &change).await??;
    call.publish(std::slice::from_ref(&change.event)).await;
    Ok(Reply::json(201, &change.category)?.header(
        "Location",
        format!("/v1/admin/categories/{}", change.category.id),
    ))
}

pub async fn update(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = call.path_param(0, CategoryId::parse, category_not_found)?;
    let patch: CategoryPatch = call.json()?;
    let db = call.db()?;
    let current = store::category(&db, &id)
        .await?
        .ok_or_else(category_not_found)?;
    let Some(change) = current
        .revise(patch, &CryptoIds, call.now)
        .map_err(Refusal::from)?
    else {
        return Ok(Reply::json(200, &current)?);
    };
    store::save_category(&db, &change).await??;
    call.publish(std::slice::from_ref(&change.event)).await;
    Ok(Reply::json(200, &change.category)?)
}
