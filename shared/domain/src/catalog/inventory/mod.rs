//! Stock rules for one SKU: `available = on_hand - reserved`, never negative.
//!
//! In D1 the same rules are enforced by CHECK constraints inside the batch that changes stock
//! (see `schema/`); this model states them once, drives the in-memory store and is
//! property-tested for conservation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::kernel::ids::Sku;

/// A SKU with less stock than a request needs: the one shape of every "not enough stock" answer
/// (a cart line, a checkout, an admin's removal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shortage {
    pub sku: Sku,
    /// Units the request needed.
    pub requested: u32,
    /// Units available to it.
    pub available: i64,
}

/// The most units one adjustment may add or remove, and the highest low-stock threshold.
pub const MAX_ADJUSTMENT: i64 = 1_000_000;
pub const MAX_LOW_THRESHOLD: i64 = 1_000_000;
/// The longest reason an adjustment may give, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// A manual stock change: non-zero, at most [`MAX_ADJUSTMENT`] units either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i64);

impl StockDelta {
    pub fn parse(delta: i64) -> Option<Self> {
        (delta != 0 && delta.unsigned_abs() <= MAX_ADJUSTMENT.unsigned_abs())
            .then_some(StockDelta(delta))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Why stock was adjusted: 1 to [`MAX_REASON_CHARS`] characters after trimming, without
/// control or bidirectional-override characters (it is shown in the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentReason(String);

impl AdjustmentReason {
    pub fn parse(reason: &str) -> Option<Self> {
        let reason = reason.trim();
        let length = reason.chars().count();
        ((1..=MAX_REASON_CHARS).contains(&length)
            && !crate::kernel::contact::has_unsafe_characters(reason))
        .then(|| AdjustmentReason(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The available level at or below which a SKU is low on stock (`inventory.low`): 0 to
/// [`MAX_LOW_THRESHOLD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowThreshold(i64);

impl LowThreshold {
    pub fn parse(threshold: i64) -> Option<Self> {
        (0..=MAX_LOW_THRESHOLD)
            .contains(&threshold)
            .then_some(LowThreshold(threshold))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The most of a SKU's stock that unpaid orders may hold at once, as a share of what is on
/// hand, in basis points (1 to 10,000): a bound on hoarding that no number of clients, addresses
/// or emails escapes, since it counts every unpaid order together. The cap is rounded up, so a
/// SKU with any stock can always be held by one order of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldShare(u32);

impl HoldShare {
    pub const WHOLE: HoldShare = HoldShare(10_000);

    /// A share in basis points, 1 to 10,000.
    pub fn from_basis_points(points: u32) -> Option<Self> {
        (1..=10_000).contains(&points).then_some(HoldShare(points))
    }

    pub fn basis_points(self) -> u32 {
        self.0
    }

    /// How many units unpaid orders may hold of a SKU with `on_hand` units.
    pub fn cap(self, on_hand: i64) -> i64 {
        let on_hand = on_hand.max(0);
        (on_hand.saturating_mul(i64::from(self.0)) + 9_999) / 10_000
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stock {
    on_hand: i64,
    reserved: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockError {
    NotPositive,
    /// Not enough available to reserve (or to take away by adjustment).
    Short {
        available: i64,
    },
    /// Releasing or selling more than is reserved.
    NotReserved {
        reserved: i64,
    },
}

impl Stock {
    pub fn new(on_hand: i64, reserved: i64) -> Option<Self> {
        (0 <= reserved && reserved <= on_hand).then_some(Stock { on_hand, reserved })
    }

    pub fn on_hand(&self) -> i64 {
        self.on_hand
    }

    pub fn reserved(&self) -> i64 {
        self.reserved
    }

    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Hold units for an unpaid order.
    pub fn reserve(&mut self, quantity: i64) -> Result<(), StockError> {
        positive(quantity)?;
        if quantity > self.available() {
            return Err(StockError::Short {
                available: self.available(),
            });
        }
        self.reserved += quantity;
        Ok(())
    }

    /// Whether what unpaid orders hold is within `share` of what is on hand.
    pub fn within(&self, share: HoldShare) -> bool {
        self.reserved <= share.cap(self.on_hand)
    }

    /// Give held units back (order cancelled or expired before payment).
    pub fn release(&mut self, quantity: i64) -> Result<(), StockError> {
        positive(quantity)?;
        if quantity > self.reserved {
            return Err(StockError::NotReserved {
                reserved: self.reserved,
            });
        }
        self.reserved -= quantity;
        Ok(())
    }

    /// Payment captured: held units leave the shelf.
    pub fn sell(&mut self, quantity: i64) -> Result<(), StockError> {
        positive(quantity)?;
        if quantity > self.reserved {
            return Err(StockError::NotReserved {
                reserved: self.reserved,
            });
        }
        self.reserved -= quantity;
        self.on_hand -= quantity;
        Ok(())
    }

    /// Sold units come back (a paid order cancelled, or a return).
    pub fn restock(&mut self, quantity: i64) -> Result<(), StockError> {
        positive(quantity)?;
        self.on_hand += quantity;
        Ok(())
    }

    /// A counted correction by the merchant; cannot take away reserved units.
    pub fn adjust(&mut self, delta: i64) -> Result<(), StockError> {
        if delta == 0 {
            return Err(StockError::NotPositive);
        }
        if delta < 0 && -delta > self.available() {
            return Err(StockError::Short {
                available: self.available(),
            });
        }
        self.on_hand += delta;
        Ok(())
    }
}

fn positive(quantity: i64) -> Result<(), StockError> {
    if quantity > 0 {
        Ok(())
    } else {
        Err(StockError::NotPositive)
    }
}

/// Did availability just fall to or below the low-stock threshold?
pub fn crossed_low(before: i64, after: i64, threshold: i64) -> bool {
    before > threshold && after <= threshold
}

/// Quantities per SKU, lines of the same SKU summed (a reservation is per SKU).
pub fn sum_by_sku<'a>(lines: impl IntoIterator<Item = (&'a Sku, u32)>) -> Vec<(Sku, u32)> {
    let mut totals: BTreeMap<&Sku, u32> = BTreeMap::new();
    for (sku, quantity) in lines {
        let total = totals.entry(sku).or_insert(0);
        *total = total.saturating_add(quantity);
    }
    totals.into_iter().map(|(s, q)| (s.clone(), q)).collect()
}

#[cfg(test)]
mod tests;
