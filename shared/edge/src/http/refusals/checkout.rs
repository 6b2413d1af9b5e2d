//! What a checkout answers when it is refused: the one mapping of `CheckoutError`. (The
//! worker logs a payment provider's failure before answering it.)

use shop_domain::checkout::CheckoutError;

use crate::http::problem::Problem;

impl From<CheckoutError> for Problem {
    fn from(error: CheckoutError) -> Self {
        match error {
        CheckoutError::CartNotFound => Problem::not_found("cart_not_found", "No cart with this id"),
        CheckoutError::CartExpired => {
            Problem::not_found("cart_expired", "This cart expired; create a new one")
        }
        CheckoutError::CartEmpty => Problem::new(
            422,
            "cart_empty",
            "Cart is empty",
            "Add items before checking out",
        ),
        CheckoutError::AlreadyCheckedOut { order_id } => Problem::new(
            409,
            "cart_already_checked_out",
            "Cart already checked out",
            format!("This cart already became order {order_id}"),
        )
        .with_extra("order_id", order_id.as_str().into()),
        CheckoutError::UnknownShippingMethod { known } => Problem::invalid_field(
            "/shipping_method",
            "unknown_shipping_method",
            format!(
                "No such shipping method to this address for this cart (the parcel's weight and the cart's currency count); the address's zone has: {}",
                known.join(", ")
            ),
        ),
        CheckoutError::ShippingMethodRequired => Problem::invalid_field(
            "/shipping_method",
            "shipping_method_required",
            "Name a shipping_method, or choose the cart's shipping first (PUT /v1/carts/{id}/shipping)",
        ),
        CheckoutError::ShippingMethodNotChosen { chosen } => Problem::invalid_field(
            "/shipping_method",
            "shipping_method_not_chosen",
            format!(
                "The cart's chosen shipping method is {chosen}; omit shipping_method, or choose the cart's shipping again (PUT /v1/carts/{{id}}/shipping)"
            ),
        )
        .with_extra("chosen", chosen.into()),
        CheckoutError::ShippingChanged { shown, at_address } => Problem::new(
            409,
            "shipping_changed",
            "Shipping price changed",
            "Shipping to this address costs another price than the cart shows for its chosen destination; choose the cart's shipping for this address (PUT /v1/carts/{id}/shipping), then check out again",
        )
        .with_extra(
            "cart_shipping",
            serde_json::to_value(shown).unwrap_or_default(),
        )
        .with_extra(
            "address_shipping",
            serde_json::to_value(at_address).unwrap_or_default(),
        ),
        CheckoutError::UnknownPaymentProvider { known } => Problem::invalid_field(
            "/payment_provider",
            "unknown_payment_provider",
            format!("Payment providers: {}", known.join(", ")),
        ),
        CheckoutError::InsufficientStock(shortages) => Problem::insufficient_stock(&shortages),
        CheckoutError::HoldLimit(skus) => Problem::new(
            409,
            "unpaid_hold_limit",
            "Held by unpaid orders",
            "Unpaid orders hold as much of these items as they may at once; try again in a few minutes, when some are paid for or released",
        )
        .with_extra(
            "skus",
            skus.iter().map(|s| s.as_str().into()).collect::<Vec<serde_json::Value>>().into(),
        ),
        CheckoutError::TooManyUnits {
            sku,
            requested,
            max,
        } => Problem::new(
            422,
            "sku_quantity_above_limit",
            "Too many units of one item",
            format!("An order holds at most {max} units of {sku}; the cart has {requested}"),
        )
        .with_extra("sku", sku.as_str().into())
        .with_extra("requested", requested.into())
        .with_extra("max", max.into()),
        CheckoutError::PriceChanged(changes) => Problem::new(
            409,
            "price_changed",
            "Prices changed",
            "Some prices changed since they were added to the cart; refresh the cart (POST /v1/carts/{id}/refresh) to accept the current prices, then check out again",
        )
        .with_extra(
            "changes",
            serde_json::to_value(&changes).unwrap_or_default(),
        ),
        CheckoutError::CartChanged => Problem::new(
            409,
            "cart_changed",
            "Cart changed",
            "The cart or its stock changed during checkout; read it again and retry",
        )
        .with_header("Retry-After", "1"),
        CheckoutError::Payment(_) => {
            Problem::new(
                502,
                "payment_provider_unavailable",
                "Payment provider unavailable",
                "The payment provider could not create a payment; nothing was charged or reserved, retry later",
            )
        }
        CheckoutError::Store(e) => e.into(),
    }
    }
}
