//! Shipping quotes: a destination's zone, and what each of the zone's methods costs for a
//! parcel of a given weight and a cart of a given subtotal (weight bands per currency, a
//! free-shipping threshold, estimated delivery days).

use serde::{Deserialize, Serialize};

use crate::kernel::money::Money;
use crate::StoreError;

/// Shipping prices (port): zones, methods, weight bands and thresholds (see `shipping::Zones`).
pub trait ShippingRates {
    /// The price of `method` to `destination` for a parcel of `weight_grams` and a cart of
    /// `subtotal` (in its currency); `None` when the destination's zone has no such method, or
    /// it cannot take the parcel or has no price in that currency.
    fn quote(
        &self,
        method: &str,
        destination: &crate::fulfilment::shipping::Destination,
        weight_grams: u64,
        subtotal: Money,
    ) -> Option<Money>;
    /// The methods of the destination's zone.
    fn methods(&self, destination: &crate::fulfilment::shipping::Destination) -> Vec<String>;
}

/// Where a parcel goes, as far as shipping zones care: an ISO 3166-1 alpha-2 country and a
/// postcode, normalised (uppercase, no spaces). Stored (a cart's chosen shipping) as
/// `{country, postal_code}` and parsed again when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredDestination")]
pub struct Destination {
    country: String,
    postal_code: String,
}

impl Destination {
    pub fn parse(country: &str, postal_code: &str) -> Option<Self> {
        let country = country.trim().to_ascii_uppercase();
        let postal_code: String = postal_code
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let postal_ok = postal_code.len() <= 12
            && postal_code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        (country_ok && postal_ok).then_some(Destination {
            country,
            postal_code,
        })
    }

    /// An order's shipping address as a destination: its postcode only when it is one zones
    /// can match (else the whole country).
    pub fn of_address(country: &str, postal_code: &str) -> Self {
        Destination::parse(country, postal_code)
            .or_else(|| Destination::parse(country, ""))
            .unwrap_or(Destination {
                country: country.trim().to_ascii_uppercase(),
                postal_code: String::new(),
            })
    }

    pub fn country(&self) -> &str {
        &self.country
    }

    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }
}

#[derive(Deserialize)]
struct StoredDestination {
    country: String,
    postal_code: String,
}

impl TryFrom<StoredDestination> for Destination {
    type Error = &'static str;

    fn try_from(d: StoredDestination) -> Result<Self, Self::Error> {
        Destination::parse(&d.country, &d.postal_code).ok_or("not a destination")
    }
}

/// Part of a zone: a country (or `*`, anywhere) and a postcode prefix (empty: the whole country).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub zone: String,
    pub country: String,
    pub postcode_prefix: String,
}

/// The zone of `destination`: the one whose area matches it most specifically (a country over
/// `*`, then the longest postcode prefix).
pub fn zone_for<'a>(areas: &'a [Area], destination: &Destination) -> Option<&'a str> {
    areas
        .iter()
        .filter(|a| a.country == "*" || a.country == destination.country)
        .filter(|a| destination.postal_code.starts_with(&a.postcode_prefix))
        .max_by_key(|a| (a.country != "*", a.postcode_prefix.len()))
        .map(|a| a.zone.as_str())
}

/// A method of a zone, with its prices in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub code: String,
    pub name: String,
    pub carrier: String,
    pub min_days: u32,
    pub max_days: u32,
    /// `(max grams, price)`: the lightest band of the cart's currency that holds the parcel
    /// applies.
    pub bands: Vec<(u64, Money)>,
    /// From this subtotal on (in its currency), the method is free.
    pub free_from: Vec<Money>,
}

/// What a method costs for a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub code: String,
    pub name: String,
    pub carrier: String,
    pub price: Money,
    /// The free-shipping threshold applied.
    pub free: bool,
    /// The subtotal from which this method is free, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_from: Option<Money>,
    pub min_days: u32,
    pub max_days: u32,
}

/// What `method` costs for a parcel of `weight_grams` and a cart of `subtotal`; `None` when no
/// band holds the parcel, or the method has no price in the cart's currency.
pub fn quote(method: &Method, weight_grams: u64, subtotal: Money) -> Option<Quote> {
    let band = method
        .bands
        .iter()
        .filter(|(max, price)| weight_grams <= *max && price.currency() == subtotal.currency())
        .min_by_key(|(max, _)| *max)?;
    let free_from = method
        .free_from
        .iter()
        .find(|from| from.currency() == subtotal.currency())
        .copied();
    let free = free_from.is_some_and(|from| subtotal.minor_units() >= from.minor_units());
    Some(Quote {
        code: method.code.clone(),
        name: method.name.clone(),
        carrier: method.carrier.clone(),
        price: if free {
            Money::zero(subtotal.currency())
        } else {
            band.1
        },
        free,
        free_from,
        min_days: method.min_days,
        max_days: method.max_days,
    })
}

/// Every method of `zone` that can take the parcel, cheapest first.
pub fn quotes(
    methods: &[(String, Method)],
    zone: &str,
    weight_grams: u64,
    subtotal: Money,
) -> Vec<Quote> {
    let mut quotes: Vec<Quote> = methods
        .iter()
        .filter(|(z, _)| z == zone)
        .filter_map(|(_, method)| quote(method, weight_grams, subtotal))
        .collect();
    quotes.sort_by(|a, b| (a.price.minor_units(), &a.code).cmp(&(b.price.minor_units(), &b.code)));
    quotes
}

/// The shipping configuration as the checkout's [`ShippingRates`](ShippingRates):
/// a destination's zone, and its methods' prices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zones {
    pub areas: Vec<Area>,
    /// `(zone, method)`, with prices in every currency.
    pub methods: Vec<(String, Method)>,
}

impl Zones {
    fn of<'a>(&'a self, destination: &Destination) -> impl Iterator<Item = &'a Method> + 'a {
        let zone = zone_for(&self.areas, destination).map(str::to_owned);
        self.methods
            .iter()
            .filter(move |(z, _)| Some(z) == zone.as_ref())
            .map(|(_, method)| method)
    }

    /// What `method` costs to `destination` for a parcel of `weight_grams` and a cart of
    /// `subtotal`: the one pricing the cart's totals, its shipping options and the checkout
    /// share. `None` when the destination's zone has no such method, or it cannot take the
    /// parcel, or has no price in the subtotal's currency.
    pub fn quote(
        &self,
        method: &str,
        destination: &Destination,
        weight_grams: u64,
        subtotal: Money,
    ) -> Option<Quote> {
        self.of(destination)
            .find(|m| m.code == method)
            .and_then(|m| quote(m, weight_grams, subtotal))
    }

    /// Every method of the destination's zone that can take the parcel, cheapest first.
    pub fn quotes(
        &self,
        destination: &Destination,
        weight_grams: u64,
        subtotal: Money,
    ) -> Vec<Quote> {
        zone_for(&self.areas, destination)
            .map(|zone| quotes(&self.methods, zone, weight_grams, subtotal))
            .unwrap_or_default()
    }
}

/// The shipping configuration (port): read only by the requests that price shipping.
pub trait ShippingConfig {
    async fn zones(&self) -> Result<Zones, StoreError>;
}

/// A configuration held in memory (tests, or one already read).
impl ShippingConfig for Zones {
    async fn zones(&self) -> Result<Zones, StoreError> {
        Ok(self.clone())
    }
}

impl ShippingRates for Zones {
    fn quote(
        &self,
        method: &str,
        destination: &Destination,
        weight_grams: u64,
        subtotal: Money,
    ) -> Option<Money> {
        Zones::quote(self, method, destination, weight_grams, subtotal).map(|q| q.price)
    }

    fn methods(&self, destination: &Destination) -> Vec<String> {
        self.of(destination).map(|m| m.code.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::money::Currency;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Eur).unwrap()
    }

    fn area(zone: &str, country: &str, prefix: &str) -> Area {
        Area {
            zone: zone.into(),
            country: country.into(),
            postcode_prefix: prefix.into(),
        }
    }

    #[test]
    fn the_most_specific_area_wins() {
        let areas = [
            area("world", "*", ""),
            area("eu", "NL", ""),
            area("islands", "NL", "88"),
            area("us", "US", ""),
        ];
        let zone = |c: &str, p: &str| zone_for(&areas, &Destination::parse(c, p).unwrap());
        assert_eq!(zone("nl", "1012 AB"), Some("eu"));
        assert_eq!(zone("NL", "8881 AA"), Some("islands"));
        assert_eq!(zone("US", "22202"), Some("us"));
        assert_eq!(zone("JP", "100-0001"), Some("world"));
        assert_eq!(
            zone_for(&areas[1..2], &Destination::parse("JP", "").unwrap()),
            None
        );
        assert!(Destination::parse("NLD", "1").is_none());
        assert!(Destination::parse("N1", "1").is_none());
        assert!(Destination::parse("NL", "1012<AB").is_none());
    }

    #[test]
    fn weight_bands_and_the_free_threshold() {
        let standard = Method {
            code: "standard".into(),
            name: "Standard".into(),
            carrier: "postnl".into(),
            min_days: 1,
            max_days: 3,
            bands: vec![(2000, eur(695)), (500, eur(490)), (10_000, eur(1295))],
            free_from: vec![eur(5000)],
        };
        let price = |grams, subtotal| quote(&standard, grams, eur(subtotal)).map(|q| q.price);
        assert_eq!(price(0, 1000), Some(eur(490)));
        assert_eq!(
            price(500, 1000),
            Some(eur(490)),
            "a band's bound is inclusive"
        );
        assert_eq!(price(501, 1000), Some(eur(695)));
        assert_eq!(price(10_000, 4999), Some(eur(1295)));
        assert_eq!(price(10_001, 1000), None, "too heavy for every band");
        assert_eq!(price(501, 5000), Some(eur(0)), "free from the threshold on");
        assert!(quote(&standard, 1, eur(5000)).unwrap().free);
        let usd = Money::from_minor(1000, Currency::Usd).unwrap();
        assert_eq!(
            quote(&standard, 1, usd),
            None,
            "no price in the cart's currency"
        );
        let express = Method {
            code: "express".into(),
            bands: vec![(10_000, eur(1200))],
            free_from: vec![],
            ..standard.clone()
        };
        let methods = vec![("eu".to_owned(), express), ("eu".to_owned(), standard)];
        let codes: Vec<String> = quotes(&methods, "eu", 600, eur(1000))
            .into_iter()
            .map(|q| q.code)
            .collect();
        assert_eq!(codes, vec!["standard", "express"], "cheapest first");
        assert!(quotes(&methods, "us", 600, eur(1000)).is_empty());
        // As the checkout's rates: the destination's zone decides which methods exist.
        use ShippingRates;
        let zones = Zones {
            areas: vec![area("eu", "NL", "")],
            methods,
        };
        let nl = Destination::of_address("nl", "1012 AB");
        assert_eq!(
            ShippingRates::quote(&zones, "express", &nl, 600, eur(1000)),
            Some(eur(1200))
        );
        assert_eq!(zones.methods(&nl), vec!["express", "standard"]);
        let us = Destination::of_address("US", "22202");
        assert_eq!(
            ShippingRates::quote(&zones, "standard", &us, 600, eur(1000)),
            None
        );
        assert!(zones.methods(&us).is_empty());
        assert_eq!(Destination::of_address("NL", "1012<AB").country(), "NL");
    }
}
