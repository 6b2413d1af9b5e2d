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
