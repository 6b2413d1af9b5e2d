//! Settings from `wrangler.toml` `[vars]` and secrets, parsed into types on each request (an
//! isolate may serve requests with different settings across deploys, and parsing is cheap).
//! A bad setting is a deployment fault: it is logged and answered 500, never guessed around.

use shop_domain::cart::CartPolicy;
use shop_domain::kernel::pricing::TaxRate;
use shop_domain::kernel::time::Duration;

use crate::http::body::DEFAULT_BODY_LIMIT;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ENVIRONMENT = "development"`: a local setup, where development-only allowances apply
    /// (the example JWT secret). Unset means production: every such allowance stays off.
    pub development: bool,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub cart: CartPolicy,
    /// How long a catalog read may be served from the isolate's memory.
    pub catalog_cache_ttl: Duration,
    pub checkout: CheckoutSettings,
    /// Which merchant webhook URLs are allowed.
    pub webhooks: shop_domain::webhooks::UrlPolicy,
    /// How long any outbound call (payment provider, merchant webhook) may take.
    pub outbound_timeout: std::time::Duration,
    /// How far a payment webhook's signed timestamp may be from now, either way
    /// (`PAYMENT_WEBHOOK_TOLERANCE_SECONDS`, 1 to 3600, default 300).
    pub payment_webhook_tolerance: Duration,
    /// Ticket handling: the first-response service level (`TICKET_FIRST_RESPONSE_SLA_SECONDS`,
    /// default a day) and the order value that raises a ticket's priority.
    pub tickets: shop_domain::support::tickets::TicketPolicy,
    /// How long a ticket token opens its ticket (`TICKET_TOKEN_TTL_DAYS`, 1 to 400, default 90).
    pub ticket_token_ttl: Duration,
    /// Points per major unit per currency (`MEMBERSHIP_POINTS_RATES`) and the tiers
    /// (`MEMBERSHIP_TIERS`); defaults `shop_domain::customers::membership::DEFAULT_RATES` and
    /// `DEFAULT_TIERS`.
    pub membership: shop_domain::customers::membership::MembershipPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSettings {
    pub reservation_ttl: Duration,
    /// Payment providers a checkout may name (`test`, `stripe`).
    pub payment_providers: Vec<String>,
    pub stripe_api_base: String,
    pub order_token_ttl: Duration,
    /// How long an outbox row may stay unsent before the cron sends it again.
    pub outbox_resend_after: Duration,
    /// The most units of one SKU one order may hold (`CHECKOUT_MAX_UNITS_PER_SKU`).
    pub max_units_per_sku: u32,
    /// The most of a SKU's stock all unpaid orders may hold together
    /// (`CHECKOUT_UNPAID_HOLD_SHARE`, a fraction of what is on hand).
    pub unpaid_hold: shop_domain::catalog::inventory::HoldShare,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

/// A `true`/`false` setting; unset is `false` (every allowance fails closed).
fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError(format!(
            "{name} is true or false, not {other:?}"
        ))),
    }
}

fn number<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{name} is not a number: {text:?}"))),
    }
}

/// Payment providers this backend can take payments through.
pub const KNOWN_PAYMENT_PROVIDERS: [&str; 2] = ["stripe", "test"];

/// `PAYMENT_PROVIDERS` (comma-separated). Unset or empty enables none, so a deployment that
/// forgets it takes no orders (checkout answers 500 and logs why) rather than orders nobody
/// pays: the offline `test` provider is only ever on when named. An unknown name is an error.
fn payment_providers(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut providers = Vec::new();
    for name in value.unwrap_or_default().split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        if !KNOWN_PAYMENT_PROVIDERS.contains(&name) {
            return Err(ConfigError(format!(
                "PAYMENT_PROVIDERS names an unknown provider {name:?} (known: {})",
                KNOWN_PAYMENT_PROVIDERS.join(", ")
            )));
        }
        if !providers.iter().any(|p| p == name) {
            providers.push(name.to_owned());
        }
    }
    Ok(providers)
}

impl Config {
    /// Build from a variable lookup (the worker passes `Env::var`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let cors_origins = lookup("CORS_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        let tax_rate = match lookup("TAX_RATE") {
            None => TaxRate::ZERO,
            Some(text) => {
                TaxRate::parse(&text).map_err(|e| ConfigError(format!("TAX_RATE: {e}")))?
            }
        };
        let max_line_quantity: u32 = number(&lookup, "CART_MAX_LINE_QUANTITY", 99)?;
        if max_line_quantity == 0 || max_line_quantity > shop_domain::cart::ABSOLUTE_MAX_QUANTITY {
            return Err(ConfigError("CART_MAX_LINE_QUANTITY out of range".into()));
        }
        let idle_seconds: i64 = number(&lookup, "CART_IDLE_TTL_SECONDS", 30 * 86_400)?;
        if idle_seconds <= 0 {
            return Err(ConfigError("CART_IDLE_TTL_SECONDS must be positive".into()));
        }
        let resend_after: i64 = number(&lookup, "OUTBOX_RESEND_AFTER_SECONDS", 60)?;
        if resend_after <= 0 {
            return Err(ConfigError(
                "OUTBOX_RESEND_AFTER_SECONDS must be positive".into(),
            ));
        }
        let order_token_days: i64 = number(&lookup, "ORDER_TOKEN_TTL_DAYS", 90)?;
        if !(1..=400).contains(&order_token_days) {
            return Err(ConfigError(
                "ORDER_TOKEN_TTL_DAYS is 1 to 400 (order tokens live at most 400 days)".into(),
            ));
        }
        let max_units_per_sku: u32 = number(&lookup, "CHECKOUT_MAX_UNITS_PER_SKU", 50)?;
        if max_units_per_sku == 0 {
            return Err(ConfigError(
                "CHECKOUT_MAX_UNITS_PER_SKU must be positive".into(),
            ));
        }
        let unpaid_hold = lookup("CHECKOUT_UNPAID_HOLD_SHARE")
            .map_or(Some(rust_decimal::Decimal::new(8, 1)), |v| v.trim().parse().ok())
            .and_then(|share: rust_decimal::Decimal| {
                use rust_decimal::prelude::ToPrimitive;
                let points = share * rust_decimal::Decimal::from(10_000);
                points.fract().is_zero().then(|| points.to_u32()).flatten()
            })
            .and_then(shop_domain::catalog::inventory::HoldShare::from_basis_points)
            .ok_or_else(|| {
                ConfigError(
                    "CHECKOUT_UNPAID_HOLD_SHARE is a fraction above 0 and at most 1, in steps of 0.0001".into(),
                )
            })?;
        let tolerance: i64 = number(&lookup, "PAYMENT_WEBHOOK_TOLERANCE_SECONDS", 300)?;
        if !(1..=3600).contains(&tolerance) {
            return Err(ConfigError(
                "PAYMENT_WEBHOOK_TOLERANCE_SECONDS is 1 to 3600".into(),
            ));
        }
        // An outbound call (Stripe) runs inside a request that holds its Idempotency-Key's lease:
        // it must end well before the lease does, or a retry could take the key over while the
        // first call is still running.
        let outbound_ms: i64 = number(&lookup, "OUTBOUND_TIMEOUT_MS", 10_000)?;
        let max_outbound_ms = shop_domain::kernel::idempotency::IN_FLIGHT_LEASE.millis() / 3;
        if !(1..=max_outbound_ms).contains(&outbound_ms) {
            return Err(ConfigError(format!(
                "OUTBOUND_TIMEOUT_MS is 1 to {max_outbound_ms} (a third of the idempotency lease)"
            )));
        }
        let sla_seconds: i64 = number(&lookup, "TICKET_FIRST_RESPONSE_SLA_SECONDS", 86_400)?;
        if sla_seconds <= 0 {
            return Err(ConfigError(
                "TICKET_FIRST_RESPONSE_SLA_SECONDS must be positive".into(),
            ));
        }
        let ticket_token_days: i64 = number(&lookup, "TICKET_TOKEN_TTL_DAYS", 90)?;
        if !(1..=400).contains(&ticket_token_days) {
            return Err(ConfigError("TICKET_TOKEN_TTL_DAYS is 1 to 400".into()));
        }
        let membership = shop_domain::customers::membership::MembershipPolicy::parse(
            lookup("MEMBERSHIP_POINTS_RATES")
                .as_deref()
                .unwrap_or(shop_domain::customers::membership::DEFAULT_RATES),
            lookup("MEMBERSHIP_TIERS")
                .as_deref()
                .unwrap_or(shop_domain::customers::membership::DEFAULT_TIERS),
        )
        .map_err(|e| ConfigError(format!("MEMBERSHIP_POINTS_RATES / MEMBERSHIP_TIERS: {e}")))?;
        Ok(Config {
            membership,
            tickets: shop_domain::support::tickets::TicketPolicy {
                first_response_sla: Duration::from_secs(sla_seconds),
                ..Default::default()
            },
            ticket_token_ttl: Duration::from_days(ticket_token_days),
            payment_webhook_tolerance: Duration::from_secs(tolerance),
            development: lookup("ENVIRONMENT").is_some_and(|e| e.trim() == "development"),
            cors_origins,
            body_limit: number(&lookup, "BODY_LIMIT_BYTES", DEFAULT_BODY_LIMIT)?,
            cart: CartPolicy {
                max_line_quantity,
                max_lines: number(&lookup, "CART_MAX_LINES", 100)?,
                idle_ttl: Duration::from_secs(idle_seconds),
                tax_rate,
            },
            catalog_cache_ttl: Duration::from_secs(number(
                &lookup,
                "CATALOG_CACHE_TTL_SECONDS",
                5,
            )?),
            checkout: CheckoutSettings {
                reservation_ttl: Duration::from_secs(number(
                    &lookup,
                    "RESERVATION_TTL_SECONDS",
                    900,
                )?),
                payment_providers: payment_providers(lookup("PAYMENT_PROVIDERS"))?,
                stripe_api_base: lookup("STRIPE_API_BASE")
                    .unwrap_or_else(|| "https://api.stripe.com".into())
                    .trim_end_matches('/')
                    .to_owned(),
                order_token_ttl: Duration::from_days(order_token_days),
                outbox_resend_after: Duration::from_secs(resend_after),
                max_units_per_sku,
                unpaid_hold,
            },
            outbound_timeout: std::time::Duration::from_millis(outbound_ms.unsigned_abs()),
            webhooks: shop_domain::webhooks::UrlPolicy {
                allow_insecure: flag(&lookup, "WEBHOOKS_ALLOW_INSECURE_URLS")?,
                allow_ip_hosts: flag(&lookup, "WEBHOOKS_ALLOW_IP_HOSTS")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.cart.max_line_quantity, 99);
        assert_eq!(c.cart.idle_ttl, Duration::from_days(30));
        assert!(c.cors_origins.is_empty());
        let c = Config::from_lookup(|n| match n {
            "CORS_ALLOWED_ORIGINS" => Some("http://localhost:3000, https://shop.example/".into()),
            "TAX_RATE" => Some("0.2".into()),
            "CART_MAX_LINE_QUANTITY" => Some("5".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.cors_origins,
            vec!["http://localhost:3000", "https://shop.example"]
        );
        assert_eq!(c.cart.max_line_quantity, 5);
    }

    #[test]
    fn the_unpaid_hold_share_is_a_fraction() {
        let share = |v: &str| {
            Config::from_lookup(|n| (n == "CHECKOUT_UNPAID_HOLD_SHARE").then(|| v.to_owned()))
                .map(|c| c.checkout.unpaid_hold.basis_points())
        };
        assert_eq!(
            Config::from_lookup(|_| None)
                .unwrap()
                .checkout
                .unpaid_hold
                .basis_points(),
            8_000
        );
        assert_eq!(share("0.5"), Ok(5_000));
        assert_eq!(share("1"), Ok(10_000));
        assert_eq!(share("0.0001"), Ok(1));
        for bad in ["0", "1.5", "-0.2", "0.00001", "half", ""] {
            assert!(share(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(Config::from_lookup(|n| (n == "TAX_RATE").then(|| "2".into())).is_err());
        assert!(Config::from_lookup(|n| (n == "MEMBERSHIP_TIERS").then(|| "gold".into())).is_err());
        assert!(
            Config::from_lookup(|n| (n == "CART_MAX_LINE_QUANTITY").then(|| "0".into())).is_err()
        );
        assert!(Config::from_lookup(|n| (n == "BODY_LIMIT_BYTES").then(|| "x".into())).is_err());
        assert!(
            Config::from_lookup(|n| (n == "WEBHOOKS_ALLOW_IP_HOSTS").then(|| "yes".into()))
                .is_err()
        );
        assert!(
            Config::from_lookup(|n| (n == "OUTBOX_RESEND_AFTER_SECONDS").then(|| "0".into()))
                .is_err()
        );
        assert!(
            Config::from_lookup(|n| (n == "ORDER_TOKEN_TTL_DAYS").then(|| "500".into())).is_err()
        );
        for beyond_the_lease in ["0", "20001", "60000"] {
            assert!(
                Config::from_lookup(
                    |n| (n == "OUTBOUND_TIMEOUT_MS").then(|| beyond_the_lease.into())
                )
                .is_err(),
                "{beyond_the_lease}"
            );
        }
        assert!(
            Config::from_lookup(|n| (n == "OUTBOUND_TIMEOUT_MS").then(|| "20000".into())).is_ok()
        );
        let c = Config::from_lookup(|_| None).unwrap();
        assert!(!c.development && !c.webhooks.allow_insecure && !c.webhooks.allow_ip_hosts);
    }

    #[test]
    fn the_test_payment_provider_is_on_only_when_named() {
        let providers = |v: Option<&str>| {
            Config::from_lookup(|n| (n == "PAYMENT_PROVIDERS").then(|| v.map(str::to_owned))?)
                .map(|c| c.checkout.payment_providers)
        };
        assert_eq!(providers(None), Ok(vec![]));
        assert_eq!(providers(Some(" ")), Ok(vec![]));
        assert_eq!(providers(Some("stripe")), Ok(vec!["stripe".to_owned()]));
        assert_eq!(
            providers(Some("test, stripe,test")),
            Ok(vec!["test".to_owned(), "stripe".to_owned()])
        );
        assert!(providers(Some("stripe,paypal")).is_err());
        assert!(providers(Some("Test")).is_err());
    }
}
