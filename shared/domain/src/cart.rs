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

/// The `If-Match` condition of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No `If-Match` (or `*`): apply to whatever is current.
    None,
    /// Apply only if the cart's current entity tag is this one.
    Matches(Vec<String>),
}

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
            if let Precondition::Matches(tags) = precondition {
                let etag = cart.etag();
                if !tags.iter().any(|t| t == &etag) {
                    return Err(CartError::PreconditionFailed { current: etag });
                }
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
mod tests {
    use super::*;

    #[test]
    fn a_shipping_choice_names_a_destination_and_a_method_code() {
        let choice = ShippingChoice::parse(" nl ", "1012 ab", " express ").unwrap();
        assert_eq!(choice.destination.country(), "NL");
        assert_eq!(choice.method, "express");
        let codes = |issues: Vec<crate::kernel::contact::FieldIssue>| -> Vec<&'static str> {
            issues.into_iter().map(|i| i.code).collect()
        };
        assert_eq!(
            codes(ShippingChoice::parse("Netherlands", "", "").unwrap_err()),
            ["invalid_country", "invalid_shipping_method"]
        );
        assert_eq!(
            codes(ShippingChoice::parse("NL", "10#2", &"m".repeat(MAX_METHOD_CHARS)).unwrap_err()),
            ["invalid_postal_code"]
        );
        assert!(ShippingChoice::parse("NL", "", &"m".repeat(MAX_METHOD_CHARS + 1)).is_err());
    }
    use crate::testing::{InMemoryCarts, InMemoryCatalog, SequentialIds};
    use futures_executor::block_on;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn catalog() -> InMemoryCatalog {
        let c = InMemoryCatalog::with_sku(
            "TEE-M",
            &[("19.99", Currency::Eur), ("2500", Currency::Jpy)],
            10,
        );
        c.add_sku("MUG", &[("8.50", Currency::Eur)], 3);
        c
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    fn qty(n: i64) -> Quantity {
        Quantity::new(n).unwrap()
    }

    struct World {
        catalog: InMemoryCatalog,
        ids: SequentialIds,
        policy: CartPolicy,
        zones: Zones,
    }

    impl World {
        fn new() -> Self {
            World {
                catalog: catalog(),
                ids: SequentialIds::default(),
                policy: CartPolicy::default(),
                zones: crate::testing::test_zones(),
            }
        }
    }

    fn service<'a>(
        w: &'a World,
        repo: &'a InMemoryCarts<'a>,
    ) -> Carts<'a, InMemoryCarts<'a>, Zones> {
        Carts {
            repo,
            shipping: &w.zones,
            ids: &w.ids,
            policy: &w.policy,
            customer: None,
        }
    }

    fn customer(n: u32) -> CustomerId {
        CustomerId::parse(&format!("cus_{n:032x}")).unwrap()
    }

    #[test]
    fn a_customers_cart_answers_only_to_them() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let (ada, bob) = (customer(1), customer(2));
        let as_ada = Carts {
            customer: Some(&ada),
            ..service(&w, &repo)
        };
        let as_bob = Carts {
            customer: Some(&bob),
            ..service(&w, &repo)
        };
        let as_guest = service(&w, &repo);
        let none = Precondition::None;
        block_on(async {
            let cart = as_ada.create(Currency::Eur, T0).await.unwrap();
            assert_eq!(repo.carts.borrow()[&cart.id].owner, Some(ada.clone()));
            as_ada
                .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            for other in [&as_bob, &as_guest] {
                assert_eq!(other.get(&cart.id, T0).await, Err(CartError::NotFound));
                assert_eq!(
                    other
                        .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
                        .await,
                    Err(CartError::NotFound)
                );
                assert_eq!(
                    other.clear(&cart.id, &none, T0).await,
                    Err(CartError::NotFound)
                );
            }
            assert_eq!(as_ada.get(&cart.id, T0).await.unwrap().item_count, 1);
            // A guest's cart is anyone's who holds its id, signed in or not.
            let guest = as_guest.create(Currency::Eur, T0).await.unwrap();
            assert!(as_bob.get(&guest.id, T0).await.is_ok());
        });
    }

    #[test]
    fn signing_in_merges_the_guest_cart_capped_or_adopts_it() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let ada = customer(1);
        let as_ada = Carts {
            customer: Some(&ada),
            ..service(&w, &repo)
        };
        let as_guest = service(&w, &repo);
        let none = Precondition::None;
        block_on(async {
            // No cart of theirs yet: the guest cart becomes theirs.
            let first = as_guest.create(Currency::Eur, T0).await.unwrap();
            as_guest
                .add_item(&first.id, &none, &sku("TEE-M"), qty(6), T0)
                .await
                .unwrap();
            let adopted = as_ada.sign_in(Some(&first.id), T0).await.unwrap().unwrap();
            assert_eq!(adopted.id, first.id);
            assert_eq!(repo.carts.borrow()[&first.id].owner, Some(ada.clone()));
            assert_eq!(as_guest.get(&first.id, T0).await, Err(CartError::NotFound));

            // Later, as a guest again: 7 more of TEE-M (10 available) and a MUG.
            let later = T0.plus(Duration::from_secs(60));
            let second = as_guest.create(Currency::Eur, later).await.unwrap();
            as_guest
                .add_item(&second.id, &none, &sku("TEE-M"), qty(7), later)
                .await
                .unwrap();
            as_guest
                .add_item(&second.id, &none, &sku("MUG"), qty(2), later)
                .await
                .unwrap();
            let merged = as_ada
                .sign_in(Some(&second.id), later)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(merged.id, first.id, "merged into their cart");
            let quantities: Vec<_> = merged
                .lines
                .iter()
                .map(|l| (l.sku.as_str().to_owned(), l.quantity))
                .collect();
            assert_eq!(
                quantities,
                vec![("TEE-M".to_owned(), 10), ("MUG".to_owned(), 2)],
                "6 + 7 capped at the 10 available"
            );
            assert!(
                !repo.carts.borrow().contains_key(&second.id),
                "the guest cart is gone"
            );

            // Signing in without a guest cart (another device) finds their cart.
            let found = as_ada.sign_in(None, later).await.unwrap().unwrap();
            assert_eq!(found.id, first.id);
            // Another currency is not merged: that guest cart becomes theirs as it is.
            let yen = as_guest.create(Currency::Jpy, later).await.unwrap();
            let kept = as_ada.sign_in(Some(&yen.id), later).await.unwrap().unwrap();
            assert_eq!(kept.id, yen.id);
            // Nobody signed in: nothing to do.
            assert_eq!(as_guest.sign_in(Some(&yen.id), later).await, Ok(None));
        });
    }

    #[test]
    fn absorbing_respects_the_line_limits() {
        let w = World::new();
        let policy = CartPolicy {
            max_line_quantity: 5,
            max_lines: 1,
            ..CartPolicy::default()
        };
        let offers: BTreeMap<Sku, CurrentOffer> = [("TEE-M", 10), ("MUG", 3)]
            .into_iter()
            .map(|(s, available)| {
                let offer = w.catalog.current(&sku(s), Currency::Eur).unwrap();
                (sku(s), CurrentOffer { available, ..offer })
            })
            .collect();
        let mut mine = Cart::new(CartId::mint(&w.ids), Currency::Eur, T0, &policy);
        let mut guest = Cart::new(CartId::mint(&w.ids), Currency::Eur, T0, &policy);
        let offer = |s: &str| {
            block_on(crate::catalog::CatalogReader::offer(
                &w.catalog,
                &sku(s),
                Currency::Eur,
            ))
            .unwrap()
            .unwrap()
        };
        let (tee, mug) = (offer("TEE-M"), offer("MUG"));
        mine.add(&tee, qty(4), LineId::mint(&w.ids), &policy, T0)
            .unwrap();
        guest
            .add(&tee, qty(3), LineId::mint(&w.ids), &policy, T0)
            .unwrap();
        guest
            .add(&mug, qty(1), LineId::mint(&w.ids), &policy, T0)
            .ok();
        let version = mine.version;
        mine.absorb(&guest, &offers, &policy, T0).unwrap();
        assert_eq!(mine.lines.len(), 1, "no room for a second line");
        assert_eq!(mine.lines[0].quantity.get(), 5, "4 + 3 capped at 5 a line");
        assert_eq!(mine.version, version + 1);
    }

    #[test]
    fn lifecycle_and_totals() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            assert_eq!(cart.totals.grand_total.amount().to_string(), "0.00");
            let none = Precondition::None;
            carts
                .add_item(&cart.id, &none, &sku("TEE-M"), qty(2), T0)
                .await
                .unwrap();
            let v = carts
                .add_item(&cart.id, &none, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            assert_eq!(v.lines.len(), 1, "same SKU grows the line");
            assert_eq!(v.lines[0].quantity, 3);
            let v = carts
                .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            assert_eq!(v.totals.subtotal.amount().to_string(), "68.47");
            assert_eq!(v.item_count, 4);
            let mug = v.lines[1].id.clone();
            let v = carts
                .set_quantity(&cart.id, &none, &mug, 0, T0)
                .await
                .unwrap();
            assert_eq!(v.lines.len(), 1);
            let v = carts.clear(&cart.id, &none, T0).await.unwrap();
            assert!(v.lines.is_empty());
            assert_eq!(v.etag, "\"v6\"");
        });
    }

    #[test]
    fn chosen_shipping_enters_the_totals_and_follows_the_cart() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        let to = |country: &str, postal_code: &str, method: &str| ShippingChoice {
            destination: Destination::parse(country, postal_code).unwrap(),
            method: method.into(),
        };
        let amounts = |v: &CartView| {
            (
                v.totals.shipping.amount().to_string(),
                v.totals.grand_total.amount().to_string(),
            )
        };
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let none = Precondition::None;
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            let id = cart.id;
            carts
                .add_item(&id, &none, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            let v = carts
                .choose_shipping(&id, &none, to("nl", "1012 ab", "standard"), T0)
                .await
                .unwrap();
            assert_eq!(amounts(&v), pair("4.90", "24.89"));
            let shipping = v.shipping.clone().unwrap();
            assert_eq!(
                (shipping.country.as_str(), shipping.postal_code.as_str()),
                ("NL", "1012AB")
            );
            assert_eq!(v.weight_grams, 250);
            assert_eq!(v.etag, "\"v3\"", "choosing shipping is a change");
            assert_eq!(carts.get(&id, T0).await.unwrap(), v, "kept");
            // Heavier than 500 g: the next weight band.
            let v = carts
                .add_item(&id, &none, &sku("MUG"), qty(2), T0)
                .await
                .unwrap();
            assert_eq!(amounts(&v), pair("6.95", "43.94"));
            // From EUR 50 on, standard is free.
            let v = carts
                .add_item(&id, &none, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            assert_eq!(amounts(&v), pair("0.00", "56.98"));
            assert!(v.shipping.unwrap().quote.unwrap().free);
            let v = carts
                .choose_shipping(&id, &none, to("DE", "", "express"), T0)
                .await
                .unwrap();
            assert_eq!(amounts(&v), pair("12.00", "68.98"));
            // The most specific area decides the zone.
            let v = carts
                .choose_shipping(&id, &none, to("NL", "1701", "standard"), T0)
                .await
                .unwrap();
            assert_eq!(amounts(&v), pair("9.90", "66.88"));
            // A method the destination's zone lacks changes nothing and names what it has.
            let before = carts.get(&id, T0).await.unwrap();
            let err = carts
                .choose_shipping(&id, &none, to("US", "22202", "express"), T0)
                .await
                .unwrap_err();
            assert_eq!(
                err,
                CartError::ShippingUnavailable {
                    available: vec!["standard".into()]
                }
            );
            let err = carts
                .choose_shipping(&id, &none, to("JP", "", "standard"), T0)
                .await
                .unwrap_err();
            assert_eq!(err, CartError::ShippingUnavailable { available: vec![] });
            assert_eq!(carts.get(&id, T0).await.unwrap(), before);
            // Too heavy for every band of the chosen method: kept, unpriced, out of the totals.
            let line = before.lines[0].id.clone();
            let v = carts.set_quantity(&id, &none, &line, 9, T0).await.unwrap();
            let shipping = v.shipping.clone().unwrap();
            assert_eq!((v.weight_grams, shipping.quote), (2750, None));
            assert_eq!(amounts(&v), pair("0.00", "196.91"));
            let err = carts
                .choose_shipping(&id, &none, to("NL", "1012AB", "standard"), T0)
                .await
                .unwrap_err();
            assert_eq!(
                err,
                CartError::ShippingUnavailable {
                    available: vec!["express".into()]
                },
                "only express takes 2.75 kg"
            );
            let v = carts.clear_shipping(&id, &none, T0).await.unwrap();
            assert_eq!(v.shipping, None);
            assert_eq!(amounts(&v), pair("0.00", "196.91"));
            // Options for a destination, cheapest first, priced for this cart.
            let (_, options) = carts
                .shipping_options(&id, &Destination::parse("NL", "").unwrap(), T0)
                .await
                .unwrap();
            let codes: Vec<&str> = options.iter().map(|q| q.code.as_str()).collect();
            assert_eq!(codes, ["express"]);
        });
    }

    #[test]
    fn stock_and_limits_are_enforced_when_adding() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let none = Precondition::None;
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            let err = carts
                .add_item(&cart.id, &none, &sku("MUG"), qty(4), T0)
                .await
                .unwrap_err();
            assert_eq!(
                err,
                CartError::InsufficientStock {
                    sku: sku("MUG"),
                    requested: 4,
                    available: 3
                }
            );
            let err = carts
                .add_item(&cart.id, &none, &sku("TEE-M"), qty(100), T0)
                .await
                .unwrap_err();
            assert_eq!(err, CartError::QuantityAboveLimit { max: 99 });
            let err = carts
                .add_item(&cart.id, &none, &sku("NOPE"), qty(1), T0)
                .await
                .unwrap_err();
            assert_eq!(err, CartError::UnknownSku { sku: sku("NOPE") });
            let yen = carts.create(Currency::Jpy, T0).await.unwrap();
            let err = carts
                .add_item(&yen.id, &none, &sku("MUG"), qty(1), T0)
                .await
                .unwrap_err();
            assert_eq!(
                err,
                CartError::NotSoldInCurrency {
                    sku: sku("MUG"),
                    currency: Currency::Jpy
                }
            );
            // Nothing was written by the failures.
            assert_eq!(carts.get(&cart.id, T0).await.unwrap().etag, "\"v1\"");
        });
    }

    #[test]
    fn price_change_is_reported_against_the_snapshot() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            carts
                .add_item(&cart.id, &Precondition::None, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            assert!(!carts.get(&cart.id, T0).await.unwrap().lines[0].price_changed);
            w.catalog.set_price("TEE-M", "17.50", Currency::Eur);
            let v = carts.get(&cart.id, T0).await.unwrap();
            assert!(v.lines[0].price_changed);
            assert_eq!(v.lines[0].unit_price.amount().to_string(), "19.99");
            assert_eq!(
                v.lines[0].current_unit_price.unwrap().amount().to_string(),
                "17.50"
            );
            assert_eq!(v.totals.subtotal.amount().to_string(), "19.99");
        });
    }

    #[test]
    fn a_changed_quantity_or_a_refresh_takes_the_current_price() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            let v = carts
                .add_item(&cart.id, &Precondition::None, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            let line = v.lines[0].id.clone();
            w.catalog.set_price("TEE-M", "25.00", Currency::Eur);
            // Adding more of the SKU re-snapshots the line.
            let v = carts
                .add_item(&cart.id, &Precondition::None, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            assert_eq!(v.lines[0].unit_price.amount().to_string(), "25.00");
            w.catalog.set_price("TEE-M", "30.00", Currency::Eur);
            // Shrinking does too.
            let v = carts
                .set_quantity(&cart.id, &Precondition::None, &line, 1, T0)
                .await
                .unwrap();
            assert_eq!(v.lines[0].unit_price.amount().to_string(), "30.00");
            assert!(!v.lines[0].price_changed);
            // A refresh takes every current price and drops SKUs no longer sold.
            carts
                .add_item(&cart.id, &Precondition::None, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            w.catalog.set_price("TEE-M", "31.00", Currency::Eur);
            w.catalog.remove_price("MUG", Currency::Eur);
            let stale = carts.get(&cart.id, T0).await.unwrap();
            assert!(stale.lines.iter().all(|l| l.price_changed));
            let v = carts
                .refresh(&cart.id, &Precondition::None, T0)
                .await
                .unwrap();
            assert_eq!(v.lines.len(), 1);
            assert_eq!(v.lines[0].unit_price.amount().to_string(), "31.00");
            assert!(!v.lines[0].price_changed);
            // A line whose SKU is gone can be removed, not changed.
            assert_eq!(
                carts
                    .add_item(&cart.id, &Precondition::None, &sku("MUG"), qty(1), T0)
                    .await
                    .unwrap_err(),
                CartError::NotSoldInCurrency {
                    sku: sku("MUG"),
                    currency: Currency::Eur
                }
            );
        });
    }

    #[test]
    fn expiry_and_preconditions() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            let stale = Precondition::Matches(vec!["\"v0\"".into()]);
            let err = carts
                .add_item(&cart.id, &stale, &sku("MUG"), qty(1), T0)
                .await
                .unwrap_err();
            assert_eq!(
                err,
                CartError::PreconditionFailed {
                    current: "\"v1\"".into()
                }
            );
            let fresh = Precondition::Matches(vec![cart.etag.clone()]);
            carts
                .add_item(&cart.id, &fresh, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            let later = T0.plus(Duration::from_days(30));
            assert_eq!(
                carts.get(&cart.id, later).await.unwrap_err(),
                CartError::Expired
            );
            let missing = CartId::parse("cart_0000000000000000000000000000ffff").unwrap();
            assert_eq!(
                carts.get(&missing, T0).await.unwrap_err(),
                CartError::NotFound
            );
        });
    }

    #[test]
    fn concurrent_writer_is_retried_without_if_match_and_412_with_it() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            repo.interleave_writers.set(1);
            let v = carts
                .add_item(&cart.id, &Precondition::None, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            assert_eq!(v.lines.len(), 1);
            repo.interleave_writers.set(1);
            let tag = Precondition::Matches(vec![v.etag.clone()]);
            let err = carts.clear(&cart.id, &tag, T0).await.unwrap_err();
            assert!(matches!(err, CartError::PreconditionFailed { .. }));
            repo.interleave_writers.set(10);
            let err = carts
                .clear(&cart.id, &Precondition::None, T0)
                .await
                .unwrap_err();
            assert_eq!(err, CartError::Contention);
        });
    }

    #[test]
    fn storage_failure_surfaces_as_store_error() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        repo.fail.set(true);
        let err = block_on(carts.create(Currency::Eur, T0)).unwrap_err();
        assert!(matches!(err, CartError::Store(_)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize, i64),
        Set(usize, u32),
        Remove(usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..2, 1i64..120).prop_map(|(s, q)| Op::Add(s, q)),
            (0usize..4, 0u32..120).prop_map(|(l, q)| Op::Set(l, q)),
            (0usize..4).prop_map(Op::Remove),
            Just(Op::Clear),
        ]
    }

    proptest! {
        #[test]
        fn lines_never_exceed_limits_and_failures_change_nothing(ops in proptest::collection::vec(op(), 1..40)) {
            let w = World::new();
            let repo = InMemoryCarts::new(&w.catalog);
            let carts = service(&w, &repo);
            block_on(async {
                let cart = carts.create(Currency::Eur, T0).await.unwrap();
                let none = Precondition::None;
                let skus = [sku("TEE-M"), sku("MUG")];
                for op in ops {
                    let before = carts.get(&cart.id, T0).await.unwrap();
                    let line = |i: usize| before.lines.get(i).map(|l| l.id.clone())
                        .unwrap_or_else(|| LineId::parse("line_000000000000000000000000000000ff").unwrap());
                    let result = match op {
                        Op::Add(s, q) => carts.add_item(&cart.id, &none, &skus[s], qty(q), T0).await,
                        Op::Set(l, q) => carts.set_quantity(&cart.id, &none, &line(l), q, T0).await,
                        Op::Remove(l) => carts.remove_line(&cart.id, &none, &line(l), T0).await,
                        Op::Clear => carts.clear(&cart.id, &none, T0).await,
                    };
                    let after = carts.get(&cart.id, T0).await.unwrap();
                    if result.is_err() {
                        prop_assert_eq!(&after, &before);
                    }
                    for l in &after.lines {
                        let available = if l.sku.as_str() == "MUG" { 3 } else { 10 };
                        prop_assert!(l.quantity >= 1 && l.quantity <= 99);
                        prop_assert!(i64::from(l.quantity) <= available);
                    }
                    let skus_in_cart: std::collections::BTreeSet<_> = after.lines.iter().map(|l| &l.sku).collect();
                    prop_assert_eq!(skus_in_cart.len(), after.lines.len(), "one line per SKU");
                }
                Ok(())
            })?;
        }
    }

    #[test]
    fn removing_a_line_saves_a_new_version_and_refusals_write_nothing() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        let none = Precondition::None;
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            carts
                .add_item(&cart.id, &none, &sku("TEE-M"), qty(2), T0)
                .await
                .unwrap();
            let v = carts
                .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            let (tee, mug) = (v.lines[0].id.clone(), v.lines[1].id.clone());
            let later = T0.plus(Duration::from_secs(60));
            let v = carts
                .remove_line(&cart.id, &none, &mug, later)
                .await
                .unwrap();
            assert_eq!(v.etag, "\"v4\"");
            assert_eq!(v.totals.subtotal.amount().to_string(), "39.98");
            let stored = repo.carts.borrow()[&cart.id].clone();
            assert_eq!(stored.version, 4);
            assert_eq!(stored.updated_at, later);
            assert_eq!(stored.expires_at, later.plus(w.policy.idle_ttl));
            assert_eq!(
                stored
                    .lines
                    .iter()
                    .map(|l| l.sku.as_str())
                    .collect::<Vec<_>>(),
                ["TEE-M"]
            );
            // A line that is gone, growing past the stock or the line limit: refused, unsaved.
            assert_eq!(
                carts.remove_line(&cart.id, &none, &mug, later).await,
                Err(CartError::LineNotFound)
            );
            assert_eq!(
                carts.set_quantity(&cart.id, &none, &mug, 1, later).await,
                Err(CartError::LineNotFound)
            );
            assert_eq!(
                carts.set_quantity(&cart.id, &none, &tee, 11, later).await,
                Err(CartError::InsufficientStock {
                    sku: sku("TEE-M"),
                    requested: 11,
                    available: 10
                })
            );
            assert_eq!(
                carts.set_quantity(&cart.id, &none, &tee, 100, later).await,
                Err(CartError::QuantityAboveLimit { max: 99 })
            );
            assert_eq!(repo.carts.borrow()[&cart.id], stored, "nothing saved");
        });
    }

    #[test]
    fn a_checked_out_cart_refuses_every_change_and_an_expired_one_every_call() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        let none = Precondition::None;
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            let v = carts
                .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            let line = v.lines[0].id.clone();
            repo.carts.borrow_mut().get_mut(&cart.id).unwrap().status = CartStatus::CheckedOut;
            let before = repo.carts.borrow()[&cart.id].clone();
            let choice = ShippingChoice::parse("NL", "1012AB", "standard").unwrap();
            let refusals = [
                carts
                    .add_item(&cart.id, &none, &sku("TEE-M"), qty(1), T0)
                    .await,
                carts.set_quantity(&cart.id, &none, &line, 2, T0).await,
                carts.remove_line(&cart.id, &none, &line, T0).await,
                carts.clear(&cart.id, &none, T0).await,
                carts.refresh(&cart.id, &none, T0).await,
                carts.choose_shipping(&cart.id, &none, choice, T0).await,
                carts.clear_shipping(&cart.id, &none, T0).await,
            ];
            for refused in refusals {
                assert_eq!(refused, Err(CartError::NotActive));
            }
            assert_eq!(repo.carts.borrow()[&cart.id], before);

            let other = carts.create(Currency::Eur, T0).await.unwrap();
            let late = T0.plus(w.policy.idle_ttl);
            assert_eq!(
                carts
                    .add_item(&other.id, &none, &sku("MUG"), qty(1), late)
                    .await,
                Err(CartError::Expired)
            );
            assert_eq!(
                carts.clear(&other.id, &none, late).await,
                Err(CartError::Expired)
            );
            assert_eq!(repo.carts.borrow()[&other.id].version, 1);
        });
    }

    #[test]
    fn a_merge_that_loses_a_race_is_done_again_and_gives_up_after_three_tries() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let ada = customer(1);
        let as_ada = Carts {
            customer: Some(&ada),
            ..service(&w, &repo)
        };
        let as_guest = service(&w, &repo);
        let none = Precondition::None;
        block_on(async {
            let mine = as_ada.create(Currency::Eur, T0).await.unwrap();
            as_ada
                .add_item(&mine.id, &none, &sku("TEE-M"), qty(1), T0)
                .await
                .unwrap();
            let guest = as_guest.create(Currency::Eur, T0).await.unwrap();
            as_guest
                .add_item(&guest.id, &none, &sku("MUG"), qty(2), T0)
                .await
                .unwrap();
            // Another device saves their cart before every merge: the merge is never saved.
            repo.interleave_writers.set(10);
            assert_eq!(
                as_ada.sign_in(Some(&guest.id), T0).await,
                Err(CartError::Contention)
            );
            assert_eq!(repo.interleave_writers.get(), 7, "three attempts");
            assert!(
                repo.carts.borrow().contains_key(&guest.id),
                "the guest cart is kept"
            );
            assert_eq!(repo.carts.borrow()[&mine.id].lines.len(), 1);
            // Once: the merge is done again on the newer version, and saved.
            repo.interleave_writers.set(1);
            let merged = as_ada.sign_in(Some(&guest.id), T0).await.unwrap().unwrap();
            assert_eq!(merged.id, mine.id);
            assert_eq!(merged.item_count, 3);
            let stored = repo.carts.borrow()[&mine.id].clone();
            assert_eq!(stored.version, 2 + 4 + 1, "v2, four other saves, the merge");
            assert!(!repo.carts.borrow().contains_key(&guest.id));
        });
    }

    #[test]
    fn signing_in_passes_over_a_guest_cart_that_cannot_be_merged() {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let (ada, bob) = (customer(1), customer(2));
        let as_ada = Carts {
            customer: Some(&ada),
            ..service(&w, &repo)
        };
        let as_bob = Carts {
            customer: Some(&bob),
            ..service(&w, &repo)
        };
        let as_guest = service(&w, &repo);
        let none = Precondition::None;
        block_on(async {
            let mine = as_ada.create(Currency::Eur, T0).await.unwrap();
            // Checked out, expired, or someone else's: their own cart is the answer, untouched.
            let done = as_guest.create(Currency::Eur, T0).await.unwrap();
            as_guest
                .add_item(&done.id, &none, &sku("MUG"), qty(1), T0)
                .await
                .unwrap();
            repo.carts.borrow_mut().get_mut(&done.id).unwrap().status = CartStatus::CheckedOut;
            let bobs = as_bob.create(Currency::Eur, T0).await.unwrap();
            let old = as_guest
                .create(Currency::Eur, T0.minus(w.policy.idle_ttl))
                .await
                .unwrap();
            let before = repo.carts.borrow().clone();
            for guest in [&done.id, &bobs.id, &old.id] {
                let found = as_ada.sign_in(Some(guest), T0).await.unwrap().unwrap();
                assert_eq!(found.id, mine.id, "{guest}");
            }
            assert_eq!(*repo.carts.borrow(), before, "nothing written");
            // A customer without any cart and no usable guest cart: none.
            let cy = customer(3);
            let as_cy = Carts {
                customer: Some(&cy),
                ..service(&w, &repo)
            };
            assert_eq!(as_cy.sign_in(Some(&done.id), T0).await, Ok(None));
            // Storage failing: said, not hidden as "no cart".
            repo.fail.set(true);
            assert!(matches!(
                as_ada.sign_in(Some(&done.id), T0).await,
                Err(CartError::Store(_))
            ));
        });
    }
}
