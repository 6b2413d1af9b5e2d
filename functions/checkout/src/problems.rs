//! Problems that several of this worker's order routes answer, each built in one place.

use shop_domain::ids::Sku;
use shop_edge::Problem;

pub fn order_not_found() -> Problem {
    Problem::not_found("order_not_found", "No order with this id")
}

/// 409 `order_changed`: the order moved while the request acted; retrying is safe.
pub fn order_changed(detail: &str) -> Problem {
    Problem::new(409, "order_changed", "Order changed", detail).with_header("Retry-After", "1")
}

/// 422 for `lines/{index}/sku`: the order has no such line, or the request names it twice.
pub fn unknown_line(index: usize, sku: &Sku) -> Problem {
    Problem::invalid_field(
        &format!("/lines/{index}/sku"),
        "unknown_line",
        format!("the order has no line {sku}, or it is named twice"),
    )
}

/// 422 for `lines/{index}/quantity`: more units than the line has left to `verb`.
pub fn too_many_units(index: usize, left: u32, verb: &str) -> Problem {
    Problem::invalid_field(
        &format!("/lines/{index}/quantity"),
        "too_many_units",
        format!("this line has {left} units left to {verb}"),
    )
}
