//! In-memory implementations of the ports, for tests in this crate and others
//! (feature `test-utils`). They can be told to fail, to exercise fault paths.
//! Test support: malformed fixtures are programming errors, so it may panic on them.
#![allow(clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::cart::{
    Cart, CartRepository, CartStatus, CartView, CurrentOffer, LoadedCart, SaveOutcome,
};
use crate::catalog::{
    CatalogReader, Offer, Product, ProductQuery, ProductSummary, StockStatus, Variant,
};
use crate::kernel::ids::{CartId, CustomerId, IdSource, ProductId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::pagination::Page;
use crate::kernel::time::Timestamp;
use crate::StoreError;

/// Ids from a counter: predictable, for tests only.
#[derive(Default)]
pub struct SequentialIds(Cell<u128>);

impl IdSource for SequentialIds {
    fn next_u128(&self) -> u128 {
        let next = self.0.get() + 1;
        self.0.set(next);
        next
    }
}

#[derive(Debug, Clone)]
pub struct FakeSku {
    pub sku: Sku,
    pub options: BTreeMap<String, String>,
    pub prices: Vec<Money>,
    pub on_hand: i64,
    pub weight_grams: u64,
}

#[derive(Debug, Clone)]
pub struct FakeProduct {
    pub id: ProductId,
    pub name: String,
    pub category: String,
    pub variants: Vec<FakeSku>,
}

/// What every unit of an in-memory catalog weighs.
pub const FIXTURE_WEIGHT_GRAMS: u64 = 250;

/// A catalog held in memory.
#[derive(Default)]
pub struct InMemoryCatalog {
    pub products: RefCell<Vec<FakeProduct>>,
    pub low_threshold: i64,
    pub fail: Cell<bool>,
}

impl InMemoryCatalog {
    /// One product with one SKU priced in the given currencies.
    pub fn with_sku(sku: &str, prices: &[(&str, Currency)], on_hand: i64) -> Self {
        let catalog = InMemoryCatalog {
            low_threshold: 5,
            ..Default::default()
        };
        catalog.add_sku(sku, prices, on_hand);
        catalog
    }

    pub fn add_sku(&self, sku: &str, prices: &[(&str, Currency)], on_hand: i64) {
        let slug = sku.to_ascii_lowercase();
        self.products.borrow_mut().push(FakeProduct {
            id: ProductId::parse(&format!("prod_{slug}")).expect("fixture product id"),
            name: format!("Product {sku}"),
            category: "test".into(),
            variants: vec![FakeSku {
                sku: Sku::parse(sku).expect("fixture SKU"),
                options: BTreeMap::new(),
                prices: prices
                    .iter()
                    .filter_map(|(amount, c)| Money::parse(amount, *c).ok())
                    .collect(),
                on_hand,
                weight_grams: FIXTURE_WEIGHT_GRAMS,
            }],
        });
    }

    pub fn set_price(&self, sku: &str, amount: &str, currency: Currency) {
        for product in self.products.borrow_mut().iter_mut() {
            for variant in product
                .variants
                .iter_mut()
                .filter(|v| v.sku.as_str() == sku)
            {
                variant.prices.retain(|p| p.currency() != currency);
                if let Ok(price) = Money::parse(amount, currency) {
                    variant.prices.push(price);
                }
            }
        }
    }

    /// Stop selling `sku` in `currency`.
    pub fn remove_price(&self, sku: &str, currency: Currency) {
        self.set_price(sku, "not a price", currency);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail.get() {
            Err(StoreError::new("in-memory catalog told to fail"))
        } else {
            Ok(())
        }
    }

    pub fn current(&self, sku: &Sku, currency: Currency) -> Option<CurrentOffer> {
        self.products.borrow().iter().find_map(|p| {
            p.variants
                .iter()
                .find(|v| &v.sku == sku)
                .map(|v| CurrentOffer {
                    unit_price: v.prices.iter().find(|m| m.currency() == currency).copied(),
                    available: v.on_hand,
                    weight_grams: v.weight_grams,
                })
        })
    }
}

impl CatalogReader for InMemoryCatalog {
    async fn list_products(
        &self,
        query: &ProductQuery,
    ) -> Result<Page<ProductSummary>, StoreError> {
        self.check()?;
        let mut rows: Vec<ProductSummary> = self
            .products
            .borrow()
            .iter()
            .filter(|p| {
                query
                    .category
                    .as_ref()
                    .is_none_or(|c| c.as_str() == p.category)
            })
            .filter(|p| query.after.as_ref().is_none_or(|a| p.id.as_str() > a.key()))
            // The fake has no collections: a collection lists nothing.
            .filter(|_| query.collection.is_none())
            .map(|p| ProductSummary {
                id: p.id.clone(),
                name: p.name.clone(),
                handle: p.id.as_str().trim_start_matches("prod_").to_owned(),
                category: Some(p.category.clone()),
                price_from: Currency::ALL
                    .iter()
                    .filter_map(|c| {
                        p.variants
                            .iter()
                            .flat_map(|v| v.prices.iter())
                            .filter(|m| m.currency() == *c)
                            .min_by_key(|m| m.minor_units())
                            .copied()
                    })
                    .collect(),
                stock: StockStatus::of(
                    p.variants.iter().map(|v| v.on_hand).sum(),
                    self.low_threshold,
                ),
            })
            .collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows.truncate(query.limit.get() as usize + 1);
        Ok(Page::from_overfetch(rows, query.limit, |p| {
            p.id.to_string()
        }))
    }

    async fn product(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        self.check()?;
        Ok(self
            .products
            .borrow()
            .iter()
            .find(|p| &p.id == id)
            .map(|p| Product {
                id: p.id.clone(),
                name: p.name.clone(),
                handle: p.id.as_str().trim_start_matches("prod_").to_owned(),
                description: String::new(),
                category: Some(p.category.clone()),
                rating: crate::customers::reviews::Rating::from_totals(0, 0),
                images: Vec::new(),
                variants: p
                    .variants
                    .iter()
                    .map(|v| Variant {
                        sku: v.sku.clone(),
                        options: v.options.clone(),
                        prices: v.prices.clone(),
                        stock: StockStatus::of(v.on_hand, self.low_threshold),
                    })
                    .collect(),
            }))
    }

    async fn offer(&self, sku: &Sku, currency: Currency) -> Result<Option<Offer>, StoreError> {
        self.check()?;
        Ok(self.products.borrow().iter().find_map(|p| {
            p.variants.iter().find(|v| &v.sku == sku).map(|v| Offer {
                sku: v.sku.clone(),
                product_id: p.id.clone(),
                name: p.name.clone(),
                unit_price: v.prices.iter().find(|m| m.currency() == currency).copied(),
                available: v.on_hand,
                weight_grams: v.weight_grams,
            })
        }))
    }
}

/// Carts held in memory, with the same version check as the D1 adapter.
pub struct InMemoryCarts<'c> {
    pub carts: RefCell<BTreeMap<CartId, Cart>>,
    pub catalog: &'c InMemoryCatalog,
    /// Fail every call.
    pub fail: Cell<bool>,
    /// Before each of the next N updates, pretend a concurrent writer saved first.
    pub interleave_writers: Cell<u32>,
}

impl<'c> InMemoryCarts<'c> {
    pub fn new(catalog: &'c InMemoryCatalog) -> Self {
        InMemoryCarts {
            carts: RefCell::new(BTreeMap::new()),
            catalog,
            fail: Cell::new(false),
            interleave_writers: Cell::new(0),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail.get() {
            Err(StoreError::new("in-memory carts told to fail"))
        } else {
            Ok(())
        }
    }
}

impl CartRepository for InMemoryCarts<'_> {
    async fn load(&self, id: &CartId) -> Result<Option<LoadedCart>, StoreError> {
        self.check()?;
        Ok(self.carts.borrow().get(id).map(|cart| LoadedCart {
            current: cart
                .lines
                .iter()
                .filter_map(|l| {
                    self.catalog
                        .current(&l.sku, cart.currency)
                        .map(|c| (l.sku.clone(), c))
                })
                .collect(),
            cart: cart.clone(),
        }))
    }

    async fn load_with_offer(
        &self,
        id: &CartId,
        sku: &Sku,
    ) -> Result<Option<(LoadedCart, Option<Offer>)>, StoreError> {
        let Some(loaded) = self.load(id).await? else {
            return Ok(None);
        };
        let offer = self.catalog.offer(sku, loaded.cart.currency).await?;
        Ok(Some((loaded, offer)))
    }

    async fn insert(&self, cart: &Cart, _answer: &CartView) -> Result<(), StoreError> {
        self.check()?;
        let mut carts = self.carts.borrow_mut();
        if carts.contains_key(&cart.id) {
            return Err(StoreError::new("duplicate cart id"));
        }
        carts.insert(cart.id.clone(), cart.clone());
        Ok(())
    }

    async fn update(&self, cart: &Cart, _answer: &CartView) -> Result<SaveOutcome, StoreError> {
        self.check()?;
        let mut carts = self.carts.borrow_mut();
        let stored = carts
            .get_mut(&cart.id)
            .ok_or_else(|| StoreError::new("update of a missing cart"))?;
        if self.interleave_writers.get() > 0 {
            self.interleave_writers
                .set(self.interleave_writers.get() - 1);
            stored.version += 1;
        }
        if stored.version.checked_add(1) != Some(cart.version) {
            return Ok(SaveOutcome::Stale);
        }
        *stored = cart.clone();
        Ok(SaveOutcome::Saved)
    }

    async fn latest_owned(
        &self,
        customer: &CustomerId,
        currency: Option<Currency>,
        now: Timestamp,
    ) -> Result<Option<LoadedCart>, StoreError> {
        self.check()?;
        let latest = self
            .carts
            .borrow()
            .values()
            .filter(|c| {
                c.owner.as_ref() == Some(customer)
                    && c.status == CartStatus::Active
                    && now < c.expires_at
                    && currency.is_none_or(|cur| cur == c.currency)
            })
            .max_by_key(|c| (c.updated_at, c.id.clone()))
            .map(|c| c.id.clone());
        match latest {
            Some(id) => self.load(&id).await,
            None => Ok(None),
        }
    }

    async fn merge(
        &self,
        into: &Cart,
        answer: &CartView,
        absorbed: &Cart,
    ) -> Result<SaveOutcome, StoreError> {
        let unchanged = self
            .carts
            .borrow()
            .get(&absorbed.id)
            .is_some_and(|stored| stored.version == absorbed.version);
        if !unchanged {
            return Ok(SaveOutcome::Stale);
        }
        let saved = self.update(into, answer).await?;
        if saved == SaveOutcome::Saved {
            self.carts.borrow_mut().remove(&absorbed.id);
        }
        Ok(saved)
    }
}

/// Orders held in memory, with the same all-or-nothing placement as the D1 batch.
pub struct InMemoryOrders<'c> {
    pub carts: &'c InMemoryCarts<'c>,
    pub orders: RefCell<Vec<crate::orders::order::Order>>,
    pub stock: RefCell<BTreeMap<Sku, crate::catalog::inventory::Stock>>,
    pub outbox: RefCell<Vec<crate::events::Event>>,
    /// Fail every call (placement, reads and the lifecycle's writes).
    pub fail: Cell<bool>,
    /// Before the next status-guarded write (`close`, `review`, `pay`), a concurrent writer
    /// moves the order to this status first (its status only: what that writer did to stock
    /// and the ledger is not modelled), so the write finds the order moved.
    pub race: Cell<Option<crate::orders::order::OrderStatus>>,
}

impl<'c> InMemoryOrders<'c> {
    pub fn new(carts: &'c InMemoryCarts<'c>) -> Self {
        InMemoryOrders {
            carts,
            orders: RefCell::new(Vec::new()),
            stock: RefCell::new(BTreeMap::new()),
            outbox: RefCell::new(Vec::new()),
            fail: Cell::new(false),
            race: Cell::new(None),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail.get() {
            Err(StoreError::new("in-memory orders told to fail"))
        } else {
            Ok(())
        }
    }

    /// A concurrent writer, if one was staged with `race`, moves `order` first.
    fn interleave(&self, order: &mut crate::orders::order::Order) {
        if let Some(status) = self.race.take() {
            order.status = status;
        }
    }

    pub fn set_stock(&self, sku: &str, on_hand: i64) {
        self.stock.borrow_mut().insert(
            Sku::parse(sku).expect("fixture SKU"),
            crate::catalog::inventory::Stock::new(on_hand, 0).expect("fixture stock"),
        );
    }
}

impl crate::orders::order::OrderStore for InMemoryOrders<'_> {
    async fn place(
        &self,
        order: &crate::orders::order::Order,
        reservations: &[(Sku, u32)],
        hold: crate::catalog::inventory::HoldShare,
        cart_version: u64,
        event: &crate::events::Event,
    ) -> Result<crate::orders::order::PlaceOutcome, StoreError> {
        use crate::checkout::Shortage;
        use crate::orders::order::PlaceOutcome;
        self.check()?;
        if let Some(existing) = self
            .orders
            .borrow()
            .iter()
            .find(|o| o.cart_id == order.cart_id)
        {
            return Ok(PlaceOutcome::AlreadyCheckedOut {
                order_id: existing.id.clone(),
            });
        }
        // The placement guard: every line at the current price (schema/0009).
        let current: Vec<(Sku, Option<Money>)> = order
            .lines
            .iter()
            .map(|l| {
                let now = self
                    .carts
                    .catalog
                    .current(&l.sku, order.currency)
                    .and_then(|c| c.unit_price);
                (l.sku.clone(), now)
            })
            .collect();
        if order
            .lines
            .iter()
            .zip(&current)
            .any(|(l, (_, now))| *now != Some(l.unit_price))
        {
            return Ok(PlaceOutcome::PriceChanged(current));
        }
        let mut stock = self.stock.borrow().clone();
        let mut short = Vec::new();
        for (sku, quantity) in reservations {
            let entry = stock.entry(sku.clone()).or_default();
            if entry.reserve(i64::from(*quantity)).is_err() {
                short.push(Shortage {
                    sku: sku.clone(),
                    requested: *quantity,
                    available: entry.available(),
                });
            }
        }
        if !short.is_empty() {
            return Ok(PlaceOutcome::Short(short));
        }
        // The hold guard: unpaid orders together hold no more than the share (schema/0029).
        let held_beyond: Vec<Sku> = reservations
            .iter()
            .filter(|(sku, _)| stock.get(sku).is_some_and(|s| !s.within(hold)))
            .map(|(sku, _)| sku.clone())
            .collect();
        if !held_beyond.is_empty() {
            return Ok(PlaceOutcome::HoldLimit(held_beyond));
        }
        let mut carts = self.carts.carts.borrow_mut();
        let cart = carts
            .get_mut(&order.cart_id)
            .ok_or_else(|| StoreError::new("order for a missing cart"))?;
        if cart.version != cart_version {
            return Ok(PlaceOutcome::CartChanged);
        }
        cart.status = crate::cart::CartStatus::CheckedOut;
        cart.version += 1;
        *self.stock.borrow_mut() = stock;
        let mut placed = order.clone();
        placed.number = format!("SO-TEST-{:06}", self.orders.borrow().len() + 1);
        let number = placed.number.clone();
        self.orders.borrow_mut().push(placed);
        self.outbox.borrow_mut().push(event.clone());
        Ok(PlaceOutcome::Placed {
            number,
            events: vec![event.clone()],
        })
    }

    async fn order_for_cart(
        &self,
        cart: &CartId,
    ) -> Result<Option<crate::kernel::ids::OrderId>, StoreError> {
        self.check()?;
        Ok(self
            .orders
            .borrow()
            .iter()
            .find(|o| &o.cart_id == cart)
            .map(|o| o.id.clone()))
    }

    async fn get(
        &self,
        id: &crate::kernel::ids::OrderId,
    ) -> Result<Option<crate::orders::order::Order>, StoreError> {
        self.check()?;
        Ok(self.orders.borrow().iter().find(|o| &o.id == id).cloned())
    }
}

/// A shipping configuration for tests: zone `eu` (NL, DE) with `standard` (EUR 4.90 up to
/// 500 g, 6.95 up to 2 kg, free from EUR 50) and `express` (EUR 12.00 up to 5 kg); zone
/// `nl-islands` (NL postcodes 17xx) with `standard` at EUR 9.90 up to 2 kg; zone `us` with
/// `standard` at EUR 15.00 up to 2 kg.
pub fn test_zones() -> crate::fulfilment::shipping::Zones {
    use crate::fulfilment::shipping::{Area, Method, Zones};
    let eur = |amount: &str| Money::parse(amount, Currency::Eur).expect("fixture amount");
    let area = |zone: &str, country: &str, prefix: &str| Area {
        zone: zone.into(),
        country: country.into(),
        postcode_prefix: prefix.into(),
    };
    let method = |code: &str, bands: Vec<(u64, Money)>, free_from: Vec<Money>| Method {
        code: code.into(),
        name: code.to_uppercase(),
        carrier: "postnl".into(),
        min_days: 1,
        max_days: 3,
        bands,
        free_from,
    };
    Zones {
        areas: vec![
            area("eu", "NL", ""),
            area("eu", "DE", ""),
            area("nl-islands", "NL", "17"),
            area("us", "US", ""),
        ],
        methods: vec![
            (
                "eu".into(),
                method(
                    "standard",
                    vec![(500, eur("4.90")), (2000, eur("6.95"))],
                    vec![eur("50.00")],
                ),
            ),
            (
                "eu".into(),
                method("express", vec![(5000, eur("12.00"))], vec![]),
            ),
            (
                "nl-islands".into(),
                method("standard", vec![(2000, eur("9.90"))], vec![]),
            ),
            (
                "us".into(),
                method("standard", vec![(2000, eur("15.00"))], vec![]),
            ),
        ],
    }
}

/// Flat shipping rates for tests: `standard` 4.90 EUR / 800 JPY, `express` 12.00 EUR.
pub struct FlatRates;

impl crate::checkout::ShippingRates for FlatRates {
    fn quote(
        &self,
        method: &str,
        _destination: &crate::fulfilment::shipping::Destination,
        _weight_grams: u64,
        subtotal: Money,
    ) -> Option<Money> {
        let currency = subtotal.currency();
        let amount = match (method, currency) {
            ("standard", Currency::Eur) => "4.90",
            ("standard", Currency::Jpy) => "800",
            ("express", Currency::Eur) => "12.00",
            _ => return None,
        };
        Money::parse(amount, currency).ok()
    }

    fn methods(&self, _destination: &crate::fulfilment::shipping::Destination) -> Vec<String> {
        vec!["standard".into(), "express".into()]
    }
}

impl InMemoryOrders<'_> {
    /// Move the order from `from` to `to` (a `legal` move, or staying put), giving back what
    /// `from` holds when it moves, and write `event`; `Moved` when it is no longer in `from`.
    fn move_order(
        &self,
        id: &crate::kernel::ids::OrderId,
        from: crate::orders::order::OrderStatus,
        to: crate::orders::order::OrderStatus,
        legal: bool,
        event: &crate::events::Event,
        now: crate::kernel::time::Timestamp,
    ) -> Result<crate::orders::lifecycle::CloseOutcome, StoreError> {
        self.check()?;
        let mut orders = self.orders.borrow_mut();
        let order = orders
            .iter_mut()
            .find(|o| &o.id == id)
            .ok_or_else(|| StoreError::new("no such order"))?;
        self.interleave(order);
        if order.status != from || !legal {
            return Ok(crate::orders::lifecycle::CloseOutcome::Moved);
        }
        if to != from {
            self.give_back(order, from)?;
        }
        order.status = to;
        order.updated_at = now;
        self.outbox.borrow_mut().push(event.clone());
        Ok(crate::orders::lifecycle::CloseOutcome::Closed(vec![
            event.clone()
        ]))
    }

    /// What leaving `from` gives back: held stock is released, sold stock restocked.
    fn give_back(
        &self,
        order: &crate::orders::order::Order,
        from: crate::orders::order::OrderStatus,
    ) -> Result<(), StoreError> {
        use crate::orders::order::Stock;
        let mut stock = self.stock.borrow_mut();
        for line in &order.lines {
            let entry = stock.entry(line.sku.clone()).or_default();
            let quantity = i64::from(line.quantity);
            let given_back = match from.stock() {
                Stock::Held => entry.release(quantity),
                Stock::Sold => entry.restock(quantity),
                Stock::None => Ok(()),
            };
            given_back.map_err(|e| StoreError::new(format!("stock: {e:?}")))?;
        }
        Ok(())
    }
}

impl crate::orders::lifecycle::OrderLifecycle for InMemoryOrders<'_> {
    async fn due_for_expiry(
        &self,
        now: crate::kernel::time::Timestamp,
        limit: u32,
    ) -> Result<Vec<crate::kernel::ids::OrderId>, StoreError> {
        self.check()?;
        let mut due: Vec<_> = self
            .orders
            .borrow()
            .iter()
            .filter(|o| {
                o.status == crate::orders::order::OrderStatus::PendingPayment
                    && o.reservation_expires_at <= now
            })
            .map(|o| (o.reservation_expires_at, o.id.clone()))
            .collect();
        due.sort();
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|(_, id)| id)
            .collect())
    }

    async fn status(
        &self,
        id: &crate::kernel::ids::OrderId,
    ) -> Result<Option<crate::orders::order::OrderStatus>, StoreError> {
        self.check()?;
        Ok(self
            .orders
            .borrow()
            .iter()
            .find(|o| &o.id == id)
            .map(|o| o.status))
    }

    async fn close(
        &self,
        id: &crate::kernel::ids::OrderId,
        from: crate::orders::order::OrderStatus,
        to: crate::orders::order::OrderStatus,
        event: &crate::events::Event,
        now: crate::kernel::time::Timestamp,
    ) -> Result<crate::orders::lifecycle::CloseOutcome, StoreError> {
        use crate::orders::order::Transition;
        let legal = [Transition::Cancel, Transition::Expire]
            .iter()
            .any(|t| from.apply(*t) == Ok(to));
        self.move_order(id, from, to, legal, event, now)
    }

    async fn review(
        &self,
        id: &crate::kernel::ids::OrderId,
        from: crate::orders::order::OrderStatus,
        to: crate::orders::order::OrderStatus,
        captured: i64,
        event: &crate::events::Event,
        now: crate::kernel::time::Timestamp,
    ) -> Result<crate::orders::lifecycle::CloseOutcome, StoreError> {
        let legal = to == from || from.apply(crate::orders::order::Transition::Review) == Ok(to);
        let outcome = self.move_order(id, from, to, legal, event, now)?;
        if captured > 0 && matches!(outcome, crate::orders::lifecycle::CloseOutcome::Closed(_)) {
            if let Some(order) = self.orders.borrow_mut().iter_mut().find(|o| &o.id == id) {
                let total = order.totals.grand_total.minor_units();
                order
                    .ledger
                    .capture(captured, total)
                    .map_err(|e| StoreError::new(format!("{e:?}")))?;
            }
        }
        Ok(outcome)
    }

    async fn amounts(
        &self,
        id: &crate::kernel::ids::OrderId,
    ) -> Result<Option<(i64, crate::orders::order::PaymentLedger)>, StoreError> {
        self.check()?;
        Ok(self.orders.borrow().iter().find(|o| &o.id == id).map(|o| {
            let charged = crate::payments::charged_minor(&o.payment_provider, o.totals.grand_total);
            (charged, o.ledger)
        }))
    }

    async fn pay(
        &self,
        id: &crate::kernel::ids::OrderId,
        captured: i64,
        event: &crate::events::Event,
        now: crate::kernel::time::Timestamp,
    ) -> Result<crate::orders::lifecycle::CloseOutcome, StoreError> {
        self.check()?;
        let mut orders = self.orders.borrow_mut();
        let order = orders
            .iter_mut()
            .find(|o| &o.id == id)
            .ok_or_else(|| StoreError::new("no such order"))?;
        self.interleave(order);
        if order.status != crate::orders::order::OrderStatus::PendingPayment {
            return Ok(crate::orders::lifecycle::CloseOutcome::Moved);
        }
        let mut stock = self.stock.borrow_mut();
        for line in &order.lines {
            stock
                .entry(line.sku.clone())
                .or_default()
                .sell(i64::from(line.quantity))
                .map_err(|e| StoreError::new(format!("stock: {e:?}")))?;
        }
        let total = order.totals.grand_total.minor_units();
        order
            .ledger
            .capture(captured, total)
            .map_err(|e| StoreError::new(format!("ledger: {e:?}")))?;
        order.status = crate::orders::order::OrderStatus::Paid;
        order.updated_at = now;
        self.outbox.borrow_mut().push(event.clone());
        Ok(crate::orders::lifecycle::CloseOutcome::Closed(vec![
            event.clone()
        ]))
    }
}

/// Shipments held in memory, with the guards of the D1 batch (schema/0013): one shipment per
/// carrier's tracking number, a line never ships beyond its quantity, the order moves only from
/// the status it was read in and only by a legal move, and its status follows its lines
/// (`fulfilled` exactly when every unit has shipped). A refused batch writes nothing.
#[derive(Default)]
pub struct InMemoryShipments {
    pub orders: RefCell<BTreeMap<crate::kernel::ids::OrderId, crate::orders::shipments::Shippable>>,
    pub shipments: RefCell<Vec<crate::orders::shipments::Shipment>>,
    pub outbox: RefCell<Vec<crate::events::Event>>,
    /// Fail every call.
    pub fail: Cell<bool>,
    /// Before each of the next records, a concurrent shipment of `(position, units)` of the
    /// same order commits first: its units counted on the line, the order moved as they make it
    /// (its shipment row and event are not modelled).
    pub rivals: RefCell<std::collections::VecDeque<(u32, u32)>>,
}

impl InMemoryShipments {
    pub fn with_order(order: crate::orders::shipments::Shippable) -> Self {
        let store = InMemoryShipments::default();
        store
            .orders
            .borrow_mut()
            .insert(order.order_id.clone(), order);
        store
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail.get() {
            Err(StoreError::new("in-memory shipments told to fail"))
        } else {
            Ok(())
        }
    }

    fn status_of(
        lines: &[crate::orders::shipments::ShippableLine],
    ) -> crate::orders::order::OrderStatus {
        if lines.iter().all(|l| l.shipped == l.quantity) {
            crate::orders::order::OrderStatus::Fulfilled
        } else {
            crate::orders::order::OrderStatus::PartiallyFulfilled
        }
    }
}

impl crate::orders::shipments::ShipmentStore for InMemoryShipments {
    async fn shippable(
        &self,
        order: &crate::kernel::ids::OrderId,
    ) -> Result<Option<crate::orders::shipments::Shippable>, StoreError> {
        self.check()?;
        Ok(self.orders.borrow().get(order).cloned())
    }

    async fn record(
        &self,
        shipment: &crate::orders::shipments::Shipment,
        from: crate::orders::order::OrderStatus,
        to: crate::orders::order::OrderStatus,
        event: &crate::events::Event,
    ) -> Result<crate::orders::shipments::Recorded, StoreError> {
        use crate::orders::order::Transition;
        use crate::orders::shipments::Recorded;
        self.check()?;
        let mut orders = self.orders.borrow_mut();
        let order = orders
            .get_mut(&shipment.order_id)
            .ok_or_else(|| StoreError::new("shipment of a missing order"))?;
        if let Some((position, units)) = self.rivals.borrow_mut().pop_front() {
            if let Some(line) = order.lines.iter_mut().find(|l| l.position == position) {
                line.shipped += units;
            }
            order.status = Self::status_of(&order.lines);
        }
        // UNIQUE (carrier, tracking_number)
        if self
            .shipments
            .borrow()
            .iter()
            .any(|s| s.carrier == shipment.carrier && s.tracking_number == shipment.tracking_number)
        {
            return Ok(Recorded::TrackingNumberTaken);
        }
        // CHECK (shipped_quantity <= quantity), on a copy: a refused batch writes nothing.
        let mut lines = order.lines.clone();
        for units in &shipment.lines {
            let Some(line) = lines.iter_mut().find(|l| l.position == units.position) else {
                return Err(StoreError::new("shipment of a missing line"));
            };
            line.shipped += units.quantity;
            if line.shipped > line.quantity {
                return Ok(Recorded::Moved);
            }
        }
        // The status CASE, the transitions trigger and `orders_fulfilment_follows_lines`.
        let legal = [Transition::ShipPart, Transition::ShipAll]
            .iter()
            .any(|t| from.apply(*t) == Ok(to));
        if order.status != from || !legal || Self::status_of(&lines) != to {
            return Ok(Recorded::Moved);
        }
        order.lines = lines;
        order.status = to;
        self.shipments.borrow_mut().push(shipment.clone());
        self.outbox.borrow_mut().push(event.clone());
        Ok(Recorded::Recorded(vec![event.clone()]))
    }
}
