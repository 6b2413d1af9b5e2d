//! D1 implementation of the order store. Placing an order is ONE batch: every guard in it is a
//! constraint or trigger, so a short SKU, a second checkout of the cart, a cart changed since
//! it was read or a price changed since it was read aborts the whole batch (see schema/0002 and
//! schema/0009).

use serde::{Deserialize, Serialize};
use shop_domain::catalog::inventory::HoldShare;
use shop_domain::checkout::{Address, Shortage};
use shop_domain::events::{Event, Payload};
use shop_domain::kernel::ids::{CartId, CustomerId, LineId, OrderId, ProductId, Sku};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::Timestamp;
use shop_domain::orders::order::{Order, OrderLine, OrderStore, OrderTotals, PlaceOutcome};
use shop_domain::orders::order::{OrderStatus, PaymentLedger, Stock};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{self, err, json, num, Db, Stmt, Violation};

use crate::reply::Answer;
use crate::store::claims;
use crate::store::outbox::{self, Taker};

pub struct D1Orders<'a> {
    pub db: &'a Db,
    /// The reply the caller will get for a placed order: with an `Idempotency-Key`, stored in
    /// the placement batch (see [`Db::batch_answering`]). The order it is given has no number
    /// yet (the batch assigns it).
    answer: Option<Answer<'a, Order>>,
    /// A statement that records the provider event behind a lifecycle change (a payment
    /// webhook's claim): it leads the change's batch, so a second delivery aborts it.
    receipt: Option<Stmt>,
}

impl<'a> D1Orders<'a> {
    pub fn new(db: &'a Db) -> Self {
        D1Orders {
            db,
            answer: None,
            receipt: None,
        }
    }

    /// Lifecycle changes that also record `receipt` in their batch (see [`D1Orders::receipt`]).
    pub fn with_receipt(db: &'a Db, receipt: Stmt) -> Self {
        D1Orders {
            receipt: Some(receipt),
            ..D1Orders::new(db)
        }
    }

    pub fn answering(db: &'a Db, answer: Answer<'a, Order>) -> Self {
        D1Orders {
            answer: Some(answer),
            ..D1Orders::new(db)
        }
    }
}

#[derive(Serialize)]
struct LineParam<'a> {
    id: &'a str,
    sku: &'a str,
    product_id: &'a str,
    name: &'a str,
    quantity: u32,
    unit: i64,
    subtotal: i64,
    discount: i64,
    tax: i64,
    total: i64,
}

const PLACE_SQL: [&str; 7] = [
    "INSERT INTO order_counters (year, value) VALUES (?1, 0) ON CONFLICT (year) DO NOTHING",
    "UPDATE order_counters SET value = value + 1 WHERE year = ?1",
    "INSERT INTO orders (id, number, cart_id, status, currency, email, subtotal_minor, discount_minor, \
       shipping_minor, tax_minor, total_minor, shipping_method, shipping_address, billing_address, \
       payment_provider, payment_id, reservation_expires_at, created_at, updated_at, customer_id) \
     VALUES (?1, (SELECT printf('SO-%d-%06d', year, value) FROM order_counters WHERE year = ?2), ?3, \
       'pending_payment', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18) \
     RETURNING number",
    // The price trigger (schema/0009) aborts the batch when a line is not at the current price.
    "INSERT INTO order_lines (order_id, position, line_id, sku, product_id, name, quantity, unit_minor, \
       subtotal_minor, discount_minor, tax_minor, total_minor) \
     SELECT ?1, CAST(l.key AS INTEGER), json_extract(l.value, '$.id'), json_extract(l.value, '$.sku'), json_extract(l.value, '$.product_id'), \
       json_extract(l.value, '$.name'), json_extract(l.value, '$.quantity'), json_extract(l.value, '$.unit'), \
       json_extract(l.value, '$.subtotal'), json_extract(l.value, '$.discount'), json_extract(l.value, '$.tax'), \
       json_extract(l.value, '$.total') \
     FROM json_each(?2) l",
    // Unconditional: CHECK (available >= 0) aborts the batch when a SKU is short.
    "UPDATE inventory SET reserved = reserved + \
       (SELECT json_extract(r.value, '$[1]') FROM json_each(?1) r WHERE json_extract(r.value, '$[0]') = inventory.sku) \
     WHERE sku IN (SELECT json_extract(value, '$[0]') FROM json_each(?1))",
    // The foreign key to inventory aborts the batch for a SKU without a stock row.
    "INSERT INTO reservations (order_id, sku, quantity, expires_at, status) \
     SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2, 'held' FROM json_each(?3)",
    // The version trigger aborts the batch when the cart changed since it was read.
    "UPDATE carts SET status = 'checked_out', version = ?2, updated_at = ?3 WHERE id = ?1",
];

/// The hold guard's statement: for each SKU of the reservation (`?1`), what unpaid orders hold
/// and the cap of `?2` basis points of what is on hand, rounded up (`HoldShare::cap`).
const HOLD_GUARD_SQL: &str = "INSERT INTO unpaid_hold_guard (sku, held, cap) \
     SELECT sku, reserved, (on_hand * CAST(?2 AS INTEGER) + 9999) / 10000 FROM inventory \
     WHERE sku IN (SELECT json_extract(value, '$[0]') FROM json_each(?1))";

#[derive(Deserialize)]
struct NumberRow {
    number: String,
}

#[derive(Deserialize)]
struct Availability {
    sku: String,
    available: i64,
}

#[derive(Deserialize)]
struct PriceRow {
    sku: Sku,
    amount_minor: Option<i64>,
}

#[derive(Deserialize)]
struct IdRow {
    /// Parsed on the way in: a malformed stored id fails the read.
    id: OrderId,
}

impl OrderStore for D1Orders<'_> {
    async fn place(
        &self,
        order: &Order,
        reservations: &[(Sku, u32)],
        hold: HoldShare,
        cart_version: u64,
        event: &Event,
    ) -> Result<PlaceOutcome, StoreError> {
        let context = "place order";
        let lines: Vec<LineParam> = order
            .lines
            .iter()
            .map(|l| LineParam {
                id: l.id.as_str(),
                sku: l.sku.as_str(),
                product_id: l.product_id.as_str(),
                name: &l.name,
                quantity: l.quantity,
                unit: l.unit_price.minor_units(),
                subtotal: l.subtotal.minor_units(),
                discount: l.discount.minor_units(),
                tax: l.tax.minor_units(),
                total: l.total.minor_units(),
            })
            .collect();
        let holds: Vec<(&str, u32)> = reservations.iter().map(|(s, q)| (s.as_str(), *q)).collect();
        let holds_json = json(&holds, context)?;
        let id: JsValue = order.id.as_str().into();
        let now = num(order.created_at.millis());
        let year = num(i64::from(order.created_at.year()));
        let t = &order.totals;
        let binds: [Vec<JsValue>; 7] = [
            vec![year.clone()],
            vec![year.clone()],
            vec![
                id.clone(),
                year,
                order.cart_id.as_str().into(),
                order.currency.code().into(),
                order.email.as_str().into(),
                num(t.subtotal.minor_units()),
                num(t.discount.minor_units()),
                num(t.shipping.minor_units()),
                num(t.tax.minor_units()),
                num(t.grand_total.minor_units()),
                order.shipping_method.as_str().into(),
                json(&order.shipping_address, context)?,
                json(&order.billing_address, context)?,
                order.payment_provider.as_str().into(),
                order.payment_id.as_str().into(),
                num(order.reservation_expires_at.millis()),
                now.clone(),
                sql::opt_str(order.customer_id.as_ref().map(CustomerId::as_str)),
            ],
            vec![id.clone(), json(&lines, context)?],
            vec![holds_json.clone()],
            vec![
                id.clone(),
                num(order.reservation_expires_at.millis()),
                holds_json.clone(),
            ],
            vec![
                order.cart_id.as_str().into(),
                JsValue::from_f64(cart_version.saturating_add(1) as f64),
                now.clone(),
            ],
        ];
        let mut statements = Vec::with_capacity(PLACE_SQL.len() + 4);
        for (sql, bind) in PLACE_SQL.iter().zip(binds) {
            statements.push(self.db.prepare(*sql).bind(&bind).map_err(err(context))?);
        }
        // The hold guard (schema/0029): what unpaid orders now hold of each SKU, against its cap;
        // the CHECK aborts the batch beyond it. The table is emptied in the same batch.
        statements.push(
            self.db
                .prepare(HOLD_GUARD_SQL)
                .bind(&[holds_json.clone(), num(i64::from(hold.basis_points()))])
                .map_err(err(context))?,
        );
        statements.push(self.db.prepare("DELETE FROM unpaid_hold_guard"));
        // The events, after the reservation: `order.created`, and `inventory.low` for every SKU
        // the reservation took to its threshold.
        let taken: Vec<(&Sku, i64)> = reservations
            .iter()
            .map(|(s, q)| (s, i64::from(*q)))
            .collect();
        statements.push(outbox::insert(self.db, event).map_err(err(context))?);
        statements.push(
            outbox::low_stock_crossings(self.db, Taker::Order(&order.id), &taken, order.created_at)
                .map_err(err(context))?,
        );
        let answer = self.answer.and_then(|answer| answer(order));
        let results = match self.db.batch_answering(statements, answer.as_ref()).await {
            Ok(results) => results,
            Err(e) => {
                return self
                    .explain_failure(order, reservations, hold, &e.to_string())
                    .await
            }
        };
        let number = results
            .get(2)
            .and_then(|r| r.results::<NumberRow>().ok())
            .and_then(|rows| rows.into_iter().next())
            .ok_or_else(|| StoreError::new("place order: no order number returned"))?
            .number;
        let created = PLACE_SQL.len() + 2;
        let mut events = outbox::written(
            results.get(created..=created).unwrap_or_default(),
            std::slice::from_ref(event),
        )
        .map_err(err(context))?;
        events.extend(
            outbox::written_as(
                results.get(created + 1..).unwrap_or_default(),
                Payload::InventoryLow,
            )
            .map_err(err(context))?,
        );
        Ok(PlaceOutcome::Placed { number, events })
    }

    async fn order_for_cart(&self, cart: &CartId) -> Result<Option<OrderId>, StoreError> {
        let row: Option<IdRow> = sql::first(
            self.db,
            "SELECT id FROM orders WHERE cart_id = ?1",
            &[cart.as_str().into()],
            "order for cart",
        )
        .await?;
        Ok(row.map(|r| r.id))
    }

    async fn get(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderDoc> =
            sql::first(self.db, GET_SQL, &[id.as_str().into()], "get order").await?;
        match row.and_then(|r| r.doc) {
            None => Ok(None),
            Some(doc) => {
                let row: OrderRow = serde_json::from_str(&doc)
                    .map_err(|e| StoreError::new(format!("get order: {e}")))?;
                row.into_order().map(Some)
            }
        }
    }
}

impl D1Orders<'_> {
    /// A placement batch failed: say why, from the constraint that fired.
    /// The current price of each of `order`'s SKUs in its currency (`None`: no longer sold, or
    /// its variant or product no longer on sale).
    async fn current_prices(&self, order: &Order) -> Result<Vec<(Sku, Option<Money>)>, StoreError> {
        let context = "read current prices";
        let skus: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
        let rows: Vec<PriceRow> = sql::all(
            self.db,
            "SELECT s.value AS sku, p.amount_minor FROM json_each(?1) s \
             LEFT JOIN prices p ON p.sku = s.value AND p.currency = ?2 AND EXISTS ( \
               SELECT 1 FROM variants v JOIN products pr ON pr.id = v.product_id \
               WHERE v.sku = s.value AND v.status = 'active' AND pr.status = 'active')",
            &[json(&skus, context)?, order.currency.code().into()],
            context,
        )
        .await?;
        rows.into_iter()
            .map(|r| {
                let price = r
                    .amount_minor
                    .map(|m| Money::from_minor(m, order.currency))
                    .transpose()
                    .map_err(|_| StoreError::new(format!("{context}: stored price is invalid")))?;
                Ok((r.sku, price))
            })
            .collect()
    }

    async fn explain_failure(
        &self,
        order: &Order,
        reservations: &[(Sku, u32)],
        hold: HoldShare,
        message: &str,
    ) -> Result<PlaceOutcome, StoreError> {
        match sql::violation(message) {
            Some(Violation::Unique(columns)) if columns.contains("orders.cart_id") => {
                Ok(match self.order_for_cart(&order.cart_id).await? {
                    Some(order_id) => PlaceOutcome::AlreadyCheckedOut { order_id },
                    None => PlaceOutcome::CartChanged,
                })
            }
            Some(Violation::Trigger("stale cart version")) => Ok(PlaceOutcome::CartChanged),
            Some(Violation::Trigger("price changed")) => self
                .current_prices(order)
                .await
                .map(PlaceOutcome::PriceChanged),
            Some(Violation::Check(expression)) if expression.contains("held <= cap") => {
                self.held_beyond(reservations, hold).await
            }
            Some(Violation::Check(_) | Violation::ForeignKey) => self.shortages(reservations).await,
            _ => Err(StoreError::new(format!("place order: {message}"))),
        }
    }

    /// Which SKUs of `reservations` unpaid orders would hold beyond `hold`, read after the
    /// placement batch was refused by the hold guard.
    async fn held_beyond(
        &self,
        reservations: &[(Sku, u32)],
        hold: HoldShare,
    ) -> Result<PlaceOutcome, StoreError> {
        #[derive(Deserialize)]
        struct Held {
            sku: String,
            on_hand: i64,
            reserved: i64,
        }
        let skus: Vec<&str> = reservations.iter().map(|(s, _)| s.as_str()).collect();
        let rows: Vec<Held> = sql::all(
            self.db,
            "SELECT sku, on_hand, reserved FROM inventory WHERE sku IN (SELECT value FROM json_each(?1))",
            &[json(&skus, "read holdings")?],
            "read holdings",
        )
        .await?;
        let beyond: Vec<Sku> = reservations
            .iter()
            .filter(|(sku, quantity)| {
                rows.iter().any(|r| {
                    r.sku == sku.as_str() && r.reserved + i64::from(*quantity) > hold.cap(r.on_hand)
                })
            })
            .map(|(sku, _)| sku.clone())
            .collect();
        // Released meanwhile: the client may simply retry.
        Ok(if beyond.is_empty() {
            PlaceOutcome::CartChanged
        } else {
            PlaceOutcome::HoldLimit(beyond)
        })
    }

    /// What stock is short for `reservations`, read after the placement batch was refused.
    async fn shortages(&self, reservations: &[(Sku, u32)]) -> Result<PlaceOutcome, StoreError> {
        let skus: Vec<&str> = reservations.iter().map(|(s, _)| s.as_str()).collect();
        let rows: Vec<Availability> = sql::all(
            self.db,
            "SELECT sku, available FROM inventory WHERE sku IN (SELECT value FROM json_each(?1))",
            &[json(&skus, "read availability")?],
            "read availability",
        )
        .await?;
        let shortages: Vec<Shortage> = reservations
            .iter()
            .filter_map(|(sku, requested)| {
                let available = rows
                    .iter()
                    .find(|r| r.sku == sku.as_str())
                    .map_or(0, |r| r.available);
                (i64::from(*requested) > available).then(|| Shortage {
                    sku: sku.clone(),
                    requested: *requested,
                    available: available.max(0),
                })
            })
            .collect();
        // Stock freed up between the failure and this read: the client may simply retry.
        Ok(if shortages.is_empty() {
            PlaceOutcome::CartChanged
        } else {
            PlaceOutcome::Short(shortages)
        })
    }
}

const GET_SQL: &str = "\
SELECT json_object(
  'id', o.id, 'number', o.number, 'cart_id', o.cart_id, 'status', o.status, 'currency', o.currency,
  'email', o.email, 'subtotal', o.subtotal_minor, 'discount', o.discount_minor, 'shipping', o.shipping_minor,
  'tax', o.tax_minor, 'total', o.total_minor, 'captured', o.captured_minor, 'refunded', o.refunded_minor,
  'shipping_method', o.shipping_method, 'shipping_address', json(o.shipping_address),
  'billing_address', json(o.billing_address), 'payment_provider', o.payment_provider,
  'payment_id', o.payment_id, 'reservation_expires_at', o.reservation_expires_at,
  'created_at', o.created_at, 'updated_at', o.updated_at, 'customer_id', o.customer_id,
  'lines', json((SELECT json_group_array(json_object('id', l.line_id, 'sku', l.sku, 'product_id', l.product_id, 'name', l.name,
      'quantity', l.quantity, 'unit', l.unit_minor, 'subtotal', l.subtotal_minor, 'discount', l.discount_minor,
      'tax', l.tax_minor, 'total', l.total_minor))
    FROM (SELECT * FROM order_lines WHERE order_id = o.id ORDER BY position) l))
) AS doc
FROM orders o WHERE o.id = ?1";

#[derive(Deserialize)]
struct OrderDoc {
    doc: Option<String>,
}

#[derive(Deserialize)]
struct OrderRow {
    id: OrderId,
    number: String,
    cart_id: CartId,
    status: String,
    currency: String,
    email: String,
    subtotal: i64,
    discount: i64,
    shipping: i64,
    tax: i64,
    total: i64,
    captured: i64,
    refunded: i64,
    shipping_method: String,
    shipping_address: Address,
    billing_address: Address,
    payment_provider: String,
    payment_id: String,
    reservation_expires_at: i64,
    created_at: i64,
    updated_at: i64,
    customer_id: Option<CustomerId>,
    lines: Vec<LineRow>,
}

#[derive(Deserialize)]
struct LineRow {
    id: LineId,
    sku: Sku,
    product_id: ProductId,
    name: String,
    quantity: u32,
    unit: i64,
    subtotal: i64,
    discount: i64,
    tax: i64,
    total: i64,
}

impl OrderRow {
    fn into_order(self) -> Result<Order, StoreError> {
        let bad = |what: &str| StoreError::new(format!("stored order has an invalid {what}"));
        let currency: Currency = self.currency.parse().map_err(|_| bad("currency"))?;
        let money = |minor: i64| Money::from_minor(minor, currency).map_err(|_| bad("amount"));
        let lines = self
            .lines
            .into_iter()
            .map(|l| {
                Ok(OrderLine {
                    id: l.id,
                    sku: l.sku,
                    product_id: l.product_id,
                    name: l.name,
                    quantity: l.quantity,
                    unit_price: money(l.unit)?,
                    subtotal: money(l.subtotal)?,
                    discount: money(l.discount)?,
                    tax: money(l.tax)?,
                    total: money(l.total)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Order {
            id: self.id,
            number: self.number,
            cart_id: self.cart_id,
            status: OrderStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            currency,
            email: shop_domain::checkout::Email::parse(&self.email).ok_or_else(|| bad("email"))?,
            lines,
            totals: OrderTotals {
                subtotal: money(self.subtotal)?,
                discount: money(self.discount)?,
                shipping: money(self.shipping)?,
                tax: money(self.tax)?,
                grand_total: money(self.total)?,
            },
            shipping_method: self.shipping_method,
            shipping_address: self.shipping_address,
            billing_address: self.billing_address,
            payment_provider: self.payment_provider,
            payment_id: self.payment_id,
            customer_id: self.customer_id,
            ledger: PaymentLedger::restore(self.captured, self.refunded)
                .ok_or_else(|| bad("ledger"))?,
            reservation_expires_at: Timestamp::from_millis(self.reservation_expires_at),
            created_at: Timestamp::from_millis(self.created_at),
            updated_at: Timestamp::from_millis(self.updated_at),
        })
    }
}

#[derive(Deserialize)]
struct StatusRow {
    status: String,
}

/// Stock statements of a close, by the state the order leaves: held stock is released, sold
/// stock restocked, and there is nothing to give back otherwise.
fn give_back_sql(from: OrderStatus) -> &'static [&'static str] {
    match from.stock() {
        Stock::Held => &[
            "UPDATE inventory SET reserved = reserved - \
               (SELECT quantity FROM reservations r WHERE r.order_id = ?1 AND r.sku = inventory.sku AND r.status = 'held') \
             WHERE sku IN (SELECT sku FROM reservations WHERE order_id = ?1 AND status = 'held')",
            "UPDATE reservations SET status = 'released' WHERE order_id = ?1 AND status = 'held'",
        ],
        Stock::Sold => &[
            // Every unit sold and not yet returned goes back: the shelf follows
            // `returned_quantity` by a trigger, which never exceeds `sold_quantity` (a CHECK), so
            // units a refund put back already are not restocked twice (schema/0025).
            "UPDATE order_lines SET returned_quantity = sold_quantity \
             WHERE order_id = ?1 AND returned_quantity < sold_quantity",
            "UPDATE reservations SET status = 'released' WHERE order_id = ?1 AND status = 'sold'",
        ],
        Stock::None => &[],
    }
}

#[derive(Deserialize)]
struct AmountsRow {
    payment_provider: String,
    currency: String,
    total_minor: i64,
    captured_minor: i64,
    refunded_minor: i64,
}

impl D1Orders<'_> {
    async fn run_transition(
        &self,
        statements: Vec<Stmt>,
        event: &Event,
        context: &'static str,
    ) -> Result<shop_domain::orders::lifecycle::CloseOutcome, StoreError> {
        use shop_domain::orders::lifecycle::CloseOutcome;
        let receipted = self.receipt.is_some();
        let statements: Vec<Stmt> = self.receipt.iter().cloned().chain(statements).collect();
        match self.db.batch(statements).await {
            // The outbox statement is the last of every transition.
            Ok(results) => Ok(CloseOutcome::Closed(
                outbox::written(
                    results.last().map(std::slice::from_ref).unwrap_or_default(),
                    std::slice::from_ref(event),
                )
                .map_err(err(context))?,
            )),
            Err(e) => {
                let message = e.to_string();
                match sql::violation(&message) {
                    Some(Violation::Check(_) | Violation::Trigger("illegal order transition")) => {
                        Ok(CloseOutcome::Moved)
                    }
                    _ if receipted && claims::is_repeated(&message) => {
                        Ok(CloseOutcome::AlreadyRecorded)
                    }
                    _ => Err(StoreError::new(format!("{context}: {message}"))),
                }
            }
        }
    }

    /// Move the order from `from` to `to` (or keep it in `from`, guarded all the same), give
    /// back what `from` holds when it moves, and write `event`. When the order is no longer in
    /// `from`, 'invalid' violates the status CHECK and the whole batch aborts; the status
    /// trigger rejects illegal moves likewise.
    fn move_giving_back(
        &self,
        id: &OrderId,
        from: OrderStatus,
        to: OrderStatus,
        event: &Event,
        now: Timestamp,
        context: &'static str,
    ) -> Result<Vec<Stmt>, StoreError> {
        let order: JsValue = id.as_str().into();
        let mut statements = vec![self
            .db
            .prepare(
                "UPDATE orders SET status = CASE WHEN status = ?2 THEN ?3 ELSE 'invalid' END, updated_at = ?4 \
                 WHERE id = ?1",
            )
            .bind(&[order.clone(), from.as_str().into(), to.as_str().into(), num(now.millis())])
            .map_err(err(context))?];
        if to != from {
            for &sql in give_back_sql(from) {
                statements.push(
                    self.db
                        .prepare(sql)
                        .bind(std::slice::from_ref(&order))
                        .map_err(err(context))?,
                );
            }
        }
        statements.push(self.outbox_insert(event, context)?);
        Ok(statements)
    }

    fn outbox_insert(&self, event: &Event, context: &'static str) -> Result<Stmt, StoreError> {
        outbox::insert(self.db, event).map_err(err(context))
    }
}

impl shop_domain::orders::lifecycle::OrderLifecycle for D1Orders<'_> {
    async fn amounts(&self, id: &OrderId) -> Result<Option<(i64, PaymentLedger)>, StoreError> {
        let row: Option<AmountsRow> = sql::first(
            self.db,
            "SELECT payment_provider, currency, total_minor, captured_minor, refunded_minor \
             FROM orders WHERE id = ?1",
            &[id.as_str().into()],
            "order amounts",
        )
        .await?;
        row.map(|r| {
            let currency: Currency = r
                .currency
                .parse()
                .map_err(|_| StoreError::new("stored currency is invalid"))?;
            let total = Money::from_minor(r.total_minor, currency)
                .map_err(|_| StoreError::new("stored total is invalid"))?;
            let charged = shop_domain::payments::charged_minor(&r.payment_provider, total);
            PaymentLedger::restore(r.captured_minor, r.refunded_minor)
                .map(|ledger| (charged, ledger))
                .ok_or_else(|| StoreError::new("stored ledger is invalid"))
        })
        .transpose()
    }

    async fn pay(
        &self,
        id: &OrderId,
        captured: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<shop_domain::orders::lifecycle::CloseOutcome, StoreError> {
        let context = "pay order";
        let order: JsValue = id.as_str().into();
        let statements = vec![
            // Not pending any more: 'invalid' violates the status CHECK and the batch aborts.
            self.db
                .prepare(
                    "UPDATE orders SET status = CASE WHEN status = 'pending_payment' THEN 'paid' ELSE 'invalid' END,                      captured_minor = captured_minor + ?2, updated_at = ?3 WHERE id = ?1",
                )
                .bind(&[order.clone(), num(captured), num(now.millis())])
                .map_err(err(context))?,
            // The reservation becomes a sale: the units leave the shelf.
            self.db
                .prepare(
                    "UPDATE inventory SET                        on_hand = on_hand - (SELECT quantity FROM reservations r WHERE r.order_id = ?1 AND r.sku = inventory.sku AND r.status = 'held'),                        reserved = reserved - (SELECT quantity FROM reservations r WHERE r.order_id = ?1 AND r.sku = inventory.sku AND r.status = 'held')                      WHERE sku IN (SELECT sku FROM reservations WHERE order_id = ?1 AND status = 'held')",
                )
                .bind(std::slice::from_ref(&order))
                .map_err(err(context))?,
            self.db
                .prepare("UPDATE reservations SET status = 'sold' WHERE order_id = ?1 AND status = 'held'")
                .bind(std::slice::from_ref(&order))
                .map_err(err(context))?,
            // What each line sold: the most that can ever go back on the shelf (schema/0025).
            self.db
                .prepare("UPDATE order_lines SET sold_quantity = quantity WHERE order_id = ?1")
                .bind(&[order])
                .map_err(err(context))?,
            self.outbox_insert(event, context)?,
        ];
        self.run_transition(statements, event, context).await
    }

    async fn due_for_expiry(&self, now: Timestamp, limit: u32) -> Result<Vec<OrderId>, StoreError> {
        let rows: Vec<IdRow> = sql::all(
            self.db,
            "SELECT id FROM orders WHERE status = 'pending_payment' AND reservation_expires_at <= ?1 \
             ORDER BY reservation_expires_at LIMIT ?2",
            &[num(now.millis()), num(i64::from(limit))],
            "due for expiry",
        )
        .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    async fn status(&self, id: &OrderId) -> Result<Option<OrderStatus>, StoreError> {
        let row: Option<StatusRow> = sql::first(
            self.db,
            "SELECT status FROM orders WHERE id = ?1",
            &[id.as_str().into()],
            "order status",
        )
        .await?;
        row.map(|r| {
            OrderStatus::parse(&r.status)
                .ok_or_else(|| StoreError::new("stored order status is invalid"))
        })
        .transpose()
    }

    async fn close(
        &self,
        id: &OrderId,
        from: OrderStatus,
        to: OrderStatus,
        event: &Event,
        now: Timestamp,
    ) -> Result<shop_domain::orders::lifecycle::CloseOutcome, StoreError> {
        let statements = self.move_giving_back(id, from, to, event, now, "close order")?;
        self.run_transition(statements, event, "close order").await
    }

    async fn review(
        &self,
        id: &OrderId,
        from: OrderStatus,
        to: OrderStatus,
        captured: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<shop_domain::orders::lifecycle::CloseOutcome, StoreError> {
        let context = "review order";
        let mut statements = self.move_giving_back(id, from, to, event, now, context)?;
        if captured > 0 {
            // After the guarded status move (its first statement), before the event (its last):
            // what the payment took, which the order's CHECK keeps within its total.
            let at = statements.len() - 1;
            statements.insert(
                at,
                self.db
                    .prepare("UPDATE orders SET captured_minor = captured_minor + ?2 WHERE id = ?1")
                    .bind(&[id.as_str().into(), num(captured)])
                    .map_err(err(context))?,
            );
        }
        self.run_transition(statements, event, context).await
    }
}
