//! The checkout worker: `POST /v1/carts/{id}/checkout` (reached through the cart worker's
//! service binding, since production routes are path prefixes) and order reads. Thin glue over
//! `shop_domain::checkout`.

use serde::{Deserialize, Serialize};
use shop_domain::checkout::Email;
use shop_domain::checkout::OrderStore;
use shop_domain::checkout::{
    AddressInput, Checkout, CheckoutError, CheckoutInput, CheckoutPolicy, CheckoutRequest,
    DynPaymentProvider, Order, PaymentReference, PaymentSession, TestPaymentProvider,
};
use shop_domain::events::{
    INVENTORY_LOW, ORDER_CANCELLED, ORDER_CREATED, ORDER_EXPIRED, ORDER_PAID,
};
use shop_domain::ids::{CartId, OrderId};
use shop_domain::ids::{IdSource, Sku};
use shop_domain::lifecycle::{self, LifecycleError};
use shop_domain::order::OrderStatus;
use shop_domain::pagination::{Cursor, Limit};
use shop_domain::time::{Duration, Timestamp};
use shop_edge::admin;
use shop_edge::auth::{self, Audience, Principal};
use shop_edge::d1::D1Carts;
use shop_edge::dead_letters;
use shop_edge::orders::D1Orders;
use shop_edge::rate_limit;
use shop_edge::runtime::{self, CryptoIds};
use shop_edge::stripe::Stripe;
use shop_edge::webhooks;
use shop_edge::{outbox, serve, Access, Call, FieldError, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Checkout,
    GetOrder,
    CancelOrder,
    CaptureOrder,
    ListOrders,
    ListInventory,
    AdjustInventory,
    SetLowThreshold,
    CreateWebhookEndpoint,
    ListWebhookDeliveries,
    ListDeadEvents,
    RedriveDeadEvent,
}

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/carts/{cart_id}/checkout",
        access: Access::Capability,
        endpoint: Endpoint::Checkout,
    },
    Route {
        method: "GET",
        path: "/v1/orders/{order_id}",
        access: Access::Handler,
        endpoint: Endpoint::GetOrder,
    },
    Route {
        method: "POST",
        path: "/v1/admin/orders/{order_id}/cancel",
        access: Access::Admin("orders:write"),
        endpoint: Endpoint::CancelOrder,
    },
    Route {
        method: "POST",
        path: "/v1/admin/orders/{order_id}/capture",
        access: Access::Admin("orders:write"),
        endpoint: Endpoint::CaptureOrder,
    },
    Route {
        method: "GET",
        path: "/v1/admin/orders",
        access: Access::Admin("orders:read"),
        endpoint: Endpoint::ListOrders,
    },
    Route {
        method: "GET",
        path: "/v1/admin/inventory",
        access: Access::Admin("inventory:read"),
        endpoint: Endpoint::ListInventory,
    },
    Route {
        method: "POST",
        path: "/v1/admin/inventory/{sku}/adjust",
        access: Access::Admin("inventory:write"),
        endpoint: Endpoint::AdjustInventory,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/inventory/{sku}",
        access: Access::Admin("inventory:write"),
        endpoint: Endpoint::SetLowThreshold,
    },
    Route {
        method: "POST",
        path: "/v1/admin/webhook-endpoints",
        access: Access::Admin("webhooks:write"),
        endpoint: Endpoint::CreateWebhookEndpoint,
    },
    Route {
        method: "GET",
        path: "/v1/admin/dead-events",
        access: Access::Admin("events:read"),
        endpoint: Endpoint::ListDeadEvents,
    },
    Route {
        method: "POST",
        path: "/v1/admin/dead-events/{dead_event_id}/redrive",
        access: Access::Admin("events:write"),
        endpoint: Endpoint::RedriveDeadEvent,
    },
    Route {
        method: "GET",
        path: "/v1/admin/webhook-deliveries",
        access: Access::Admin("webhooks:read"),
        endpoint: Endpoint::ListWebhookDeliveries,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    serve(req, env, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Checkout => checkout(&call).await,
        Endpoint::GetOrder => get_order(&call).await,
        Endpoint::CancelOrder => transition(&call, Action::Cancel).await,
        Endpoint::CaptureOrder => transition(&call, Action::Capture).await,
        Endpoint::ListOrders => list_orders(&call).await,
        Endpoint::ListInventory => list_inventory(&call).await,
        Endpoint::AdjustInventory => adjust_inventory(&call).await,
        Endpoint::SetLowThreshold => set_low_threshold(&call).await,
        Endpoint::CreateWebhookEndpoint => create_webhook_endpoint(&call).await,
        Endpoint::ListWebhookDeliveries => list_webhook_deliveries(&call).await,
        Endpoint::ListDeadEvents => list_dead_events(&call).await,
        Endpoint::RedriveDeadEvent => redrive_dead_event(&call).await,
    }
}

/// Event types a merchant endpoint can subscribe to (`*` for all).
const EVENT_TYPES: [&str; 5] = [
    ORDER_CREATED,
    ORDER_PAID,
    ORDER_CANCELLED,
    ORDER_EXPIRED,
    INVENTORY_LOW,
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    url: String,
    event_types: Vec<String>,
}

async fn create_webhook_endpoint(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: EndpointBody = call.json()?;
    if let Err(why) = webhooks::check_url(&body.url, call.config.webhooks) {
        return Err(Problem::invalid_field("/url", "invalid_url", why));
    }
    if body.event_types.is_empty() || body.event_types.len() > 20 {
        return Err(Problem::invalid_field(
            "/event_types",
            "invalid_value",
            "event_types lists 1 to 20 types",
        ));
    }
    if let Some((i, bad)) = body
        .event_types
        .iter()
        .enumerate()
        .find(|(_, t)| t.as_str() != "*" && !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(Problem::invalid_field(
            &format!("/event_types/{i}"),
            "unknown_event_type",
            format!(
                "{bad:?} is not an event type; known: *, {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    let secret = webhooks::new_secret(&CryptoIds);
    let endpoint = webhooks::Endpoint {
        id: format!("whe_{:032x}", CryptoIds.next_u128()),
        url: body.url,
        event_types: body.event_types,
        secret: Some(secret.clone()),
        secret_already_issued: false,
        created_at: call.now,
    };
    let db = call.db()?;
    webhooks::create_endpoint(&db, &endpoint, &secret)
        .await
        .map_err(|e| call.internal("create webhook endpoint", &e))?;
    // The secret is shown once: a replay of this answer says it was issued, without it.
    let replay = webhooks::Endpoint {
        secret: None,
        secret_already_issued: true,
        ..endpoint.clone()
    };
    let replay_body =
        serde_json::to_string(&replay).map_err(|e| call.internal("serialising endpoint", &e))?;
    Reply::json(201, &endpoint)
        .map(|r| r.replayed_as(replay_body))
        .map_err(|e| call.internal("serialising endpoint", &e))
}

async fn list_webhook_deliveries(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "endpoint_id", "status"])?;
    let status = call.query("status");
    if status.is_some_and(|s| !["pending", "succeeded", "failed"].contains(&s)) {
        return Err(Problem::invalid_field(
            "/query/status",
            "invalid_status",
            "status is pending, succeeded or failed",
        ));
    }
    let after = time_cursor(call)?;
    let db = call.db()?;
    let page =
        webhooks::list_deliveries(&db, call.query("endpoint_id"), status, after, limit(call)?)
            .await
            .map_err(|e| call.internal("list webhook deliveries", &e))?;
    Reply::json(200, &page).map_err(|e| call.internal("serialising deliveries", &e))
}

async fn list_dead_events(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor"])?;
    let after = time_cursor(call)?;
    let db = call.db()?;
    let page = dead_letters::list(&db, after, limit(call)?)
        .await
        .map_err(|e| call.internal("list dead events", &e))?;
    Reply::json(200, &page).map_err(|e| call.internal("serialising dead events", &e))
}

/// Send a dead event's outbox row to the queue again now. Safe to repeat: the consumer applies
/// an event once, whatever the number of deliveries.
async fn redrive_dead_event(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = call.route.param(0);
    let db = call.db()?;
    let not_found = || Problem::not_found("dead_event_not_found", "No dead event with this id");
    let dead = dead_letters::get(&db, id)
        .await
        .map_err(|e| call.internal("get dead event", &e))?
        .ok_or_else(not_found)?;
    let not_redrivable = || {
        Problem::new(
            409,
            "not_redrivable",
            "Cannot be redriven",
            "This message is not an event this system wrote (it could not be decoded, or has no outbox row); it can only be inspected",
        )
    };
    let event_id = dead.event_id.as_deref().ok_or_else(not_redrivable)?;
    let row = outbox::row(&db, event_id)
        .await
        .map_err(|e| call.internal("read outbox row", &e))?
        .ok_or_else(not_redrivable)?;
    outbox::publish(
        &call.env,
        &db,
        std::slice::from_ref(&row),
        call.now,
        call.config.checkout.outbox_resend_after,
    )
    .await
    .map_err(|e| call.internal("redriving an event", &e))?;
    dead_letters::mark_redriven(&db, id, call.now)
        .await
        .map_err(|e| call.internal("mark redriven", &e))?;
    let dead = dead_letters::get(&db, id)
        .await
        .map_err(|e| call.internal("get dead event", &e))?
        .ok_or_else(not_found)?;
    Reply::json(200, &dead).map_err(|e| call.internal("serialising dead event", &e))
}

/// Send the events a batch wrote to the queue. A failure is logged, not answered: the rows stay
/// in the outbox, and the cron sends them again.
async fn publish(
    call: &Call<Endpoint>,
    db: &worker::D1Database,
    events: &[outbox::OutboxRow],
    what: &str,
) {
    let resend_after = call.config.checkout.outbox_resend_after;
    if let Err(e) = outbox::publish(&call.env, db, events, call.now, resend_after).await {
        call.internal(what, &e);
    }
}

fn limit(call: &Call<Endpoint>) -> Result<Limit, Problem> {
    Limit::parse(call.query("limit")).map_err(|_| {
        Problem::invalid_field(
            "/query/limit",
            "invalid_limit",
            "limit is a whole number from 1 to 100",
        )
    })
}

fn cursor(call: &Call<Endpoint>) -> Result<Option<String>, Problem> {
    call.query("cursor")
        .map(|c| {
            Cursor::decode(c).map(|c| c.key().to_owned()).map_err(|_| {
                Problem::invalid_field(
                    "/query/cursor",
                    "invalid_cursor",
                    "cursor is not one this API issued",
                )
            })
        })
        .transpose()
}

/// A cursor of a newest-first listing: `<created_at millis>:<id>` of the last item.
fn time_cursor(call: &Call<Endpoint>) -> Result<Option<(i64, String)>, Problem> {
    let invalid = || {
        Problem::invalid_field(
            "/query/cursor",
            "invalid_cursor",
            "cursor is not one this API issued",
        )
    };
    cursor(call)?
        .map(|key| {
            key.split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(invalid)
        })
        .transpose()
}

fn timestamp_param(call: &Call<Endpoint>, name: &str) -> Result<Option<Timestamp>, Problem> {
    call.query(name)
        .map(|t| {
            Timestamp::parse_rfc3339(t).ok_or_else(|| {
                Problem::invalid_field(
                    &format!("/query/{name}"),
                    "invalid_timestamp",
                    format!("{name} is an RFC 3339 timestamp"),
                )
            })
        })
        .transpose()
}

async fn list_orders(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[
        "limit",
        "cursor",
        "status",
        "email",
        "created_from",
        "created_before",
    ])?;
    let status = call
        .query("status")
        .map(|s| {
            OrderStatus::parse(s)
                .map(|s| s.as_str().to_owned())
                .ok_or_else(|| {
                    Problem::invalid_field(
                        "/query/status",
                        "invalid_status",
                        "status is one of the order statuses",
                    )
                })
        })
        .transpose()?;
    let email = call
        .query("email")
        .map(|e| {
            Email::parse(e)
                .map(|e| e.as_str().to_owned())
                .ok_or_else(|| {
                    Problem::invalid_field("/query/email", "invalid_email", "not an email address")
                })
        })
        .transpose()?;
    let after = time_cursor(call)?;
    let filter = admin::OrderFilter {
        status,
        email,
        created_from: timestamp_param(call, "created_from")?,
        created_before: timestamp_param(call, "created_before")?,
        after,
    };
    let db = call.db()?;
    let page = admin::list_orders(&db, &filter, limit(call)?)
        .await
        .map_err(|e| call.internal("list orders", &e))?;
    Reply::json(200, &page).map_err(|e| call.internal("serialising orders", &e))
}

async fn list_inventory(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "low"])?;
    let low = match call.query("low") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(Problem::invalid_field(
                "/query/low",
                "invalid_value",
                "low is true or false",
            ))
        }
    };
    let db = call.db()?;
    let page = admin::list_inventory(&db, cursor(call)?.as_deref(), low, limit(call)?)
        .await
        .map_err(|e| call.internal("list inventory", &e))?;
    Reply::json(200, &page).map_err(|e| call.internal("serialising inventory", &e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdBody {
    low_threshold: i64,
}

async fn set_low_threshold(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let not_found = || Problem::not_found("sku_not_found", "No stock record for this SKU");
    let sku = Sku::parse(call.route.param(0)).map_err(|_| not_found())?;
    let body: ThresholdBody = call.json()?;
    if !(0..=1_000_000).contains(&body.low_threshold) {
        return Err(Problem::invalid_field(
            "/low_threshold",
            "invalid_threshold",
            "low_threshold is a whole number from 0 to 1000000",
        ));
    }
    let db = call.db()?;
    let stock = admin::set_low_threshold(&db, &sku, body.low_threshold)
        .await
        .map_err(|e| call.internal("set low threshold", &e))?
        .ok_or_else(not_found)?;
    Reply::json(200, &stock).map_err(|e| call.internal("serialising stock", &e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustBody {
    delta: i64,
    reason: String,
}

async fn adjust_inventory(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.require_idempotency_key()?;
    let principal = call.admin()?;
    let not_found = || Problem::not_found("sku_not_found", "No stock record for this SKU");
    let sku = Sku::parse(call.route.param(0)).map_err(|_| not_found())?;
    let body: AdjustBody = call.json()?;
    if body.delta == 0 || body.delta.abs() > 1_000_000 {
        return Err(Problem::invalid_field(
            "/delta",
            "invalid_delta",
            "delta is a non-zero whole number, at most 1000000 either way",
        ));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Problem::invalid_field(
            "/reason",
            "invalid_reason",
            "reason is 1 to 200 characters",
        ));
    }
    let db = call.db()?;
    let id = format!("adj_{:032x}", CryptoIds.next_u128());
    match admin::adjust_inventory(&db, &id, &sku, body.delta, reason, &principal.sub, call.now)
        .await
        .map_err(|e| call.internal("adjust inventory", &e))?
    {
        admin::AdjustOutcome::UnknownSku => Err(not_found()),
        admin::AdjustOutcome::Short { available } => Err(Problem::new(
            409,
            "insufficient_stock",
            "Not enough stock",
            format!(
                "Only {available} units are available to remove; the rest is reserved by orders"
            ),
        )
        .with_extra("available", available.into())),
        admin::AdjustOutcome::Adjusted { stock, events } => {
            publish(call, &db, &events, "publishing inventory events").await;
            Reply::json(200, &stock).map_err(|e| call.internal("serialising stock", &e))
        }
    }
}

/// Every minute: expire every unpaid order past its reservation (releasing the stock), send
/// outbox rows still unsent after `OUTBOX_RESEND_AFTER_SECONDS`, and purge idempotency records
/// older than 24 h and abandoned carts past their expiry. Each step runs and is logged on its
/// own: one failing step never keeps the others from running.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let run = format!("cron_{}", CryptoIds.next_u128());
    maintain(&env, &run).await;
}

async fn maintain(env: &Env, run: &str) {
    let now = runtime::now();
    let config = match runtime::config(env) {
        Ok(config) => config,
        Err(e) => return runtime::log_error(run, "scheduled maintenance", &e),
    };
    let db = match env.d1("DB") {
        Ok(db) => db,
        Err(e) => return runtime::log_error(run, "scheduled maintenance", &e),
    };
    let mut line = serde_json::Map::new();
    line.insert("level".into(), "info".into());
    line.insert("run".into(), run.into());
    line.insert("job".into(), "maintenance".into());
    let mut record = |step: &str, result: Result<serde_json::Value, String>| {
        let value = result.unwrap_or_else(|e| {
            runtime::log_error(run, step, &e);
            serde_json::Value::Null
        });
        line.insert(step.into(), value);
    };
    let resend_after = config.checkout.outbox_resend_after;
    record(
        "expired_orders",
        expire_orders(env, &db, now, resend_after, run).await,
    );
    record(
        "outbox_resent",
        resend_outbox(env, &db, now, resend_after).await,
    );
    record(
        "purged",
        admin::purge_expired(&db, now)
            .await
            .map(
                |p| serde_json::json!({ "idempotency_keys": p.idempotency_keys, "carts": p.carts }),
            )
            .map_err(|e| e.to_string()),
    );
    worker::console_log!("{}", serde_json::Value::Object(line));
}

async fn expire_orders(
    env: &Env,
    db: &worker::D1Database,
    now: Timestamp,
    resend_after: Duration,
    run: &str,
) -> Result<serde_json::Value, String> {
    let orders = D1Orders::new(db);
    let expired = lifecycle::expire_due(&orders, &CryptoIds, now, 100).await;
    // Whatever was closed before a failure has its events in the outbox: publish them anyway.
    let events = orders.written_events.take();
    if let Err(e) = outbox::publish(env, db, &events, now, resend_after).await {
        runtime::log_error(run, "publishing expiry events", &e);
    }
    expired
        .map(|ids| ids.len().into())
        .map_err(|e| e.to_string())
}

/// Send again every outbox row the consumer has not applied and whose re-send is due, a page
/// at a time (each send moves the row's next re-send further out, so a page is never read twice).
async fn resend_outbox(
    env: &Env,
    db: &worker::D1Database,
    now: Timestamp,
    resend_after: Duration,
) -> Result<serde_json::Value, String> {
    const PAGE: u32 = 100;
    let mut resent = 0;
    loop {
        let due = outbox::unapplied_due(db, now, resend_after, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        resent += outbox::publish(env, db, &due, now, resend_after)
            .await
            .map_err(|e| e.to_string())?;
        if due.len() < PAGE as usize {
            return Ok(resent.into());
        }
    }
}

#[derive(Clone, Copy)]
enum Action {
    Cancel,
    Capture,
}

/// Merchant actions on an order: cancel (stock released or restocked) and capture (a payment
/// received outside a provider webhook, e.g. bank transfer; the reservation becomes a sale).
async fn transition(call: &Call<Endpoint>, action: Action) -> Result<Reply, Problem> {
    let not_found = || Problem::not_found("order_not_found", "No order with this id");
    let id = OrderId::parse(call.route.param(0)).map_err(|_| not_found())?;
    let db = call.db()?;
    let orders = D1Orders::new(&db);
    let (verb, result) = match action {
        Action::Cancel => (
            "cancelled",
            lifecycle::cancel(&orders, &CryptoIds, &id, call.now).await,
        ),
        Action::Capture => (
            "captured",
            lifecycle::mark_paid(&orders, &CryptoIds, &id, call.now).await,
        ),
    };
    result.map_err(|e| match e {
        LifecycleError::NotFound => not_found(),
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
        LifecycleError::Moved => Problem::new(
            409,
            "order_changed",
            "Order changed",
            "The order changed meanwhile; retry",
        )
        .with_header("Retry-After", "1"),
        LifecycleError::Store(e) => call.internal("order transition", &e),
    })?;
    let events = orders.written_events.take();
    publish(call, &db, &events, "publishing order event").await;
    let order = orders
        .get(&id)
        .await
        .map_err(|e| call.internal("get order", &e))?
        .ok_or_else(not_found)?;
    Reply::json(200, &order).map_err(|e| call.internal("serialising order", &e))
}

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
    shipping_method: String,
    payment_provider: String,
}

#[derive(Serialize)]
struct CheckoutAnswer<'a> {
    order: &'a Order,
    payment: &'a PaymentSession,
    /// Bearer token that lets whoever placed the order read it later, without an account.
    order_token: String,
}

/// What a checkout's idempotency record keeps: the answer without the credentials it showed
/// (the order token and the payment's client secret), which a replay issues again.
#[derive(Serialize, Deserialize)]
struct StoredCheckout {
    order: Order,
    payment: PaymentReference,
}

async fn checkout(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    if let Some(stored) = &call.replayed {
        return replay_checkout(call, stored).await;
    }
    let key = call.require_idempotency_key()?;
    let cart_id = CartId::parse(call.route.param(0))
        .map_err(|_| Problem::not_found("cart_not_found", "No cart with this id"))?;
    let body: CheckoutBody = call.json()?;
    let request = CheckoutRequest::parse(CheckoutInput {
        email: body.email,
        shipping_address: body.shipping_address.into(),
        billing_address: body.billing_address.map(Into::into),
        shipping_method: body.shipping_method,
        payment_provider: body.payment_provider,
    })
    .map_err(|issues| {
        Problem::new(
            422,
            "validation_failed",
            "Request is not valid",
            "Some fields are not valid",
        )
        .with_errors(
            issues
                .into_iter()
                .map(|i| FieldError::new(i.path, i.code, i.message))
                .collect(),
        )
    })?;

    // Abuse limits (the platform's rate limiter): per client address, then per email, so a
    // guest cannot hold the stock with one unpaid order after another.
    let client = call.header("CF-Connecting-IP").unwrap_or_default();
    call.rate_limit("CHECKOUT_BY_CLIENT", &format!("client:{client}"))
        .await?;
    call.rate_limit(
        "CHECKOUT_BY_EMAIL",
        &format!(
            "email:{}",
            rate_limit::digest(&request.email.as_str().to_lowercase())
        ),
    )
    .await?;

    let settings = &call.config.checkout;
    let db = call.db()?;
    let carts = D1Carts { db: &db };
    let orders = D1Orders::new(&db);
    let ids = CryptoIds;
    let test = TestPaymentProvider { ids: &ids };
    let stripe = stripe(call, &cart_id);
    let providers = enabled_providers(call, &test, &stripe);
    let policy = CheckoutPolicy {
        tax_rate: call.config.cart.tax_rate,
        reservation_ttl: settings.reservation_ttl,
        max_units_per_sku: settings.max_units_per_sku,
    };
    let service = Checkout {
        carts: &carts,
        orders: &orders,
        shipping: &settings.shipping,
        providers: &providers,
        ids: &ids,
        policy: &policy,
    };
    let placed = service
        .checkout(&cart_id, &request, &key, call.now)
        .await
        .map_err(|e| map_error(call, e))?;

    let events = orders.written_events.take();
    publish(call, &db, &events, "publishing order events").await;
    let token = order_token(call, &placed.order.id)?;
    let answer = CheckoutAnswer {
        order: &placed.order,
        payment: &placed.payment,
        order_token: token,
    };
    let stored = StoredCheckout {
        order: placed.order.clone(),
        payment: placed.payment.reference(),
    };
    let stored =
        serde_json::to_string(&stored).map_err(|e| call.internal("serialising order", &e))?;
    Reply::json(201, &answer)
        .map(|r| {
            r.header("Location", format!("/v1/orders/{}", placed.order.id))
                .complete_on_replay(stored)
        })
        .map_err(|e| call.internal("serialising order", &e))
}

/// A replayed checkout: the stored order and payment, with a fresh order token and the client
/// secret read again from the payment provider. Nothing is placed or charged again.
async fn replay_checkout(call: &Call<Endpoint>, stored: &Reply) -> Result<Reply, Problem> {
    let record: StoredCheckout =
        serde_json::from_str(&stored.body).map_err(|e| call.internal("stored checkout", &e))?;
    let ids = CryptoIds;
    let test = TestPaymentProvider { ids: &ids };
    let stripe = stripe(call, &record.order.cart_id);
    let providers = enabled_providers(call, &test, &stripe);
    let payment = record
        .payment
        .resume(&providers)
        .await
        .map_err(|e| map_error(call, CheckoutError::Payment(e)))?;
    let answer = CheckoutAnswer {
        order: &record.order,
        payment: &payment,
        order_token: order_token(call, &record.order.id)?,
    };
    let body =
        serde_json::to_string(&answer).map_err(|e| call.internal("serialising order", &e))?;
    Ok(Reply {
        body,
        replay_body: None,
        completed_on_replay: false,
        ..stored.clone()
    })
}

fn stripe(call: &Call<Endpoint>, cart_id: &CartId) -> Stripe {
    Stripe {
        api_base: call.config.checkout.stripe_api_base.clone(),
        secret_key: call
            .env
            .secret("STRIPE_SECRET_KEY")
            .map(|s| s.to_string())
            .unwrap_or_default(),
        timeout: call.config.outbound_timeout,
        cart_id: cart_id.clone(),
    }
}

/// The providers `PAYMENT_PROVIDERS` enables, in its order.
fn enabled_providers<'a>(
    call: &Call<Endpoint>,
    test: &'a TestPaymentProvider<'a>,
    stripe: &'a Stripe,
) -> Vec<&'a dyn DynPaymentProvider> {
    let mut providers: Vec<&dyn DynPaymentProvider> = Vec::new();
    for name in &call.config.checkout.payment_providers {
        match name.as_str() {
            "test" => providers.push(test),
            "stripe" => providers.push(stripe),
            _ => {}
        }
    }
    providers
}

fn order_token(call: &Call<Endpoint>, order: &OrderId) -> Result<String, Problem> {
    let principal = Principal {
        sub: order.to_string(),
        audience: Audience::Order,
        scopes: vec!["order:read".into()],
    };
    let expires = call.now.plus(call.config.checkout.order_token_ttl);
    auth::issue(&principal, call.jwt_secret()?.as_bytes(), call.now, expires)
        .map_err(|e| call.internal("issuing order token", &format!("{e:?}")))
}

async fn get_order(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let not_found = || Problem::not_found("order_not_found", "No order with this id");
    let id = OrderId::parse(call.route.param(0)).map_err(|_| not_found())?;
    // The order's own access token, or an admin token with orders:read.
    match call.require_token(Audience::Order, "order:read") {
        Ok(principal) if principal.sub == id.as_str() => {}
        Ok(_) => {
            return Err(Problem::new(
                403,
                "forbidden",
                "Forbidden",
                "This token is for another order",
            ));
        }
        Err(_) => {
            call.require_token(Audience::Admin, "orders:read")?;
        }
    }
    let db = call.db()?;
    let order = D1Orders::new(&db)
        .get(&id)
        .await
        .map_err(|e| call.internal("get order", &e))?
        .ok_or_else(not_found)?;
    Reply::json(200, &order).map_err(|e| call.internal("serialising order", &e))
}

/// The one mapping of checkout errors to HTTP.
fn map_error(call: &Call<Endpoint>, error: CheckoutError) -> Problem {
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
                "No such shipping method for this cart's currency; known: {}",
                known.join(", ")
            ),
        ),
        CheckoutError::UnknownPaymentProvider { known } => Problem::invalid_field(
            "/payment_provider",
            "unknown_payment_provider",
            format!("Payment providers: {}", known.join(", ")),
        ),
        CheckoutError::InsufficientStock(shortages) => Problem::new(
            409,
            "insufficient_stock",
            "Not enough stock",
            "Some items are no longer available in the quantity in your cart",
        )
        .with_extra(
            "shortages",
            serde_json::to_value(&shortages).unwrap_or_default(),
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
        CheckoutError::Payment(e) => {
            call.internal("payment provider", &e);
            Problem::new(
                502,
                "payment_provider_unavailable",
                "Payment provider unavailable",
                "The payment provider could not create a payment; nothing was charged or reserved, retry later",
            )
        }
        CheckoutError::Store(e) => call.internal("checkout storage", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const OPENAPI: &str = include_str!("../../../schema/openapi.json");

    #[test]
    fn every_mutation_is_authorized_by_the_pipeline() {
        assert_eq!(
            shop_edge::routing::mutations_authorized_late(ROUTES),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_route_is_in_the_openapi_document() {
        assert_eq!(
            shop_edge::routing::undocumented_routes(ROUTES, OPENAPI),
            Vec::<String>::new()
        );
    }
}
