use super::*;

#[test]
fn a_shipping_choice_names_a_destination_and_a_method_code() {
    let choice = ShippingChoice::parse(" nl ", "1012 ab", " express ").unwrap();
    assert_eq!(choice.destination.country(), "NL");
    assert_eq!(choice.method, "express");
    let codes = |issues: Vec<crate::kernel::contact::FieldIssue>| -> Vec<&'static str> {
        issues.into_iter().map(|i| i.code).collect()
    };
    assert_eq!(
        codes(ShippingChoice::parse("Netherlands", "", "").unwrap_err()),
        ["invalid_country", "invalid_shipping_method"]
    );
    assert_eq!(
        codes(ShippingChoice::parse("NL", "10#2", &"m".repeat(MAX_METHOD_CHARS)).unwrap_err()),
        ["invalid_postal_code"]
    );
    assert!(ShippingChoice::parse("NL", "", &"m".repeat(MAX_METHOD_CHARS + 1)).is_err());
}
use crate::testing::{InMemoryCarts, InMemoryCatalog, SequentialIds};
use futures_executor::block_on;
use proptest::prelude::*;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn catalog() -> InMemoryCatalog {
    let c = InMemoryCatalog::with_sku(
        "TEE-M",
        &[("19.99", Currency::Eur), ("2500", Currency::Jpy)],
        10,
    );
    c.add_sku("MUG", &[("8.50", Currency::Eur)], 3);
    c
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn qty(n: i64) -> Quantity {
    Quantity::new(n).unwrap()
}

struct World {
    catalog: InMemoryCatalog,
    ids: SequentialIds,
    policy: CartPolicy,
    zones: Zones,
}

impl World {
    fn new() -> Self {
        World {
            catalog: catalog(),
            ids: SequentialIds::default(),
            policy: CartPolicy::default(),
            zones: crate::testing::test_zones(),
        }
    }
}

fn service<'a>(w: &'a World, repo: &'a InMemoryCarts<'a>) -> Carts<'a, InMemoryCarts<'a>, Zones> {
    Carts {
        repo,
        shipping: &w.zones,
        ids: &w.ids,
        policy: &w.policy,
        customer: None,
    }
}

fn customer(n: u32) -> CustomerId {
    CustomerId::parse(&format!("cus_{n:032x}")).unwrap()
}

#[test]
fn a_customers_cart_answers_only_to_them() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let (ada, bob) = (customer(1), customer(2));
    let as_ada = Carts {
        customer: Some(&ada),
        ..service(&w, &repo)
    };
    let as_bob = Carts {
        customer: Some(&bob),
        ..service(&w, &repo)
    };
    let as_guest = service(&w, &repo);
    let none = Precondition::None;
    block_on(async {
        let cart = as_ada.create(Currency::Eur, T0).await.unwrap();
        assert_eq!(repo.carts.borrow()[&cart.id].owner, Some(ada.clone()));
        as_ada
            .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        for other in [&as_bob, &as_guest] {
            assert_eq!(other.get(&cart.id, T0).await, Err(CartError::NotFound));
            assert_eq!(
                other
                    .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
                    .await,
                Err(CartError::NotFound)
            );
            assert_eq!(
                other.clear(&cart.id, &none, T0).await,
                Err(CartError::NotFound)
            );
        }
        assert_eq!(as_ada.get(&cart.id, T0).await.unwrap().item_count, 1);
        // A guest's cart is anyone's who holds its id, signed in or not.
        let guest = as_guest.create(Currency::Eur, T0).await.unwrap();
        assert!(as_bob.get(&guest.id, T0).await.is_ok());
    });
}

#[test]
fn signing_in_merges_the_guest_cart_capped_or_adopts_it() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let ada = customer(1);
    let as_ada = Carts {
        customer: Some(&ada),
        ..service(&w, &repo)
    };
    let as_guest = service(&w, &repo);
    let none = Precondition::None;
    block_on(async {
        // No cart of theirs yet: the guest cart becomes theirs.
        let first = as_guest.create(Currency::Eur, T0).await.unwrap();
        as_guest
            .add_item(&first.id, &none, &sku("TEE-M"), qty(6), T0)
            .await
            .unwrap();
        let adopted = as_ada.sign_in(Some(&first.id), T0).await.unwrap().unwrap();
        assert_eq!(adopted.id, first.id);
        assert_eq!(repo.carts.borrow()[&first.id].owner, Some(ada.clone()));
        assert_eq!(as_guest.get(&first.id, T0).await, Err(CartError::NotFound));

        // Later, as a guest again: 7 more of TEE-M (10 available) and a MUG.
        let later = T0.plus(Duration::from_secs(60));
        let second = as_guest.create(Currency::Eur, later).await.unwrap();
        as_guest
            .add_item(&second.id, &none, &sku("TEE-M"), qty(7), later)
            .await
            .unwrap();
        as_guest
            .add_item(&second.id, &none, &sku("MUG"), qty(2), later)
            .await
            .unwrap();
        let merged = as_ada
            .sign_in(Some(&second.id), later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(merged.id, first.id, "merged into their cart");
        let quantities: Vec<_> = merged
            .lines
            .iter()
            .map(|l| (l.sku.as_str().to_owned(), l.quantity))
            .collect();
        assert_eq!(
            quantities,
            vec![("TEE-M".to_owned(), 10), ("MUG".to_owned(), 2)],
            "6 + 7 capped at the 10 available"
        );
        assert!(
            !repo.carts.borrow().contains_key(&second.id),
            "the guest cart is gone"
        );

        // Signing in without a guest cart (another device) finds their cart.
        let found = as_ada.sign_in(None, later).await.unwrap().unwrap();
        assert_eq!(found.id, first.id);
        // Another currency is not merged: that guest cart becomes theirs as it is.
        let yen = as_guest.create(Currency::Jpy, later).await.unwrap();
        let kept = as_ada.sign_in(Some(&yen.id), later).await.unwrap().unwrap();
        assert_eq!(kept.id, yen.id);
        // Nobody signed in: nothing to do.
        assert_eq!(as_guest.sign_in(Some(&yen.id), later).await, Ok(None));
    });
}

#[test]
fn absorbing_respects_the_line_limits() {
    let w = World::new();
    let policy = CartPolicy {
        max_line_quantity: 5,
        max_lines: 1,
        ..CartPolicy::default()
    };
    let offers: BTreeMap<Sku, CurrentOffer> = [("TEE-M", 10), ("MUG", 3)]
        .into_iter()
        .map(|(s, available)| {
            let offer = w.catalog.current(&sku(s), Currency::Eur).unwrap();
            (sku(s), CurrentOffer { available, ..offer })
        })
        .collect();
    let mut mine = Cart::new(CartId::mint(&w.ids), Currency::Eur, T0, &policy);
    let mut guest = Cart::new(CartId::mint(&w.ids), Currency::Eur, T0, &policy);
    let offer = |s: &str| {
        block_on(crate::catalog::CatalogReader::offer(
            &w.catalog,
            &sku(s),
            Currency::Eur,
        ))
        .unwrap()
        .unwrap()
    };
    let (tee, mug) = (offer("TEE-M"), offer("MUG"));
    mine.add(&tee, qty(4), LineId::mint(&w.ids), &policy, T0)
        .unwrap();
    guest
        .add(&tee, qty(3), LineId::mint(&w.ids), &policy, T0)
        .unwrap();
    guest
        .add(&mug, qty(1), LineId::mint(&w.ids), &policy, T0)
        .ok();
    let version = mine.version;
    mine.absorb(&guest, &offers, &policy, T0).unwrap();
    assert_eq!(mine.lines.len(), 1, "no room for a second line");
    assert_eq!(mine.lines[0].quantity.get(), 5, "4 + 3 capped at 5 a line");
    assert_eq!(mine.version, version + 1);
}

#[test]
fn lifecycle_and_totals() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        assert_eq!(cart.totals.grand_total.amount().to_string(), "0.00");
        let none = Precondition::None;
        carts
            .add_item(&cart.id, &none, &sku("TEE-M"), qty(2), T0)
            .await
            .unwrap();
        let v = carts
            .add_item(&cart.id, &none, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        assert_eq!(v.lines.len(), 1, "same SKU grows the line");
        assert_eq!(v.lines[0].quantity, 3);
        let v = carts
            .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        assert_eq!(v.totals.subtotal.amount().to_string(), "68.47");
        assert_eq!(v.item_count, 4);
        let mug = v.lines[1].id.clone();
        let v = carts
            .set_quantity(&cart.id, &none, &mug, 0, T0)
            .await
            .unwrap();
        assert_eq!(v.lines.len(), 1);
        let v = carts.clear(&cart.id, &none, T0).await.unwrap();
        assert!(v.lines.is_empty());
        assert_eq!(v.etag, "\"v6\"");
    });
}

#[test]
fn chosen_shipping_enters_the_totals_and_follows_the_cart() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    let to = |country: &str, postal_code: &str, method: &str| ShippingChoice {
        destination: Destination::parse(country, postal_code).unwrap(),
        method: method.into(),
    };
    let amounts = |v: &CartView| {
        (
            v.totals.shipping.amount().to_string(),
            v.totals.grand_total.amount().to_string(),
        )
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let none = Precondition::None;
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        let id = cart.id;
        carts
            .add_item(&id, &none, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        let v = carts
            .choose_shipping(&id, &none, to("nl", "1012 ab", "standard"), T0)
            .await
            .unwrap();
        assert_eq!(amounts(&v), pair("4.90", "24.89"));
        let shipping = v.shipping.clone().unwrap();
        assert_eq!(
            (shipping.country.as_str(), shipping.postal_code.as_str()),
            ("NL", "1012AB")
        );
        assert_eq!(v.weight_grams, 250);
        assert_eq!(v.etag, "\"v3\"", "choosing shipping is a change");
        assert_eq!(carts.get(&id, T0).await.unwrap(), v, "kept");
        // Heavier than 500 g: the next weight band.
        let v = carts
            .add_item(&id, &none, &sku("MUG"), qty(2), T0)
            .await
            .unwrap();
        assert_eq!(amounts(&v), pair("6.95", "43.94"));
        // From EUR 50 on, standard is free.
        let v = carts
            .add_item(&id, &none, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        assert_eq!(amounts(&v), pair("0.00", "56.98"));
        assert!(v.shipping.unwrap().quote.unwrap().free);
        let v = carts
            .choose_shipping(&id, &none, to("DE", "", "express"), T0)
            .await
            .unwrap();
        assert_eq!(amounts(&v), pair("12.00", "68.98"));
        // The most specific area decides the zone.
        let v = carts
            .choose_shipping(&id, &none, to("NL", "1701", "standard"), T0)
            .await
            .unwrap();
        assert_eq!(amounts(&v), pair("9.90", "66.88"));
        // A method the destination's zone lacks changes nothing and names what it has.
        let before = carts.get(&id, T0).await.unwrap();
        let err = carts
            .choose_shipping(&id, &none, to("US", "22202", "express"), T0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CartError::ShippingUnavailable {
                available: vec!["standard".into()]
            }
        );
        let err = carts
            .choose_shipping(&id, &none, to("JP", "", "standard"), T0)
            .await
            .unwrap_err();
        assert_eq!(err, CartError::ShippingUnavailable { available: vec![] });
        assert_eq!(carts.get(&id, T0).await.unwrap(), before);
        // Too heavy for every band of the chosen method: kept, unpriced, out of the totals.
        let line = before.lines[0].id.clone();
        let v = carts.set_quantity(&id, &none, &line, 9, T0).await.unwrap();
        let shipping = v.shipping.clone().unwrap();
        assert_eq!((v.weight_grams, shipping.quote), (2750, None));
        assert_eq!(amounts(&v), pair("0.00", "196.91"));
        let err = carts
            .choose_shipping(&id, &none, to("NL", "1012AB", "standard"), T0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CartError::ShippingUnavailable {
                available: vec!["express".into()]
            },
            "only express takes 2.75 kg"
        );
        let v = carts.clear_shipping(&id, &none, T0).await.unwrap();
        assert_eq!(v.shipping, None);
        assert_eq!(amounts(&v), pair("0.00", "196.91"));
        // Options for a destination, cheapest first, priced for this cart.
        let (_, options) = carts
            .shipping_options(&id, &Destination::parse("NL", "").unwrap(), T0)
            .await
            .unwrap();
        let codes: Vec<&str> = options.iter().map(|q| q.code.as_str()).collect();
        assert_eq!(codes, ["express"]);
    });
}

#[test]
fn stock_and_limits_are_enforced_when_adding() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    block_on(async {
        let none = Precondition::None;
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        let err = carts
            .add_item(&cart.id, &none, &sku("MUG"), qty(4), T0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CartError::InsufficientStock {
                sku: sku("MUG"),
                requested: 4,
                available: 3
            }
        );
        let err = carts
            .add_item(&cart.id, &none, &sku("TEE-M"), qty(100), T0)
            .await
            .unwrap_err();
        assert_eq!(err, CartError::QuantityAboveLimit { max: 99 });
        let err = carts
            .add_item(&cart.id, &none, &sku("NOPE"), qty(1), T0)
            .await
            .unwrap_err();
        assert_eq!(err, CartError::UnknownSku { sku: sku("NOPE") });
        let yen = carts.create(Currency::Jpy, T0).await.unwrap();
        let err = carts
            .add_item(&yen.id, &none, &sku("MUG"), qty(1), T0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CartError::NotSoldInCurrency {
                sku: sku("MUG"),
                currency: Currency::Jpy
            }
        );
        // Nothing was written by the failures.
        assert_eq!(carts.get(&cart.id, T0).await.unwrap().etag, "\"v1\"");
    });
}

#[test]
fn price_change_is_reported_against_the_snapshot() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        carts
            .add_item(&cart.id, &Precondition::None, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        assert!(!carts.get(&cart.id, T0).await.unwrap().lines[0].price_changed);
        w.catalog.set_price("TEE-M", "17.50", Currency::Eur);
        let v = carts.get(&cart.id, T0).await.unwrap();
        assert!(v.lines[0].price_changed);
        assert_eq!(v.lines[0].unit_price.amount().to_string(), "19.99");
        assert_eq!(
            v.lines[0].current_unit_price.unwrap().amount().to_string(),
            "17.50"
        );
        assert_eq!(v.totals.subtotal.amount().to_string(), "19.99");
    });
}

#[test]
fn a_changed_quantity_or_a_refresh_takes_the_current_price() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        let v = carts
            .add_item(&cart.id, &Precondition::None, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        let line = v.lines[0].id.clone();
        w.catalog.set_price("TEE-M", "25.00", Currency::Eur);
        // Adding more of the SKU re-snapshots the line.
        let v = carts
            .add_item(&cart.id, &Precondition::None, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        assert_eq!(v.lines[0].unit_price.amount().to_string(), "25.00");
        w.catalog.set_price("TEE-M", "30.00", Currency::Eur);
        // Shrinking does too.
        let v = carts
            .set_quantity(&cart.id, &Precondition::None, &line, 1, T0)
            .await
            .unwrap();
        assert_eq!(v.lines[0].unit_price.amount().to_string(), "30.00");
        assert!(!v.lines[0].price_changed);
        // A refresh takes every current price and drops SKUs no longer sold.
        carts
            .add_item(&cart.id, &Precondition::None, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        w.catalog.set_price("TEE-M", "31.00", Currency::Eur);
        w.catalog.remove_price("MUG", Currency::Eur);
        let stale = carts.get(&cart.id, T0).await.unwrap();
        assert!(stale.lines.iter().all(|l| l.price_changed));
        let v = carts
            .refresh(&cart.id, &Precondition::None, T0)
            .await
            .unwrap();
        assert_eq!(v.lines.len(), 1);
        assert_eq!(v.lines[0].unit_price.amount().to_string(), "31.00");
        assert!(!v.lines[0].price_changed);
        // A line whose SKU is gone can be removed, not changed.
        assert_eq!(
            carts
                .add_item(&cart.id, &Precondition::None, &sku("MUG"), qty(1), T0)
                .await
                .unwrap_err(),
            CartError::NotSoldInCurrency {
                sku: sku("MUG"),
                currency: Currency::Eur
            }
        );
    });
}

#[test]
fn expiry_and_preconditions() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        let stale = Precondition::Matches(vec!["\"v0\"".into()]);
        let err = carts
            .add_item(&cart.id, &stale, &sku("MUG"), qty(1), T0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CartError::PreconditionFailed {
                current: "\"v1\"".into()
            }
        );
        let fresh = Precondition::Matches(vec![cart.etag.clone()]);
        carts
            .add_item(&cart.id, &fresh, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        let later = T0.plus(Duration::from_days(30));
        assert_eq!(
            carts.get(&cart.id, later).await.unwrap_err(),
            CartError::Expired
        );
        let missing = CartId::parse("cart_0000000000000000000000000000ffff").unwrap();
        assert_eq!(
            carts.get(&missing, T0).await.unwrap_err(),
            CartError::NotFound
        );
    });
}

#[test]
fn concurrent_writer_is_retried_without_if_match_and_412_with_it() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        repo.interleave_writers.set(1);
        let v = carts
            .add_item(&cart.id, &Precondition::None, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        assert_eq!(v.lines.len(), 1);
        repo.interleave_writers.set(1);
        let tag = Precondition::Matches(vec![v.etag.clone()]);
        let err = carts.clear(&cart.id, &tag, T0).await.unwrap_err();
        assert!(matches!(err, CartError::PreconditionFailed { .. }));
        repo.interleave_writers.set(10);
        let err = carts
            .clear(&cart.id, &Precondition::None, T0)
            .await
            .unwrap_err();
        assert_eq!(err, CartError::Contention);
    });
}

#[test]
fn storage_failure_surfaces_as_store_error() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    repo.fail.set(true);
    let err = block_on(carts.create(Currency::Eur, T0)).unwrap_err();
    assert!(matches!(err, CartError::Store(_)));
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, i64),
    Set(usize, u32),
    Remove(usize),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..2, 1i64..120).prop_map(|(s, q)| Op::Add(s, q)),
        (0usize..4, 0u32..120).prop_map(|(l, q)| Op::Set(l, q)),
        (0usize..4).prop_map(Op::Remove),
        Just(Op::Clear),
    ]
}

proptest! {
    #[test]
    fn lines_never_exceed_limits_and_failures_change_nothing(ops in proptest::collection::vec(op(), 1..40)) {
        let w = World::new();
        let repo = InMemoryCarts::new(&w.catalog);
        let carts = service(&w, &repo);
        block_on(async {
            let cart = carts.create(Currency::Eur, T0).await.unwrap();
            let none = Precondition::None;
            let skus = [sku("TEE-M"), sku("MUG")];
            for op in ops {
                let before = carts.get(&cart.id, T0).await.unwrap();
                let line = |i: usize| before.lines.get(i).map(|l| l.id.clone())
                    .unwrap_or_else(|| LineId::parse("line_000000000000000000000000000000ff").unwrap());
                let result = match op {
                    Op::Add(s, q) => carts.add_item(&cart.id, &none, &skus[s], qty(q), T0).await,
                    Op::Set(l, q) => carts.set_quantity(&cart.id, &none, &line(l), q, T0).await,
                    Op::Remove(l) => carts.remove_line(&cart.id, &none, &line(l), T0).await,
                    Op::Clear => carts.clear(&cart.id, &none, T0).await,
                };
                let after = carts.get(&cart.id, T0).await.unwrap();
                if result.is_err() {
                    prop_assert_eq!(&after, &before);
                }
                for l in &after.lines {
                    let available = if l.sku.as_str() == "MUG" { 3 } else { 10 };
                    prop_assert!(l.quantity >= 1 && l.quantity <= 99);
                    prop_assert!(i64::from(l.quantity) <= available);
                }
                let skus_in_cart: std::collections::BTreeSet<_> = after.lines.iter().map(|l| &l.sku).collect();
                prop_assert_eq!(skus_in_cart.len(), after.lines.len(), "one line per SKU");
            }
            Ok(())
        })?;
    }
}

#[test]
fn removing_a_line_saves_a_new_version_and_refusals_write_nothing() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    let none = Precondition::None;
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        carts
            .add_item(&cart.id, &none, &sku("TEE-M"), qty(2), T0)
            .await
            .unwrap();
        let v = carts
            .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        let (tee, mug) = (v.lines[0].id.clone(), v.lines[1].id.clone());
        let later = T0.plus(Duration::from_secs(60));
        let v = carts
            .remove_line(&cart.id, &none, &mug, later)
            .await
            .unwrap();
        assert_eq!(v.etag, "\"v4\"");
        assert_eq!(v.totals.subtotal.amount().to_string(), "39.98");
        let stored = repo.carts.borrow()[&cart.id].clone();
        assert_eq!(stored.version, 4);
        assert_eq!(stored.updated_at, later);
        assert_eq!(stored.expires_at, later.plus(w.policy.idle_ttl));
        assert_eq!(
            stored
                .lines
                .iter()
                .map(|l| l.sku.as_str())
                .collect::<Vec<_>>(),
            ["TEE-M"]
        );
        // A line that is gone, growing past the stock or the line limit: refused, unsaved.
        assert_eq!(
            carts.remove_line(&cart.id, &none, &mug, later).await,
            Err(CartError::LineNotFound)
        );
        assert_eq!(
            carts.set_quantity(&cart.id, &none, &mug, 1, later).await,
            Err(CartError::LineNotFound)
        );
        assert_eq!(
            carts.set_quantity(&cart.id, &none, &tee, 11, later).await,
            Err(CartError::InsufficientStock {
                sku: sku("TEE-M"),
                requested: 11,
                available: 10
            })
        );
        assert_eq!(
            carts.set_quantity(&cart.id, &none, &tee, 100, later).await,
            Err(CartError::QuantityAboveLimit { max: 99 })
        );
        assert_eq!(repo.carts.borrow()[&cart.id], stored, "nothing saved");
    });
}

#[test]
fn a_checked_out_cart_refuses_every_change_and_an_expired_one_every_call() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let carts = service(&w, &repo);
    let none = Precondition::None;
    block_on(async {
        let cart = carts.create(Currency::Eur, T0).await.unwrap();
        let v = carts
            .add_item(&cart.id, &none, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        let line = v.lines[0].id.clone();
        repo.carts.borrow_mut().get_mut(&cart.id).unwrap().status = CartStatus::CheckedOut;
        let before = repo.carts.borrow()[&cart.id].clone();
        let choice = ShippingChoice::parse("NL", "1012AB", "standard").unwrap();
        let refusals = [
            carts
                .add_item(&cart.id, &none, &sku("TEE-M"), qty(1), T0)
                .await,
            carts.set_quantity(&cart.id, &none, &line, 2, T0).await,
            carts.remove_line(&cart.id, &none, &line, T0).await,
            carts.clear(&cart.id, &none, T0).await,
            carts.refresh(&cart.id, &none, T0).await,
            carts.choose_shipping(&cart.id, &none, choice, T0).await,
            carts.clear_shipping(&cart.id, &none, T0).await,
        ];
        for refused in refusals {
            assert_eq!(refused, Err(CartError::NotActive));
        }
        assert_eq!(repo.carts.borrow()[&cart.id], before);

        let other = carts.create(Currency::Eur, T0).await.unwrap();
        let late = T0.plus(w.policy.idle_ttl);
        assert_eq!(
            carts
                .add_item(&other.id, &none, &sku("MUG"), qty(1), late)
                .await,
            Err(CartError::Expired)
        );
        assert_eq!(
            carts.clear(&other.id, &none, late).await,
            Err(CartError::Expired)
        );
        assert_eq!(repo.carts.borrow()[&other.id].version, 1);
    });
}

#[test]
fn a_merge_that_loses_a_race_is_done_again_and_gives_up_after_three_tries() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let ada = customer(1);
    let as_ada = Carts {
        customer: Some(&ada),
        ..service(&w, &repo)
    };
    let as_guest = service(&w, &repo);
    let none = Precondition::None;
    block_on(async {
        let mine = as_ada.create(Currency::Eur, T0).await.unwrap();
        as_ada
            .add_item(&mine.id, &none, &sku("TEE-M"), qty(1), T0)
            .await
            .unwrap();
        let guest = as_guest.create(Currency::Eur, T0).await.unwrap();
        as_guest
            .add_item(&guest.id, &none, &sku("MUG"), qty(2), T0)
            .await
            .unwrap();
        // Another device saves their cart before every merge: the merge is never saved.
        repo.interleave_writers.set(10);
        assert_eq!(
            as_ada.sign_in(Some(&guest.id), T0).await,
            Err(CartError::Contention)
        );
        assert_eq!(repo.interleave_writers.get(), 7, "three attempts");
        assert!(
            repo.carts.borrow().contains_key(&guest.id),
            "the guest cart is kept"
        );
        assert_eq!(repo.carts.borrow()[&mine.id].lines.len(), 1);
        // Once: the merge is done again on the newer version, and saved.
        repo.interleave_writers.set(1);
        let merged = as_ada.sign_in(Some(&guest.id), T0).await.unwrap().unwrap();
        assert_eq!(merged.id, mine.id);
        assert_eq!(merged.item_count, 3);
        let stored = repo.carts.borrow()[&mine.id].clone();
        assert_eq!(stored.version, 2 + 4 + 1, "v2, four other saves, the merge");
        assert!(!repo.carts.borrow().contains_key(&guest.id));
    });
}

#[test]
fn signing_in_passes_over_a_guest_cart_that_cannot_be_merged() {
    let w = World::new();
    let repo = InMemoryCarts::new(&w.catalog);
    let (ada, bob) = (customer(1), customer(2));
    let as_ada = Carts {
        customer: Some(&ada),
        ..service(&w, &repo)
    };
    let as_bob = Carts {
        customer: Some(&bob),
        ..service(&w, &repo)
    };
    let as_guest = service(&w, &repo);
    let none = Precondition::None;
    block_on(async {
        let mine = as_ada.create(Currency::Eur, T0).await.unwrap();
        // Checked out, expired, or someone else's: their own cart is the answer, untouched.
        let done = as_guest.create(Currency::Eur, T0).await.unwrap();
        as_guest
            .add_item(&done.id, &none, &sku("MUG"), qty(1), T0)
            .await
            .unwrap();
        repo.carts.borrow_mut().get_mut(&done.id).unwrap().status = CartStatus::CheckedOut;
        let bobs = as_bob.create(Currency::Eur, T0).await.unwrap();
        let old = as_guest
            .create(Currency::Eur, T0.minus(w.policy.idle_ttl))
            .await
            .unwrap();
        let before = repo.carts.borrow().clone();
        for guest in [&done.id, &bobs.id, &old.id] {
            let found = as_ada.sign_in(Some(guest), T0).await.unwrap().unwrap();
            assert_eq!(found.id, mine.id, "{guest}");
        }
        assert_eq!(*repo.carts.borrow(), before, "nothing written");
        // A customer without any cart and no usable guest cart: none.
        let cy = customer(3);
        let as_cy = Carts {
            customer: Some(&cy),
            ..service(&w, &repo)
        };
        assert_eq!(as_cy.sign_in(Some(&done.id), T0).await, Ok(None));
        // Storage failing: said, not hidden as "no cart".
        repo.fail.set(true);
        assert!(matches!(
            as_ada.sign_in(Some(&done.id), T0).await,
            Err(CartError::Store(_))
        ));
    });
}
