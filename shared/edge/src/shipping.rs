//! Flat-rate shipping from configuration (`SHIPPING_RATES`, JSON):
//! `{"standard": {"EUR": "4.90", "JPY": "800"}, "express": {...}}`.

use std::collections::BTreeMap;

use shop_domain::checkout::ShippingRates;
use shop_domain::money::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlatRates {
    rates: BTreeMap<String, Vec<Money>>,
}

impl FlatRates {
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(json)
            .map_err(|e| format!("SHIPPING_RATES is not a JSON object of objects: {e}"))?;
        let mut rates = BTreeMap::new();
        for (method, prices) in raw {
            let mut list = Vec::new();
            for (code, amount) in prices {
                let currency: Currency = code
                    .parse()
                    .map_err(|e| format!("SHIPPING_RATES.{method}: {e}"))?;
                let price = Money::parse(&amount, currency)
                    .map_err(|e| format!("SHIPPING_RATES.{method}.{code}: {e}"))?;
                if price.amount().is_sign_negative() {
                    return Err(format!("SHIPPING_RATES.{method}.{code} is negative"));
                }
                list.push(price);
            }
            rates.insert(method, list);
        }
        Ok(FlatRates { rates })
    }
}

impl ShippingRates for FlatRates {
    fn quote(&self, method: &str, currency: Currency) -> Option<Money> {
        self.rates
            .get(method)?
            .iter()
            .find(|m| m.currency() == currency)
            .copied()
    }

    fn methods(&self) -> Vec<String> {
        self.rates.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_per_currency() {
        let r =
            FlatRates::parse(r#"{"standard":{"EUR":"4.90","JPY":"800"},"express":{"EUR":"12"}}"#)
                .unwrap();
        assert_eq!(
            r.quote("standard", Currency::Jpy)
                .unwrap()
                .amount()
                .to_string(),
            "800"
        );
        assert_eq!(
            r.quote("express", Currency::Eur)
                .unwrap()
                .amount()
                .to_string(),
            "12.00"
        );
        assert_eq!(r.quote("express", Currency::Jpy), None);
        assert_eq!(r.quote("drone", Currency::Eur), None);
        assert_eq!(r.methods(), vec!["express", "standard"]);
        assert!(FlatRates::parse(r#"{"standard":{"EUR":"4.999"}}"#).is_err());
        assert!(FlatRates::parse(r#"{"standard":{"XXX":"4"}}"#).is_err());
        assert!(FlatRates::parse("[]").is_err());
    }
}
