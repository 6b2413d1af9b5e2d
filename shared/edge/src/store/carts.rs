//! Carts in D1: the `CartRepository` port. A cart is one row whose lines are JSON; a read is one
//! statement joined with the current price and stock of each SKU, a save one statement guarded
//! by the version trigger.

use std::collections::BTreeMap;

use serde::Deserialize;
use shop_domain::cart::{
    Cart, CartLine, CartRepository, CartStatus, CartView, CurrentOffer, LoadedCart, SaveOutcome,
};
use shop_domain::catalog::Offer;
use shop_domain::ids::{CartId, Sku};
use shop_domain::money::{Currency, Money};
use shop_domain::time::Timestamp;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::http::reply::{Answer, Reply};
use crate::store::catalog::{offer_from_row, OfferRow};
use crate::store::sql::{self, changes, err, json_err, num, Db, Violation};

/// [`OFFER_SQL`] in the currency of cart `?2`.
const CART_OFFER_SQL: &str = "\
SELECT v.sku, v.product_id, p.name, v.options, pr.amount_minor, i.available, v.weight_grams
FROM variants v
JOIN products p ON p.id = v.product_id
LEFT JOIN prices pr ON pr.sku = v.sku AND pr.currency = (SELECT currency FROM carts WHERE id = ?2)
LEFT JOIN inventory i ON i.sku = v.sku
WHERE v.sku = ?1";

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
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    /// `[sku, price in the cart's currency or null, available, grams]` per SKU in the cart.
    current: String,
}

const LOAD_CART_SQL: &str = "\
SELECT c.id, c.currency, c.status, c.version, c.lines, c.shipping, c.created_at, c.updated_at,
  c.expires_at,
  (SELECT json_group_array(json_array(v.sku, pr.amount_minor, COALESCE(i.available, 0), v.weight_grams))
   FROM (SELECT DISTINCT json_extract(l.value, '$.sku') AS sku FROM json_each(c.lines) l) s
   JOIN variants v ON v.sku = s.sku
   LEFT JOIN prices pr ON pr.sku = v.sku AND pr.currency = c.currency
   LEFT JOIN inventory i ON i.sku = v.sku) AS current
FROM carts c WHERE c.id = ?1";

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
                "INSERT INTO carts (id, currency, status, version, lines, created_at, updated_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
            ])
            .map_err(err(context))?;
        self.db
            .batch_answering(vec![insert], self.answer_for(answer).as_ref())
            .await
            .map_err(err(context))?;
        Ok(())
    }

    async fn update(&self, cart: &Cart, answer: &CartView) -> Result<SaveOutcome, StoreError> {
        let context = "update cart";
        let lines = serde_json::to_string(&cart.lines).map_err(json_err(context))?;
        let shipping = match &cart.shipping {
            Some(choice) => serde_json::to_string(choice)
                .map_err(json_err(context))?
                .into(),
            None => JsValue::NULL,
        };
        // No version condition in the WHERE: the version trigger aborts the statement (and the
        // batch with the answer) when another writer saved first, so a lost update never
        // commits an answer.
        let update = self
            .db
            .prepare(
                "UPDATE carts SET status = ?2, version = ?3, lines = ?4, updated_at = ?5, expires_at = ?6, \
                 shipping = ?7 WHERE id = ?1",
            )
            .bind(&[
                cart.id.as_str().into(),
                cart.status.as_str().into(),
                version(cart),
                lines.into(),
                num(cart.updated_at.millis()),
                num(cart.expires_at.millis()),
                shipping,
            ])
            .map_err(err(context))?;
        match self
            .db
            .batch_answering(vec![update], self.answer_for(answer).as_ref())
            .await
        {
            Ok(results) if results.first().map(changes) == Some(1) => Ok(SaveOutcome::Saved),
            // The cart is gone (purged after it expired): reloading says so.
            Ok(_) => Ok(SaveOutcome::Stale),
            Err(e) => match sql::violation(&e.to_string()) {
                Some(Violation::Trigger("stale cart version")) => Ok(SaveOutcome::Stale),
                _ => Err(err(context)(e)),
            },
        }
    }
}
