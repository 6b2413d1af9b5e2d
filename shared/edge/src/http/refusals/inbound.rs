//! What the signed inbound routes (payment providers, logistics partners) answer before or
//! after verification when they cannot take a delivery.

use crate::http::problem::Problem;

/// 404: no payment provider with this name is configured.
pub fn unknown_provider() -> Problem {
    Problem::new(
        404,
        "unknown_provider",
        "Unknown payment provider",
        "No payment provider with this name is configured.",
    )
}

/// 503: the order kept changing while a payment event was applied; the provider delivers it again.
pub fn order_busy() -> Problem {
    Problem::new(
        503,
        "order_busy",
        "Order busy",
        "The order kept changing while this event was applied; deliver it again",
    )
    .with_header("Retry-After", "1")
}

/// 404: no logistics partner with this name is configured.
pub fn unknown_partner() -> Problem {
    Problem::new(
        404,
        "unknown_partner",
        "Unknown logistics partner",
        "No logistics partner with this name is configured.",
    )
}
