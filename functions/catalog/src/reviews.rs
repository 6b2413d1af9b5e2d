//! Product reviews: verified buyers write them (`POST /v1/products/{id}/reviews`, a customer's
//! access token), anyone reads them with the product's rating, customers mark them helpful and
//! moderators hide or show them again (`PATCH /v1/admin/reviews/{id}`, `reviews:write`). Glue
//! over `shop_domain::customers::reviews` and `shop_edge::store::reviews`.

use serde::Deserialize;
use shop_domain::customers::reviews::{HideReason, ReviewDraft, ReviewSort};
use shop_domain::kernel::ids::{CustomerId, ProductId, ReviewId};
use shop_edge::http::memo;
use shop_edge::http::params::invalid_cursor;
use shop_edge::http::refusals::reviews as refusals;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::reviews::{self as store, CreateOutcome, VoteOutcome};
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

fn product_not_found() -> Problem {
    Problem::not_found("product_not_found", "No product with this id")
}

fn review_not_found() -> Problem {
    Problem::not_found("review_not_found", "No review with this id")
}

fn product(call: &Call<Endpoint>) -> Result<ProductId, Problem> {
    call.path_param(0, ProductId::parse, product_not_found)
}

fn customer(call: &Call<Endpoint>) -> Result<CustomerId, Problem> {
    call.customer()
        .ok_or_else(|| call.internal("route access", &"no customer on a customer route"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    rating: i64,
    title: String,
    body: String,
}

/// `POST /v1/products/{id}/reviews`: 201 with the review; 403 without a paid order containing
/// the product, 409 for a second review.
pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let product = product(call)?;
    let body: ReviewBody = call.json()?;
    let draft = ReviewDraft::parse(body.rating, &body.title, &body.body)
        .map_err(Problem::invalid_inputs)?;
    let customer = customer(call)?;
    let db = call.db()?;
    let id = ReviewId::mint(&CryptoIds);
    match store::create(&db, &id, &product, &customer, &draft, call.now).await? {
        CreateOutcome::Created(review) => {
            memo::clear();
            Ok(Reply::json(201, &review.review)?
                .header("Location", format!("/v1/products/{product}/reviews")))
        }
        CreateOutcome::UnknownProduct => Err(product_not_found()),
        CreateOutcome::NotVerifiedBuyer => Err(refusals::not_a_verified_buyer()),
        CreateOutcome::AlreadyReviewed => Err(refusals::already_reviewed()),
    }
}

/// `GET /v1/products/{id}/reviews?sort=newest|helpful`: the rating and a page of the visible
/// reviews.
pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "sort"])?;
    let product = product(call)?;
    let sort = call
        .parsed_query(
            "sort",
            "invalid_sort",
            "newest or helpful",
            ReviewSort::parse,
        )?
        .unwrap_or(ReviewSort::Newest);
    let after = call
        .cursor()?
        .map(|c| sort.parse_cursor(c.key()).ok_or_else(invalid_cursor))
        .transpose()?;
    let db = call.db()?;
    let page = store::list(&db, &product, sort, after.as_ref(), call.limit()?)
        .await?
        .ok_or_else(product_not_found)?;
    Ok(Reply::json(200, &page)?)
}

/// `POST /v1/products/{id}/reviews/{review_id}/helpful`: counted once per customer.
pub async fn helpful(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let product = product(call)?;
    let review = call.path_param(1, ReviewId::parse, review_not_found)?;
    let customer = customer(call)?;
    let db = call.db()?;
    match store::vote(&db, &review, &product, &customer, call.now).await? {
        VoteOutcome::Counted(review) => Ok(Reply::json(200, &review)?),
        VoteOutcome::NotFound => Err(review_not_found()),
        VoteOutcome::OwnReview => Err(refusals::own_review()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModerateBody {
    hidden: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `PATCH /v1/admin/reviews/{id}` `{hidden, reason}`: hide with a reason, or show again; the
/// product's rating follows in the same statement.
pub async fn moderate(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let review = call.path_param(0, ReviewId::parse, review_not_found)?;
    let body: ModerateBody = call.json()?;
    let hide = match (body.hidden, body.reason.as_deref()) {
        (true, Some(reason)) => Some(HideReason::parse(reason).map_err(Problem::invalid_inputs)?),
        (true, None) => {
            return Err(Problem::invalid_field(
                "/reason",
                "missing_field",
                "hiding a review needs a reason",
            ))
        }
        (false, Some(_)) => {
            return Err(Problem::invalid_field(
                "/reason",
                "unexpected_field",
                "a review shown again has no reason",
            ))
        }
        (false, None) => None,
    };
    let db = call.db()?;
    let moderated = store::moderate(&db, &review, hide.as_ref(), call.now)
        .await?
        .ok_or_else(review_not_found)?;
    memo::clear();
    Ok(Reply::json(200, &moderated)?)
}

/// `GET /v1/admin/reviews?hidden=&product_id=`: reviews as moderators see them, newest first.
pub async fn moderation_list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "hidden", "product_id"])?;
    let hidden = call.parsed_query("hidden", "invalid_value", "true or false", |v| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    })?;
    let product = call.parsed_query("product_id", "invalid_product_id", "a product id", |v| {
        ProductId::parse(v).ok()
    })?;
    let filter = store::ReviewFilter {
        hidden,
        product,
        after: call.time_cursor()?,
    };
    let db = call.db()?;
    let page = store::moderation_list(&db, &filter, call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}
