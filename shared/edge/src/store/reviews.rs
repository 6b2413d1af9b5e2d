//! Product reviews in D1 (schema/0022). Whether a customer may review a product (a paid order
//! of theirs contains it; one review each) is decided by the review's own INSERT through a
//! trigger and a UNIQUE constraint; a product's rating is kept by triggers in the statement
//! that changes a review. A listing is one statement: the product's rating and a page of its
//! visible reviews.

use serde::{Deserialize, Serialize};
use shop_domain::customers::reviews::{HideReason, Rating, ReviewDraft, ReviewSort};
use shop_domain::kernel::ids::{CustomerId, ProductId, ReviewId};
use shop_domain::kernel::pagination::{Limit, Page};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;

use crate::store::sql::{self, err, json_err, num, opt_num, opt_str, Db, Violation};

/// A review as the public sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub product_id: String,
    /// The reviewer's name as they had it when writing; `null` when they had none.
    pub author: Option<String>,
    pub rating: u8,
    pub title: String,
    pub body: String,
    /// How many customers found it helpful.
    pub helpful: u64,
    /// Always true: only verified buyers can review.
    pub verified_buyer: bool,
    #[serde(deserialize_with = "sql::millis")]
    pub created_at: Timestamp,
}

/// A review as a moderator sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModeratedReview {
    #[serde(flatten)]
    pub review: Review,
    pub customer_id: String,
    pub hidden: bool,
    pub hidden_reason: Option<String>,
    #[serde(deserialize_with = "sql::millis")]
    pub updated_at: Timestamp,
}

/// A product's visible reviews, a page of them, with its rating.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewPage {
    pub rating: Rating,
    #[serde(flatten)]
    pub page: Page<Review>,
}

/// A review row as JSON (a `ModeratedReview`), from the columns of `reviews` in scope.
const REVIEW_JSON: &str = "json_object('id', id, 'product_id', product_id, 'author', author, \
  'rating', rating, 'title', title, 'body', body, 'helpful', helpful, \
  'verified_buyer', json('true'), 'created_at', created_at, 'customer_id', customer_id, \
  'hidden', json(CASE hidden WHEN 1 THEN 'true' ELSE 'false' END), \
  'hidden_reason', hidden_reason, 'updated_at', updated_at)";

#[derive(Debug)]
pub enum CreateOutcome {
    Created(Box<ModeratedReview>),
    UnknownProduct,
    /// The customer has no paid order containing the product.
    NotVerifiedBuyer,
    AlreadyReviewed,
}

/// Write the customer's review of `product` (with the name they have now).
pub async fn create(
    db: &Db,
    id: &ReviewId,
    product: &ProductId,
    customer: &CustomerId,
    draft: &ReviewDraft,
    now: Timestamp,
) -> Result<CreateOutcome, StoreError> {
    let context = "create review";
    let sql = format!(
        "INSERT INTO reviews (id, product_id, customer_id, author, rating, title, body, created_at, updated_at) \
         VALUES (?1, ?2, ?3, (SELECT name FROM customers WHERE id = ?3), ?4, ?5, ?6, ?7, ?7) \
         RETURNING {REVIEW_JSON} AS doc"
    );
    let binds = [
        id.as_str().into(),
        product.as_str().into(),
        customer.as_str().into(),
        num(i64::from(draft.rating())),
        draft.title().into(),
        draft.body().into(),
        num(now.millis()),
    ];
    match sql::doc(db, &sql, &binds, context).await {
        Ok(Some(doc)) => Ok(CreateOutcome::Created(Box::new(
            serde_json::from_str(&doc).map_err(json_err(context))?,
        ))),
        Ok(None) => Err(StoreError::new(format!("{context}: nothing returned"))),
        Err(e) => match sql::violation(e.message()) {
            Some(Violation::Trigger("unknown product")) => Ok(CreateOutcome::UnknownProduct),
            Some(Violation::Trigger("not a verified buyer")) => Ok(CreateOutcome::NotVerifiedBuyer),
            Some(Violation::Unique(_)) => Ok(CreateOutcome::AlreadyReviewed),
            _ => Err(e),
        },
    }
}

/// The product's rating and a page of its visible reviews in `sort` order, after the cursor
/// `after` (`(helpful, created_at, id)`); `None`: no such product.
pub async fn list(
    db: &Db,
    product: &ProductId,
    sort: ReviewSort,
    after: Option<&(u64, i64, String)>,
    limit: Limit,
) -> Result<Option<ReviewPage>, StoreError> {
    let context = "list reviews";
    let (order, position) = match sort {
        ReviewSort::Newest => (
            "created_at DESC, id DESC",
            "(?3 IS NULL OR (created_at, id) < (?4, ?5))",
        ),
        ReviewSort::Helpful => (
            "helpful DESC, created_at DESC, id DESC",
            "(?3 IS NULL OR (helpful, created_at, id) < (?3, ?4, ?5))",
        ),
    };
    let sql = format!(
        "SELECT json_object('count', p.rating_count, 'sum', p.rating_sum, 'reviews', \
           json((SELECT json_group_array(json(doc)) FROM (SELECT {REVIEW_JSON} AS doc FROM reviews \
             WHERE product_id = p.id AND hidden = 0 AND {position} ORDER BY {order} LIMIT ?2)))) AS doc \
         FROM products p WHERE p.id = ?1"
    );
    let binds = [
        product.as_str().into(),
        num(i64::from(limit.get()) + 1),
        opt_num(after.map(|a| i64::try_from(a.0).unwrap_or(i64::MAX))),
        opt_num(after.map(|a| a.1)),
        opt_str(after.map(|a| a.2.as_str())),
    ];
    #[derive(Deserialize)]
    struct Listing {
        count: u64,
        sum: u64,
        reviews: Vec<Review>,
    }
    let Some(doc) = sql::doc(db, &sql, &binds, context).await? else {
        return Ok(None);
    };
    let listing: Listing = serde_json::from_str(&doc).map_err(json_err(context))?;
    Ok(Some(ReviewPage {
        rating: Rating::from_totals(listing.count, listing.sum),
        page: Page::from_overfetch(listing.reviews, limit, |r| {
            sort.cursor_key(r.helpful, r.created_at.millis(), &r.id)
        }),
    }))
}

#[derive(Debug)]
pub enum VoteOutcome {
    /// Counted, or counted before: the review as it is now.
    Counted(Review),
    /// No visible review with this id on this product.
    NotFound,
    OwnReview,
}

/// The customer finds the review helpful: counted once per customer.
pub async fn vote(
    db: &Db,
    review: &ReviewId,
    product: &ProductId,
    customer: &CustomerId,
    now: Timestamp,
) -> Result<VoteOutcome, StoreError> {
    let context = "vote on a review";
    let statements = vec![
        db.prepare(
            "INSERT INTO review_votes (review_id, customer_id, created_at) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM reviews WHERE id = ?1 AND product_id = ?4 AND hidden = 0) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&[
            review.as_str().into(),
            customer.as_str().into(),
            num(now.millis()),
            product.as_str().into(),
        ])
        .map_err(err(context))?,
        db.prepare(format!(
            "SELECT {REVIEW_JSON} AS doc FROM reviews WHERE id = ?1 AND product_id = ?2 AND hidden = 0"
        ))
        .bind(&[review.as_str().into(), product.as_str().into()])
        .map_err(err(context))?,
    ];
    let results = match db.batch(statements).await {
        Ok(results) => results,
        Err(e) => {
            return match sql::violation(&e.to_string()) {
                Some(Violation::Trigger("own review")) => Ok(VoteOutcome::OwnReview),
                _ => Err(err(context)(e)),
            }
        }
    };
    #[derive(Deserialize)]
    struct Doc {
        doc: String,
    }
    let row: Option<Doc> = results
        .get(1)
        .map(|r| r.results::<Doc>())
        .transpose()
        .map_err(err(context))?
        .and_then(|rows| rows.into_iter().next());
    match row {
        Some(row) => Ok(VoteOutcome::Counted(
            serde_json::from_str(&row.doc).map_err(json_err(context))?,
        )),
        None => Ok(VoteOutcome::NotFound),
    }
}

/// Hide the review with `reason`, or show it again (`None`); the product's rating follows in
/// the same statement. `None`: no such review.
pub async fn moderate(
    db: &Db,
    review: &ReviewId,
    hide: Option<&HideReason>,
    now: Timestamp,
) -> Result<Option<ModeratedReview>, StoreError> {
    let context = "moderate a review";
    let sql = format!(
        "UPDATE reviews SET hidden = ?2, hidden_reason = ?3, updated_at = ?4 WHERE id = ?1 \
         RETURNING {REVIEW_JSON} AS doc"
    );
    let binds = [
        review.as_str().into(),
        num(i64::from(hide.is_some())),
        opt_str(hide.map(HideReason::as_str)),
        num(now.millis()),
    ];
    sql::doc(db, &sql, &binds, context)
        .await?
        .map(|doc| serde_json::from_str(&doc).map_err(json_err(context)))
        .transpose()
}

/// What a moderator lists: hidden or shown reviews (or both), of one product (or all).
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub hidden: Option<bool>,
    pub product: Option<ProductId>,
    /// `(created_at, id)` of the last review of the previous page.
    pub after: Option<(i64, String)>,
}

/// Reviews as moderators see them, newest first, cursor-paged.
pub async fn moderation_list(
    db: &Db,
    filter: &ReviewFilter,
    limit: Limit,
) -> Result<Page<ModeratedReview>, StoreError> {
    let context = "list reviews for moderation";
    let sql = format!(
        "SELECT json_group_array(json(doc)) AS doc FROM (SELECT {REVIEW_JSON} AS doc FROM reviews \
         WHERE (?1 IS NULL OR hidden = ?1) AND (?2 IS NULL OR product_id = ?2) \
           AND (?3 IS NULL OR (created_at, id) < (?3, ?4)) \
         ORDER BY created_at DESC, id DESC LIMIT ?5)"
    );
    let binds = [
        opt_num(filter.hidden.map(i64::from)),
        opt_str(filter.product.as_ref().map(ProductId::as_str)),
        opt_num(filter.after.as_ref().map(|a| a.0)),
        opt_str(filter.after.as_ref().map(|a| a.1.as_str())),
        num(i64::from(limit.get()) + 1),
    ];
    let rows: Vec<ModeratedReview> =
        serde_json::from_str(&sql::doc_or_empty(db, &sql, &binds, context).await?)
            .map_err(json_err(context))?;
    Ok(Page::from_overfetch(rows, limit, |r| {
        format!("{}:{}", r.review.created_at.millis(), r.review.id)
    }))
}
