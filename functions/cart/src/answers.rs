//! What the cart routes answer: the cart with its ETag, shipping options; the request's ids and
//! preconditions. (`CartError` is answered by `shop_edge::http::refusals::cart`.)

use crate::Endpoint;
use serde::Serialize;
use shop_domain::cart::{CartView, Carts};
use shop_domain::fulfilment::shipping::{self, Destination};
use shop_domain::kernel::ids::{CartId, LineId};
use shop_domain::kernel::money::Currency;
use shop_edge::http::refusals::cart as refusals;
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
        .map_err(Problem::from)?;
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
    call.path_param(0, CartId::parse, refusals::not_found_cart)
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
