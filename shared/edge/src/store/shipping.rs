//! The shipping configuration in D1 (schema/0015): every zone's areas, and every method with
//! its weight bands and free-shipping thresholds in every currency, as one document (one
//! statement), kept per isolate for a minute. The zone and the prices are decided by
//! `shop_domain::fulfilment::shipping`.

use serde::Deserialize;
use shop_domain::fulfilment::shipping::{Area, Method, ShippingConfig, Zones};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::{Duration, Timestamp};
use shop_domain::StoreError;

use crate::store::sql::{self, Db};

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

/// The configuration as the domain's port: [`zones_cached`] as of `now`.
pub struct CachedZones<'a> {
    pub db: &'a Db,
    pub now: Timestamp,
}

impl ShippingConfig for CachedZones<'_> {
    async fn zones(&self) -> Result<Zones, StoreError> {
        zones_cached(self.db, self.now).await
    }
}

/// The whole shipping configuration, prices in every currency (what the checkout prices
/// shipping with). One statement.
pub async fn zones(db: &Db) -> Result<Zones, StoreError> {
    let context = "shipping zones";
    let sql = format!("SELECT ({ZONES_DOC}) AS doc");
    let doc = sql::doc(db, &sql, &[], context)
        .await?
        .ok_or_else(|| StoreError::new(format!("{context}: no document")))?;
    from_doc(&doc, context)
}

/// The configuration from its document.
fn from_doc(doc: &str, context: &str) -> Result<Zones, StoreError> {
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
    Ok(zones)
}
