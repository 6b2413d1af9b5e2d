//! Problems that several of the back office's order routes answer, each built in one place.

use shop_domain::ids::{LineId, Sku};
use shop_domain::order::LineRef;
use shop_edge::http::problem::FieldError;
use shop_edge::Problem;

/// 409 `order_changed`: the order moved while the request acted; retrying is safe.
pub fn order_changed(detail: &str) -> Problem {
    Problem::new(409, "order_changed", "Order changed", detail).with_header("Retry-After", "1")
}

/// The line `lines/{index}` of a request names: its `line_id` (an order line's `id`) or its
/// `sku`, exactly one of them; a bad or missing one is added to `errors`.
pub fn line_ref(
    index: usize,
    line_id: Option<&str>,
    sku: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<LineRef> {
    let parsed = match (line_id, sku) {
        (Some(id), None) => LineId::parse(id).ok().map(LineRef::Id).ok_or((
            "line_id",
            "invalid_line_id",
            "not a line id (an order line's id)",
        )),
        (None, Some(sku)) => {
            Sku::parse(sku)
                .ok()
                .map(LineRef::Sku)
                .ok_or(("sku", "invalid_sku", "not a SKU"))
        }
        _ => Err((
            "line_id",
            "invalid_line",
            "a line is named by exactly one of line_id (an order line's id) or sku",
        )),
    };
    parsed
        .map_err(|(field, code, detail)| {
            errors.push(FieldError::new(
                format!("/lines/{index}/{field}"),
                code,
                detail,
            ))
        })
        .ok()
}

/// 422 for `lines/{index}`: the order has no such line, or the request names it twice.
pub fn unknown_line(index: usize, line: &LineRef) -> Problem {
    let (field, name) = match line {
        LineRef::Id(id) => ("line_id", id.as_str()),
        LineRef::Sku(sku) => ("sku", sku.as_str()),
    };
    Problem::invalid_field(
        &format!("/lines/{index}/{field}"),
        "unknown_line",
        format!("the order has no line {name}, or it is named twice"),
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
