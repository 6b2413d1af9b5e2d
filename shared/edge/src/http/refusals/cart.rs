//! What the cart routes answer when the cart refuses a change: the one mapping of `CartError`.

use shop_domain::cart::CartError;
use shop_domain::catalog::inventory::Shortage;

use crate::http::problem::Problem;

pub fn not_found_cart() -> Problem {
    Problem::not_found("cart_not_found", "No cart with this id")
}

pub fn quantity_problem(detail: String) -> Problem {
    Problem::invalid_field("/quantity", "invalid_quantity", detail)
}

/// The one mapping of cart errors to HTTP.
impl From<CartError> for Problem {
    fn from(error: CartError) -> Self {
        match error {
        CartError::NotFound => not_found_cart(),
        CartError::Expired => Problem::not_found(
            "cart_expired",
            "This cart expired after a period without changes; create a new one",
        ),
        CartError::NotActive => Problem::new(
            409,
            "cart_not_active",
            "Cart is closed",
            "This cart was checked out and can no longer change",
        ),
        CartError::LineNotFound => {
            Problem::not_found("line_not_found", "No such line in this cart")
        }
        CartError::PreconditionFailed { current } => Problem::new(
            412,
            "precondition_failed",
            "Precondition failed",
            "The cart changed since the ETag you sent; read it again and retry",
        )
        .with_header("ETag", current),
        CartError::QuantityAboveLimit { max } => {
            quantity_problem(format!("A line holds at most {max} units"))
                .with_extra("max", max.into())
        }
        CartError::InsufficientStock {
            sku,
            requested,
            available,
        } => Problem::insufficient_stock(&[Shortage {
            sku,
            requested,
            available,
        }]),
        CartError::UnknownSku { sku } => {
            Problem::invalid_field("/sku", "unknown_sku", format!("No product has SKU {sku}"))
        }
        CartError::NotSoldInCurrency { sku, currency } => Problem::invalid_field(
            "/sku",
            "sku_not_sold_in_currency",
            format!("{sku} is not sold in {currency}, the cart's currency"),
        ),
        CartError::TooManyLines { max } => Problem::new(
            409,
            "too_many_lines",
            "Cart is full",
            format!("A cart holds at most {max} different SKUs"),
        ),
        CartError::TotalTooLarge => Problem::new(
            422,
            "cart_total_too_large",
            "Cart total too large",
            "This change would take the cart's total beyond what can be charged; nothing was saved",
        ),
        CartError::ShippingUnavailable { available } => Problem::invalid_field(
            "/method",
            "unknown_shipping_method",
            if available.is_empty() {
                "No shipping method takes this cart to this destination".to_owned()
            } else {
                format!(
                    "This method does not take this cart to this destination (its weight and currency count); these do: {}",
                    available.join(", ")
                )
            },
        )
        .with_extra("available", available.into()),
        CartError::Contention => Problem::new(
            409,
            "cart_busy",
            "Cart is being changed",
            "The cart is being changed concurrently; retry",
        )
        .with_header("Retry-After", "1"),
        CartError::Store(e) => e.into(),
    }
    }
}
