//! The payment webhook: `POST /v1/webhooks/payments/stripe`. Thin glue over
//! `shop_domain::payments`: verify the signature on the raw body (before anything is read or
//! written), parse the event, find its order, decide, and write the claim with the effects.
//!
//! A delivery is recorded once (`payment_events`, primary key `(provider, event_id)`): the claim
//! leads the batch of its effects, so a second delivery, concurrent or late, changes nothing
//! and is answered 200. A success pays its order only when the amount and currency are the
//! order's total and the order is pending payment; nothing here ever un-pays an order.

use serde::Serialize;
use shop_domain::lifecycle::{self, LifecycleError};
use shop_domain::payments::{self, Outcome, PayableOrder, StripeEvent, Verdict};
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::store::orders::D1Orders;
use shop_edge::store::payments as store;
use shop_edge::store::sql::Db;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Stripe,
}

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
pub const ROUTES: &[Route<Endpoint>] = &[Route {
    method: "POST",
    path: "/v1/webhooks/payments/stripe",
    access: Access::Signed,
    endpoint: Endpoint::Stripe,
}];

const PROVIDER: &str = "stripe";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    serve(req, env, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Stripe => stripe(&call).await,
    }
}

#[derive(Serialize)]
struct Received {
    received: bool,
    /// What was done: paid, amount_mismatch, unknown_order, not_payable, recorded, duplicate,
    /// ignored.
    outcome: &'static str,
}

fn received(outcome: &'static str) -> Result<Reply, Problem> {
    Ok(Reply::json(
        200,
        &Received {
            received: true,
            outcome,
        },
    )?)
}

async fn stripe(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    // Verified before anything is parsed, read or written.
    let secrets = payments::secrets_from(
        &call
            .env
            .secret("STRIPE_WEBHOOK_SECRETS")
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    if secrets.is_empty() {
        log_error(
            &call.request_id,
            "payment webhook",
            "STRIPE_WEBHOOK_SECRETS is not set: every delivery is refused",
        );
    }
    let body = call.raw_body();
    let signed_at = payments::verify_stripe(
        call.header("Stripe-Signature").as_deref(),
        body,
        &secrets,
        call.now,
        call.config.payment_webhook_tolerance,
    )
    .map_err(|e| {
        Problem::new(
            400,
            "signature_invalid",
            "Signature invalid",
            format!("The Stripe-Signature does not verify: {}", e.as_str()),
        )
    })?;
    let db = call.db()?;
    let parsed = std::str::from_utf8(body)
        .map_err(|_| "the body is not UTF-8".to_owned())
        .and_then(|text| {
            serde_json::from_str::<StripeEvent>(text)
                .map(|event| (text, event))
                .map_err(|e| format!("the body is not a Stripe event: {e}"))
        });
    let (text, event) = match parsed {
        Ok(parsed) => parsed,
        Err(detail) => {
            // Signed by the provider, so kept for investigation (once per distinct body).
            let claim = store::claim_malformed(&db, PROVIDER, body, signed_at, call.now)?;
            store::record(claim).await?;
            return Err(Problem::new(400, "invalid_event", "Invalid event", detail));
        }
    };
    let order = store::find_order(
        &db,
        event.payment_id(),
        event.order_hint().as_ref(),
        event.cart_hint().as_ref(),
    )
    .await?;
    match payments::decide(&event, order.as_ref()) {
        Verdict::Ignore => received("ignored"),
        Verdict::Record(outcome) => record(call, &db, &event, order.as_ref(), outcome, text).await,
        Verdict::Pay { order: order_id } => {
            let claim = store::claim(
                &db,
                PROVIDER,
                &event,
                Some(&order_id),
                Outcome::Paid,
                text,
                call.now,
            )?;
            let orders = D1Orders::with_receipt(&db, claim);
            match lifecycle::mark_paid(&orders, &CryptoIds, &order_id, call.now).await {
                Ok(paid) => {
                    call.publish(&paid.events).await;
                    received(Outcome::Paid.as_str())
                }
                Err(LifecycleError::AlreadyRecorded) => received("duplicate"),
                // Paid, expired or cancelled meanwhile: recorded, not paid.
                Err(LifecycleError::Moved | LifecycleError::Illegal(_)) => {
                    record(call, &db, &event, order.as_ref(), Outcome::NotPayable, text).await
                }
                Err(LifecycleError::NotFound) => {
                    record(call, &db, &event, None, Outcome::UnknownOrder, text).await
                }
                Err(LifecycleError::Ledger(e)) => Err(Problem::internal_because(format!(
                    "paying order {order_id}: {e:?}"
                ))),
                Err(LifecycleError::Store(e)) => Err(e.into()),
            }
        }
    }
}

/// Record the event with `outcome` and no other effect.
async fn record(
    call: &Call<Endpoint>,
    db: &Db,
    event: &StripeEvent,
    order: Option<&PayableOrder>,
    outcome: Outcome,
    text: &str,
) -> Result<Reply, Problem> {
    let order_id = order.map(|o| &o.id);
    let claim = store::claim(db, PROVIDER, event, order_id, outcome, text, call.now)?;
    if !store::record(claim).await? {
        return received("duplicate");
    }
    if outcome == Outcome::NotPayable || outcome == Outcome::AmountMismatch {
        // A payment that cannot pay its order may need a refund: the merchant must look.
        log_error(
            &call.request_id,
            "payment needs review",
            format!(
                "{} {} for order {:?}: {}",
                event.kind,
                event.id,
                order_id.map(|o| o.as_str()),
                outcome.as_str()
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
