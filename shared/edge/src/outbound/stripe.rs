//! Stripe as a payment provider: creates a PaymentIntent through Stripe's HTTP API
//! (form-encoded, with an `Idempotency-Key` derived from the checkout's, see [`intent_key`]),
//! retrieves it again when a checkout is replayed (its client secret is never stored), and
//! refunds (`POST /v1/refunds`, keyed by the refund's id), with a timeout (at most a third of the
//! idempotency lease, see `config`) and no redirects followed. Stripe's 400, 402 and 404 answers
//! are definite refusals (`PaymentError::Declined`); anything else that is not a 2xx (timeouts,
//! 409, 429, 5xx) leaves the outcome unknown (`Unavailable`). The base URL is configurable
//! (`STRIPE_API_BASE`) so tests can point it at a local stand-in.

use serde::Deserialize;
use shop_domain::checkout::{PaymentError, PaymentProvider, PaymentSession};
use shop_domain::kernel::ids::{CartId, OrderId};
use shop_domain::kernel::money::Money;
use shop_domain::orders::refunds::{Refund, RefundProvider};
use shop_domain::payments::{charged_minor, PaymentFollowups};
use worker::{Headers, Method, RequestInit};

use crate::outbound::{self, Outcome};

pub struct Stripe {
    pub api_base: String,
    pub secret_key: String,
    /// How long a call may take before the checkout answers 502 (`OUTBOUND_TIMEOUT_MS`).
    pub timeout: std::time::Duration,
    /// Sent as metadata of a PaymentIntent: stable across retries of one checkout, unlike the
    /// order id (`None` outside a checkout: no PaymentIntent can be created).
    pub cart_id: Option<CartId>,
}

impl Stripe {
    /// The adapter as configured: `STRIPE_API_BASE`, the `STRIPE_SECRET_KEY` secret (empty when
    /// unset: every call then answers `Unavailable`), `OUTBOUND_TIMEOUT_MS`. `cart_id` names the
    /// cart of a checkout (`None` outside one).
    pub fn from_env(
        env: &worker::Env,
        config: &crate::config::Config,
        cart_id: Option<&CartId>,
    ) -> Self {
        Stripe {
            api_base: config.checkout.stripe_api_base.clone(),
            secret_key: env
                .secret("STRIPE_SECRET_KEY")
                .map(|s| s.to_string())
                .unwrap_or_default(),
            timeout: config.outbound_timeout,
            cart_id: cart_id.cloned(),
        }
    }
}

#[derive(Deserialize)]
struct Intent {
    id: String,
    client_secret: String,
}

/// The form body of a PaymentIntent. Its metadata names the cart (stable across retries of a
/// checkout) and the order (the payment webhook finds the order by either). Three-decimal
/// currencies are charged in multiples of 10 minor units (`payments::charged_minor`).
pub fn intent_form(amount: Money, cart_id: &CartId, order: &OrderId) -> String {
    worker::url::form_urlencoded::Serializer::new(String::new())
        .append_pair("amount", &charged_minor("stripe", amount).to_string())
        .append_pair("currency", &amount.currency().code().to_ascii_lowercase())
        .append_pair("automatic_payment_methods[enabled]", "true")
        .append_pair("metadata[cart_id]", cart_id.as_str())
        .append_pair("metadata[order_id]", order.as_str())
        .finish()
}

/// The `Idempotency-Key` sent to Stripe for a PaymentIntent: `checkout-` and the SHA-256 of the
/// cart, the checkout's key (which the domain extends with the cart's version) and the amount,
/// so it is 73 characters whatever the client sent (Stripe allows 255), the same for a retry of
/// the same checkout, and different once the cart or its total changed (a corrected retry after
/// a 409 never meets Stripe's "same key, other parameters" refusal).
pub fn intent_key(cart_id: &CartId, idempotency_key: &str, amount: Money) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [
        cart_id.as_str(),
        idempotency_key,
        &amount.minor_units().to_string(),
        amount.currency().code(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    format!("checkout-{}", hex::encode(hasher.finalize()))
}

impl Stripe {
    /// Call Stripe's API: `Ok(body)` for a 2xx answer, anything else is `Unavailable`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<String>,
        form: Option<String>,
    ) -> Result<String, PaymentError> {
        let unavailable = |why: String| PaymentError::Unavailable(why);
        if self.secret_key.is_empty() {
            return Err(unavailable("STRIPE_SECRET_KEY is not set".into()));
        }
        let headers = Headers::new();
        let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| unavailable(e.to_string()));
        set("Authorization", &format!("Bearer {}", self.secret_key))?;
        if let Some(key) = idempotency_key {
            set("Idempotency-Key", &key)?;
        }
        let mut init = RequestInit::new();
        if let Some(form) = form {
            set("Content-Type", "application/x-www-form-urlencoded")?;
            init.with_body(Some(form.into()));
        }
        init.with_method(method).with_headers(headers);
        let url = format!("{}{path}", self.api_base);
        let mut response = match outbound::send(&url, &mut init, self.timeout).await {
            Outcome::Answered(response) => response,
            Outcome::TimedOut => return Err(unavailable("Stripe did not answer in time".into())),
            Outcome::Failed(e) => return Err(unavailable(e.to_string())),
        };
        let status = response.status_code();
        let body = response
            .text()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if matches!(status, 400 | 402 | 404) {
            return Err(PaymentError::Declined(format!(
                "Stripe answered {status}: {body}"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(unavailable(format!("Stripe answered {status}: {body}")));
        }
        Ok(body)
    }
}

fn parse_intent(body: &str) -> Result<Intent, PaymentError> {
    serde_json::from_str(body).map_err(|e| PaymentError::Unavailable(format!("Stripe answer: {e}")))
}

/// Is `id` shaped like a Stripe object id (so it can go in a URL path as it is)?
fn is_stripe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl PaymentProvider for Stripe {
    fn name(&self) -> &str {
        "stripe"
    }

    async fn create_session(
        &self,
        order: &OrderId,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<PaymentSession, PaymentError> {
        let cart_id = self.cart_id.as_ref().ok_or_else(|| {
            PaymentError::Unavailable("a PaymentIntent is created for a cart".into())
        })?;
        let body = self
            .call(
                Method::Post,
                "/v1/payment_intents",
                Some(intent_key(cart_id, idempotency_key, amount)),
                Some(intent_form(amount, cart_id, order)),
            )
            .await?;
        let intent = parse_intent(&body)?;
        Ok(PaymentSession {
            provider: "stripe".into(),
            payment_id: intent.id,
            client_secret: intent.client_secret,
            amount_minor: charged_minor("stripe", amount),
            currency: amount.currency(),
        })
    }

    /// Retrieves the PaymentIntent (`GET /v1/payment_intents/{id}` with the secret key).
    async fn client_secret(&self, payment_id: &str) -> Result<String, PaymentError> {
        if !is_stripe_id(payment_id) {
            return Err(PaymentError::Unavailable(format!(
                "not a PaymentIntent id: {payment_id:?}"
            )));
        }
        let body = self
            .call(
                Method::Get,
                &format!("/v1/payment_intents/{payment_id}"),
                None,
                None,
            )
            .await?;
        let intent = parse_intent(&body)?;
        if intent.id != payment_id {
            return Err(PaymentError::Unavailable(format!(
                "Stripe answered for another PaymentIntent: {}",
                intent.id
            )));
        }
        Ok(intent.client_secret)
    }
}

/// `POST /v1/payment_intents/{id}` names the order (its number is known only once the order is
/// placed); `POST /v1/payment_intents/{id}/cancel` cancels an unpaid one. A 400 to a cancel
/// (succeeded or cancelled already) is `Declined`: nothing to do.
impl PaymentFollowups for Stripe {
    async fn annotate(
        &self,
        payment_id: &str,
        order: &OrderId,
        number: &str,
    ) -> Result<(), PaymentError> {
        if !is_stripe_id(payment_id) {
            return Err(PaymentError::Declined(format!(
                "not a PaymentIntent id: {payment_id:?}"
            )));
        }
        let form = worker::url::form_urlencoded::Serializer::new(String::new())
            .append_pair("metadata[order_id]", order.as_str())
            .append_pair("metadata[order_number]", number)
            .finish();
        self.call(
            Method::Post,
            &format!("/v1/payment_intents/{payment_id}"),
            Some(format!("annotate-{}", order.as_str())),
            Some(form),
        )
        .await
        .map(drop)
    }

    async fn cancel(&self, payment_id: &str) -> Result<(), PaymentError> {
        if !is_stripe_id(payment_id) {
            return Err(PaymentError::Declined(format!(
                "not a PaymentIntent id: {payment_id:?}"
            )));
        }
        let form = worker::url::form_urlencoded::Serializer::new(String::new())
            .append_pair("cancellation_reason", "abandoned")
            .finish();
        self.call(
            Method::Post,
            &format!("/v1/payment_intents/{payment_id}/cancel"),
            Some(format!("cancel-{payment_id}")),
            Some(form),
        )
        .await
        .map(drop)
    }
}

/// The form body of a refund: of the PaymentIntent, the amount in minor units, with the order
/// and our refund id as metadata (the webhook finds the refund by either).
pub fn refund_form(payment_id: &str, refund: &Refund) -> String {
    worker::url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payment_intent", payment_id)
        .append_pair("amount", &refund.amount.minor_units().to_string())
        .append_pair("metadata[order_id]", refund.order_id.as_str())
        .append_pair("metadata[refund_id]", refund.id.as_str())
        .finish()
}

#[derive(Deserialize)]
struct StripeRefund {
    id: String,
}

impl RefundProvider for Stripe {
    /// `POST /v1/refunds`, `Idempotency-Key: refund-<our refund id>`: asked twice, Stripe refunds
    /// once and answers the same refund.
    async fn refund(
        &self,
        payment_id: &str,
        refund: &Refund,
        key: &str,
    ) -> Result<String, PaymentError> {
        if !is_stripe_id(payment_id) {
            return Err(PaymentError::Declined(format!(
                "not a PaymentIntent id: {payment_id:?}"
            )));
        }
        let body = self
            .call(
                Method::Post,
                "/v1/refunds",
                Some(format!("refund-{key}")),
                Some(refund_form(payment_id, refund)),
            )
            .await?;
        let answer: StripeRefund = serde_json::from_str(&body)
            .map_err(|e| PaymentError::Unavailable(format!("Stripe answer: {e}")))?;
        Ok(answer.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_domain::kernel::money::Currency;

    #[test]
    fn form_encodes_the_intent() {
        let cart = CartId::parse("cart_0000000000000000000000000000abcd").unwrap();
        let order = OrderId::parse("ord_0000000000000000000000000000abcd").unwrap();
        let form = intent_form(Money::parse("1500", Currency::Jpy).unwrap(), &cart, &order);
        assert!(is_stripe_id("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        for bad in ["", "pi_1/../../v1/customers", "pi 1", "pi_1?expand=x"] {
            assert!(!is_stripe_id(bad), "{bad}");
        }
        assert_eq!(
            form,
            "amount=1500&currency=jpy&automatic_payment_methods%5Benabled%5D=true&metadata%5Bcart_id%5D=cart_0000000000000000000000000000abcd&metadata%5Border_id%5D=ord_0000000000000000000000000000abcd"
        );
    }

    #[test]
    fn the_intent_key_is_short_stable_and_follows_the_cart_and_amount() {
        let cart = CartId::parse("cart_0000000000000000000000000000abcd").unwrap();
        let eur = |s: &str| Money::parse(s, Currency::Eur).unwrap();
        let long = "k".repeat(255);
        let key = intent_key(&cart, &format!("{long}:v7"), eur("10.00"));
        assert_eq!(
            key.len(),
            73,
            "at most Stripe's 255 whatever the client's key: {key}"
        );
        assert!(key.starts_with("checkout-"));
        assert_eq!(
            key,
            intent_key(&cart, &format!("{long}:v7"), eur("10.00")),
            "a retry: the same key"
        );
        assert_ne!(
            key,
            intent_key(&cart, &format!("{long}:v8"), eur("10.00")),
            "the cart changed"
        );
        assert_ne!(
            key,
            intent_key(&cart, &format!("{long}:v7"), eur("10.01")),
            "the amount changed"
        );
        let other = CartId::parse("cart_0000000000000000000000000000abce").unwrap();
        assert_ne!(
            key,
            intent_key(&other, &format!("{long}:v7"), eur("10.00")),
            "another cart"
        );
    }
}
