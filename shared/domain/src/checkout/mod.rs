//! Checkout: turn an active cart into an order that holds its stock, with a payment session.
//!
//! Everything is validated before anything is written; then the store places the order in one
//! atomic step (order, lines, stock reservations, cart closed, `order.created` in the outbox),
//! which fails as a whole when any SKU is short or the cart was already checked out.

use serde::{Deserialize, Serialize};

use crate::cart::{Cart, CartRepository, CartStatus, PriceChange};
use crate::catalog::inventory::sum_by_sku;
use crate::events::{Event, OrderCreated, OrderCreatedLine, Payload};
use crate::kernel::ids::{CartId, CustomerId, IdSource, OrderId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::pricing::{price_lines, TaxRate};
use crate::kernel::time::{Duration, Timestamp};
use crate::orders::order::{
    Order, OrderLine, OrderStatus, OrderStore, OrderTotals, PaymentLedger, PlaceOutcome,
};
use crate::StoreError;

// Words checkout shares with the rest of the domain, defined where they belong and named here
// too, as before.
pub use crate::fulfilment::shipping::ShippingRates;
pub use crate::kernel::contact::{has_unsafe_characters, Address, AddressInput, Email, FieldIssue};
pub use crate::payments::PaymentError;

/// A checkout request as received (strings), checked by [`CheckoutRequest::parse`].
#[derive(Debug, Clone, Default)]
pub struct CheckoutInput {
    pub email: String,
    pub shipping_address: AddressInput,
    pub billing_address: Option<AddressInput>,
    pub shipping_method: String,
    pub payment_provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub email: Email,
    pub shipping_address: Address,
    pub billing_address: Address,
    /// `None`: the method chosen for the cart (`PUT /v1/carts/{id}/shipping`).
    pub shipping_method: Option<String>,
    pub payment_provider: String,
}

impl CheckoutRequest {
    /// Check every field, reporting all problems at once.
    pub fn parse(input: CheckoutInput) -> Result<Self, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let email = Email::parse(&input.email);
        if email.is_none() {
            issues.push(FieldIssue::new(
                "/email",
                "invalid_email",
                "not an email address",
            ));
        }
        let shipping = Address::parse(input.shipping_address, "/shipping_address", &mut issues);
        let billing = match input.billing_address {
            Some(b) => Address::parse(b, "/billing_address", &mut issues),
            None => shipping.clone(),
        };
        let method = Some(input.shipping_method.trim().to_owned()).filter(|m| !m.is_empty());
        let provider = input.payment_provider.trim().to_owned();
        if provider.is_empty() {
            issues.push(FieldIssue::new(
                "/payment_provider",
                "invalid_value",
                "payment_provider is required",
            ));
        }
        match (email, shipping, billing) {
            (Some(email), Some(shipping_address), Some(billing_address)) if issues.is_empty() => {
                Ok(CheckoutRequest {
                    email,
                    shipping_address,
                    billing_address,
                    shipping_method: method,
                    payment_provider: provider,
                })
            }
            _ => Err(issues),
        }
    }
}

/// What the client needs to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSession {
    pub provider: String,
    pub payment_id: String,
    pub client_secret: String,
    pub amount_minor: i64,
    pub currency: Currency,
}

pub use crate::payments::charge::PaymentReference;

impl PaymentReference {
    /// The whole session again, its client secret read from the provider that created it.
    pub async fn resume(
        self,
        providers: &[&dyn DynPaymentProvider],
    ) -> Result<PaymentSession, PaymentError> {
        let provider = providers
            .iter()
            .find(|p| p.name() == self.provider)
            .ok_or_else(|| {
                PaymentError::Unavailable(format!("provider {} is not enabled", self.provider))
            })?;
        let client_secret = provider.client_secret(&self.payment_id).await?;
        Ok(PaymentSession {
            provider: self.provider,
            payment_id: self.payment_id,
            client_secret,
            amount_minor: self.amount_minor,
            currency: self.currency,
        })
    }
}

/// A payment provider (port): creates the session the client pays through.
pub trait PaymentProvider {
    fn name(&self) -> &str;
    async fn create_session(
        &self,
        order: &OrderId,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<PaymentSession, PaymentError>;
    /// The client secret of the session `payment_id`, read again from the provider.
    async fn client_secret(&self, payment_id: &str) -> Result<String, PaymentError>;
}

pub use crate::catalog::inventory::Shortage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutPolicy {
    pub tax_rate: TaxRate,
    pub reservation_ttl: Duration,
    /// The most units of one SKU a single order may hold: an unpaid order holds its stock for
    /// `reservation_ttl`, so this bounds what one checkout can keep from other shoppers.
    pub max_units_per_sku: u32,
    /// The most of a SKU's stock all unpaid orders together may hold: what no number of
    /// clients or emails can take beyond.
    pub unpaid_hold: crate::catalog::inventory::HoldShare,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutError {
    /// Unpaid orders hold as much of these SKUs as they may (`CheckoutPolicy::unpaid_hold`):
    /// 409, try again once some are paid for or released.
    HoldLimit(Vec<Sku>),
    CartNotFound,
    CartExpired,
    CartEmpty,
    AlreadyCheckedOut {
        order_id: OrderId,
    },
    UnknownShippingMethod {
        known: Vec<String>,
    },
    /// Neither the request nor the cart names a shipping method.
    ShippingMethodRequired,
    /// The request names another method than the one chosen for the cart.
    ShippingMethodNotChosen {
        chosen: String,
    },
    /// Shipping to the address costs another price than the cart shows for its chosen
    /// destination (another zone, or the chosen method can no longer take the cart): the
    /// shopper must see the price before paying it. Nothing was written.
    ShippingChanged {
        shown: Option<Money>,
        at_address: Money,
    },
    UnknownPaymentProvider {
        known: Vec<String>,
    },
    InsufficientStock(Vec<Shortage>),
    /// More units of one SKU than an order may hold; nothing was written.
    TooManyUnits {
        sku: Sku,
        requested: u32,
        max: u32,
    },
    /// A line's price snapshot is not the current price: the shopper must see and accept the
    /// new prices (refresh the cart) before paying them. Nothing was written.
    PriceChanged(Vec<PriceChange>),
    CartChanged,
    Payment(PaymentError),
    Store(StoreError),
}

impl From<StoreError> for CheckoutError {
    fn from(e: StoreError) -> Self {
        CheckoutError::Store(e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order: Order,
    pub payment: PaymentSession,
    /// What the placement wrote to the outbox, for the caller to publish.
    pub events: Vec<Event>,
}

/// Build the order a cart would become, without writing anything. Lines are priced at their
/// snapshot, which the caller has checked is the current price.
pub fn draft_order(
    cart: &Cart,
    request: &CheckoutRequest,
    (shipping_method, shipping): (&str, Money),
    policy: &CheckoutPolicy,
    id: OrderId,
    now: Timestamp,
) -> Result<Order, CheckoutError> {
    let priced: Vec<(Money, u32)> = cart
        .lines
        .iter()
        .map(|l| (l.unit_price, l.quantity.get()))
        .collect();
    let overflow = || CheckoutError::Store(StoreError::new("order totals overflow"));
    let (amounts, totals) =
        price_lines(cart.currency, &priced, policy.tax_rate).map_err(|_| overflow())?;
    let lines = cart
        .lines
        .iter()
        .zip(amounts)
        .map(|(l, a)| OrderLine {
            id: l.id.clone(),
            sku: l.sku.clone(),
            product_id: l.product_id.clone(),
            name: l.name.clone(),
            quantity: l.quantity.get(),
            unit_price: l.unit_price,
            subtotal: a.subtotal,
            discount: a.discount,
            tax: a.tax,
            total: a.total,
        })
        .collect();
    let grand_total = totals
        .grand_total
        .checked_add(shipping)
        .ok_or_else(overflow)?;
    Ok(Order {
        id,
        number: String::new(),
        cart_id: cart.id.clone(),
        status: OrderStatus::PendingPayment,
        currency: cart.currency,
        email: request.email.clone(),
        lines,
        totals: OrderTotals {
            subtotal: totals.subtotal,
            discount: totals.discount,
            shipping,
            tax: totals.tax,
            grand_total,
        },
        shipping_method: shipping_method.to_owned(),
        shipping_address: request.shipping_address.clone(),
        billing_address: request.billing_address.clone(),
        payment_provider: request.payment_provider.clone(),
        payment_id: String::new(),
        customer_id: None,
        ledger: PaymentLedger::default(),
        reservation_expires_at: now.plus(policy.reservation_ttl),
        created_at: now,
        updated_at: now,
    })
}

/// The checkout use case over its ports.
pub struct Checkout<'a, C, S, R> {
    pub carts: &'a C,
    pub orders: &'a S,
    pub shipping: &'a R,
    pub providers: &'a [&'a dyn DynPaymentProvider],
    pub ids: &'a dyn IdSource,
    pub policy: &'a CheckoutPolicy,
    /// The signed-in customer checking out (their access token), if any: the order is linked
    /// to them, and a customer's cart checks out only for them.
    pub customer: Option<&'a CustomerId>,
}

/// Object-safe face of [`PaymentProvider`], so a checkout can choose among providers at run
/// time.
pub trait DynPaymentProvider {
    fn name(&self) -> &str;
    fn create_session<'a>(
        &'a self,
        order: &'a OrderId,
        amount: Money,
        idempotency_key: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<PaymentSession, PaymentError>> + 'a>,
    >;
    fn client_secret<'a>(
        &'a self,
        payment_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, PaymentError>> + 'a>>;
}

impl<P: PaymentProvider> DynPaymentProvider for P {
    fn name(&self) -> &str {
        PaymentProvider::name(self)
    }

    fn create_session<'a>(
        &'a self,
        order: &'a OrderId,
        amount: Money,
        idempotency_key: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<PaymentSession, PaymentError>> + 'a>,
    > {
        Box::pin(PaymentProvider::create_session(
            self,
            order,
            amount,
            idempotency_key,
        ))
    }

    fn client_secret<'a>(
        &'a self,
        payment_id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, PaymentError>> + 'a>>
    {
        Box::pin(PaymentProvider::client_secret(self, payment_id))
    }
}

impl<C: CartRepository, S: OrderStore, R: ShippingRates> Checkout<'_, C, S, R> {
    pub async fn checkout(
        &self,
        cart_id: &CartId,
        request: &CheckoutRequest,
        idempotency_key: &str,
        now: Timestamp,
    ) -> Result<Placed, CheckoutError> {
        let loaded = self
            .carts
            .load(cart_id)
            .await?
            .ok_or(CheckoutError::CartNotFound)?;
        let cart = loaded.cart;
        if cart
            .owner
            .as_ref()
            .is_some_and(|o| Some(o) != self.customer)
        {
            return Err(CheckoutError::CartNotFound);
        }
        if cart.status == CartStatus::CheckedOut {
            return Err(self.already_checked_out(cart_id).await);
        }
        if now >= cart.expires_at {
            return Err(CheckoutError::CartExpired);
        }
        if cart.lines.is_empty() {
            return Err(CheckoutError::CartEmpty);
        }
        for (sku, requested) in sum_by_sku(cart.lines.iter().map(|l| (&l.sku, l.quantity.get()))) {
            if requested > self.policy.max_units_per_sku {
                return Err(CheckoutError::TooManyUnits {
                    sku,
                    requested,
                    max: self.policy.max_units_per_sku,
                });
            }
        }
        // Only the current price is ever charged; a snapshot that differs is answered before
        // anything is reserved or any payment created.
        let changes = cart.price_changes(&loaded.current);
        if !changes.is_empty() {
            return Err(CheckoutError::PriceChanged(changes));
        }
        let destination = crate::fulfilment::shipping::Destination::of_address(
            &request.shipping_address.country,
            &request.shipping_address.postal_code,
        );
        let subtotal = cart
            .lines
            .iter()
            .try_fold(Money::zero(cart.currency), |sum, l| {
                sum.checked_add(l.unit_price.checked_mul(l.quantity.get())?)
            })
            .ok_or_else(|| CheckoutError::Store(StoreError::new("cart subtotal overflows")))?;
        let method = match (&request.shipping_method, &cart.shipping) {
            (Some(asked), Some(choice)) if *asked != choice.method => {
                return Err(CheckoutError::ShippingMethodNotChosen {
                    chosen: choice.method.clone(),
                })
            }
            (Some(asked), _) => asked.as_str(),
            (None, Some(choice)) => choice.method.as_str(),
            (None, None) => return Err(CheckoutError::ShippingMethodRequired),
        };
        let weight = cart.weight_grams(&loaded.current);
        let shipping = self
            .shipping
            .quote(method, &destination, weight, subtotal)
            .ok_or_else(|| CheckoutError::UnknownShippingMethod {
                known: self.shipping.methods(&destination),
            })?;
        // The cart showed a price for its chosen destination: only that price is charged.
        if let Some(choice) = &cart.shipping {
            let shown = self
                .shipping
                .quote(method, &choice.destination, weight, subtotal);
            if shown != Some(shipping) {
                return Err(CheckoutError::ShippingChanged {
                    shown,
                    at_address: shipping,
                });
            }
        }
        let provider = self
            .providers
            .iter()
            .find(|p| p.name() == request.payment_provider)
            .ok_or_else(|| CheckoutError::UnknownPaymentProvider {
                known: self.providers.iter().map(|p| p.name().to_owned()).collect(),
            })?;
        let mut order = draft_order(
            &cart,
            request,
            (method, shipping),
            self.policy,
            OrderId::mint(self.ids),
            now,
        )?;
        order.customer_id = self.customer.cloned();
        // The provider's key names this version of the cart: a retry of the same checkout finds
        // the same payment session, and one after the cart changed starts a new one.
        let provider_key = format!("{idempotency_key}:v{}", cart.version);
        let payment = provider
            .create_session(&order.id, order.totals.grand_total, &provider_key)
            .await
            .map_err(CheckoutError::Payment)?;
        order.payment_id = payment.payment_id.clone();
        let reservations = sum_by_sku(order.lines.iter().map(|l| (&l.sku, l.quantity)));
        let event = Event::new(
            self.ids,
            now,
            Payload::OrderCreated(OrderCreated {
                order_id: order.id.clone(),
                cart_id: order.cart_id.clone(),
                currency: order.currency,
                total: order.totals.grand_total,
                lines: order
                    .lines
                    .iter()
                    .map(|l| OrderCreatedLine {
                        sku: l.sku.clone(),
                        product_id: l.product_id.clone(),
                        quantity: l.quantity,
                        total: l.total,
                    })
                    .collect(),
            }),
        );
        match self
            .orders
            .place(
                &order,
                &reservations,
                self.policy.unpaid_hold,
                cart.version,
                &event,
            )
            .await?
        {
            PlaceOutcome::Placed { number, events } => {
                order.number = number;
                Ok(Placed {
                    order,
                    payment,
                    events,
                })
            }
            PlaceOutcome::Short(shortages) => Err(CheckoutError::InsufficientStock(shortages)),
            PlaceOutcome::HoldLimit(skus) => Err(CheckoutError::HoldLimit(skus)),
            PlaceOutcome::AlreadyCheckedOut { order_id } => {
                Err(CheckoutError::AlreadyCheckedOut { order_id })
            }
            PlaceOutcome::CartChanged => Err(CheckoutError::CartChanged),
            PlaceOutcome::PriceChanged(current) => {
                let changes = cart.price_changes_by(|sku| {
                    current
                        .iter()
                        .find(|(s, _)| s == sku)
                        .and_then(|(_, price)| *price)
                });
                // Changed and changed back: nothing to show, the client simply retries.
                Err(if changes.is_empty() {
                    CheckoutError::CartChanged
                } else {
                    CheckoutError::PriceChanged(changes)
                })
            }
        }
    }

    async fn already_checked_out(&self, cart_id: &CartId) -> CheckoutError {
        match self.orders.order_for_cart(cart_id).await {
            Ok(Some(order_id)) => CheckoutError::AlreadyCheckedOut { order_id },
            Ok(None) => CheckoutError::Store(StoreError::new("checked-out cart without an order")),
            Err(e) => CheckoutError::Store(e),
        }
    }
}

/// The `test` payment provider: creates a session locally so the whole flow runs offline.
/// Its ids say `test` so they can never be mistaken for a real provider's.
pub struct TestPaymentProvider<'a> {
    pub ids: &'a dyn IdSource,
}

impl PaymentProvider for TestPaymentProvider<'_> {
    fn name(&self) -> &str {
        "test"
    }

    async fn create_session(
        &self,
        _order: &OrderId,
        amount: Money,
        _idempotency_key: &str,
    ) -> Result<PaymentSession, PaymentError> {
        let payment_id = format!("pay_test_{:032x}", self.ids.next_u128());
        Ok(PaymentSession {
            provider: "test".into(),
            client_secret: PaymentProvider::client_secret(self, &payment_id).await?,
            payment_id,
            amount_minor: amount.minor_units(),
            currency: amount.currency(),
        })
    }

    /// Derived from the payment id, so a replay can show it again: the test provider moves no
    /// money, and its secret opens nothing.
    async fn client_secret(&self, payment_id: &str) -> Result<String, PaymentError> {
        Ok(format!("{payment_id}_secret"))
    }
}

impl crate::orders::refunds::RefundProvider for TestPaymentProvider<'_> {
    /// Derived from the idempotency key, as a provider keeps one refund per key: the test
    /// provider moves no money; a webhook signed locally confirms the refund.
    async fn refund(
        &self,
        _payment_id: &str,
        _refund: &crate::orders::refunds::Refund,
        key: &str,
    ) -> Result<String, PaymentError> {
        Ok(format!("re_test_{}", key.trim_start_matches("rfd_")))
    }
}

#[cfg(test)]
mod tests;
