//! `GET /v1/search`: products found by what a shopper types (see `shop_edge::store::search`),
//! served through the catalog's cache like every storefront read.

use shop_domain::catalog::search::{SearchSort, SearchText};
use shop_edge::store::search::{self as store, SearchRequest};
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

/// The query parameters of `GET /v1/search`.
pub const PARAMS: &[&str] = &["q", "category", "in_stock", "sort", "cursor", "limit"];

pub async fn search(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let q = call.query("q").ok_or_else(|| {
        Problem::invalid_field("/query/q", "missing_query", "q is what to search for")
    })?;
    let text = SearchText::parse(q).map_err(|issue| Problem::invalid_inputs(vec![issue]))?;
    let category = crate::category_filter(call)?;
    let sort = call
        .parsed_query(
            "sort",
            "invalid_sort",
            "relevance or newest",
            SearchSort::parse,
        )?
        .unwrap_or(SearchSort::Relevance);
    let after = call.cursor()?;
    let request = SearchRequest {
        text: &text,
        category: category.as_ref(),
        in_stock: call.flag_query("in_stock")?,
        sort,
        after: after.as_ref(),
        limit: call.limit()?,
    };
    let db = call.db()?;
    let page = store::search(&db, &request).await?;
    Ok(Reply::json(200, &page)?)
}
