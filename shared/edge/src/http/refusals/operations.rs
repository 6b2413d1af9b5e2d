//! What the operations routes answer for what they cannot find or do.

use crate::http::problem::Problem;

/// 404: no webhook delivery has this id.
pub fn delivery_not_found() -> Problem {
    Problem::new(
        404,
        "delivery_not_found",
        "Not found",
        "No webhook delivery has this id",
    )
}

/// 404: no webhook endpoint has this id.
pub fn endpoint_not_found() -> Problem {
    Problem::new(
        404,
        "endpoint_not_found",
        "Not found",
        "No webhook endpoint has this id",
    )
}

/// 409: a dead message that is not an event this system wrote.
pub fn not_redrivable() -> Problem {
    Problem::new(
            409,
            "not_redrivable",
            "Cannot be redriven",
            "This message is not an event this system wrote (it could not be decoded, or has no outbox row); it can only be inspected",
        )
}
