//! What the cart routes answer: the cart with its ETag, shipping options, and the one mapping of
//! `CartError` to problems; the request's ids and preconditions.

use crate::Endpoint;
use serde::Serialize;
use shop_domain::cart::{CartError, CartView, Carts, Precondition};
use shop_domain::ids::{CartId, LineId};
use shop_domain::inventory::Shortage;
use shop_domain::money::Currency;
use shop_domain::shipping::{self, Destination};
use shop_edge::store::shipping::CachedZones;
use shop_edge::{Call, Problem, Reply};

#[derive(Serialize)]
pub(crate) struct ShippingOptions {
    country: String,
    /// What the cart's units weigh together.
    weight_grams: u64,
    /// Every method of the destination's zone that can take the parcel, cheapest first (none
    /// when no zone covers the destination).
    options: Vec<shipping::Quote>,
}

/// `PUT /v1/carts/{id}/shipping`'s body as a choice: every bad field reported at once.
/// `GET /v1/carts/{id}/shipping-options?country=&postal_code=`: what each method of the
/// destination's zone costs for this cart (its weight, its subtotal against the free-shipping
/// threshold), in the cart's currency.
pub(crate) async fn shipping_options<R: shop_domain::cart::CartRepository>(
    call: &Call<Endpoint>,
    carts: &Carts<'_, R, CachedZones<'_>>,
) -> Result<Reply, Problem> {
    call.only_query_params(&["country", "postal_code"])?;
    let destination = Destination::parse(
        call.query("country").unwrap_or_default(),
        call.query("postal_code").unwrap_or_default(),
    )
    .ok_or_else(|| {
        Problem::invalid_field(
            "/query/country",
            "invalid_destination",
            "country is an ISO 3166-1 alpha-2 code (postal_code, when given, up to 12 letters, digits or '-')",
        )
    })?;
    let id = cart_id(call)?;
    let (view, options) = carts
        .shipping_options(&id, &destination, call.now)
        .await
        .map_err(map_error)?;
    let answer = ShippingOptions {
        country: destination.country().to_owned(),
        weight_grams: view.weight_grams,
        options,
    };
    Ok(Reply::json(200, &answer)?)
}

/// The answer to `endpoint` once the cart is `view`.
pub(crate) fn cart_reply(endpoint: Endpoint, view: &CartView) -> Result<Reply, serde_json::Error> {
    let reply = Reply::json(200, view)?.header("ETag", view.etag.clone());
    Ok(match endpoint {
        Endpoint::Create => Reply {
            status: 201,
            ..reply.header("Location", format!("/v1/carts/{}", view.id))
        },
        _ => reply,
    })
}

/// An id in the path that does not parse cannot name an existing cart.
pub(crate) fn cart_id(call: &Call<Endpoint>) -> Result<CartId, Problem> {
    call.path_param(0, CartId::parse, not_found_cart)
}

pub(crate) fn line_id(call: &Call<Endpoint>) -> Result<LineId, Problem> {
    call.path_param(1, LineId::parse, || {
        Problem::not_found("line_not_found", "No such line in this cart")
    })
}

pub(crate) fn parse_currency(code: &str) -> Result<Currency, Problem> {
    code.parse::<Currency>().map_err(|_| {
        let supported: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
        Problem::invalid_field(
            "/currency",
            "unsupported_currency",
            format!(
                "{code:?} is not a supported currency; use one of {}",
                supported.join(", ")
            ),
        )
    })
}

pub(crate) fn quantity_problem(detail: String) -> Problem {
    Problem::invalid_field("/quantity", "invalid_quantity", detail)
}

/// `If-Match`: absent or `*` means no condition; otherwise a list of entity tags.
pub(crate) fn precondition(call: &Call<Endpoint>) -> Precondition {
    match call.header("If-Match") {
        None => Precondition::None,
        Some(value) if value.trim() == "*" => Precondition::None,
        Some(value) => {
            Precondition::Matches(value.split(',').map(|t| t.trim().to_owned()).collect())
        }
    }
}

pub(crate) fn not_found_cart() -> Problem {
    Problem::not_found("cart_not_found", "No cart with this id")
}

/// The one mapping of cart errors to HTTP.
pub(crate) fn map_error(error: CartError) -> Problem {
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
