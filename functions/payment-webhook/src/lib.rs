//! The payment webhooks: `POST /v1/webhooks/payments/stripe` (Stripe's signature and events)
//! and `POST /v1/webhooks/payments/{provider}` (providers that sign with Standard Webhooks, in
//! the small vocabulary of `shop_domain::payments::StandardEvent`). Thin glue over
//! `shop_domain::payments`: verify the signature on the raw body (before anything is read or
//! written), read the event, find its order, decide, and write the claim with the effects.
//!
//! A delivery is recorded once (`payment_events`, primary key `(provider, event_id)`): the claim
//! leads the batch of its effects, so a second delivery, concurrent or late, changes nothing
//! and is answered 200. A success pays its order only when the amount and currency are the
//! order's total and the order is pending payment; nothing here ever un-pays an order.

use shop_domain::events::{Event, ReviewedPayment};
use shop_domain::ids::OrderId;
use shop_domain::lifecycle::{self, AsRead, LifecycleError};
use shop_domain::payments::{
    self, Effect, Outcome, PaymentEvent, SignatureError, StandardEvent, StripeEvent, Verdict,
};
use shop_domain::refunds::{self, Refund};
use shop_domain::standard_webhooks::{self, Headers};
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::store::orders::D1Orders;
use shop_edge::store::payments as store;
use shop_edge::store::refunds::{self as store_refunds, Settled};
use shop_edge::store::sql::Db;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Stripe,
    Standard,
}

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
/// The first route that matches wins, so `stripe` is never read as a Standard Webhooks provider.
pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/webhooks/payments/stripe",
        access: Access::Signed,
        endpoint: Endpoint::Stripe,
    },
    Route {
        method: "POST",
        path: "/v1/webhooks/payments/{provider}",
        access: Access::Signed,
        endpoint: Endpoint::Standard,
    },
];

const STRIPE: &str = "stripe";

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Stripe => stripe(&call).await,
        Endpoint::Standard => standard(&call).await,
    }
}

fn received(outcome: &str) -> Result<Reply, Problem> {
    Ok(Reply::received(outcome))
}

fn signature_invalid(header: &str, e: SignatureError) -> Problem {
    Problem::new(
        400,
        "signature_invalid",
        "Signature invalid",
        format!("The {header} does not verify: {}", e.as_str()),
    )
}

/// The configured secrets of a setting (comma-separated); unset or empty is logged, since it
/// refuses every delivery.
fn secrets(call: &Call<Endpoint>, setting: &str) -> Vec<String> {
    let secrets = call.secrets(setting);
    if secrets.is_empty() {
        log_error(
            &call.request_id,
            "payment webhook",
            format!("{setting} is not set: every delivery is refused"),
        );
    }
    secrets
}

async fn stripe(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    // Verified before anything is parsed, read or written.
    let secrets = secrets(call, "STRIPE_WEBHOOK_SECRETS");
    let body = call.raw_body();
    let signed_at = payments::verify_stripe(
        call.header("Stripe-Signature").as_deref(),
        body,
        &secrets,
        call.now,
        call.config.payment_webhook_tolerance,
    )
    .map_err(|e| signature_invalid("Stripe-Signature", e))?;
    let db = call.db()?;
    let parsed = utf8(body).and_then(|text| {
        serde_json::from_str::<StripeEvent>(text)
            .map(|event| (text, event.read()))
            .map_err(|e| format!("the body is not a Stripe event: {e}"))
    });
    accept(call, &db, STRIPE, body, signed_at, parsed).await
}

async fn standard(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    // A provider is known by its secrets: one with none configured does not exist (404, the same
    // for every unconfigured or ill-formed name). Verified before anything is parsed or written.
    let provider = call.route.param(0);
    let configured = payments::standard_secrets_setting(provider)
        .map(|setting| call.secrets(&setting))
        .filter(|secrets| !secrets.is_empty());
    let Some(secrets) = configured else {
        return Err(Problem::new(
            404,
            "unknown_provider",
            "Unknown payment provider",
            "No payment provider with this name is configured.",
        ));
    };
    let body = call.raw_body();
    let id = call.header("webhook-id");
    let timestamp = call.header("webhook-timestamp");
    let signature = call.header("webhook-signature");
    let headers = Headers {
        id: id.as_deref(),
        timestamp: timestamp.as_deref(),
        signature: signature.as_deref(),
    };
    let signed_at = standard_webhooks::verify(
        headers,
        body,
        &secrets,
        call.now,
        call.config.payment_webhook_tolerance,
    )
    .map_err(|e| signature_invalid("webhook-signature", e))?;
    let id = id.unwrap_or_default();
    let db = call.db()?;
    let parsed = utf8(body).and_then(|text| {
        serde_json::from_str::<StandardEvent>(text)
            .map(|event| (text, event.read(&id)))
            .map_err(|e| format!("the body is not a payment event: {e}"))
    });
    accept(call, &db, provider, body, signed_at, parsed).await
}

fn utf8(body: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())
}

/// A verified delivery of `provider`: record what cannot be read (400), else find the event's
/// order, decide, and write the claim with the effects.
async fn accept(
    call: &Call<Endpoint>,
    db: &Db,
    provider: &str,
    body: &[u8],
    signed_at: shop_domain::time::Timestamp,
    parsed: Result<(&str, PaymentEvent), String>,
) -> Result<Reply, Problem> {
    let (text, event) = match parsed {
        Ok(parsed) => parsed,
        Err(detail) => {
            // Signed by the provider, so kept for investigation (once per distinct body).
            let claim = store::claim_malformed(db, provider, body, signed_at, call.now)?;
            store::record(claim).await?;
            return Err(Problem::new(400, "invalid_event", "Invalid event", detail));
        }
    };
    if event.effect.is_none() {
        return received("ignored");
    }
    let delivery = Delivery {
        provider,
        event: &event,
        text,
    };
    // The order may move between its read and the batch (another event, the cron, an admin):
    // the batch's guard then aborts it, and the event is decided again on the order as it is.
    for _ in 0..3 {
        if let Some(reply) = apply(call, db, delivery).await? {
            return Ok(reply);
        }
    }
    Err(Problem::new(
        503,
        "order_busy",
        "Order busy",
        "The order kept changing while this event was applied; deliver it again",
    )
    .with_header("Retry-After", "1"))
}

/// Decide on the order as it is now and apply: `None` when the order moved meanwhile (nothing
/// was written; decide again).
async fn apply(
    call: &Call<Endpoint>,
    db: &Db,
    delivery: Delivery<'_>,
) -> Result<Option<Reply>, Problem> {
    let Delivery {
        provider,
        event,
        text,
    } = delivery;
    let order = store::find_order(db, provider, event).await?;
    let claim = |order: &OrderId, outcome: Outcome| {
        let claim = store::claim(db, provider, event, Some(order), outcome, text, call.now)?;
        Ok::<_, Problem>(D1Orders::with_receipt(db, claim))
    };
    let (order_id, outcome, result) = match payments::decide(event, order.as_ref()) {
        Verdict::Ignore => return received("ignored").map(Some),
        Verdict::Record(outcome) => {
            let order = order.as_ref().map(|o| &o.id);
            return record(call, db, delivery, order, outcome).await.map(Some);
        }
        Verdict::Refund { order, failed } => {
            return settle_refunds(call, db, delivery, &order, failed).await
        }
        Verdict::Pay { order: id } => {
            let orders = claim(&id, Outcome::Paid)?;
            // As found: the pay batch is guarded by the status, so no second read is needed.
            let result = match &order {
                Some(read) => {
                    let read = AsRead {
                        status: read.status,
                        charged: read.charged.minor_units(),
                        ledger: read.ledger,
                    };
                    lifecycle::pay_as_read(&orders, &CryptoIds, &id, read, call.now).await
                }
                None => Err(LifecycleError::NotFound),
            };
            (id, Outcome::Paid, result)
        }
        Verdict::Review {
            order,
            from,
            reason,
            captured,
        } => {
            let orders = claim(&order, reason.outcome())?;
            let payment = ReviewedPayment {
                reason,
                provider: provider.to_owned(),
                payment_id: event.payment_id.clone(),
                provider_event_id: event.id.clone(),
                amount: event.amount,
            };
            let result = lifecycle::review(
                &orders, &CryptoIds, &order, from, payment, captured, call.now,
            )
            .await;
            (order, reason.outcome(), result)
        }
    };
    match result {
        Ok(moved) => {
            call.publish(&moved.events).await;
            received(outcome.as_str()).map(Some)
        }
        Err(LifecycleError::AlreadyRecorded) => received("duplicate").map(Some),
        Err(LifecycleError::Moved | LifecycleError::Illegal(_)) => Ok(None),
        Err(LifecycleError::NotFound) => record(call, db, delivery, None, Outcome::UnknownOrder)
            .await
            .map(Some),
        Err(LifecycleError::Ledger(e)) => Err(Problem::internal_because(format!(
            "paying order {order_id}: {e:?}"
        ))),
        Err(LifecycleError::Store(e)) => Err(e.into()),
    }
}

/// Confirm (or, when the provider says one failed, release) the order's open refunds that the
/// event is about, with the claim in one batch; an event about no open refund (confirmed before,
/// or made outside this system, e.g. in the provider's dashboard) is recorded only. `None`: a
/// refund moved meanwhile (decide again).
async fn settle_refunds(
    call: &Call<Endpoint>,
    db: &Db,
    delivery: Delivery<'_>,
    order: &OrderId,
    failed: bool,
) -> Result<Option<Reply>, Problem> {
    let Delivery {
        provider,
        event,
        text,
    } = delivery;
    let (refunded_before, open) = store_refunds::open_refunds(db, order).await?;
    let cumulative = if failed { None } else { event.refunded_total };
    let ids = refunds::confirmed_by(&open, refunded_before, &event.refund_ids, cumulative);
    let chosen: Vec<&Refund> = ids
        .iter()
        .filter_map(|id| open.iter().find(|r| r.id == *id))
        .collect();
    let outcome = if failed {
        Outcome::RefundFailed
    } else {
        Outcome::Refunded
    };
    let claim = || store::claim(db, provider, event, Some(order), outcome, text, call.now);
    let settled = match (failed, chosen.first()) {
        (_, None) => {
            return record(call, db, delivery, Some(order), Outcome::Recorded)
                .await
                .map(Some)
        }
        (true, Some(refund)) => {
            store_refunds::fail_confirmed(db, claim()?, refund, call.now).await?
        }
        (false, Some(_)) => {
            let mut total = refunded_before;
            let confirmed: Vec<(Refund, Event)> = chosen
                .iter()
                .map(|refund| {
                    total += refund.amount.minor_units();
                    let event = refunds::refunded_event(&CryptoIds, refund, total, call.now);
                    ((*refund).clone(), event)
                })
                .collect();
            store_refunds::confirm(db, claim()?, &confirmed, call.now).await?
        }
    };
    match settled {
        Settled::Done(events) => {
            call.publish(&events).await;
            received(outcome.as_str()).map(Some)
        }
        Settled::AlreadyRecorded => received("duplicate").map(Some),
        Settled::Moved => Ok(None),
    }
}

/// A verified, readable delivery.
#[derive(Clone, Copy)]
struct Delivery<'a> {
    provider: &'a str,
    event: &'a PaymentEvent,
    text: &'a str,
}

/// Record the event with `outcome` and no other effect.
async fn record(
    call: &Call<Endpoint>,
    db: &Db,
    delivery: Delivery<'_>,
    order: Option<&OrderId>,
    outcome: Outcome,
) -> Result<Reply, Problem> {
    let Delivery {
        provider,
        event,
        text,
    } = delivery;
    let claim = store::claim(db, provider, event, order, outcome, text, call.now)?;
    if !store::record(claim).await? {
        return received("duplicate");
    }
    if outcome == Outcome::UnknownOrder && event.effect == Some(Effect::Succeeded) {
        // Money taken for no order known here: it may need a refund, someone must look.
        log_error(
            &call.request_id,
            "payment needs review",
            format!(
                "{provider} {} {}: no order has payment {}",
                event.kind, event.id, event.payment_id
            ),
        );
    }
    received(outcome.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    const OPENAPI: &str = include_str!("../../../schema/openapi.json");

    #[test]
    fn every_route_is_documented_and_authorized_by_the_pipeline() {
        assert_eq!(
            shop_edge::http::routing::route_table_faults(ROUTES, OPENAPI),
            Vec::<String>::new()
        );
    }
}
