//! Carts: the aggregate, its rules, and the service that loads, changes and saves it.
//!
//! A guest's cart belongs to whoever holds its id (an unguessable capability); a customer's
//! cart (created with their access token, or a guest cart they signed in with) answers only to
//! that customer's token, and a guest cart signed in with merges into the customer's. Each line keeps the
//! unit price the shopper last saw (when the line was added or its quantity changed, or when
//! the cart was refreshed); reads tell the client when the current price differs, and checkout
//! refuses to charge anything but the current price (`price_changed`).
//! Quantities are bounded per line by policy and by stock available when adding; the hard
//! stock guarantee comes at checkout.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::Offer;
use crate::fulfilment::shipping::{Destination, Quote, ShippingConfig, Zones};
use crate::kernel::ids::{CartId, CustomerId, IdSource, LineId, ProductId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::pricing::{price_lines, Amounts, TaxRate};
use crate::kernel::time::{Duration, Timestamp};
use crate::StoreError;

/// The largest quantity any line can ever hold, whatever the policy says.
pub const ABSOLUTE_MAX_QUANTITY: u32 = 10_000;

/// A positive quantity of one SKU, at most [`ABSOLUTE_MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidQuantity;

impl fmt::Display for InvalidQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a quantity is a whole number from 1 to {ABSOLUTE_MAX_QUANTITY}"
        )
    }
}

impl Quantity {
    pub fn new(n: i64) -> Result<Self, InvalidQuantity> {
        match u32::try_from(n) {
            Ok(n) if (1..=ABSOLUTE_MAX_QUANTITY).contains(&n) => Ok(Quantity(n)),
            _ => Err(InvalidQuantity),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = InvalidQuantity;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Quantity::new(i64::from(n))
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// Settings that shape carts, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartPolicy {
    pub max_line_quantity: u32,
    pub max_lines: usize,
    pub idle_ttl: Duration,
    pub tax_rate: TaxRate,
}

impl Default for CartPolicy {
    fn default() -> Self {
        CartPolicy {
            max_line_quantity: 99,
            max_lines: 100,
            idle_ttl: Duration::from_days(30),
            tax_rate: TaxRate::ZERO,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartStatus {
    Active,
    CheckedOut,
}

impl CartStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CartStatus::Active => "active",
            CartStatus::CheckedOut => "checked_out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(CartStatus::Active),
            "checked_out" => Some(CartStatus::CheckedOut),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    pub id: LineId,
    pub sku: Sku,
    pub product_id: ProductId,
    pub name: String,
    pub quantity: Quantity,
    /// The unit price the shopper last saw (the snapshot): when the line was added, its
    /// quantity last changed, or the cart was refreshed.
    pub unit_price: Money,
    pub added_at: Timestamp,
}

/// A cart as stored. `version` grows by one on every saved change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub id: CartId,
    pub currency: Currency,
    pub status: CartStatus,
    pub version: u64,
    pub lines: Vec<CartLine>,
    /// The shipping the shopper chose; priced again on every read, so it follows the cart.
    pub shipping: Option<ShippingChoice>,
    /// The customer whose cart this is: it answers only to their access token. `None`: a
    /// guest's cart, whose id is the capability.
    pub owner: Option<CustomerId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Where a cart goes and how: what `PUT /v1/carts/{id}/shipping` chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingChoice {
    pub destination: Destination,
    pub method: String,
}

/// The longest shipping method code the configuration allows (schema/0015).
pub const MAX_METHOD_CHARS: usize = 40;

impl ShippingChoice {
    /// A choice as received: a destination (country, postcode) and a method's code, every
    /// problem reported at once.
    pub fn parse(
        country: &str,
        postal_code: &str,
        method: &str,
    ) -> Result<Self, Vec<crate::kernel::contact::FieldIssue>> {
        use crate::kernel::contact::FieldIssue;
        let mut issues = Vec::new();
        let destination = Destination::parse(country, postal_code);
        if Destination::parse(country, "").is_none() {
            issues.push(FieldIssue::new(
                "/country",
                "invalid_country",
                "country is an ISO 3166-1 alpha-2 code",
            ));
        } else if destination.is_none() {
            issues.push(FieldIssue::new(
                "/postal_code",
                "invalid_postal_code",
                "postal_code is up to 12 letters, digits or '-' (spaces are ignored)",
            ));
        }
        let method = method.trim();
        if method.is_empty() || method.chars().count() > MAX_METHOD_CHARS {
            issues.push(FieldIssue::new(
                "/method",
                "invalid_shipping_method",
                format!(
                    "method is a shipping method's code (1-{MAX_METHOD_CHARS} characters), as GET /v1/carts/{{id}}/shipping-options lists"
                ),
            ));
        }
        match destination {
            Some(destination) if issues.is_empty() => Ok(ShippingChoice {
                destination,
                method: method.to_owned(),
            }),
            _ => Err(issues),
        }
    }
}

/// A SKU's current price (in the cart's currency), availability and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentOffer {
    pub unit_price: Option<Money>,
    pub available: i64,
    pub weight_grams: u64,
}

/// A line whose price snapshot differs from the catalog's price now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceChange {
    pub line_id: LineId,
    pub sku: Sku,
    pub old_unit_price: Money,
    /// `None` when the SKU is no longer sold in the cart's currency.
    pub new_unit_price: Option<Money>,
}

/// A cart with what the catalog says now about each of its SKUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedCart {
    pub cart: Cart,
    pub current: BTreeMap<Sku, CurrentOffer>,
}

impl LoadedCart {
    /// What the cart's units weigh together (its variants' grams × quantities): what shipping
    /// is priced by.
    pub fn weight_grams(&self) -> u64 {
        self.cart.weight_grams(&self.current)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// Someone else saved a newer version first.
    Stale,
}

/// Cart storage (port).
pub trait CartRepository {
    async fn load(&self, id: &CartId) -> Result<Option<LoadedCart>, StoreError>;
    /// The cart with the catalog's offer of `sku` in the cart's currency (`None`: no such
    /// SKU), in one read: what adding a line needs.
    async fn load_with_offer(
        &self,
        id: &CartId,
        sku: &Sku,
    ) -> Result<Option<(LoadedCart, Option<Offer>)>, StoreError>;
    /// Store a new cart. `answer` is what the caller will be told: an adapter may store it with
    /// the change, in the same transaction (an idempotent request's answer).
    async fn insert(&self, cart: &Cart, answer: &CartView) -> Result<(), StoreError>;
    /// Save `cart` (whose `version` is already the new one) only if the stored version is
    /// `cart.version - 1`; `answer` as in [`CartRepository::insert`].
    async fn update(&self, cart: &Cart, answer: &CartView) -> Result<SaveOutcome, StoreError>;
    /// The customer's active, unexpired cart changed last (in `currency`, when given).
    async fn latest_owned(
        &self,
        customer: &CustomerId,
        currency: Option<Currency>,
        now: Timestamp,
    ) -> Result<Option<LoadedCart>, StoreError>;
    /// Save `into` as [`CartRepository::update`] does and delete `absorbed` (as read, at
    /// `absorbed.version`), together: `Stale` and nothing changed when either changed since.
    async fn merge(
        &self,
        into: &Cart,
        answer: &CartView,
        absorbed: &Cart,
    ) -> Result<SaveOutcome, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartError {
    NotFound,
    Expired,
    NotActive,
    LineNotFound,
    PreconditionFailed {
        current: String,
    },
    QuantityAboveLimit {
        max: u32,
    },
    InsufficientStock {
        sku: Sku,
        requested: u32,
        available: i64,
    },
    UnknownSku {
        sku: Sku,
    },
    NotSoldInCurrency {
        sku: Sku,
        currency: Currency,
    },
    TooManyLines {
        max: usize,
    },
    /// The cart's total would leave the range money can hold; nothing was saved.
    TotalTooLarge,
    /// The chosen method does not go to the destination, or cannot take this cart there (its
    /// weight, its currency). `available`: the methods that can, cheapest first.
    ShippingUnavailable {
        available: Vec<String>,
    },
    /// Concurrent writers kept winning; the client may retry.
    Contention,
    Store(StoreError),
}

impl From<StoreError> for CartError {
    fn from(e: StoreError) -> Self {
        CartError::Store(e)
    }
}

impl fmt::Display for CartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CartError::NotFound => f.write_str("cart not found"),
            CartError::Expired => f.write_str("cart expired"),
            CartError::NotActive => f.write_str("cart is no longer active"),
            CartError::LineNotFound => f.write_str("cart line not found"),
            CartError::PreconditionFailed { current } => {
                write!(f, "cart changed; current ETag is {current}")
            }
            CartError::QuantityAboveLimit { max } => {
                write!(f, "a line holds at most {max} units")
            }
            CartError::InsufficientStock {
                sku,
                requested,
                available,
            } => write!(f, "{sku}: {requested} requested, {available} available"),
            CartError::UnknownSku { sku } => write!(f, "unknown SKU {sku}"),
            CartError::NotSoldInCurrency { sku, currency } => {
                write!(f, "{sku} is not sold in {currency}")
            }
            CartError::TooManyLines { max } => write!(f, "a cart holds at most {max} lines"),
            CartError::TotalTooLarge => f.write_str("the cart total is out of range"),
            CartError::ShippingUnavailable { available } => write!(
                f,
                "no such shipping method for this cart there; available: {}",
                available.join(", ")
            ),
            CartError::Contention => f.write_str("the cart is being changed concurrently"),
            CartError::Store(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for CartError {}

pub use crate::kernel::precondition::Precondition;

impl Cart {
    pub fn new(id: CartId, currency: Currency, now: Timestamp, policy: &CartPolicy) -> Self {
        Cart {
            id,
            currency,
            status: CartStatus::Active,
            version: 1,
            lines: Vec::new(),
            shipping: None,
            owner: None,
            created_at: now,
            updated_at: now,
            expires_at: now.plus(policy.idle_ttl),
        }
    }

    /// The strong entity tag of this version of the cart.
    pub fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }

    fn check_usable(&self, now: Timestamp) -> Result<(), CartError> {
        if now >= self.expires_at {
            return Err(CartError::Expired);
        }
        Ok(())
    }

    fn check_mutable(&self) -> Result<(), CartError> {
        match self.status {
            CartStatus::Active => Ok(()),
            CartStatus::CheckedOut => Err(CartError::NotActive),
        }
    }

    /// Add `quantity` of the offered SKU; an existing line of that SKU grows and takes the
    /// current price as its snapshot (the shopper sees it in the answer). Returns the line's id.
    pub fn add(
        &mut self,
        offer: &Offer,
        quantity: Quantity,
        new_line_id: LineId,
        policy: &CartPolicy,
        now: Timestamp,
    ) -> Result<LineId, CartError> {
        self.check_mutable()?;
        let unit_price = offer
            .unit_price
            .ok_or_else(|| CartError::NotSoldInCurrency {
                sku: offer.sku.clone(),
                currency: self.currency,
            })?;
        if unit_price.currency() != self.currency {
            return Err(CartError::NotSoldInCurrency {
                sku: offer.sku.clone(),
                currency: self.currency,
            });
        }
        let existing = self.lines.iter().position(|l| l.sku == offer.sku);
        let current = existing
            .and_then(|i| self.lines.get(i))
            .map_or(0, |l| l.quantity.get());
        let wanted = current.saturating_add(quantity.get());
        check_quantity(&offer.sku, wanted, offer.available, policy)?;
        let wanted =
            Quantity::new(i64::from(wanted)).map_err(|_| CartError::QuantityAboveLimit {
                max: policy.max_line_quantity,
            })?;
        let line_id = match existing.and_then(|i| self.lines.get_mut(i)) {
            Some(line) => {
                line.quantity = wanted;
                line.unit_price = unit_price;
                line.id.clone()
            }
            None => {
                if self.lines.len() >= policy.max_lines {
                    return Err(CartError::TooManyLines {
                        max: policy.max_lines,
                    });
                }
                self.lines.push(CartLine {
                    id: new_line_id.clone(),
                    sku: offer.sku.clone(),
                    product_id: offer.product_id.clone(),
                    name: offer.name.clone(),
                    quantity: wanted,
                    unit_price,
                    added_at: now,
                });
                new_line_id
            }
        };
        self.touch(now, policy);
        Ok(line_id)
    }

    /// Set a line's quantity; 0 removes it. Growing a line is checked against the current
    /// availability; shrinking always succeeds. A changed line takes the current price as its
    /// snapshot; a SKU no longer sold in the cart's currency can only be removed.
    pub fn set_quantity(
        &mut self,
        line_id: &LineId,
        quantity: u32,
        current: Option<&CurrentOffer>,
        policy: &CartPolicy,
        now: Timestamp,
    ) -> Result<(), CartError> {
        self.check_mutable()?;
        if quantity == 0 {
            return self.remove(line_id, policy, now);
        }
        let currency = self.currency;
        let line = self
            .lines
            .iter_mut()
            .find(|l| &l.id == line_id)
            .ok_or(CartError::LineNotFound)?;
        let unit_price = current
            .and_then(|c| c.unit_price)
            .filter(|p| p.currency() == currency)
            .ok_or_else(|| CartError::NotSoldInCurrency {
                sku: line.sku.clone(),
                currency,
            })?;
        if quantity > line.quantity.get() {
            check_quantity(
                &line.sku,
                quantity,
                current.map_or(0, |c| c.available),
                policy,
            )?;
        } else if quantity > policy.max_line_quantity {
            return Err(CartError::QuantityAboveLimit {
                max: policy.max_line_quantity,
            });
        }
        line.quantity =
            Quantity::new(i64::from(quantity)).map_err(|_| CartError::QuantityAboveLimit {
                max: policy.max_line_quantity,
            })?;
        line.unit_price = unit_price;
        self.touch(now, policy);
        Ok(())
    }

    /// Take every line's current price as its snapshot: the shopper has seen the new prices
    /// and accepts them. Lines whose SKU is no longer sold in the cart's currency are removed.
    pub fn refresh(
        &mut self,
        current: &BTreeMap<Sku, CurrentOffer>,
        policy: &CartPolicy,
        now: Timestamp,
    ) -> Result<(), CartError> {
        self.check_mutable()?;
        let currency = self.currency;
        self.lines.retain_mut(|line| {
            match current
                .get(&line.sku)
                .and_then(|c| c.unit_price)
                .filter(|p| p.currency() == currency)
            {
                Some(price) => {
                    line.unit_price = price;
                    true
                }
                None => false,
            }
        });
        self.touch(now, policy);
        Ok(())
    }

    /// Lines whose snapshot is not the current price (or whose SKU is no longer sold).
    pub fn price_changes(&self, current: &BTreeMap<Sku, CurrentOffer>) -> Vec<PriceChange> {
        self.price_changes_by(|sku| current.get(sku).and_then(|c| c.unit_price))
    }

    /// Lines whose snapshot is not `price_now(sku)` (`None`: the SKU is no longer sold).
    pub fn price_changes_by(&self, price_now: impl Fn(&Sku) -> Option<Money>) -> Vec<PriceChange> {
        self.lines
            .iter()
            .filter_map(|line| {
                let now_price = price_now(&line.sku);
                (now_price != Some(line.unit_price)).then(|| PriceChange {
                    line_id: line.id.clone(),
                    sku: line.sku.clone(),
                    old_unit_price: line.unit_price,
                    new_unit_price: now_price,
                })
            })
            .collect()
    }

    pub fn remove(
        &mut self,
        line_id: &LineId,
        policy: &CartPolicy,
        now: Timestamp,
    ) -> Result<(), CartError> {
        self.check_mutable()?;
        let before = self.lines.len();
        self.lines.retain(|l| &l.id != line_id);
        if self.lines.len() == before {
            return Err(CartError::LineNotFound);
        }
        self.touch(now, policy);
        Ok(())
    }

    pub fn clear(&mut self, policy: &CartPolicy, now: Timestamp) -> Result<(), CartError> {
        self.check_mutable()?;
        self.lines.clear();
        self.touch(now, policy);
        Ok(())
    }

    /// Choose (`Some`) or forget (`None`) where and how the cart ships. Whether the method can
    /// take the cart there is the service's question (it needs the configuration).
    pub fn choose_shipping(
        &mut self,
        choice: Option<ShippingChoice>,
        policy: &CartPolicy,
        now: Timestamp,
    ) -> Result<(), CartError> {
        self.check_mutable()?;
        self.shipping = choice;
        self.touch(now, policy);
        Ok(())
    }

    /// Take `guest`'s lines into this cart (a guest cart merging into its customer's): a SKU
    /// already here grows by the guest's quantity and takes the current price; another SKU
    /// comes as a new line with its snapshot. Quantities are capped as when adding (the line
    /// limit, the stock available, never below what this cart already held), and lines beyond
    /// the cart's line limit or with nothing available are left out. `current` covers both
    /// carts' SKUs.
    pub fn absorb(
        &mut self,
        guest: &Cart,
        current: &BTreeMap<Sku, CurrentOffer>,
        policy: &CartPolicy,
        now: Timestamp,
    ) -> Result<(), CartError> {
        self.check_mutable()?;
        let max = policy.max_line_quantity.min(ABSOLUTE_MAX_QUANTITY);
        let currency = self.currency;
        for incoming in guest.lines.iter().filter(|_| guest.currency == currency) {
            let offer = current.get(&incoming.sku);
            let available = offer.map_or(0, |o| o.available.max(0));
            let cap = |held: u32| {
                u32::try_from(available)
                    .unwrap_or(u32::MAX)
                    .min(max)
                    .max(held)
            };
            let room = self.lines.len() < policy.max_lines;
            match self.lines.iter_mut().find(|l| l.sku == incoming.sku) {
                Some(line) => {
                    let held = line.quantity.get();
                    let wanted = held.saturating_add(incoming.quantity.get()).min(cap(held));
                    if let (Ok(quantity), Some(price)) = (
                        Quantity::new(i64::from(wanted)),
                        offer.and_then(|o| o.unit_price),
                    ) {
                        line.quantity = quantity;
                        line.unit_price = price;
                    }
                }
                None if room => {
                    let wanted = incoming.quantity.get().min(cap(0));
                    if let Ok(quantity) = Quantity::new(i64::from(wanted)) {
                        self.lines.push(CartLine {
                            quantity,
                            ..incoming.clone()
                        });
                    }
                }
                None => {}
            }
        }
        if self.shipping.is_none() {
            self.shipping.clone_from(&guest.shipping);
        }
        self.touch(now, policy);
        Ok(())
    }

    /// What the lines weigh together, by the catalog's weights now.
    pub fn weight_grams(&self, current: &BTreeMap<Sku, CurrentOffer>) -> u64 {
        self.lines
            .iter()
            .map(|l| {
                let grams = current.get(&l.sku).map_or(0, |c| c.weight_grams);
                grams.saturating_mul(u64::from(l.quantity.get()))
            })
            .fold(0, u64::saturating_add)
    }

    fn touch(&mut self, now: Timestamp, policy: &CartPolicy) {
        self.version = self.version.saturating_add(1);
        self.updated_at = now;
        self.expires_at = now.plus(policy.idle_ttl);
    }
}

fn check_quantity(
    sku: &Sku,
    wanted: u32,
    available: i64,
    policy: &CartPolicy,
) -> Result<(), CartError> {
    let max = policy.max_line_quantity.min(ABSOLUTE_MAX_QUANTITY);
    if wanted > max {
        return Err(CartError::QuantityAboveLimit { max });
    }
    if i64::from(wanted) > available {
        return Err(CartError::InsufficientStock {
            sku: sku.clone(),
            requested: wanted,
            available: available.max(0),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineView {
    pub id: LineId,
    pub sku: Sku,
    pub product_id: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    /// True when the catalog's price now differs from the snapshot (or the SKU is gone).
    pub price_changed: bool,
    /// The catalog's price now, when it differs from `unit_price`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_unit_price: Option<Money>,
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub total: Money,
}

/// A cart's totals: its lines' (as an order would have them) and the chosen shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartTotals {
    pub subtotal: Money,
    pub discount: Money,
    /// The chosen method's price now (zero when none is chosen or it cannot take the cart).
    pub shipping: Money,
    pub tax: Money,
    pub grand_total: Money,
}

/// The chosen shipping, priced for the cart as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingView {
    pub country: String,
    pub postal_code: String,
    pub method: String,
    /// What the method costs for this cart now; `null` when it can no longer take it (the
    /// cart grew too heavy, or the method is no longer offered there): choose again.
    pub quote: Option<Quote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartView {
    pub id: CartId,
    pub currency: Currency,
    pub status: CartStatus,
    pub lines: Vec<LineView>,
    pub item_count: u64,
    /// What the cart's units weigh together, by the catalog's weights now.
    pub weight_grams: u64,
    pub shipping: Option<ShippingView>,
    pub totals: CartTotals,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(skip)]
    pub etag: String,
}

impl CartView {
    /// The cart as its owner sees it; `zones`: the shipping configuration, needed when the
    /// cart has chosen shipping.
    pub fn build(
        cart: &Cart,
        current: &BTreeMap<Sku, CurrentOffer>,
        policy: &CartPolicy,
        zones: Option<&Zones>,
    ) -> Result<Self, CartError> {
        let priced: Vec<(Money, u32)> = cart
            .lines
            .iter()
            .map(|l| (l.unit_price, l.quantity.get()))
            .collect();
        let (amounts, totals) = price_lines(cart.currency, &priced, policy.tax_rate)
            .map_err(|_| CartError::TotalTooLarge)?;
        let lines = cart
            .lines
            .iter()
            .zip(amounts)
            .map(
                |(
                    line,
                    Amounts {
                        subtotal,
                        discount,
                        tax,
                        total,
                    },
                )| {
                    let now_price = current.get(&line.sku).and_then(|c| c.unit_price);
                    let price_changed = now_price != Some(line.unit_price);
                    LineView {
                        id: line.id.clone(),
                        sku: line.sku.clone(),
                        product_id: line.product_id.clone(),
                        name: line.name.clone(),
                        quantity: line.quantity.get(),
                        unit_price: line.unit_price,
                        price_changed,
                        current_unit_price: if price_changed { now_price } else { None },
                        subtotal,
                        discount,
                        tax,
                        total,
                    }
                },
            )
            .collect();
        let weight_grams = cart.weight_grams(current);
        let shipping = cart.shipping.as_ref().map(|choice| ShippingView {
            country: choice.destination.country().to_owned(),
            postal_code: choice.destination.postal_code().to_owned(),
            method: choice.method.clone(),
            quote: zones.and_then(|z| {
                z.quote(
                    &choice.method,
                    &choice.destination,
                    weight_grams,
                    totals.subtotal,
                )
            }),
        });
        let shipping_price = shipping
            .as_ref()
            .and_then(|s| s.quote.as_ref())
            .map_or(Money::zero(cart.currency), |q| q.price);
        let grand_total = totals
            .grand_total
            .checked_add(shipping_price)
            .ok_or(CartError::TotalTooLarge)?;
        Ok(CartView {
            id: cart.id.clone(),
            currency: cart.currency,
            status: cart.status,
            lines,
            item_count: cart.lines.iter().map(|l| u64::from(l.quantity.get())).sum(),
            weight_grams,
            shipping,
            totals: CartTotals {
                subtotal: totals.subtotal,
                discount: totals.discount,
                shipping: shipping_price,
                tax: totals.tax,
                grand_total,
            },
            created_at: cart.created_at,
            updated_at: cart.updated_at,
            expires_at: cart.expires_at,
            etag: cart.etag(),
        })
    }
}

/// How many times a change is re-applied when a concurrent writer saved first.
const MAX_ATTEMPTS: usize = 3;

/// The cart use cases, over injected ports, ids and policy.
pub struct Carts<'a, R, Z> {
    pub repo: &'a R,
    /// Read only when a cart has chosen shipping.
    pub shipping: &'a Z,
    pub ids: &'a dyn IdSource,
    pub policy: &'a CartPolicy,
    /// The signed-in customer calling (their access token), if any: a customer's cart answers
    /// only to them; a cart they create is theirs.
    pub customer: Option<&'a CustomerId>,
}

/// One change to a cart, applied to a freshly loaded copy.
enum Change<'c> {
    Add {
        offer: &'c Offer,
        quantity: Quantity,
        new_line: LineId,
    },
    SetQuantity {
        line_id: &'c LineId,
        quantity: u32,
    },
    Remove {
        line_id: &'c LineId,
    },
    Clear,
    Refresh,
    /// `None`: forget the chosen shipping.
    ChooseShipping(Option<ShippingChoice>),
}

impl<R: CartRepository, Z: ShippingConfig> Carts<'_, R, Z> {
    pub async fn create(&self, currency: Currency, now: Timestamp) -> Result<CartView, CartError> {
        let mut cart = Cart::new(CartId::mint(self.ids), currency, now, self.policy);
        cart.owner = self.customer.cloned();
        let view = CartView::build(&cart, &BTreeMap::new(), self.policy, None)?;
        self.repo.insert(&cart, &view).await?;
        Ok(view)
    }

    pub async fn get(&self, id: &CartId, now: Timestamp) -> Result<CartView, CartError> {
        let loaded = self.load(id, now).await?;
        self.view(&loaded).await
    }

    /// The cart with every method that can take it to `destination`, cheapest first.
    pub async fn shipping_options(
        &self,
        id: &CartId,
        destination: &Destination,
        now: Timestamp,
    ) -> Result<(CartView, Vec<Quote>), CartError> {
        let loaded = self.load(id, now).await?;
        let zones = self.shipping.zones().await?;
        let view = CartView::build(&loaded.cart, &loaded.current, self.policy, Some(&zones))?;
        let options = zones.quotes(destination, loaded.weight_grams(), view.totals.subtotal);
        Ok((view, options))
    }

    /// Ship the cart to `destination` by `method`, which must be able to take it there; the
    /// cart's totals include its price from now on, priced again as the cart changes.
    pub async fn choose_shipping(
        &self,
        id: &CartId,
        precondition: &Precondition,
        choice: ShippingChoice,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        let change = Change::ChooseShipping(Some(choice));
        self.apply(id, precondition, now, None, &change).await
    }

    /// Forget the chosen shipping.
    pub async fn clear_shipping(
        &self,
        id: &CartId,
        precondition: &Precondition,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        self.apply(id, precondition, now, None, &Change::ChooseShipping(None))
            .await
    }

    /// The shipping configuration when `cart` has chosen shipping (the port keeps it, so a
    /// retried change does not read it again).
    async fn zones_for(&self, cart: &Cart) -> Result<Option<Zones>, CartError> {
        Ok(match cart.shipping {
            Some(_) => Some(self.shipping.zones().await?),
            None => None,
        })
    }

    pub async fn add_item(
        &self,
        id: &CartId,
        precondition: &Precondition,
        sku: &Sku,
        quantity: Quantity,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        let (loaded, offer) = self
            .repo
            .load_with_offer(id, sku)
            .await?
            .ok_or(CartError::NotFound)?;
        self.check_holder(&loaded.cart)?;
        loaded.cart.check_usable(now)?;
        let offer = offer.ok_or_else(|| CartError::UnknownSku { sku: sku.clone() })?;
        let change = Change::Add {
            offer: &offer,
            quantity,
            new_line: LineId::mint(self.ids),
        };
        self.apply(id, precondition, now, Some(loaded), &change)
            .await
    }

    pub async fn set_quantity(
        &self,
        id: &CartId,
        precondition: &Precondition,
        line_id: &LineId,
        quantity: u32,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        let change = Change::SetQuantity { line_id, quantity };
        self.apply(id, precondition, now, None, &change).await
    }

    pub async fn remove_line(
        &self,
        id: &CartId,
        precondition: &Precondition,
        line_id: &LineId,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        self.apply(id, precondition, now, None, &Change::Remove { line_id })
            .await
    }

    pub async fn clear(
        &self,
        id: &CartId,
        precondition: &Precondition,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        self.apply(id, precondition, now, None, &Change::Clear)
            .await
    }

    /// Accept the current prices (see [`Cart::refresh`]).
    pub async fn refresh(
        &self,
        id: &CartId,
        precondition: &Precondition,
        now: Timestamp,
    ) -> Result<CartView, CartError> {
        self.apply(id, precondition, now, None, &Change::Refresh)
            .await
    }

    async fn load(&self, id: &CartId, now: Timestamp) -> Result<LoadedCart, CartError> {
        let loaded = self.repo.load(id).await?.ok_or(CartError::NotFound)?;
        self.check_holder(&loaded.cart)?;
        loaded.cart.check_usable(now)?;
        Ok(loaded)
    }

    /// A customer's cart is not found by anyone else (a guest's is found by its id alone).
    fn check_holder(&self, cart: &Cart) -> Result<(), CartError> {
        match &cart.owner {
            Some(owner) if Some(owner) != self.customer => Err(CartError::NotFound),
            _ => Ok(()),
        }
    }

    /// The cart of the customer who just signed in: the guest cart `guest` they were using
    /// merged into their latest cart in its currency (deleted in the same save), or made
    /// theirs when they have none; without a usable guest cart, their latest cart. `None`: no
    /// cart (or no customer calling).
    pub async fn sign_in(
        &self,
        guest: Option<&CartId>,
        now: Timestamp,
    ) -> Result<Option<CartView>, CartError> {
        let Some(customer) = self.customer else {
            return Ok(None);
        };
        for _ in 0..MAX_ATTEMPTS {
            let guest_cart = match guest {
                Some(id) => match self.load(id, now).await {
                    Ok(loaded) if loaded.cart.status == CartStatus::Active => Some(loaded),
                    Ok(_) | Err(CartError::NotFound | CartError::Expired) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let Some(guest_cart) = guest_cart else {
                return match self.repo.latest_owned(customer, None, now).await? {
                    Some(latest) => Ok(Some(self.view(&latest).await?)),
                    None => Ok(None),
                };
            };
            let mine = guest_cart.cart.owner.is_some();
            let target = if mine {
                None
            } else {
                self.repo
                    .latest_owned(customer, Some(guest_cart.cart.currency), now)
                    .await?
            };
            let outcome = match target {
                // Already theirs: nothing to merge.
                None if mine => return Ok(Some(self.view(&guest_cart).await?)),
                None => {
                    let LoadedCart { mut cart, current } = guest_cart;
                    cart.owner = Some(customer.clone());
                    cart.touch(now, self.policy);
                    let loaded = LoadedCart { cart, current };
                    let view = self.view(&loaded).await?;
                    (self.repo.update(&loaded.cart, &view).await?, view)
                }
                Some(LoadedCart { mut cart, current }) => {
                    let mut offers = guest_cart.current.clone();
                    offers.extend(current);
                    cart.absorb(&guest_cart.cart, &offers, self.policy, now)?;
                    let loaded = LoadedCart {
                        cart,
                        current: offers,
                    };
                    let view = self.view(&loaded).await?;
                    let saved = self
                        .repo
                        .merge(&loaded.cart, &view, &guest_cart.cart)
                        .await?;
                    (saved, view)
                }
            };
            if let (SaveOutcome::Saved, view) = outcome {
                return Ok(Some(view));
            }
        }
        Err(CartError::Contention)
    }

    async fn view(&self, loaded: &LoadedCart) -> Result<CartView, CartError> {
        let zones = self.zones_for(&loaded.cart).await?;
        CartView::build(&loaded.cart, &loaded.current, self.policy, zones.as_ref())
    }

    /// Load, check the precondition, change, save with a version check; when another writer
    /// won and the client gave no `If-Match`, re-apply to the newer version.
    async fn apply(
        &self,
        id: &CartId,
        precondition: &Precondition,
        now: Timestamp,
        mut preloaded: Option<LoadedCart>,
        change: &Change<'_>,
    ) -> Result<CartView, CartError> {
        for _ in 0..MAX_ATTEMPTS {
            let LoadedCart {
                mut cart,
                mut current,
                ..
            } = match preloaded.take() {
                Some(loaded) => loaded,
                None => self.load(id, now).await?,
            };
            let etag = cart.etag();
            if !precondition.admits(&etag) {
                return Err(CartError::PreconditionFailed { current: etag });
            }
            match change {
                Change::Add {
                    offer,
                    quantity,
                    new_line,
                } => {
                    cart.add(offer, *quantity, new_line.clone(), self.policy, now)?;
                    current.insert(
                        offer.sku.clone(),
                        CurrentOffer {
                            unit_price: offer.unit_price,
                            available: offer.available,
                            weight_grams: offer.weight_grams,
                        },
                    );
                }
                Change::SetQuantity { line_id, quantity } => {
                    let offer = cart
                        .lines
                        .iter()
                        .find(|l| &l.id == *line_id)
                        .and_then(|l| current.get(&l.sku));
                    cart.set_quantity(line_id, *quantity, offer, self.policy, now)?;
                }
                Change::Remove { line_id } => cart.remove(line_id, self.policy, now)?,
                Change::Clear => cart.clear(self.policy, now)?,
                Change::Refresh => cart.refresh(&current, self.policy, now)?,
                Change::ChooseShipping(choice) => {
                    cart.choose_shipping(choice.clone(), self.policy, now)?
                }
            }
            // Priced before saving: a cart whose total cannot be represented is refused, not
            // saved and then failed on.
            let zones = self.zones_for(&cart).await?;
            let view = CartView::build(&cart, &current, self.policy, zones.as_ref())?;
            if let (Change::ChooseShipping(Some(choice)), Some(shipping)) = (change, &view.shipping)
            {
                if shipping.quote.is_none() {
                    let available = zones
                        .map(|z| {
                            z.quotes(&choice.destination, view.weight_grams, view.totals.subtotal)
                        })
                        .unwrap_or_default();
                    return Err(CartError::ShippingUnavailable {
                        available: available.into_iter().map(|q| q.code).collect(),
                    });
                }
            }
            match self.repo.update(&cart, &view).await? {
                SaveOutcome::Saved => return Ok(view),
                SaveOutcome::Stale => {
                    if let Precondition::Matches(_) = precondition {
                        let latest = self.load(id, now).await?;
                        return Err(CartError::PreconditionFailed {
                            current: latest.cart.etag(),
                        });
                    }
                }
            }
        }
        Err(CartError::Contention)
    }
}

#[cfg(test)]
mod tests;
