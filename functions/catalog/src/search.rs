//! `GET /v1/search`: products found by what a shopper types (see `shop_edge::store::search`),
//! served through the catalog's cache like every storefront read.

use shop_domain::catalog::search::{OptionFilter, SearchSort, SearchText};
use shop_domain::catalog::Category;
use shop_domain::kernel::money::{Currency, Money};
use shop_edge::store::search::{self as store, SearchRequest};
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

/// The query parameters of `GET /v1/search` (`option.<name>` once per value).
pub const PARAMS: &[&str] = &[
    "q",
    "category",
    "in_stock",
    "currency",
    "price_min",
    "price_max",
    "option.*",
    "rating_min",
    "sort",
    "cursor",
    "limit",
];

fn invalid(name: &str, code: &'static str, detail: &str) -> Problem {
    Problem::invalid_field(&format!("/query/{name}"), code, detail)
}

pub async fn search(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let q = call
        .query("q")
        .ok_or_else(|| invalid("q", "missing_query", "q is what to search for"))?;
    let text = SearchText::parse(q).map_err(|issue| Problem::invalid_inputs(vec![issue]))?;
    let categories = call
        .query_pairs()
        .iter()
        .filter(|(k, _)| k == "category")
        .map(|(_, v)| {
            Category::parse(v)
                .ok_or_else(|| invalid("category", "invalid_category", "a slug of a-z, 0-9 and -"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let currency = call.parsed_query(
        "currency",
        "unsupported_currency",
        "a supported currency (EUR, USD, GBP, JPY, KWD)",
        |c| c.parse::<Currency>().ok(),
    )?;
    let price = |name: &str| -> Result<Option<i64>, Problem> {
        let Some(text) = call.query(name) else {
            return Ok(None);
        };
        let currency = currency
            .ok_or_else(|| invalid(name, "currency_required", "a price bound needs a currency"))?;
        Money::parse(text, currency)
            .ok()
            .filter(|m| !m.amount().is_sign_negative())
            .map(|m| Some(m.minor_units()))
            .ok_or_else(|| {
                invalid(
                    name,
                    "invalid_amount",
                    "an amount in the currency, not negative",
                )
            })
    };
    let (price_min, price_max) = (price("price_min")?, price("price_max")?);
    let options = OptionFilter::parse(
        call.query_pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|issue| Problem::invalid_inputs(vec![issue]))?;
    let rating_min = call.parsed_query(
        "rating_min",
        "invalid_rating",
        "a whole number from 1 to 5",
        |r| r.parse::<u8>().ok().filter(|r| (1..=5).contains(r)),
    )?;
    let sort = call
        .parsed_query(
            "sort",
            "invalid_sort",
            "relevance, newest, price_asc, price_desc or rating",
            SearchSort::parse,
        )?
        .unwrap_or(SearchSort::Relevance);
    if sort.needs_currency() && currency.is_none() {
        return Err(invalid(
            "sort",
            "currency_required",
            "sorting by price needs a currency",
        ));
    }
    let after = call.cursor()?;
    let request = SearchRequest {
        text: &text,
        categories: &categories,
        in_stock: call.flag_query("in_stock")?,
        currency,
        price_min,
        price_max,
        options: &options,
        rating_min,
        sort,
        after: after.as_ref(),
        limit: call.limit()?,
    };
    let db = call.db()?;
    let page = store::search(&db, &request).await?;
    Ok(Reply::json(200, &page)?)
}

#[derive(serde::Serialize)]
struct Suggestions {
    data: Vec<store::Suggestion>,
}

/// `GET /v1/search/suggest?q=`: up to 8 completions for a search box.
pub async fn suggest(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let q = call
        .query("q")
        .ok_or_else(|| invalid("q", "missing_query", "q is what is being typed"))?;
    let text = SearchText::parse(q).map_err(|issue| Problem::invalid_inputs(vec![issue]))?;
    let db = call.db()?;
    let data = store::suggest(&db, &text, q).await?;
    Ok(Reply::json(200, &Suggestions { data })?)
}
