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
mod tests {

    #[test]
    fn the_hold_cap_is_a_rounded_up_share_of_what_is_on_hand() {
        let half = HoldShare::from_basis_points(5_000).unwrap();
        assert_eq!(half.cap(10), 5);
        assert_eq!(half.cap(1), 1, "one unit can always be held");
        assert_eq!(half.cap(3), 2);
        assert_eq!(half.cap(0), 0);
        assert_eq!(HoldShare::WHOLE.cap(7), 7);
        assert!(HoldShare::from_basis_points(0).is_none());
        assert!(HoldShare::from_basis_points(10_001).is_none());
        let mut stock = Stock::new(10, 0).unwrap();
        stock.reserve(5).unwrap();
        assert!(stock.within(half));
        stock.reserve(1).unwrap();
        assert!(!stock.within(half));
    }

    proptest::proptest! {
        #[test]
        fn the_hold_cap_never_exceeds_the_stock_and_lets_one_unit_be_held(
            on_hand in 0i64..1_000_000, points in 1u32..=10_000
        ) {
            let share = HoldShare::from_basis_points(points).unwrap();
            let cap = share.cap(on_hand);
            proptest::prop_assert!(cap <= on_hand);
            proptest::prop_assert!(on_hand == 0 || cap >= 1);
            proptest::prop_assert!(cap * 10_000 >= on_hand * i64::from(points));
        }
    }
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_adjustment_inputs() {
        assert_eq!(StockDelta::parse(-5).map(StockDelta::get), Some(-5));
        assert_eq!(
            StockDelta::parse(1_000_000).map(StockDelta::get),
            Some(1_000_000)
        );
        for bad in [0, 1_000_001, -1_000_001, i64::MIN] {
            assert_eq!(StockDelta::parse(bad), None, "{bad}");
        }
        assert_eq!(
            AdjustmentReason::parse("  recount ").unwrap().as_str(),
            "recount"
        );
        assert!(AdjustmentReason::parse(&"é".repeat(200)).is_some());
        for bad in ["", "   ", "a\u{202E}b", "line\nbreak"] {
            assert_eq!(AdjustmentReason::parse(bad), None, "{bad:?}");
        }
        assert!(AdjustmentReason::parse(&"x".repeat(201)).is_none());
        assert_eq!(LowThreshold::parse(0).map(LowThreshold::get), Some(0));
        assert!(LowThreshold::parse(-1).is_none());
        assert!(LowThreshold::parse(1_000_001).is_none());
    }

    #[test]
    fn reserve_release_sell() {
        let mut s = Stock::new(10, 0).unwrap();
        s.reserve(4).unwrap();
        assert_eq!(s.available(), 6);
        assert_eq!(s.reserve(7), Err(StockError::Short { available: 6 }));
        s.sell(3).unwrap();
        assert_eq!((s.on_hand(), s.reserved()), (7, 1));
        s.release(1).unwrap();
        assert_eq!(s.release(1), Err(StockError::NotReserved { reserved: 0 }));
        assert_eq!(s.adjust(-8), Err(StockError::Short { available: 7 }));
        assert!(Stock::new(1, 2).is_none());
    }

    #[test]
    fn low_stock_crossing() {
        assert!(crossed_low(6, 5, 5));
        assert!(!crossed_low(5, 4, 5));
        assert!(!crossed_low(9, 6, 5));
    }

    #[test]
    fn sums_lines_of_the_same_sku() {
        let a = Sku::parse("A").unwrap();
        let b = Sku::parse("B").unwrap();
        assert_eq!(
            sum_by_sku([(&b, 1), (&a, 2), (&b, 3)]),
            vec![(a, 2), (b, 4)]
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(i64),
        Release(i64),
        Sell(i64),
        Restock(i64),
        Adjust(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (-2i64..30).prop_map(Op::Reserve),
            (-2i64..30).prop_map(Op::Release),
            (-2i64..30).prop_map(Op::Sell),
            (-2i64..30).prop_map(Op::Restock),
            (-40i64..40).prop_map(Op::Adjust),
        ]
    }

    proptest! {
        #[test]
        fn stock_is_conserved_and_never_negative(initial in 0i64..100, ops in proptest::collection::vec(op(), 0..80)) {
            let mut stock = Stock::new(initial, 0).unwrap();
            let (mut adjusted, mut restocked, mut sold) = (0i64, 0i64, 0i64);
            for op in ops {
                let before = stock;
                let result = match op {
                    Op::Reserve(q) => stock.reserve(q),
                    Op::Release(q) => stock.release(q),
                    Op::Sell(q) => stock.sell(q).map(|()| sold += q),
                    Op::Restock(q) => stock.restock(q).map(|()| restocked += q),
                    Op::Adjust(d) => stock.adjust(d).map(|()| adjusted += d),
                };
                if result.is_err() {
                    prop_assert_eq!(stock, before, "a refused operation changes nothing");
                }
                prop_assert!(stock.available() >= 0);
                prop_assert!(stock.reserved() >= 0);
                prop_assert_eq!(stock.on_hand(), initial + adjusted + restocked - sold);
            }
        }
    }

    #[test]
    fn an_adjustment_counts_units_in_or_out_but_never_takes_held_ones() {
        let mut stock = Stock::new(10, 4).unwrap();
        stock.adjust(5).unwrap();
        assert_eq!(
            (stock.on_hand(), stock.reserved(), stock.available()),
            (15, 4, 11)
        );
        stock.adjust(-11).unwrap();
        assert_eq!((stock.on_hand(), stock.available()), (4, 0));
        assert_eq!(stock.adjust(-1), Err(StockError::Short { available: 0 }));
        assert_eq!(stock.adjust(0), Err(StockError::NotPositive));
        assert_eq!(stock, Stock::new(4, 4).unwrap(), "refusals change nothing");
        // The held units are still there to sell.
        stock.sell(4).unwrap();
        assert_eq!((stock.on_hand(), stock.reserved()), (0, 0));
    }
}
