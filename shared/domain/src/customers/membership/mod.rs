//! Membership: points earned on paid orders, taken back in proportion to refunds, and tiers by
//! what a customer spent over the last twelve months.
//!
//! Every change of a balance is an entry of the customer's ledger, and the balance is the sum of
//! the entries; it never goes below zero (in D1, a CHECK on the balance a trigger keeps, so a
//! batch that would overdraw aborts). [`Ledger`] is the same rule in memory, property-tested.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::kernel::money::{Currency, Money};

/// A year of spend decides the tier.
pub const TIER_WINDOW: crate::kernel::time::Duration =
    crate::kernel::time::Duration::from_days(365);

/// Points per major unit (one euro, one yen) of a paid order, per currency, and the tiers.
/// The default earns nothing and has no tiers; configuration starts from [`DEFAULT_RATES`] and
/// [`DEFAULT_TIERS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipPolicy {
    rates: BTreeMap<Currency, Decimal>,
    /// Lowest first.
    tiers: Vec<Tier>,
}

/// A tier, reached by spending at least one of its thresholds (in that currency) within
/// [`TIER_WINDOW`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub thresholds: Vec<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const DEFAULT_RATES: &str = "EUR:1,USD:1,GBP:1,JPY:0.01,KWD:3";
pub const DEFAULT_TIERS: &str = "silver=EUR 250,USD 300,GBP 220,JPY 40000,KWD 80;\
gold=EUR 1000,USD 1200,GBP 900,JPY 160000,KWD 320";

impl MembershipPolicy {
    /// `rates`: `EUR:1,JPY:0.01` (points per major unit; a currency not named earns nothing).
    /// `tiers`: `silver=EUR 250,USD 300;gold=EUR 1000,USD 1200`, lowest first, each higher in
    /// every currency it names than the tier before.
    pub fn parse(rates: &str, tiers: &str) -> Result<Self, PolicyError> {
        let bad = |what: String| PolicyError(what);
        let mut parsed_rates = BTreeMap::new();
        for item in rates.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (code, rate) = item
                .split_once(':')
                .ok_or_else(|| bad(format!("a points rate is CURRENCY:rate, not {item:?}")))?;
            let currency: Currency = code
                .trim()
                .parse()
                .map_err(|_| bad(format!("unknown currency {code:?}")))?;
            let rate = Decimal::from_str_exact(rate.trim())
                .ok()
                .filter(|r| !r.is_sign_negative() && *r <= Decimal::from(1000))
                .ok_or_else(|| bad(format!("a points rate is 0 to 1000, not {rate:?}")))?;
            parsed_rates.insert(currency, rate);
        }
        let mut parsed_tiers: Vec<Tier> = Vec::new();
        for item in tiers.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, thresholds) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("a tier is name=CUR amount,..., not {item:?}")))?;
            let name = name.trim();
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(bad(format!("a tier name is 1-32 of a-z, 0-9, _: {name:?}")));
            }
            let mut money = Vec::new();
            for threshold in thresholds.split(',').map(str::trim) {
                let (code, amount) = threshold
                    .split_once(' ')
                    .ok_or_else(|| bad(format!("a threshold is CUR amount: {threshold:?}")))?;
                let currency: Currency = code
                    .parse()
                    .map_err(|_| bad(format!("unknown currency {code:?}")))?;
                let amount = Money::parse(amount.trim(), currency)
                    .ok()
                    .filter(|m| m.amount() > Decimal::ZERO)
                    .ok_or_else(|| {
                        bad(format!("a threshold is a positive amount: {threshold:?}"))
                    })?;
                money.push(amount);
            }
            if let Some(previous) = parsed_tiers.last() {
                let rises = money.iter().all(|m| {
                    previous
                        .threshold(m.currency())
                        .is_none_or(|p| p.amount() < m.amount())
                });
                if !rises {
                    return Err(bad(format!("tier {name} must be above {}", previous.name)));
                }
            }
            parsed_tiers.push(Tier {
                name: name.to_owned(),
                thresholds: money,
            });
        }
        Ok(MembershipPolicy {
            rates: parsed_rates,
            tiers: parsed_tiers,
        })
    }

    /// The points a paid order earns: its amount times the currency's rate, rounded down.
    pub fn points_for(&self, paid: Money) -> u64 {
        let rate = self
            .rates
            .get(&paid.currency())
            .copied()
            .unwrap_or_default();
        paid.amount()
            .checked_mul(rate)
            .map(|p| p.round_dp_with_strategy(0, RoundingStrategy::ToZero))
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(0)
    }

    /// Where `spend` (per currency, over [`TIER_WINDOW`]) puts a customer, and what the next
    /// tier needs.
    pub fn standing(&self, spend: &[Money]) -> Standing {
        let spent = |currency: Currency| {
            spend
                .iter()
                .filter(|m| m.currency() == currency)
                .map(Money::amount)
                .sum::<Decimal>()
        };
        let reached = |tier: &Tier| {
            tier.thresholds
                .iter()
                .any(|t| spent(t.currency()) >= t.amount())
        };
        let current = self.tiers.iter().rposition(reached);
        let next = self
            .tiers
            .get(current.map_or(0, |i| i + 1))
            .map(|tier| NextTier {
                name: tier.name.clone(),
                needs: tier
                    .thresholds
                    .iter()
                    .filter_map(|t| Money::new(t.amount() - spent(t.currency()), t.currency()).ok())
                    .collect(),
            });
        Standing {
            tier: current
                .and_then(|i| self.tiers.get(i))
                .map(|t| t.name.clone()),
            next_tier: next,
        }
    }
}

impl Tier {
    fn threshold(&self, currency: Currency) -> Option<Money> {
        self.thresholds
            .iter()
            .copied()
            .find(|t| t.currency() == currency)
    }
}

/// A customer's tier and the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// `None`: below the first tier.
    pub tier: Option<String>,
    pub next_tier: Option<NextTier>,
}

/// The tier above, and what is left to spend for it in each currency it names (any one is
/// enough).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextTier {
    pub name: String,
    pub needs: Vec<Money>,
}

/// The points of an order's `earned` that its refunds take back once `refunded_minor` of its
/// `total_minor` is refunded: in proportion, rounded down, never more than were earned. Applied
/// cumulatively (each refund takes what is due by now less what was taken), so partial refunds
/// in any order and number add up to exactly this (schema/0023 does this inside the refund's
/// statement).
pub fn taken_back(earned: u64, total_minor: i64, refunded_minor: i64) -> u64 {
    if total_minor <= 0 || refunded_minor <= 0 {
        return 0;
    }
    let refunded = u128::try_from(refunded_minor.min(total_minor)).unwrap_or(0);
    let total = u128::try_from(total_minor).unwrap_or(1);
    u64::try_from(u128::from(earned) * refunded / total).unwrap_or(earned)
}

/// A points ledger in memory: every change an entry, the balance their sum, never below zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    entries: Vec<i64>,
    balance: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdraft;

impl Ledger {
    /// Record a change; refused (nothing recorded) when it would take the balance below zero.
    pub fn record(&mut self, points: i64) -> Result<(), Overdraft> {
        let balance = self.balance.checked_add(points).ok_or(Overdraft)?;
        if balance < 0 {
            return Err(Overdraft);
        }
        self.entries.push(points);
        self.balance = balance;
        Ok(())
    }

    pub fn balance(&self) -> i64 {
        self.balance
    }

    pub fn entries(&self) -> &[i64] {
        &self.entries
    }
}

#[cfg(test)]
mod tests;
