//! What a payment provider charges: the amount in minor units, in the steps a provider takes, and
//! the reference an order keeps to its payment.

use serde::{Deserialize, Serialize};

use crate::kernel::money::{Currency, Money};

/// A payment session created earlier, without its client secret (a credential that is shown,
/// never stored): an idempotent replay of a checkout reads the secret again from the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReference {
    pub provider: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// What `provider` charges for `amount`, in minor units. Stripe takes amounts of three-decimal
/// currencies (KWD, BHD, JOD, OMR, TND) only in multiples of 10 minor units: there the amount is
/// rounded down to a multiple of 10, so the customer never pays more than the order's total (at
/// most 9 fils less), a success of that amount pays the order in full, and what is captured (and
/// so refundable) is exactly what was charged. Every other amount is charged as it is.
pub fn charged_minor(provider: &str, amount: Money) -> i64 {
    let minor = amount.minor_units();
    minor - minor.rem_euclid(step_minor(provider, amount.currency()))
}

/// The smallest step of an amount `provider` charges or refunds in `currency`, in minor units:
/// 10 for Stripe's three-decimal currencies, 1 otherwise.
pub fn step_minor(provider: &str, currency: Currency) -> i64 {
    if provider == "stripe" && currency.exponent() == 3 {
        10
    } else {
        1
    }
}
