//! The shipping configuration in D1 (schema/0015): every zone's areas, and every method with
//! its weight bands and free-shipping thresholds in every currency, as one document (one
//! statement); for a cart's quote with the cart's weight in the same statement, for the
//! checkout cached per isolate for a minute. The zone and the prices are decided by
//! `shop_domain::shipping`.

use serde::Deserialize;
use shop_domain::ids::CartId;
use shop_domain::money::{Currency, Money};
use shop_domain::shipping::{Area, Method, Zones};
use shop_domain::time::{Duration, Timestamp};
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
struct AreaRow {
    zone: String,
    country: String,
    prefix: String,
}

#[derive(Deserialize)]
struct ZonesDoc {
    areas: Vec<AreaRow>,
    methods: Vec<ZoneMethodRow>,
    #[serde(default)]
    weight: Option<u64>,
}

#[derive(Deserialize)]
struct ZoneMethodRow {
    zone: String,
    code: String,
    name: String,
    carrier: String,
    min_days: u32,
    max_days: u32,
    /// `[currency, minor]`
    free: Vec<(String, i64)>,
    /// `[max grams, currency, minor]`
    bands: Vec<(u64, String, i64)>,
}

/// The configuration as one JSON document.
const ZONES_DOC: &str = "\
SELECT json_object(
  'areas', json((SELECT json_group_array(json_object('zone', zone_id, 'country', country,
             'prefix', postcode_prefix)) FROM shipping_zone_areas)),
  'methods', json((SELECT json_group_array(json_object('zone', m.zone_id, 'code', m.code,
      'name', m.name, 'carrier', m.carrier, 'min_days', m.min_days, 'max_days', m.max_days,
      'free', json((SELECT json_group_array(json_array(f.currency, f.threshold_minor))
                    FROM shipping_free_thresholds f WHERE f.zone_id = m.zone_id AND f.code = m.code)),
      'bands', json((SELECT json_group_array(json_array(r.max_grams, r.currency, r.amount_minor))
                     FROM shipping_rates r WHERE r.zone_id = m.zone_id AND r.code = m.code))))
    FROM shipping_methods m)))";

/// The weight of the cart `?1`.
const WEIGHT_SQL: &str =
    "(SELECT coalesce(sum(v.weight_grams * json_extract(l.value, '$.quantity')), 0)
   FROM carts c, json_each(c.lines) l JOIN variants v ON v.sku = json_extract(l.value, '$.sku')
   WHERE c.id = ?1)";

/// The shipping configuration and the weight of `cart`. One statement.
pub async fn for_cart(db: &Db, cart: &CartId) -> Result<ShippingConfig, StoreError> {
    let context = "shipping configuration";
    let sql = format!("SELECT json_set(({ZONES_DOC}), '$.weight', {WEIGHT_SQL}) AS doc");
    let doc = sql::doc(db, &sql, &[cart.as_str().into()], context)
        .await?
        .ok_or_else(|| StoreError::new(format!("{context}: no document")))?;
    let (zones, weight) = from_doc(&doc, context)?;
    Ok(ShippingConfig {
        weight_grams: weight.unwrap_or(0),
        areas: zones.areas,
        methods: zones.methods,
    })
}

thread_local! {
    static ZONES: std::cell::RefCell<Option<(Timestamp, Zones)>> =
        const { std::cell::RefCell::new(None) };
}

/// How long an isolate prices checkouts with the configuration it read: merchant
/// configuration, stale for at most this long after a change, so a warm checkout costs no
/// extra round trip.
pub const ZONES_TTL: Duration = Duration::from_secs(60);

/// [`zones`], read at most once per [`ZONES_TTL`] per isolate.
pub async fn zones_cached(db: &Db, now: Timestamp) -> Result<Zones, StoreError> {
    let hit = ZONES.with(|z| {
        z.borrow()
            .as_ref()
            .filter(|(expires, _)| now < *expires)
            .map(|(_, zones)| zones.clone())
    });
    if let Some(zones) = hit {
        return Ok(zones);
    }
    let zones = zones(db).await?;
    ZONES.with(|z| *z.borrow_mut() = Some((now.plus(ZONES_TTL), zones.clone())));
    Ok(zones)
}

/// The whole shipping configuration, prices in every currency (what the checkout prices
/// shipping with). One statement.
pub async fn zones(db: &Db) -> Result<Zones, StoreError> {
    let context = "shipping zones";
    let sql = format!("SELECT ({ZONES_DOC}) AS doc");
    let doc = sql::doc(db, &sql, &[], context)
        .await?
        .ok_or_else(|| StoreError::new(format!("{context}: no document")))?;
    Ok(from_doc(&doc, context)?.0)
}

/// The configuration (and, when the document has one, a cart's weight) from its document.
fn from_doc(doc: &str, context: &str) -> Result<(Zones, Option<u64>), StoreError> {
    let doc: ZonesDoc = serde_json::from_str(doc).map_err(sql::json_err(context))?;
    let money = |currency: &str, minor: i64| {
        currency
            .parse::<Currency>()
            .ok()
            .and_then(|c| Money::from_minor(minor, c).ok())
            .ok_or_else(|| StoreError::new(format!("{context}: stored amount is invalid")))
    };
    let methods = doc
        .methods
        .into_iter()
        .map(|m| {
            let bands = m
                .bands
                .iter()
                .map(|(grams, currency, minor)| Ok((*grams, money(currency, *minor)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let free_from = m
                .free
                .iter()
                .map(|(currency, minor)| money(currency, *minor))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let method = Method {
                code: m.code,
                name: m.name,
                carrier: m.carrier,
                min_days: m.min_days,
                max_days: m.max_days,
                bands,
                free_from,
            };
            Ok((m.zone, method))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let zones = Zones {
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
    };
    Ok((zones, doc.weight))
}
