//! `POST /v1/carts/{id}/checkout`: parse the request, apply the abuse limits, run the domain's
//! checkout, answer the order with its payment session and order token. A replay with the same
//! `Idempotency-Key` issues the credentials again (they are never stored).

use serde::{Deserialize, Serialize};
use shop_domain::checkout::{
    AddressInput, Checkout, CheckoutError, CheckoutInput, CheckoutPolicy, CheckoutRequest,
    PaymentReference, PaymentSession,
};
use shop_domain::kernel::ids::{CartId, OrderId};
use shop_domain::orders::order::{Order, OrderStore};
use shop_edge::http::auth::Audience;
use shop_edge::http::reply::JSON;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::outbound::providers::Providers;
use shop_edge::store::carts::D1Carts;
use shop_edge::store::orders::D1Orders;
use shop_edge::store::shipping as store_shipping;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    name: String,
    line1: String,
    #[serde(default)]
    line2: Option<String>,
    city: String,
    postal_code: String,
    #[serde(default)]
    region: Option<String>,
    country: String,
    #[serde(default)]
    phone: Option<String>,
}

impl From<AddressBody> for AddressInput {
    fn from(a: AddressBody) -> Self {
        AddressInput {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country: a.country,
            phone: a.phone,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    email: String,
    shipping_address: AddressBody,
    #[serde(default)]
    billing_address: Option<AddressBody>,
    /// Absent: the method chosen for the cart (`PUT /v1/carts/{id}/shipping`).
    #[serde(default)]
    shipping_method: Option<String>,
    payment_provider: String,
}

#[derive(Serialize)]
struct CheckoutAnswer<'a> {
    order: &'a Order,
    payment: &'a PaymentSession,
    /// Bearer token that lets whoever placed the order read it later, without an account.
    order_token: String,
    /// Opens the order's public tracking page (`GET /v1/tracking/{token}`) and nothing else:
    /// for the confirmation email.
    tracking_token: String,
}

/// What a checkout's idempotency record keeps: the answer without the credentials it showed
/// (the order token and the payment's client secret), which a replay issues again.
#[derive(Serialize, Deserialize)]
struct StoredCheckout {
    order: Order,
    payment: PaymentReference,
}

pub async fn checkout(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    if let Some(stored) = &call.replayed {
        return replay_checkout(call, stored).await;
    }
    let key = call.require_idempotency_key()?;
    let cart_id = call.path_param(0, CartId::parse, || {
        Problem::not_found("cart_not_found", "No cart with this id")
    })?;
    let body: CheckoutBody = call.json()?;
    let request = CheckoutRequest::parse(CheckoutInput {
        email: body.email,
        shipping_address: body.shipping_address.into(),
        billing_address: body.billing_address.map(Into::into),
        shipping_method: body.shipping_method.unwrap_or_default(),
        payment_provider: body.payment_provider,
    })
    .map_err(Problem::invalid_inputs)?;

    // Abuse limits (the platform's rate limiter): per client address, then per email, so a
    // guest cannot hold the stock with one unpaid order after another.
    call.rate_limit_client("CHECKOUT_BY_CLIENT").await?;
    call.rate_limit_email("CHECKOUT_BY_EMAIL", request.email.as_str())
        .await?;

    let settings = &call.config.checkout;
    let db = call.db()?;
    let carts = D1Carts::new(&db);
    // What a placed order answers, stored in the placement batch when the request has a key.
    let answer = |order: &Order| stored_reply(order).ok();
    let orders = D1Orders::answering(&db, &answer);
    let registry = Providers::new(&call.env, &call.config, Some(&cart_id), &CryptoIds);
    let providers = registry.enabled();
    if providers.is_empty() {
        return Err(call.internal(
            "checkout",
            &"PAYMENT_PROVIDERS is not set: no payment provider is enabled",
        ));
    }
    let policy = CheckoutPolicy {
        tax_rate: call.config.cart.tax_rate,
        reservation_ttl: settings.reservation_ttl,
        max_units_per_sku: settings.max_units_per_sku,
        unpaid_hold: settings.unpaid_hold,
    };
    // The shipping configuration (D1), read at most once a minute per isolate.
    let zones = store_shipping::zones_cached(&db, call.now).await?;
    let customer = call.customer();
    let service = Checkout {
        carts: &carts,
        orders: &orders,
        shipping: &zones,
        providers: &providers,
        ids: &CryptoIds,
        policy: &policy,
        customer: customer.as_ref(),
    };
    let placed = service
        .checkout(&cart_id, &request, &key, call.now)
        .await
        .map_err(|e| map_error(call, e))?;

    call.publish(&placed.events).await;
    let answer = CheckoutAnswer {
        order: &placed.order,
        payment: &placed.payment,
        order_token: order_token(call, &placed.order.id)?,
        tracking_token: tracking_token(call, &placed.order.id)?,
    };
    let body = serde_json::to_string(&answer)?;
    let stored = stored_reply(&placed.order)?;
    Ok(Reply { body, ..stored })
}

/// A placed order's answer as its idempotency record keeps it: 201 with the order and its
/// payment reference, to be completed on replay (see [`StoredCheckout`]). The order's number
/// may still be empty (the placement batch assigns it); a replay reads it.
fn stored_reply(order: &Order) -> Result<Reply, serde_json::Error> {
    let stored = StoredCheckout {
        order: order.clone(),
        payment: order.payment_reference(),
    };
    Ok(Reply::raw(201, JSON, String::new())
        .header("Location", format!("/v1/orders/{}", order.id))
        .complete_on_replay(serde_json::to_string(&stored)?))
}

/// A record stored before order lines had ids (schema/0017): only what finds the order again.
#[derive(Deserialize)]
struct StoredBeforeLineIds {
    order: StoredOrderId,
    payment: PaymentReference,
}

#[derive(Deserialize)]
struct StoredOrderId {
    id: OrderId,
}

/// A replayed checkout: the stored order and payment, with a fresh order token and the client
/// secret read again from the payment provider. Nothing is placed or charged again.
async fn replay_checkout(call: &Call<Endpoint>, stored: &Reply) -> Result<Reply, Problem> {
    let mut record: StoredCheckout = match serde_json::from_str(&stored.body) {
        Ok(record) => record,
        // Kept (for a day) from before order lines had ids: the order as it is stored now.
        Err(_) => {
            let legacy: StoredBeforeLineIds = serde_json::from_str(&stored.body)?;
            let db = call.db()?;
            let order = D1Orders::new(&db)
                .get(&legacy.order.id)
                .await?
                .ok_or_else(|| call.internal("stored checkout", &"its order is missing"))?;
            StoredCheckout {
                order,
                payment: legacy.payment,
            }
        }
    };
    if record.order.number.is_empty() {
        // Stored with the placement, before the batch numbered the order.
        let db = call.db()?;
        record.order.number = D1Orders::new(&db)
            .get(&record.order.id)
            .await?
            .ok_or_else(|| call.internal("stored checkout", &"its order is missing"))?
            .number;
    }
    let registry = Providers::new(
        &call.env,
        &call.config,
        Some(&record.order.cart_id),
        &CryptoIds,
    );
    let providers = registry.enabled();
    let payment = record
        .payment
        .resume(&providers)
        .await
        .map_err(|e| map_error(call, CheckoutError::Payment(e)))?;
    let answer = CheckoutAnswer {
        order: &record.order,
        payment: &payment,
        order_token: order_token(call, &record.order.id)?,
        tracking_token: tracking_token(call, &record.order.id)?,
    };
    let body = serde_json::to_string(&answer)?;
    Ok(Reply {
        body,
        replay_body: None,
        completed_on_replay: false,
        ..stored.clone()
    })
}

pub fn order_token(call: &Call<Endpoint>, order: &OrderId) -> Result<String, Problem> {
    token(call, order, Audience::Order, "order:read")
}

fn tracking_token(call: &Call<Endpoint>, order: &OrderId) -> Result<String, Problem> {
    token(call, order, Audience::Tracking, "tracking:read")
}

/// A token for `order` alone, as long-lived as an order token.
fn token(
    call: &Call<Endpoint>,
    order: &OrderId,
    audience: Audience,
    scope: &str,
) -> Result<String, Problem> {
    call.mint(
        order.as_str(),
        audience,
        &[scope],
        call.config.checkout.order_token_ttl,
    )
}

/// The one mapping of checkout errors: a payment provider's failure is logged, then answered.
fn map_error(call: &Call<Endpoint>, error: CheckoutError) -> Problem {
    if let CheckoutError::Payment(e) = &error {
        call.internal("payment provider", e);
    }
    Problem::from(error)
}
