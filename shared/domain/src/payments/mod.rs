//! Payment provider webhooks: verifying a delivery before anything is read from it, and the
//! provider's event as this system understands it.
//!
//! Stripe signs `"<t>.<raw body>"` with HMAC-SHA256 and sends
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`. A delivery is accepted when its
//! timestamp is within the tolerance of now (either way) and any `v1` matches any configured
//! secret (several during a rotation). The comparison is the `hmac` crate's constant-time
//! `verify_slice`.

pub mod charge;

pub use charge::{charged_minor, step_minor};

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::events::{Payload, ReviewReason};
use crate::kernel::ids::{CartId, OrderId};
use crate::kernel::money::{Currency, Money};
use crate::kernel::time::{Duration, Timestamp};
use crate::orders::order::OrderStatus;

/// What a payment provider call came to when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentError {
    /// The provider could not be reached, or its answer is not known (it may have acted).
    Unavailable(String),
    /// The provider answered that it will not do it (nothing was done there).
    Declined(String),
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentError::Unavailable(why) => write!(f, "payment provider unavailable: {why}"),
            PaymentError::Declined(why) => write!(f, "payment provider declined: {why}"),
        }
    }
}

/// How far a delivery's timestamp may be from now, either way (Stripe's default).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery is refused. Nothing is read from, or written for, a refused delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No signature header.
    Missing,
    /// The header is not `t=…,v1=…`.
    Malformed,
    /// Signed too long ago, or too far in the future.
    OutsideTolerance,
    /// No signature matches any secret.
    NoMatch,
    /// No secret is configured: every delivery is refused.
    NoSecret,
}

impl SignatureError {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing signature",
            SignatureError::Malformed => "malformed signature header",
            SignatureError::OutsideTolerance => "timestamp outside the tolerance",
            SignatureError::NoMatch => "no signature matches",
            SignatureError::NoSecret => "no webhook secret configured",
        }
    }
}

/// A delivery signed at unix `seconds`, if that is within `tolerance` of `now` either way.
pub(crate) fn signed_within(
    seconds: i64,
    now: Timestamp,
    tolerance: Duration,
) -> Result<Timestamp, SignatureError> {
    let signed_at = Timestamp::from_millis(seconds.saturating_mul(1000));
    let skew = now
        .millis()
        .saturating_sub(signed_at.millis())
        .saturating_abs();
    if skew > tolerance.millis() {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(signed_at)
}

/// Verify a Stripe delivery: `header` is `Stripe-Signature`, `body` the raw bytes as received.
/// Returns the signed timestamp.
pub fn verify_stripe(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: Timestamp,
    tolerance: Duration,
) -> Result<Timestamp, SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?;
    let mut signed_at: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                let seconds: i64 = value.parse().map_err(|_| SignatureError::Malformed)?;
                signed_at = Some(seconds);
            }
            // An undecodable v1 can match nothing; others may still match.
            "v1" => signatures.extend(hex::decode(value).ok()),
            // Other schemes (v0, future ones) are not ours to check.
            _ => {}
        }
    }
    let seconds = signed_at.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_at = signed_within(seconds, now, tolerance)?;
    let prefix = format!("{seconds}.");
    for secret in secrets {
        for signature in &signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                continue;
            };
            mac.update(prefix.as_bytes());
            mac.update(body);
            if mac.verify_slice(signature).is_ok() {
                return Ok(signed_at);
            }
        }
    }
    Err(SignatureError::NoMatch)
}

/// The id a signed delivery that is not an event is recorded under: its body's SHA-256, so the
/// same bad body sent again is recorded once.
pub fn malformed_id(body: &[u8]) -> String {
    use sha2::Digest;
    format!("malformed_{}", hex::encode(Sha256::digest(body)))
}

/// Secrets from a comma-separated setting (several during a rotation); blanks are ignored.
pub fn secrets_from(setting: &str) -> Vec<String> {
    setting
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The setting that holds the Standard Webhooks secrets of `provider`:
/// `PAYMENT_WEBHOOK_SECRETS_<PROVIDER>`. A provider name is 1–32 lowercase letters, digits and
/// underscores, starting with a letter; any other name has no setting (and no provider).
pub fn standard_secrets_setting(provider: &str) -> Option<String> {
    setting_for("PAYMENT_WEBHOOK_SECRETS_", provider)
}

/// `<prefix><NAME>` for a well-formed caller name (1–32 lowercase letters, digits and
/// underscores, starting with a letter); `None` for any other name, which names no setting.
pub(crate) fn setting_for(prefix: &str, name: &str) -> Option<String> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 32;
    well_formed.then(|| format!("{prefix}{}", name.to_ascii_uppercase()))
}

/// A Stripe event, as far as this system reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// When Stripe created the event (unix seconds): the order of events for one payment.
    pub created: i64,
    pub data: StripeEventData,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StripeEventData {
    pub object: StripeObject,
}

/// The object an event is about: a PaymentIntent, a Charge or a Dispute.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StripeObject {
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    /// On a Refund: `succeeded`, `failed`, `pending`…
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    /// On a Charge or a Dispute: the PaymentIntent it belongs to.
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl StripeEvent {
    /// The PaymentIntent this event is about (the id recorded on the order at checkout).
    pub fn payment_id(&self) -> &str {
        let object = &self.data.object;
        match object.object.as_str() {
            "payment_intent" => &object.id,
            _ => object.payment_intent.as_deref().unwrap_or(&object.id),
        }
    }

    pub fn occurred_at(&self) -> Timestamp {
        Timestamp::from_millis(self.created.saturating_mul(1000))
    }
}

/// What a provider's event means for the payment it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The payment succeeded (the money is captured).
    Succeeded,
    /// An attempt failed (the customer may try again).
    Failed,
    /// The payment was cancelled at the provider.
    Canceled,
    /// Money was given back (a refund, or refunds in all, confirmed).
    Refunded,
    /// A refund the provider had accepted failed.
    RefundFailed,
    /// The customer disputed the payment.
    Disputed,
}

/// A verified provider event, whatever the provider: what the ledger records and what
/// [`decide`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    /// The provider's event id (unique per provider): the claim.
    pub id: String,
    /// The provider's own type name, as received.
    pub kind: String,
    /// `None`: not a type this system reads (answered 200, nothing written).
    pub effect: Option<Effect>,
    /// The provider's payment id (the one recorded on the order at checkout).
    pub payment_id: String,
    /// The amount the event reports, when it reports one in a known currency.
    pub amount: Option<Money>,
    /// The provider's own time of the event: the order of a payment's events.
    pub occurred_at: Timestamp,
    /// The order the provider's metadata names, if any.
    pub order_hint: Option<OrderId>,
    /// The cart the provider's metadata names, if any (a cart becomes at most one order).
    pub cart_hint: Option<CartId>,
    /// The refund the event is about, by the provider's id and by ours (from its metadata).
    pub refund_ids: Vec<String>,
    /// What the provider says is refunded of the payment in all (Stripe's `charge.refunded`).
    pub refunded_total: Option<i64>,
}

fn money(minor: Option<i64>, currency: Option<&str>) -> Option<Money> {
    let currency: Currency = currency?.to_ascii_uppercase().parse().ok()?;
    Money::from_minor(minor?, currency).ok()
}

impl StripeEvent {
    /// The event as this system reads it.
    pub fn read(&self) -> PaymentEvent {
        let object = &self.data.object;
        let effect = match (self.kind.as_str(), object.status.as_deref()) {
            ("payment_intent.succeeded", _) => Some(Effect::Succeeded),
            ("payment_intent.payment_failed", _) => Some(Effect::Failed),
            ("payment_intent.canceled", _) => Some(Effect::Canceled),
            ("charge.refunded", _) => Some(Effect::Refunded),
            ("refund.updated" | "charge.refund.updated", Some("succeeded")) => {
                Some(Effect::Refunded)
            }
            ("refund.updated" | "charge.refund.updated", Some("failed" | "canceled")) => {
                Some(Effect::RefundFailed)
            }
            ("charge.dispute.created", _) => Some(Effect::Disputed),
            _ => None,
        };
        let metadata = |key: &str| object.metadata.get(key).map(String::as_str);
        let is_refund = object.object == "refund";
        PaymentEvent {
            id: self.id.clone(),
            kind: self.kind.clone(),
            effect,
            payment_id: self.payment_id().to_owned(),
            amount: money(
                object.amount_received.or(object.amount),
                object.currency.as_deref(),
            ),
            occurred_at: self.occurred_at(),
            order_hint: metadata("order_id").and_then(|id| OrderId::parse(id).ok()),
            cart_hint: metadata("cart_id").and_then(|id| CartId::parse(id).ok()),
            refund_ids: if is_refund {
                std::iter::once(object.id.clone())
                    .chain(metadata("refund_id").map(str::to_owned))
                    .collect()
            } else {
                Vec::new()
            },
            refunded_total: if object.object == "charge" {
                object.amount_refunded
            } else {
                None
            },
        }
    }
}

/// The event vocabulary of providers that sign with Standard Webhooks (documented in the
/// README and the OpenAPI document). The `webhook-id` header is the event id; the body is
///
/// ```json
/// {"type": "payment.succeeded", "timestamp": "2026-11-28T12:00:00Z",
///  "data": {"payment_id": "pay_123", "amount_minor": 4490, "currency": "EUR",
///           "order_id": "ord_…"}}
/// ```
///
/// `type` is `payment.succeeded`, `payment.failed` or `refund.succeeded` (others are ignored);
/// `timestamp` is when the provider says it happened; `order_id` is optional (the payment id
/// recorded at checkout finds the order first).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StandardEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Timestamp,
    pub data: StandardEventData,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StandardEventData {
    pub payment_id: String,
    #[serde(default)]
    pub amount_minor: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub refund_id: Option<String>,
}

impl StandardEvent {
    /// The event as this system reads it; `id` is the delivery's `webhook-id`.
    pub fn read(&self, id: &str) -> PaymentEvent {
        let effect = match self.kind.as_str() {
            "payment.succeeded" => Some(Effect::Succeeded),
            "payment.failed" => Some(Effect::Failed),
            "refund.succeeded" => Some(Effect::Refunded),
            _ => None,
        };
        let data = &self.data;
        PaymentEvent {
            id: id.to_owned(),
            kind: self.kind.clone(),
            effect,
            payment_id: data.payment_id.clone(),
            amount: money(data.amount_minor, data.currency.as_deref()),
            occurred_at: self.timestamp,
            order_hint: data
                .order_id
                .as_deref()
                .and_then(|id| OrderId::parse(id).ok()),
            cart_hint: None,
            refund_ids: data.refund_id.iter().cloned().collect(),
            refunded_total: None,
        }
    }
}

/// The order an event names, as far as paying it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayableOrder {
    pub id: OrderId,
    pub status: OrderStatus,
    pub total: Money,
    /// What the provider charges for `total` (see [`charged_minor`]): a success of exactly this
    /// pays the order.
    pub charged: Money,
    /// Captured and refunded so far.
    pub ledger: crate::orders::order::PaymentLedger,
}

/// What was done with an accepted event (recorded with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The order was pending payment and is now paid.
    Paid,
    /// A success whose amount or currency is not the order's total: not paid.
    AmountMismatch,
    /// No order has this payment; kept for investigation.
    UnknownOrder,
    /// A success for an order that is not pending payment (paid already, expired, cancelled).
    NotPayable,
    /// Kept in the order's payment ledger; no status change.
    Recorded,
    /// Signed by the provider but not an event this system can read: kept for investigation
    /// (answered 400).
    Malformed,
    /// Refunds of the order were confirmed.
    Refunded,
    /// A refund of the order failed at the provider; its amount is refundable again.
    RefundFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Paid => "paid",
            Outcome::AmountMismatch => "amount_mismatch",
            Outcome::UnknownOrder => "unknown_order",
            Outcome::NotPayable => "not_payable",
            Outcome::Recorded => "recorded",
            Outcome::Malformed => "malformed",
            Outcome::Refunded => "refunded",
            Outcome::RefundFailed => "refund_failed",
        }
    }
}

/// What to do with a verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Mark the order paid, recording the event in the same batch.
    Pay { order: OrderId },
    /// A success that cannot pay the order as it stands: record it, move the order to
    /// `payment_review` where it can go (from pending, expired or cancelled) and tell the
    /// merchant (`order.payment_review`), in the same batch.
    Review {
        order: OrderId,
        from: OrderStatus,
        reason: ReviewReason,
        /// What the provider took that the order records as captured, in minor units: the
        /// payment's amount (up to what the provider charges for the order) when it is in the
        /// order's currency and the order moves into review with nothing captured; 0 otherwise.
        /// The merchant can then refund it through the API.
        captured: i64,
    },
    /// Record the event only.
    Record(Outcome),
    /// Settle the order's open refunds that the event confirms (or, failed, releases).
    Refund { order: OrderId, failed: bool },
    /// Not a type this system reads: answered 200, nothing written.
    Ignore,
}

/// Decide what a verified event does to `order` (the order its payment belongs to, if any).
/// Only a success whose amount and currency are exactly the order's total pays an order, and
/// only one that is pending payment; any other success is put to review (money was taken that
/// the order could not take); everything else is recorded, never un-paying anything.
pub fn decide(event: &PaymentEvent, order: Option<&PayableOrder>) -> Verdict {
    let Some(effect) = event.effect else {
        return Verdict::Ignore;
    };
    let Some(order) = order else {
        return Verdict::Record(Outcome::UnknownOrder);
    };
    match effect {
        Effect::Succeeded => {}
        Effect::Refunded | Effect::RefundFailed => {
            return Verdict::Refund {
                order: order.id.clone(),
                failed: effect == Effect::RefundFailed,
            }
        }
        Effect::Failed | Effect::Canceled | Effect::Disputed => {
            return Verdict::Record(Outcome::Recorded)
        }
    }
    let reason = if event.amount != Some(order.charged) {
        ReviewReason::AmountMismatch
    } else {
        match order.status {
            OrderStatus::PendingPayment => {
                return Verdict::Pay {
                    order: order.id.clone(),
                }
            }
            OrderStatus::Expired => ReviewReason::OrderExpired,
            OrderStatus::Cancelled => ReviewReason::OrderCancelled,
            OrderStatus::PaymentReview => ReviewReason::AlreadyInReview,
            OrderStatus::Paid
            | OrderStatus::PartiallyFulfilled
            | OrderStatus::Fulfilled
            | OrderStatus::Delivered
            | OrderStatus::Completed => ReviewReason::AlreadyPaid,
        }
    };
    let enters_review = order
        .status
        .apply(crate::orders::order::Transition::Review)
        .is_ok();
    let captured = match event.amount {
        Some(amount)
            if enters_review
                && amount.currency() == order.charged.currency()
                && order.ledger.captured() == 0 =>
        {
            amount.minor_units().clamp(0, order.charged.minor_units())
        }
        _ => 0,
    };
    Verdict::Review {
        order: order.id.clone(),
        from: order.status,
        reason,
        captured,
    }
}

impl ReviewReason {
    /// The outcome a review is recorded with in the ledger.
    pub fn outcome(self) -> Outcome {
        match self {
            ReviewReason::AmountMismatch => Outcome::AmountMismatch,
            _ => Outcome::NotPayable,
        }
    }
}

/// What the payment provider is told after an order event, so the provider's view follows the
/// order's: a placed order's number is written on its payment (it is assigned in the placement
/// batch, after the payment was created), and the payment of an order that closes unpaid is
/// cancelled (so its client secret can no longer pay it; a payment that succeeds anyway goes to
/// review).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followup {
    /// Name the order (id and number) on its payment.
    Annotate(OrderId),
    /// Cancel the payment of an order that expired or was cancelled unpaid.
    Cancel(OrderId),
}

impl Followup {
    /// Deliveries of an event whose follow-up failed before the event is applied without it
    /// (the provider outage is logged, and never holds the event's effects back longer).
    pub const ATTEMPTS: u32 = 3;

    /// Whether an event whose follow-up failed on its `attempts`-th delivery is delivered again.
    pub fn retried_after(attempts: u32) -> bool {
        attempts < Self::ATTEMPTS
    }

    pub fn of(payload: &Payload) -> Option<Followup> {
        match payload {
            Payload::OrderCreated(created) => Some(Followup::Annotate(created.order_id.clone())),
            Payload::OrderExpired(closed) | Payload::OrderCancelled(closed)
                if closed.from == OrderStatus::PendingPayment =>
            {
                Some(Followup::Cancel(closed.order_id.clone()))
            }
            _ => None,
        }
    }

    pub fn order(&self) -> &OrderId {
        match self {
            Followup::Annotate(order) | Followup::Cancel(order) => order,
        }
    }
}

/// The provider's side of [`Followup`]s (port). Both are idempotent at the provider.
pub trait PaymentFollowups {
    async fn annotate(
        &self,
        payment_id: &str,
        order: &OrderId,
        number: &str,
    ) -> Result<(), PaymentError>;
    async fn cancel(&self, payment_id: &str) -> Result<(), PaymentError>;
}

#[cfg(test)]
mod tests;
