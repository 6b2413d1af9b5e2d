//! Money: a decimal amount in one currency, always rounded to that currency's minor unit.
//!
//! Rounding rule (the only one used anywhere): half away from zero ("commercial rounding"),
//! applied at the currency's number of minor digits. Amounts are never floats.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The one rounding mode of the system.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// A currency this shop sells in. Parsing an ISO 4217 code is the only way to get one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    Eur,
    Usd,
    Gbp,
    Jpy,
    Kwd,
}

impl Currency {
    pub const ALL: [Currency; 5] = [
        Currency::Eur,
        Currency::Usd,
        Currency::Gbp,
        Currency::Jpy,
        Currency::Kwd,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
            Currency::Usd => "USD",
            Currency::Gbp => "GBP",
            Currency::Jpy => "JPY",
            Currency::Kwd => "KWD",
        }
    }

    /// Number of digits after the decimal point of the minor unit (ISO 4217 exponent).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            Currency::Eur | Currency::Usd | Currency::Gbp => 2,
            Currency::Kwd => 3,
        }
    }

    /// Round an exact amount to this currency's minor unit with [`ROUNDING`].
    pub fn round(self, amount: Decimal) -> Decimal {
        let mut rounded = amount.round_dp_with_strategy(self.exponent(), ROUNDING);
        rounded.rescale(self.exponent());
        rounded
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedCurrency(pub String);

impl fmt::Display for UnsupportedCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsupported currency {:?}", self.0)
    }
}

impl std::error::Error for UnsupportedCurrency {}

impl FromStr for Currency {
    type Err = UnsupportedCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| UnsupportedCurrency(s.to_owned()))
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount of money in a currency, exactly representable in its minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// More decimal places than the currency has minor digits.
    TooPrecise { currency: Currency },
    /// Not a decimal number.
    NotANumber,
    /// Outside the range this system handles (|amount| < 10^12 major units).
    OutOfRange,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::TooPrecise { currency } => write!(
                f,
                "{currency} amounts have at most {} decimal places",
                currency.exponent()
            ),
            MoneyError::NotANumber => f.write_str("not a decimal amount"),
            MoneyError::OutOfRange => f.write_str("amount out of range"),
        }
    }
}

impl std::error::Error for MoneyError {}

fn max_abs() -> Decimal {
    Decimal::from(1_000_000_000_000_i64)
}

impl Money {
    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: currency.round(Decimal::ZERO),
            currency,
        }
    }

    /// An exact amount; fails when it has more digits than the currency's minor unit.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.abs() >= max_abs() {
            return Err(MoneyError::OutOfRange);
        }
        let normalized = amount.normalize();
        if normalized.scale() > currency.exponent() {
            return Err(MoneyError::TooPrecise { currency });
        }
        Ok(Money {
            amount: currency.round(amount),
            currency,
        })
    }

    /// Parse a decimal string such as `"19.99"`.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = amount.trim();
        if trimmed.is_empty() || trimmed != amount || trimmed.contains(['e', 'E', '_']) {
            return Err(MoneyError::NotANumber);
        }
        let decimal = Decimal::from_str_exact(trimmed).map_err(|_| MoneyError::NotANumber)?;
        Money::new(decimal, currency)
    }

    /// Round an exact (e.g. computed) amount to the currency's minor unit.
    pub fn rounded(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        Money::new(currency.round(amount), currency)
    }

    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        Money::new(Decimal::new(minor, currency.exponent()), currency)
    }

    /// The amount in minor units (cents, yen, fils). Exact by construction.
    pub fn minor_units(&self) -> i64 {
        let mut scaled = self.amount;
        scaled.rescale(self.currency.exponent());
        // |amount| < 10^12 and exponent <= 3, so the mantissa fits in an i64.
        i64::try_from(scaled.mantissa()).unwrap_or(i64::MAX)
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Money::new(self.amount.checked_add(other.amount)?, self.currency).ok()
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Money::new(self.amount.checked_sub(other.amount)?, self.currency).ok()
    }

    pub fn checked_mul(self, quantity: u32) -> Option<Money> {
        Money::new(
            self.amount.checked_mul(Decimal::from(quantity))?,
            self.currency,
        )
        .ok()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Wire form: `{"amount": "19.99", "currency": "EUR"}`, always with the currency's minor digits.
#[derive(Serialize, Deserialize)]
struct MoneyWire {
    amount: String,
    currency: Currency,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MoneyWire {
            amount: self.amount.to_string(),
            currency: self.currency,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(d)?;
        Money::parse(&wire.amount, wire.currency).map_err(serde::de::Error::custom)
    }
}

/// Split `total` minor units across `weights` in proportion, by largest remainder, so the parts
/// always sum to `total` exactly. Ties go to the earlier weight. All-zero weights split evenly.
/// Weights must be non-negative.
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let weight_sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    let (weights, weight_sum): (Vec<i128>, i128) = if weight_sum == 0 {
        (vec![1; weights.len()], weights.len() as i128)
    } else {
        (
            weights.iter().map(|w| i128::from((*w).max(0))).collect(),
            weight_sum,
        )
    };
    let total = i128::from(total);
    let sign = if total < 0 { -1 } else { 1 };
    let magnitude = total.abs();
    let mut parts: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (index, weight) in weights.iter().enumerate() {
        let exact = magnitude * weight;
        parts.push(exact / weight_sum);
        remainders.push((exact % weight_sum, index));
    }
    let assigned: i128 = parts.iter().sum();
    let mut left = magnitude - assigned;
    // Largest remainder first; on equal remainders the earlier line wins.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, index) in remainders {
        if left == 0 {
            break;
        }
        if let Some(part) = parts.get_mut(index) {
            *part += 1;
            left -= 1;
        }
    }
    parts
        .into_iter()
        .map(|p| i64::try_from(p * sign).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur(s: &str) -> Money {
        Money::parse(s, Currency::Eur).unwrap()
    }

    #[test]
    fn parses_and_prints_with_minor_digits() {
        assert_eq!(eur("19.9").amount().to_string(), "19.90");
        assert_eq!(eur("19").amount().to_string(), "19.00");
        let yen = Money::parse("1500", Currency::Jpy).unwrap();
        assert_eq!(yen.amount().to_string(), "1500");
        assert_eq!(yen.minor_units(), 1500);
        let kwd = Money::parse("1.5", Currency::Kwd).unwrap();
        assert_eq!(kwd.amount().to_string(), "1.500");
        assert_eq!(kwd.minor_units(), 1500);
    }

    #[test]
    fn rejects_more_digits_than_the_currency_has() {
        assert_eq!(
            Money::parse("19.999", Currency::Eur),
            Err(MoneyError::TooPrecise {
                currency: Currency::Eur
            })
        );
        assert!(Money::parse("1.5", Currency::Jpy).is_err());
        // Trailing zeros are not extra precision.
        assert_eq!(eur("1.500").minor_units(), 150);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", " 1", "1e3", "abc", "1_000", "1.2.3", "1000000000000"] {
            assert!(Money::parse(bad, Currency::Eur).is_err(), "{bad}");
        }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        let c = Currency::Eur;
        assert_eq!(c.round(Decimal::new(1005, 3)).to_string(), "1.01");
        assert_eq!(c.round(Decimal::new(-1005, 3)).to_string(), "-1.01");
        assert_eq!(c.round(Decimal::new(1004, 3)).to_string(), "1.00");
        assert_eq!(Currency::Jpy.round(Decimal::new(15, 1)).to_string(), "2");
    }

    #[test]
    fn wire_format() {
        let json = serde_json::to_string(&eur("5")).unwrap();
        assert_eq!(json, r#"{"amount":"5.00","currency":"EUR"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back, eur("5"));
        assert!(serde_json::from_str::<Money>(r#"{"amount":"5","currency":"XXX"}"#).is_err());
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies() {
        let yen = Money::parse("5", Currency::Jpy).unwrap();
        assert_eq!(eur("1").checked_add(yen), None);
        assert_eq!(eur("1.10").checked_mul(3), Some(eur("3.30")));
    }

    #[test]
    fn allocation_examples() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(-100, &[1, 1, 1]), vec![-34, -33, -33]);
        assert_eq!(allocate(5, &[0, 0]), vec![3, 2]);
        assert_eq!(allocate(10, &[]), Vec::<i64>::new());
        assert_eq!(allocate(7, &[100, 0, 300]), vec![2, 0, 5]);
    }

    proptest! {
        #[test]
        fn allocation_never_loses_or_invents_a_unit(
            total in -1_000_000_000i64..1_000_000_000,
            weights in proptest::collection::vec(0i64..10_000_000, 1..40),
        ) {
            let parts = allocate(total, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            let weight_sum: i64 = weights.iter().sum();
            if weight_sum > 0 {
                for (part, weight) in parts.iter().zip(&weights) {
                    // Each part is within one unit of its exact share.
                    let exact = i128::from(total) * i128::from(*weight);
                    prop_assert!((i128::from(*part) * i128::from(weight_sum) - exact).abs() < i128::from(weight_sum));
                }
            }
        }

        #[test]
        fn minor_units_round_trip(minor in -999_999_999_999i64..999_999_999_999, idx in 0usize..5) {
            let currency = Currency::ALL[idx];
            let money = Money::from_minor(minor, currency);
            if let Ok(money) = money {
                prop_assert_eq!(money.minor_units(), minor);
                let reparsed = Money::parse(&money.amount().to_string(), currency).unwrap();
                prop_assert_eq!(reparsed, money);
            }
        }
    }
}
