use super::*;
use proptest::prelude::*;

fn eur(amount: &str) -> Money {
    Money::parse(amount, Currency::Eur).unwrap()
}

#[test]
fn points_are_the_amount_times_the_rate_rounded_down() {
    let policy = MembershipPolicy::parse(DEFAULT_RATES, DEFAULT_TIERS).unwrap();
    assert_eq!(policy.points_for(eur("19.99")), 19);
    assert_eq!(
        policy.points_for(Money::parse("2500", Currency::Jpy).unwrap()),
        25
    );
    assert_eq!(
        policy.points_for(Money::parse("1.500", Currency::Kwd).unwrap()),
        4
    );
    let none = MembershipPolicy::parse("EUR:1", "").unwrap();
    assert_eq!(
        none.points_for(Money::parse("100.00", Currency::Usd).unwrap()),
        0
    );
}

#[test]
fn tiers_follow_the_spend_in_any_currency() {
    let policy = MembershipPolicy::parse("EUR:1", "silver=EUR 250,USD 300;gold=EUR 1000").unwrap();
    let s = policy.standing(&[]);
    assert_eq!(s.tier, None);
    assert_eq!(s.next_tier.as_ref().unwrap().name, "silver");
    let s = policy.standing(&[eur("249.99")]);
    assert_eq!(s.tier, None);
    assert_eq!(s.next_tier.unwrap().needs[0], eur("0.01"));
    let s = policy.standing(&[eur("10.00"), Money::parse("300.00", Currency::Usd).unwrap()]);
    assert_eq!(s.tier.as_deref(), Some("silver"), "one currency is enough");
    assert_eq!(s.next_tier.unwrap().needs, vec![eur("990.00")]);
    let s = policy.standing(&[eur("1000.00")]);
    assert_eq!((s.tier.as_deref(), s.next_tier), (Some("gold"), None));
}

#[test]
fn bad_settings_are_refused() {
    for (rates, tiers) in [
        ("EUR", ""),
        ("EUR:-1", ""),
        ("XXX:1", ""),
        ("", "silver"),
        ("", "Silver=EUR 1"),
        ("", "silver=EUR 0"),
        ("", "silver=EUR 1.001"),
        ("", "gold=EUR 100;silver=EUR 50"),
    ] {
        assert!(
            MembershipPolicy::parse(rates, tiers).is_err(),
            "{rates} / {tiers}"
        );
    }
}

#[test]
fn refunds_take_back_in_proportion() {
    assert_eq!(taken_back(100, 10_000, 2_500), 25);
    assert_eq!(taken_back(19, 1_999, 1_000), 9);
    assert_eq!(taken_back(19, 1_999, 1_999), 19, "a full refund takes all");
    assert_eq!(taken_back(19, 1_999, 5_000), 19, "never more than earned");
    assert_eq!(taken_back(19, 0, 0), 0);
}

proptest! {
    /// Whatever is recorded and refused, the balance is the sum of the entries and never
    /// below zero.
    #[test]
    fn the_ledger_never_goes_negative(changes in proptest::collection::vec(-500i64..500, 0..100)) {
        let mut ledger = Ledger::default();
        for change in changes {
            let before = ledger.clone();
            match ledger.record(change) {
                Ok(()) => prop_assert_eq!(ledger.entries().len(), before.entries().len() + 1),
                Err(Overdraft) => {
                    prop_assert!(before.balance() + change < 0);
                    prop_assert_eq!(&ledger, &before);
                }
            }
            prop_assert!(ledger.balance() >= 0);
            prop_assert_eq!(ledger.balance(), ledger.entries().iter().sum::<i64>());
        }
    }

    /// Partial refunds, each taking what is due by then less what was taken, add up to the
    /// proportion of the whole refunded amount, never more than was earned, and the ledger
    /// of earning and taking back stays non-negative.
    #[test]
    fn partial_refunds_add_up(
        total in 1i64..10_000_000,
        earned in 0u64..100_000,
        parts in proptest::collection::vec(1i64..5_000_000, 0..8),
    ) {
        let mut ledger = Ledger::default();
        ledger.record(i64::try_from(earned).unwrap()).unwrap();
        let (mut refunded, mut taken) = (0i64, 0u64);
        for part in parts {
            refunded = (refunded + part).min(total);
            let due = taken_back(earned, total, refunded).saturating_sub(taken);
            ledger.record(-i64::try_from(due).unwrap()).unwrap();
            taken += due;
        }
        prop_assert_eq!(taken, taken_back(earned, total, refunded));
        prop_assert!(taken <= earned);
        prop_assert_eq!(ledger.balance(), i64::try_from(earned - taken).unwrap());
    }
}

#[test]
fn the_ledger_refuses_an_overdraft_or_an_overflow_and_records_nothing() {
    let mut ledger = Ledger::default();
    ledger.record(25).unwrap();
    ledger.record(-10).unwrap();
    assert_eq!(ledger.record(-16), Err(Overdraft));
    ledger.record(i64::MAX - 15).unwrap();
    assert_eq!(ledger.record(1), Err(Overdraft), "no wrap-around");
    assert_eq!(ledger.entries(), [25, -10, i64::MAX - 15]);
    assert_eq!(ledger.balance(), i64::MAX);
}
