//! A delivery received: the provider's secrets, the signature verified on the raw body before
//! anything is read or written, the body read into one `PaymentEvent` (or kept as malformed).

use crate::apply::accept;
use crate::{Endpoint, STRIPE};
use shop_domain::kernel::standard_webhooks::{self, Headers};
use shop_domain::payments::{self, StandardEvent, StripeEvent};
use shop_edge::http::inbound::{self, Unreadable};
use shop_edge::http::refusals::inbound as refusals;
use shop_edge::http::runtime::log_error;
use shop_edge::store::claims;
use shop_edge::{Call, Problem, Reply};

/// The configured secrets of a setting (comma-separated); unset or empty is logged, since it
/// refuses every delivery.
pub(crate) fn secrets(call: &Call<Endpoint>, setting: &str) -> Vec<String> {
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

pub(crate) async fn stripe(call: &Call<Endpoint>) -> Result<Reply, Problem> {
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
    .map_err(|e| Problem::signature_invalid("Stripe-Signature", e))?;
    let db = call.db()?;
    let (text, event) = inbound::read_or_keep(
        body,
        |text| {
            serde_json::from_str::<StripeEvent>(text)
                .map(|event| event.read())
                .map_err(|e| format!("the body is not a Stripe event: {e}"))
        },
        || claims::payment_malformed(&db, STRIPE, body, signed_at, call.now),
        INVALID_EVENT,
    )
    .await?;
    accept(call, &db, STRIPE, text, event).await
}

pub(crate) async fn standard(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    // A provider is known by its secrets: one with none configured does not exist (404, the same
    // for every unconfigured or ill-formed name). Verified before anything is parsed or written.
    let provider = call.route.param(0);
    let configured = payments::standard_secrets_setting(provider)
        .map(|setting| call.secrets(&setting))
        .filter(|secrets| !secrets.is_empty());
    let Some(secrets) = configured else {
        return Err(refusals::unknown_provider());
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
    .map_err(|e| Problem::signature_invalid("webhook-signature", e))?;
    let id = id.unwrap_or_default();
    let db = call.db()?;
    let (text, event) = inbound::read_or_keep(
        body,
        |text| {
            serde_json::from_str::<StandardEvent>(text)
                .map(|event| event.read(&id))
                .map_err(|e| format!("the body is not a payment event: {e}"))
        },
        || claims::payment_malformed(&db, provider, body, signed_at, call.now),
        INVALID_EVENT,
    )
    .await?;
    accept(call, &db, provider, text, event).await
}

/// What a payment delivery that does not read is answered (400), once kept.
const INVALID_EVENT: Unreadable = Unreadable {
    code: "invalid_event",
    title: "Invalid event",
};
