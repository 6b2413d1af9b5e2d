//! The cart worker: carts under `/v1/carts` (a guest's, opened by its id, or a signed-in
//! customer's, which answers only to their access token). Thin glue over `shop_domain::cart`.

use serde::{Deserialize, Serialize};
use shop_domain::cart::{
    CartError, CartView, Carts, Precondition, Quantity, ShippingChoice, ABSOLUTE_MAX_QUANTITY,
};
use shop_domain::ids::{CartId, LineId, Sku};
use shop_domain::inventory::Shortage;
use shop_domain::money::Currency;
use shop_domain::shipping::{self, Destination};
use shop_edge::http::problem::FieldError;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::carts::D1Carts;
use shop_edge::store::shipping::CachedZones;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Create,
    Get,
    AddItem,
    SetQuantity,
    RemoveLine,
    Clear,
    Refresh,
    ShippingOptions,
    ChooseShipping,
    ClearShipping,
}

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/carts",
        access: Access::Shopper,
        endpoint: Endpoint::Create,
    },
    Route {
        method: "GET",
        path: "/v1/carts/{cart_id}/shipping-options",
        access: Access::Capability,
        endpoint: Endpoint::ShippingOptions,
    },
    Route {
        method: "PUT",
        path: "/v1/carts/{cart_id}/shipping",
        access: Access::Capability,
        endpoint: Endpoint::ChooseShipping,
    },
    Route {
        method: "DELETE",
        path: "/v1/carts/{cart_id}/shipping",
        access: Access::Capability,
        endpoint: Endpoint::ClearShipping,
    },
    Route {
        method: "GET",
        path: "/v1/carts/{cart_id}",
        access: Access::Capability,
        endpoint: Endpoint::Get,
    },
    Route {
        method: "POST",
        path: "/v1/carts/{cart_id}/items",
        access: Access::Capability,
        endpoint: Endpoint::AddItem,
    },
    Route {
        method: "DELETE",
        path: "/v1/carts/{cart_id}/items",
        access: Access::Capability,
        endpoint: Endpoint::Clear,
    },
    Route {
        method: "POST",
        path: "/v1/carts/{cart_id}/refresh",
        access: Access::Capability,
        endpoint: Endpoint::Refresh,
    },
    Route {
        method: "PATCH",
        path: "/v1/carts/{cart_id}/items/{line_id}",
        access: Access::Capability,
        endpoint: Endpoint::SetQuantity,
    },
    Route {
        method: "DELETE",
        path: "/v1/carts/{cart_id}/items/{line_id}",
        access: Access::Capability,
        endpoint: Endpoint::RemoveLine,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    if is_checkout(&req.path()) {
        return shop_edge::http::runtime::forward(req, &env, "CHECKOUT").await;
    }
    serve(req, env, ctx, ROUTES, handle).await
}

/// `/v1/carts/{id}/checkout` belongs to the checkout worker.
fn is_checkout(path: &str) -> bool {
    let mut segments = path.split('/');
    matches!(
        (segments.next(), segments.next(), segments.next(), segments.next(), segments.next(), segments.next()),
        (Some(""), Some("v1"), Some("carts"), Some(id), Some("checkout"), None) if !id.is_empty()
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCart {
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddItem {
    sku: String,
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetQuantity {
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChooseShipping {
    country: String,
    #[serde(default)]
    postal_code: String,
    method: String,
}

/// The longest shipping method code the configuration allows (schema/0015).
const MAX_METHOD_LEN: usize = 40;

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    let db = call.db()?;
    // What a saved change answers: stored with the change when the request has a key.
    let endpoint = call.route.endpoint;
    let answer = |view: &CartView| cart_reply(endpoint, view).ok();
    let repo = D1Carts::answering(&db, &answer);
    let now = call.now;
    // The shipping configuration, read (at most once a minute per isolate) only for a cart
    // that has chosen shipping.
    let zones = CachedZones { db: &db, now };
    let customer = call.customer();
    let carts = Carts {
        repo: &repo,
        shipping: &zones,
        ids: &CryptoIds,
        policy: &call.config.cart,
        customer: customer.as_ref(),
    };
    if endpoint == Endpoint::ShippingOptions {
        return shipping_options(&call, &carts).await;
    }
    let result = match call.route.endpoint {
        Endpoint::Create => {
            let body: CreateCart = call.json()?;
            let currency = parse_currency(&body.currency)?;
            carts.create(currency, now).await
        }
        Endpoint::Get => carts.get(&cart_id(&call)?, now).await,
        Endpoint::AddItem => {
            let id = cart_id(&call)?;
            let body: AddItem = call.json()?;
            let sku = Sku::parse(&body.sku).map_err(|_| {
                Problem::invalid_field("/sku", "invalid_sku", "A SKU is 1-64 of A-Z, 0-9 and -")
            })?;
            let quantity =
                Quantity::new(body.quantity).map_err(|e| quantity_problem(e.to_string()))?;
            carts
                .add_item(&id, &precondition(&call), &sku, quantity, now)
                .await
        }
        Endpoint::SetQuantity => {
            let (id, line) = (cart_id(&call)?, line_id(&call)?);
            let body: SetQuantity = call.json()?;
            let quantity = u32::try_from(body.quantity)
                .ok()
                .filter(|q| *q <= ABSOLUTE_MAX_QUANTITY)
                .ok_or_else(|| {
                    quantity_problem(format!(
                        "quantity is a whole number from 0 (remove) to {ABSOLUTE_MAX_QUANTITY}"
                    ))
                })?;
            carts
                .set_quantity(&id, &precondition(&call), &line, quantity, now)
                .await
        }
        Endpoint::RemoveLine => {
            let (id, line) = (cart_id(&call)?, line_id(&call)?);
            carts
                .remove_line(&id, &precondition(&call), &line, now)
                .await
        }
        Endpoint::Clear => {
            carts
                .clear(&cart_id(&call)?, &precondition(&call), now)
                .await
        }
        Endpoint::Refresh => {
            carts
                .refresh(&cart_id(&call)?, &precondition(&call), now)
                .await
        }
        Endpoint::ChooseShipping => {
            let id = cart_id(&call)?;
            let body: ChooseShipping = call.json()?;
            let choice = shipping_choice(body)?;
            carts
                .choose_shipping(&id, &precondition(&call), choice, now)
                .await
        }
        Endpoint::ClearShipping => {
            carts
                .clear_shipping(&cart_id(&call)?, &precondition(&call), now)
                .await
        }
        Endpoint::ShippingOptions => return Err(Problem::route_not_found()),
    };
    let view = result.map_err(map_error)?;
    Ok(cart_reply(endpoint, &view)?)
}

#[derive(Serialize)]
struct ShippingOptions {
    country: String,
    /// What the cart's units weigh together.
    weight_grams: u64,
    /// Every method of the destination's zone that can take the parcel, cheapest first (none
    /// when no zone covers the destination).
    options: Vec<shipping::Quote>,
}

/// `PUT /v1/carts/{id}/shipping`'s body as a choice: every bad field reported at once.
fn shipping_choice(body: ChooseShipping) -> Result<ShippingChoice, Problem> {
    let mut errors = Vec::new();
    if Destination::parse(&body.country, "").is_none() {
        errors.push(FieldError::new(
            "/country",
            "invalid_country",
            "country is an ISO 3166-1 alpha-2 code",
        ));
    } else if Destination::parse(&body.country, &body.postal_code).is_none() {
        errors.push(FieldError::new(
            "/postal_code",
            "invalid_postal_code",
            "postal_code is up to 12 letters, digits or '-' (spaces are ignored)",
        ));
    }
    let method = body.method.trim();
    if method.is_empty() || method.chars().count() > MAX_METHOD_LEN {
        errors.push(FieldError::new(
            "/method",
            "invalid_shipping_method",
            format!(
                "method is a shipping method's code (1-{MAX_METHOD_LEN} characters), as GET /v1/carts/{{id}}/shipping-options lists"
            ),
        ));
    }
    match Destination::parse(&body.country, &body.postal_code) {
        Some(destination) if errors.is_empty() => Ok(ShippingChoice {
            destination,
            method: method.to_owned(),
        }),
        _ => Err(Problem::invalid_fields(errors)),
    }
}

/// `GET /v1/carts/{id}/shipping-options?country=&postal_code=`: what each method of the
/// destination's zone costs for this cart (its weight, its subtotal against the free-shipping
/// threshold), in the cart's currency.
async fn shipping_options<R: shop_domain::cart::CartRepository>(
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
fn cart_reply(endpoint: Endpoint, view: &CartView) -> Result<Reply, serde_json::Error> {
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
fn cart_id(call: &Call<Endpoint>) -> Result<CartId, Problem> {
    call.path_param(0, CartId::parse, not_found_cart)
}

fn line_id(call: &Call<Endpoint>) -> Result<LineId, Problem> {
    call.path_param(1, LineId::parse, || {
        Problem::not_found("line_not_found", "No such line in this cart")
    })
}

fn parse_currency(code: &str) -> Result<Currency, Problem> {
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

fn quantity_problem(detail: String) -> Problem {
    Problem::invalid_field("/quantity", "invalid_quantity", detail)
}

/// `If-Match`: absent or `*` means no condition; otherwise a list of entity tags.
fn precondition(call: &Call<Endpoint>) -> Precondition {
    match call.header("If-Match") {
        None => Precondition::None,
        Some(value) if value.trim() == "*" => Precondition::None,
        Some(value) => {
            Precondition::Matches(value.split(',').map(|t| t.trim().to_owned()).collect())
        }
    }
}

fn not_found_cart() -> Problem {
    Problem::not_found("cart_not_found", "No cart with this id")
}

/// The one mapping of cart errors to HTTP.
fn map_error(error: CartError) -> Problem {
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

#[cfg(test)]
mod tests {
    use super::*;
    const OPENAPI: &str = include_str!("../../../schema/openapi.json");

    #[test]
    fn checkout_paths_go_to_the_checkout_worker() {
        assert!(is_checkout("/v1/carts/cart_1/checkout"));
        assert!(!is_checkout("/v1/carts/cart_1/checkout/x"));
        assert!(!is_checkout("/v1/carts//checkout"));
        assert!(!is_checkout("/v1/carts/cart_1/items"));
    }

    #[test]
    fn every_route_is_documented_and_authorized_by_the_pipeline() {
        assert_eq!(
            shop_edge::http::routing::route_table_faults(ROUTES, OPENAPI),
            Vec::<String>::new()
        );
    }
}
