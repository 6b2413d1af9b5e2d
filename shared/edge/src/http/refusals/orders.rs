//! What the order routes answer when the domain refuses: one mapping per refusal enum (refunds,
//! shipments, lifecycle moves) and the problems they share, each built in one place.

use shop_domain::checkout::PaymentError;
use shop_domain::kernel::ids::{LineId, Sku};
use shop_domain::orders::lifecycle::LifecycleError;
use shop_domain::orders::order::LineRef;
use shop_domain::orders::refunds::RefundError;
use shop_domain::orders::shipments::ShipmentError;

use crate::http::problem::{FieldError, Problem};

/// 404 `order_not_found`, answered alike by every route that names an order.
pub fn order_not_found() -> Problem {
    Problem::not_found("order_not_found", "No order with this id")
}

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

/// The one mapping of order lifecycle errors to HTTP (`verb`: what was attempted).
pub fn lifecycle(error: LifecycleError, verb: &str) -> Problem {
    match error {
        LifecycleError::NotFound => order_not_found(),
        LifecycleError::Illegal(illegal) => Problem::new(
            409,
            "illegal_transition",
            "Not allowed in this state",
            format!(
                "An order that is {} cannot be {verb}",
                illegal.from.as_str()
            ),
        ),
        LifecycleError::Ledger(_) => Problem::new(
            409,
            "nothing_to_capture",
            "Nothing to capture",
            "The order is captured in full",
        ),
        LifecycleError::Moved | LifecycleError::AlreadyRecorded => {
            order_changed("The order changed meanwhile; retry")
        }
        LifecycleError::Store(e) => e.into(),
    }
}

pub fn another_order() -> Problem {
    Problem::new(
        403,
        "forbidden",
        "Forbidden",
        "This token is for another order",
    )
}

/// The one mapping of refund errors to HTTP.
impl From<RefundError> for Problem {
    fn from(error: RefundError) -> Self {
        match error {
            RefundError::NotFound => order_not_found(),
            RefundError::NotPaid => Problem::new(
                409,
                "order_not_paid",
                "Order not paid",
                "Nothing was captured for this order, so nothing can be refunded",
            ),
            RefundError::Exceeds { refundable } => Problem::new(
                422,
                "refund_exceeds_captured",
                "Refund exceeds what is left",
                format!(
                "At most {} {} can be refunded (captured, less what is refunded or being refunded, \
                 of the lines named)",
                refundable.amount(),
                refundable.currency().code()
            ),
            )
            .with_extra(
                "refundable",
                serde_json::to_value(refundable).unwrap_or_default(),
            ),
            RefundError::InvalidAmount { currency, step } => Problem::invalid_field(
                "/amount",
                "invalid_amount",
                if step > 1 {
                    format!(
                    "amount is positive, in the order's currency ({}), in steps of {step} minor units (what its payment provider refunds in)",
                    currency.code()
                )
                } else {
                    format!(
                        "amount is positive and in the order's currency ({})",
                        currency.code()
                    )
                },
            ),
            RefundError::UnknownLine { index, line } => unknown_line(index, &line),
            RefundError::TooManyUnits { index, left } => too_many_units(index, left, "refund"),
            RefundError::KeyReused => Problem::new(
                409,
                "idempotency_key_reused",
                "Idempotency-Key reused",
                "This Idempotency-Key made another refund of this order; use a new key",
            ),
            RefundError::Busy => {
                order_changed("Other refunds of this order kept changing it; retry")
            }
            RefundError::Provider(PaymentError::Declined(_)) => Problem::new(
                502,
                "refund_declined",
                "Refund declined",
                "The payment provider declined the refund; nothing is refunded",
            ),
            RefundError::Provider(PaymentError::Unavailable(_)) => Problem::new(
                502,
                "payment_provider_unavailable",
                "Payment provider unavailable",
                "The payment provider did not answer; retry with the same Idempotency-Key",
            ),
            RefundError::Store(e) => e.into(),
        }
    }
}

/// The one mapping of shipment errors to HTTP.
impl From<ShipmentError> for Problem {
    fn from(error: ShipmentError) -> Self {
        match error {
            ShipmentError::NotFound => order_not_found(),
            ShipmentError::Illegal(illegal) => Problem::new(
                409,
                "illegal_transition",
                "Not allowed in this state",
                format!("An order that is {} cannot ship", illegal.from.as_str()),
            ),
            ShipmentError::UnknownLine { index, line } => unknown_line(index, &line),
            ShipmentError::TooManyUnits { index, left } => too_many_units(index, left, "ship"),
            ShipmentError::TrackingNumberTaken => Problem::new(
                409,
                "tracking_number_taken",
                "Tracking number taken",
                "This carrier's tracking number belongs to another shipment",
            ),
            ShipmentError::Moved => order_changed("The order changed meanwhile; retry"),
            ShipmentError::Store(e) => e.into(),
        }
    }
}
