//! The cart worker: carts under `/v1/carts` (a guest's, opened by its id, or a signed-in
//! customer's, which answers only to their access token). Thin glue over `shop_domain::cart`.

use shop_domain::cart::{CartView, Carts, Quantity, ShippingChoice, ABSOLUTE_MAX_QUANTITY};
use shop_domain::kernel::ids::Sku;
use shop_edge::http::refusals::cart as refusals;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::carts::D1Carts;
use shop_edge::store::shipping::CachedZones;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

mod answers;
mod bodies;

use answers::{cart_id, cart_reply, line_id, parse_currency, shipping_options};
use bodies::{AddItem, ChooseShipping, CreateCart, SetQuantity};

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
            let quantity = Quantity::new(body.quantity)
                .map_err(|e| refusals::quantity_problem(e.to_string()))?;
            carts
                .add_item(&id, &call.precondition(), &sku, quantity, now)
                .await
        }
        Endpoint::SetQuantity => {
            let (id, line) = (cart_id(&call)?, line_id(&call)?);
            let body: SetQuantity = call.json()?;
            let quantity = u32::try_from(body.quantity)
                .ok()
                .filter(|q| *q <= ABSOLUTE_MAX_QUANTITY)
                .ok_or_else(|| {
                    refusals::quantity_problem(format!(
                        "quantity is a whole number from 0 (remove) to {ABSOLUTE_MAX_QUANTITY}"
                    ))
                })?;
            carts
                .set_quantity(&id, &call.precondition(), &line, quantity, now)
                .await
        }
        Endpoint::RemoveLine => {
            let (id, line) = (cart_id(&call)?, line_id(&call)?);
            carts
                .remove_line(&id, &call.precondition(), &line, now)
                .await
        }
        Endpoint::Clear => {
            carts
                .clear(&cart_id(&call)?, &call.precondition(), now)
                .await
        }
        Endpoint::Refresh => {
            carts
                .refresh(&cart_id(&call)?, &call.precondition(), now)
                .await
        }
        Endpoint::ChooseShipping => {
            let id = cart_id(&call)?;
            let body: ChooseShipping = call.json()?;
            let choice = ShippingChoice::parse(&body.country, &body.postal_code, &body.method)
                .map_err(Problem::invalid_inputs)?;
            carts
                .choose_shipping(&id, &call.precondition(), choice, now)
                .await
        }
        Endpoint::ClearShipping => {
            carts
                .clear_shipping(&cart_id(&call)?, &call.precondition(), now)
                .await
        }
        Endpoint::ShippingOptions => return Err(Problem::route_not_found()),
    };
    let view = result.map_err(Problem::from)?;
    Ok(cart_reply(endpoint, &view)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn checkout_paths_go_to_the_checkout_worker() {
        assert!(is_checkout("/v1/carts/cart_1/checkout"));
        assert!(!is_checkout("/v1/carts/cart_1/checkout/x"));
        assert!(!is_checkout("/v1/carts//checkout"));
        assert!(!is_checkout("/v1/carts/cart_1/items"));
    }
}

shop_edge::route_table_test!();
