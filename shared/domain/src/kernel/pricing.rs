//! Totals of a list of priced lines: subtotal, discount, tax and grand total, per line and in
//! all, in one currency. Tax is computed once on the taxable total, rounded with the
//! currency's rule, then split across lines by largest remainder, so lines always sum to the
//! total and no minor unit is lost or invented.

use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::kernel::money::{allocate, Currency, Money};

/// A tax rate as a fraction (`0.2` is 20 %), between 0 and 1 with at most 6 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxRate(Decimal);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTaxRate;

impl fmt::Display for InvalidTaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tax rate is a decimal fraction between 0 and 1 with at most 6 decimals")
    }
}

impl std::error::Error for InvalidTaxRate {}

impl TaxRate {
    pub const ZERO: TaxRate = TaxRate(Decimal::ZERO);

    pub fn parse(text: &str) -> Result<Self, InvalidTaxRate> {
        let rate = Decimal::from_str_exact(text.trim()).map_err(|_| InvalidTaxRate)?;
        TaxRate::new(rate)
    }

    pub fn new(rate: Decimal) -> Result<Self, InvalidTaxRate> {
        if rate < Decimal::ZERO || rate > Decimal::ONE || rate.normalize().scale() > 6 {
            return Err(InvalidTaxRate);
        }
        Ok(TaxRate(rate))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amounts {
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub grand_total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingError;

/// Price `lines` of `(unit price, quantity)`. Fails only on overflow (far beyond any cart).
pub fn price_lines(
    currency: Currency,
    lines: &[(Money, u32)],
    tax_rate: TaxRate,
) -> Result<(Vec<Amounts>, Totals), PricingError> {
    let zero = Money::zero(currency);
    let mut subtotals = Vec::with_capacity(lines.len());
    for (unit, quantity) in lines {
        if unit.currency() != currency {
            return Err(PricingError);
        }
        subtotals.push(unit.checked_mul(*quantity).ok_or(PricingError)?);
    }
    let subtotal = subtotals
        .iter()
        .try_fold(zero, |sum, s| sum.checked_add(*s))
        .ok_or(PricingError)?;
    // Discounts arrive with coupons; until then every discount is zero.
    let discount = zero;
    let taxable = subtotal.checked_sub(discount).ok_or(PricingError)?;
    let tax =
        Money::rounded(taxable.amount() * tax_rate.get(), currency).map_err(|_| PricingError)?;
    let weights: Vec<i64> = subtotals.iter().map(|s| s.minor_units()).collect();
    let line_taxes = allocate(tax.minor_units(), &weights);
    let mut amounts = Vec::with_capacity(lines.len());
    for (line_subtotal, line_tax) in subtotals.iter().zip(line_taxes) {
        let line_tax = Money::from_minor(line_tax, currency).map_err(|_| PricingError)?;
        let total = line_subtotal
            .checked_sub(zero)
            .and_then(|t| t.checked_add(line_tax))
            .ok_or(PricingError)?;
        amounts.push(Amounts {
            subtotal: *line_subtotal,
            discount: zero,
            tax: line_tax,
            total,
        });
    }
    let grand_total = taxable.checked_add(tax).ok_or(PricingError)?;
    Ok((
        amounts,
        Totals {
            subtotal,
            discount,
            tax,
            grand_total,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_tax_so_lines_sum_to_total() {
        let eur = |s: &str| Money::parse(s, Currency::Eur).unwrap();
        let rate = TaxRate::parse("0.19").unwrap();
        let (lines, totals) = price_lines(
            Currency::Eur,
            &[(eur("0.10"), 1), (eur("0.10"), 1), (eur("0.10"), 1)],
            rate,
        )
        .unwrap();
        // 0.30 * 0.19 = 0.057 -> 0.06, split 2/2/2 cents.
        assert_eq!(totals.tax, eur("0.06"));
        assert_eq!(totals.grand_total, eur("0.36"));
        let line_tax: i64 = lines.iter().map(|l| l.tax.minor_units()).sum();
        assert_eq!(line_tax, 6);
    }

    #[test]
    fn zero_digit_currency() {
        let yen = |s: &str| Money::parse(s, Currency::Jpy).unwrap();
        let (_, totals) = price_lines(
            Currency::Jpy,
            &[(yen("1999"), 3)],
            TaxRate::parse("0.1").unwrap(),
        )
        .unwrap();
        assert_eq!(totals.subtotal, yen("5997"));
        assert_eq!(totals.tax, yen("600")); // 599.7 rounds up
        assert_eq!(totals.grand_total, yen("6597"));
    }

    #[test]
    fn tax_rate_bounds() {
        assert!(TaxRate::parse("0").is_ok());
        assert!(TaxRate::parse("1").is_ok());
        assert!(TaxRate::parse("1.01").is_err());
        assert!(TaxRate::parse("-0.1").is_err());
        assert!(TaxRate::parse("0.1234567").is_err());
        assert!(TaxRate::parse("abc").is_err());
    }

    fn currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn cart_totals_equal_the_sum_of_lines(
            currency in currency(),
            lines in proptest::collection::vec((0i64..5_000_000, 1u32..=99), 0..30),
            rate_ppm in 0i64..=1_000_000,
        ) {
            let rate = TaxRate::new(Decimal::new(rate_ppm, 6)).unwrap();
            let priced: Vec<(Money, u32)> = lines
                .iter()
                .map(|(minor, q)| (Money::from_minor(*minor, currency).unwrap(), *q))
                .collect();
            let (amounts, totals) = price_lines(currency, &priced, rate).unwrap();
            let sum = |f: &dyn Fn(&Amounts) -> i64| amounts.iter().map(f).sum::<i64>();
            prop_assert_eq!(sum(&|a| a.subtotal.minor_units()), totals.subtotal.minor_units());
            prop_assert_eq!(sum(&|a| a.tax.minor_units()), totals.tax.minor_units());
            prop_assert_eq!(sum(&|a| a.total.minor_units()), totals.grand_total.minor_units());
            prop_assert_eq!(
                totals.grand_total.minor_units(),
                totals.subtotal.minor_units() - totals.discount.minor_units() + totals.tax.minor_units()
            );
            // Rounding moved the tax by at most half a minor unit from the exact value.
            let exact = Decimal::from(totals.subtotal.minor_units()) * rate.get();
            let diff = (Decimal::from(totals.tax.minor_units()) - exact).abs();
            prop_assert!(diff <= Decimal::new(5, 1), "diff {}", diff);
            for (a, (unit, q)) in amounts.iter().zip(&priced) {
                prop_assert_eq!(a.subtotal.minor_units(), unit.minor_units() * i64::from(*q));
                prop_assert_eq!(a.subtotal.currency(), currency);
            }
        }
    }
}
