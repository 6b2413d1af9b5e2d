//! Carts in D1: the `CartRepository` port. A cart is one row whose lines are JSON; a read is one
//! statement joined with the current price and stock of each SKU, a save one statement guarded
//! by the version trigger.

use std::collections::BTreeMap;

use serde::Deserialize;
use shop_domain::cart::{
    Cart, CartLine, CartRepository, CartStatus, CartView, CurrentOffer, LoadedCart, SaveOutcome,
};
use shop_domain::catalog::Offer;
use shop_domain::kernel::ids::{CartId, CustomerId, Sku};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::reply::{Answer, Reply};
use crate::store::catalog::{offer_from_row, OfferRow};
use crate::store::sql::{self, changes, err, json_err, num, Db, Stmt, Violation};

/// [`OFFER_SQL`] in the currency of cart `?2`.
const CART_OFFER_SQL: &str = "\
SELECT v.sku, v.product_id, p.name, v.options, pr.amount_minor, i.available, v.weight_grams
FROM variants v
JOIN products p ON p.id = v.product_id
LEFT JOIN prices pr ON pr.sku = v.sku AND pr.currency = (SELECT currency FROM carts WHERE id = ?2)
LEFT JOIN inventory i ON i.sku = v.sku
WHERE v.sku = ?1 AND v.status = 'active' AND p.status = 'active'";

pub struct D1Carts<'a> {
    pub db: &'a Db,
    /// The reply the caller will get for a saved cart: with an `Idempotency-Key`, stored in the
    /// batch that saves it (see [`Db::batch_answering`]).
    pub answer: Option<Answer<'a, CartView>>,
}

impl<'a> D1Carts<'a> {
    pub fn new(db: &'a Db) -> Self {
        D1Carts { db, answer: None }
    }

    pub fn answering(db: &'a Db, answer: Answer<'a, CartView>) -> Self {
        D1Carts {
            db,
            answer: Some(answer),
        }
    }

    fn answer_for(&self, view: &CartView) -> Option<Reply> {
        self.answer.and_then(|answer| answer(view))
    }
}

#[derive(Deserialize)]
struct CartRow {
    id: String,
    currency: String,
    status: String,
    version: i64,
    lines: String,
    shipping: Option<String>,
    customer_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    /// `[sku, price in the cart's currency or null, available, grams]` per SKU in the cart.
    current: String,
}

/// A cart with the current price, availability and weight of each of its SKUs, from the carts
/// `c` that `$from_where` selects.
macro_rules! select_cart {
    ($from_where:literal) => {
        concat!(
            "SELECT c.id, c.currency, c.status, c.version, c.lines, c.shipping, c.customer_id,
  c.created_at, c.updated_at, c.expires_at,
  (SELECT json_group_array(json_array(v.sku, pr.amount_minor, COALESCE(i.available, 0), v.weight_grams))
   FROM (SELECT DISTINCT json_extract(l.value, '$.sku') AS sku FROM json_each(c.lines) l) s
   JOIN variants v ON v.sku = s.sku
   LEFT JOIN prices pr ON pr.sku = v.sku AND pr.currency = c.currency
   LEFT JOIN inventory i ON i.sku = v.sku) AS current
",
            $from_where
        )
    };
}

const LOAD_CART_SQL: &str = select_cart!("FROM carts c WHERE c.id = ?1");

/// The customer's (`?1`) active cart changed last, unexpired at `?2`, in currency `?3` if not
/// NULL.
const LATEST_OWNED_SQL: &str = select_cart!(
    "FROM carts c WHERE c.customer_id = ?1 AND c.status = 'active' AND c.expires_at > ?2
  AND (?3 IS NULL OR c.currency = ?3)
ORDER BY c.updated_at DESC, c.id DESC LIMIT 1"
);

/// A cart's save: the version trigger aborts it (and its batch) when another writer saved
/// first. `?9`: when not NULL, save only if the statement before changed a row (a merge saves
/// only if the cart it absorbs was still there to delete).
const UPDATE_CART_SQL: &str = "\
UPDATE carts SET status = ?2, version = ?3, lines = ?4, updated_at = ?5, expires_at = ?6,
  shipping = ?7, customer_id = ?8
WHERE id = ?1 AND (?9 IS NULL OR changes() = 1)";

fn cart_from_row(row: CartRow) -> Result<LoadedCart, StoreError> {
    let context = "load cart";
    let bad = |what: &str| StoreError::new(format!("{context}: stored {what} is invalid"));
    let currency: Currency = row.currency.parse().map_err(|_| bad("currency"))?;
    let lines: Vec<CartLine> = serde_json::from_str(&row.lines).map_err(json_err(context))?;
    let current_rows: Vec<(Sku, Option<i64>, i64, u64)> =
        serde_json::from_str(&row.current).map_err(json_err(context))?;
    let shipping = row
        .shipping
        .map(|doc| serde_json::from_str(&doc))
        .transpose()
        .map_err(json_err(context))?;
    let mut current = BTreeMap::new();
    for (sku, minor, available, weight_grams) in current_rows {
        let unit_price = minor.and_then(|m| Money::from_minor(m, currency).ok());
        current.insert(
            sku,
            CurrentOffer {
                unit_price,
                available,
                weight_grams,
            },
        );
    }
    Ok(LoadedCart {
        cart: Cart {
            id: CartId::parse(&row.id).map_err(|_| bad("id"))?,
            currency,
            status: CartStatus::parse(&row.status).ok_or_else(|| bad("status"))?,
            version: u64::try_from(row.version).map_err(|_| bad("version"))?,
            lines,
            shipping,
            owner: row
                .customer_id
                .map(|id| CustomerId::parse(&id).map_err(|_| bad("customer")))
                .transpose()?,
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            expires_at: Timestamp::from_millis(row.expires_at),
        },
        current,
    })
}

fn version(cart: &Cart) -> JsValue {
    JsValue::from_f64(cart.version as f64)
}

impl CartRepository for D1Carts<'_> {
    async fn load(&self, id: &CartId) -> Result<Option<LoadedCart>, StoreError> {
        let context = "load cart";
        let row: Option<CartRow> =
            sql::first(self.db, LOAD_CART_SQL, &[id.as_str().into()], context).await?;
        row.map(cart_from_row).transpose()
    }

    async fn load_with_offer(
        &self,
        id: &CartId,
        sku: &Sku,
    ) -> Result<Option<(LoadedCart, Option<Offer>)>, StoreError> {
        let context = "load cart with offer";
        let statements = vec![
            self.db
                .prepare(LOAD_CART_SQL)
                .bind(&[id.as_str().into()])
                .map_err(err(context))?,
            self.db
                .prepare(CART_OFFER_SQL)
                .bind(&[sku.as_str().into(), id.as_str().into()])
                .map_err(err(context))?,
        ];
        let results = self.db.batch(statements).await.map_err(err(context))?;
        let mut rows = results.iter();
        let mut next_row = || {
            rows.next()
                .ok_or_else(|| StoreError::new(format!("{context}: missing result")))
        };
        let cart: Option<CartRow> = next_row()?
            .results()
            .map_err(err(context))?
            .into_iter()
            .next();
        let offer: Option<OfferRow> = next_row()?
            .results()
            .map_err(err(context))?
            .into_iter()
            .next();
        let Some(loaded) = cart.map(cart_from_row).transpose()? else {
            return Ok(None);
        };
        let currency = loaded.cart.currency;
        let offer = offer
            .map(|row| offer_from_row(row, currency, context))
            .transpose()?;
        Ok(Some((loaded, offer)))
    }

    async fn insert(&self, cart: &Cart, answer: &CartView) -> Result<(), StoreError> {
        let context = "insert cart";
        let lines = serde_json::to_string(&cart.lines).map_err(json_err(context))?;
        let insert = self
            .db
            .prepare(
                "INSERT INTO carts (id, currency, status, version, lines, created_at, updated_at, expires_at, \
                 customer_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .bind(&[
                cart.id.as_str().into(),
                cart.currency.code().into(),
                cart.status.as_str().into(),
                version(cart),
                lines.into(),
                num(cart.created_at.millis()),
                num(cart.updated_at.millis()),
                num(cart.expires_at.millis()),
                sql::opt_str(cart.owner.as_ref().map(CustomerId::as_str)),
            ])
            .map_err(err(context))?;
        self.db
            .batch_answering(vec![insert], self.answer_for(answer).as_ref())
            .await
            .map_err(err(context))?;
        Ok(())
    }

    async fn update(&self, cart: &Cart, answer: &CartView) -> Result<SaveOutcome, StoreError> {
        let update = self.save_statement(cart, false)?;
        self.save(vec![update], answer).await
    }

    async fn latest_owned(
        &self,
        customer: &CustomerId,
        currency: Option<Currency>,
        now: Timestamp,
    ) -> Result<Option<LoadedCart>, StoreError> {
        let binds = [
            customer.as_str().into(),
            num(now.millis()),
            sql::opt_str(currency.map(Currency::code)),
        ];
        let row: Option<CartRow> = sql::first(
            self.db,
            LATEST_OWNED_SQL,
            &binds,
            "latest cart of a customer",
        )
        .await?;
        row.map(cart_from_row).transpose()
    }

    async fn merge(
        &self,
        into: &Cart,
        answer: &CartView,
        absorbed: &Cart,
    ) -> Result<SaveOutcome, StoreError> {
        let context = "merge carts";
        let id = || absorbed.id.as_str().into();
        // The absorbed cart's version moves on first, so the trigger refuses the batch when it
        // changed since it was read; `into` is saved only if it was still there to delete.
        let statements = vec![
            self.db
                .prepare("UPDATE carts SET version = ?2 WHERE id = ?1")
                .bind(&[id(), num(absorbed.version.saturating_add(1) as i64)])
                .map_err(err(context))?,
            self.db
                .prepare("DELETE FROM carts WHERE id = ?1")
                .bind(&[id()])
                .map_err(err(context))?,
            self.save_statement(into, true)?,
        ];
        self.save(statements, answer).await
    }
}

impl D1Carts<'_> {
    /// `UPDATE_CART_SQL` for `cart`; `after_change`: only if the statement before changed a row.
    fn save_statement(&self, cart: &Cart, after_change: bool) -> Result<Stmt, StoreError> {
        let context = "update cart";
        let lines = serde_json::to_string(&cart.lines).map_err(json_err(context))?;
        let shipping = match &cart.shipping {
            Some(choice) => serde_json::to_string(choice)
                .map_err(json_err(context))?
                .into(),
            None => JsValue::NULL,
        };
        self.db
            .prepare(UPDATE_CART_SQL)
            .bind(&[
                cart.id.as_str().into(),
                cart.status.as_str().into(),
                version(cart),
                lines.into(),
                num(cart.updated_at.millis()),
                num(cart.expires_at.millis()),
                shipping,
                sql::opt_str(cart.owner.as_ref().map(CustomerId::as_str)),
                if after_change { num(1) } else { JsValue::NULL },
            ])
            .map_err(err(context))
    }

    /// Run a save batch whose last statement saves the cart. No version condition in the
    /// WHERE: the version trigger aborts the statement (and the batch with the answer) when
    /// another writer saved first, so a lost update never commits an answer.
    async fn save(
        &self,
        statements: Vec<Stmt>,
        answer: &CartView,
    ) -> Result<SaveOutcome, StoreError> {
        match self
            .db
            .batch_answering(statements, self.answer_for(answer).as_ref())
            .await
        {
            Ok(results) if results.last().map(changes) == Some(1) => Ok(SaveOutcome::Saved),
            // The cart is gone (purged after it expired, or absorbed by another merge):
            // reloading says so.
            Ok(_) => Ok(SaveOutcome::Stale),
            Err(e) => match sql::violation(&e.to_string()) {
                Some(Violation::Trigger("stale cart version")) => Ok(SaveOutcome::Stale),
                _ => Err(err("update cart")(e)),
            },
        }
    }
}
