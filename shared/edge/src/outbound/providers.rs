//! The payment providers this deployment enables (`PAYMENT_PROVIDERS`), by name: the one
//! registry that the checkout (which providers a client may pay with, in the setting's order) and
//! refunds (the order's own provider, while it is enabled) read.

use shop_domain::checkout::{DynPaymentProvider, PaymentError, TestPaymentProvider};
use shop_domain::kernel::ids::{CartId, IdSource};
use shop_domain::orders::refunds::{Refund, RefundProvider};

use crate::config::Config;
use crate::outbound::stripe::Stripe;

pub struct Providers<'a> {
    enabled: &'a [String],
    test: TestPaymentProvider<'a>,
    stripe: Stripe,
}

impl<'a> Providers<'a> {
    /// `cart_id` names the cart of a checkout (`None` outside one); `ids` mints the offline
    /// `test` provider's payment ids.
    pub fn new(
        env: &worker::Env,
        config: &'a Config,
        cart_id: Option<&CartId>,
        ids: &'a dyn IdSource,
    ) -> Self {
        Providers {
            enabled: &config.checkout.payment_providers,
            test: TestPaymentProvider { ids },
            stripe: Stripe::from_env(env, config, cart_id),
        }
    }

    /// The enabled providers, in the setting's order.
    pub fn enabled(&self) -> Vec<&dyn DynPaymentProvider> {
        let mut providers: Vec<&dyn DynPaymentProvider> = Vec::new();
        for name in self.enabled {
            match name.as_str() {
                "test" => providers.push(&self.test),
                "stripe" => providers.push(&self.stripe),
                _ => {}
            }
        }
        providers
    }
}

/// A refund goes to the order's own provider while it is enabled (one that is not enabled
/// declines: nothing stays committed).
impl RefundProvider for Providers<'_> {
    async fn refund(
        &self,
        payment_id: &str,
        refund: &Refund,
        key: &str,
    ) -> Result<String, PaymentError> {
        let enabled = self.enabled.contains(&refund.provider);
        match refund.provider.as_str() {
            "test" if enabled => self.test.refund(payment_id, refund, key).await,
            "stripe" if enabled => self.stripe.refund(payment_id, refund, key).await,
            other => Err(PaymentError::Declined(format!(
                "payment provider {other} is not enabled"
            ))),
        }
    }
}
