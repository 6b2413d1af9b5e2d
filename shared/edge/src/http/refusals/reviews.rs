//! What the review routes answer when a review or a vote is refused.

use crate::http::problem::Problem;

/// 403: only a customer with a paid order of the product reviews it.
pub fn not_a_verified_buyer() -> Problem {
    Problem::new(
        403,
        "not_a_verified_buyer",
        "Forbidden",
        "Only a customer with a paid order containing this product can review it",
    )
}

/// 409: one review per customer and product.
pub fn already_reviewed() -> Problem {
    Problem::new(
        409,
        "already_reviewed",
        "Conflict",
        "This customer has already reviewed this product",
    )
}

/// 422: a customer does not vote for their own review.
pub fn own_review() -> Problem {
    Problem::new(
        422,
        "own_review",
        "Not allowed",
        "A customer cannot vote for their own review",
    )
}
