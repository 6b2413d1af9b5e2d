//! The shipping configuration in D1 (schema/0015) as a cart needs it for a quote: the cart's
//! weight, every zone's areas, and every method with its bands and free-shipping threshold in
//! the cart's currency. One statement; the zone and the prices are decided by
//! `shop_domain::shipping`.

use serde::Deserialize;
use shop_domain::ids::CartId;
use shop_domain::money::{Currency, Money};
use shop_domain::shipping::{Area, Method};
use shop_domain::StoreError;

use crate::store::sql::{self, Db};

/// What quoting a cart's shipping needs.
#[derive(Debug, Clone)]
pub struct ShippingConfig {
    pub weight_grams: u64,
    pub areas: Vec<Area>,
    /// `(zone, method)`.
    pub methods: Vec<(String, Method)>,
}

#[derive(Deserialize)]
struct Doc {
    weight: u64,
    areas: Vec<AreaRow>,
    methods: Vec<MethodRow>,
}

#[derive(Deserialize)]
struct AreaRow {
    zone: String,
    country: String,
    prefix: String,
}

#[derive(Deserialize)]
struct MethodRow {
    zone: String,
    code: String,
    name: String,
    carrier: String,
    min_days: u32,
    max_days: u32,
    free_from: Option<i64>,
    bands: Vec<(u64, i64)>,
}

const CONFIG_SQL: &str = "\
SELECT json_object(
  'weight', (SELECT coalesce(sum(v.weight_grams * json_extract(l.value, '$.quantity')), 0)
             FROM carts c, json_each(c.lines) l JOIN variants v ON v.sku = json_extract(l.value, '$.sku')
             WHERE c.id = ?1),
  'areas', json((SELECT json_group_array(json_object('zone', zone_id, 'country', country,
             'prefix', postcode_prefix)) FROM shipping_zone_areas)),
  'methods', json((SELECT json_group_array(json_object('zone', m.zone_id, 'code', m.code,
      'name', m.name, 'carrier', m.carrier, 'min_days', m.min_days, 'max_days', m.max_days,
      'free_from', (SELECT threshold_minor FROM shipping_free_thresholds f
                    WHERE f.zone_id = m.zone_id AND f.code = m.code AND f.currency = ?2),
      'bands', json((SELECT json_group_array(json_array(r.max_grams, r.amount_minor))
                     FROM shipping_rates r
                     WHERE r.zone_id = m.zone_id AND r.code = m.code AND r.currency = ?2))))
    FROM shipping_methods m))) AS doc";

/// The shipping configuration for `cart`, priced in `currency`.
pub async fn for_cart(
    db: &Db,
    cart: &CartId,
    currency: Currency,
) -> Result<ShippingConfig, StoreError> {
    let context = "shipping configuration";
    let doc = sql::doc(
        db,
        CONFIG_SQL,
        &[cart.as_str().into(), currency.code().into()],
        context,
    )
    .await?
    .ok_or_else(|| StoreError::new(format!("{context}: no document")))?;
    let doc: Doc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
    let money = |minor: i64| {
        Money::from_minor(minor, currency)
            .map_err(|_| StoreError::new(format!("{context}: stored amount is invalid")))
    };
    let methods = doc
        .methods
        .into_iter()
        .map(|m| {
            let bands = m
                .bands
                .into_iter()
                .map(|(grams, minor)| Ok((grams, money(minor)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let method = Method {
                code: m.code,
                name: m.name,
                carrier: m.carrier,
                min_days: m.min_days,
                max_days: m.max_days,
                bands,
                free_from: m.free_from.map(money).transpose()?,
            };
            Ok((m.zone, method))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(ShippingConfig {
        weight_grams: doc.weight,
        areas: doc
            .areas
            .into_iter()
            .map(|a| Area {
                zone: a.zone,
                country: a.country,
                postcode_prefix: a.prefix,
            })
            .collect(),
        methods,
    })
}
