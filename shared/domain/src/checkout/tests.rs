use super::*;
use crate::cart::{CartPolicy, Carts, Precondition, Quantity};
use crate::events::EventKind;
use crate::testing::{FlatRates, InMemoryCarts, InMemoryCatalog, InMemoryOrders, SequentialIds};
use futures_executor::block_on;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn address() -> AddressInput {
    AddressInput {
        name: "Ada Lovelace".into(),
        line1: "1 Analytical Way".into(),
        city: "London".into(),
        postal_code: "N1 7AA".into(),
        country: "GB".into(),
        ..Default::default()
    }
}

fn request(method: &str, provider: &str) -> CheckoutRequest {
    CheckoutRequest::parse(CheckoutInput {
        email: " Ada@Example.COM ".into(),
        shipping_address: address(),
        billing_address: None,
        shipping_method: method.into(),
        payment_provider: provider.into(),
    })
    .unwrap()
}

#[test]
fn parses_and_reports_every_bad_field() {
    let r = request("standard", "test");
    assert_eq!(r.email.as_str(), "Ada@example.com");
    assert_eq!(
        r.billing_address, r.shipping_address,
        "billing defaults to shipping"
    );
    let issues = CheckoutRequest::parse(CheckoutInput {
        email: "nope".into(),
        shipping_address: AddressInput {
            country: "germany".into(),
            city: " ".into(),
            ..address()
        },
        billing_address: Some(AddressInput {
            postal_code: "x".repeat(21),
            ..address()
        }),
        shipping_method: "".into(),
        payment_provider: "test".into(),
    })
    .unwrap_err();
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/email",
            "/shipping_address/city",
            "/shipping_address/country",
            "/billing_address/postal_code",
        ]
    );
    assert_eq!(
        request("  ", "test").shipping_method,
        None,
        "no method: the cart's chosen one"
    );
    for bad in [
        "",
        "a@b",
        "@b.com",
        "a b@c.com",
        "a@.com",
        "a@b.com.",
        "a\u{202E}@b.com",
    ] {
        assert!(Email::parse(bad).is_none(), "{bad}");
    }
    for (name, line2) in [
        ("Ada\u{202E}ecalovoL", None),
        ("Ada", Some("Flat 2\nDROP")),
        ("Ada\u{2066}x\u{2069}", None),
        ("Ada\u{0000}", None),
        ("Ada", Some("Flat 2\u{2028}Floor 3")),
        ("\u{FEFF}Ada", None),
    ] {
        let issues = CheckoutRequest::parse(CheckoutInput {
            email: "a@b.com".into(),
            shipping_address: AddressInput {
                name: name.into(),
                line2: line2.map(Into::into),
                ..address()
            },
            billing_address: None,
            shipping_method: "standard".into(),
            payment_provider: "test".into(),
        })
        .unwrap_err();
        assert_eq!(issues.len(), 1, "{name:?}");
        assert_eq!(issues[0].code, "invalid_characters");
    }
    assert!(!has_unsafe_characters("Zoë Ångström, 東京都 1-2-3"));
}

struct World {
    catalog: InMemoryCatalog,
    ids: SequentialIds,
    policy: CartPolicy,
    checkout: CheckoutPolicy,
}

fn world() -> World {
    let catalog = InMemoryCatalog::with_sku("TEE", &[("10.00", Currency::Eur)], 100);
    catalog.add_sku("MUG", &[("5.50", Currency::Eur)], 100);
    World {
        catalog,
        ids: SequentialIds::default(),
        policy: CartPolicy::default(),
        checkout: CheckoutPolicy {
            tax_rate: TaxRate::ZERO,
            reservation_ttl: Duration::from_secs(900),
            max_units_per_sku: 60,
            unpaid_hold: crate::catalog::inventory::HoldShare::WHOLE,
        },
    }
}

/// A checkout over in-memory ports with the given stock, handed to `test`.
fn with_checkout(
    stock: &[(&str, i64)],
    test: impl AsyncFnOnce(
        &World,
        &InMemoryCarts<'_>,
        &InMemoryOrders<'_>,
        &Checkout<'_, InMemoryCarts<'_>, InMemoryOrders<'_>, FlatRates>,
    ),
) {
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    for (sku, on_hand) in stock {
        orders.set_stock(sku, *on_hand);
    }
    let provider = TestPaymentProvider { ids: &w.ids };
    let providers: [&dyn DynPaymentProvider; 1] = [&provider];
    let checkout = Checkout {
        carts: &repo,
        orders: &orders,
        shipping: &FlatRates,
        providers: &providers,
        ids: &w.ids,
        policy: &w.checkout,
        customer: None,
    };
    block_on(test(&w, &repo, &orders, &checkout));
}

async fn cart_with(w: &World, repo: &InMemoryCarts<'_>, items: &[(&str, i64)]) -> CartId {
    let carts = Carts {
        repo,
        shipping: &crate::fulfilment::shipping::Zones::default(),
        ids: &w.ids,
        policy: &w.policy,
        customer: None,
    };
    let cart = carts.create(Currency::Eur, T0).await.unwrap();
    for (sku, q) in items {
        carts
            .add_item(
                &cart.id,
                &Precondition::None,
                &Sku::parse(sku).unwrap(),
                Quantity::new(*q).unwrap(),
                T0,
            )
            .await
            .unwrap();
    }
    cart.id
}

#[test]
fn unpaid_orders_together_hold_no_more_than_their_share_of_a_sku() {
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 10);
    let provider = TestPaymentProvider { ids: &w.ids };
    let providers: [&dyn DynPaymentProvider; 1] = [&provider];
    let policy = CheckoutPolicy {
        unpaid_hold: crate::catalog::inventory::HoldShare::from_basis_points(5_000).unwrap(),
        ..w.checkout
    };
    let checkout = Checkout {
        carts: &repo,
        orders: &orders,
        shipping: &FlatRates,
        providers: &providers,
        ids: &w.ids,
        policy: &policy,
        customer: None,
    };
    block_on(async {
        // Three shoppers (any clients, any emails): 3 + 2 units are half of 10; one more is not.
        for (n, quantity) in [3, 2].into_iter().enumerate() {
            let cart = cart_with(&w, &repo, &[("TEE", quantity)]).await;
            checkout
                .checkout(&cart, &request("standard", "test"), &format!("k{n}"), T0)
                .await
                .unwrap();
        }
        let cart = cart_with(&w, &repo, &[("TEE", 1)]).await;
        assert_eq!(
            checkout
                .checkout(&cart, &request("standard", "test"), "k9", T0)
                .await
                .unwrap_err(),
            CheckoutError::HoldLimit(vec![Sku::parse("TEE").unwrap()])
        );
        let stock = orders.stock.borrow()[&Sku::parse("TEE").unwrap()];
        assert_eq!(
            (stock.on_hand(), stock.reserved()),
            (10, 5),
            "nothing more held"
        );
    });
}

#[test]
fn places_an_order_that_holds_stock() {
    with_checkout(
        &[("TEE", 5), ("MUG", 5)],
        async |w, repo, orders, checkout| {
            let cart = cart_with(w, repo, &[("TEE", 2), ("MUG", 1)]).await;
            let placed = checkout
                .checkout(&cart, &request("standard", "test"), "k1", T0)
                .await
                .unwrap();
            let o = &placed.order;
            assert_eq!(o.number, "SO-TEST-000001");
            assert_eq!(o.status, OrderStatus::PendingPayment);
            assert_eq!(o.totals.subtotal.amount().to_string(), "25.50");
            assert_eq!(o.totals.shipping.amount().to_string(), "4.90");
            assert_eq!(o.totals.grand_total.amount().to_string(), "30.40");
            assert_eq!(placed.payment.amount_minor, 3040);
            assert_eq!(o.payment_id, placed.payment.payment_id);
            assert_eq!(o.reservation_expires_at, T0.plus(Duration::from_secs(900)));
            let stock = orders.stock.borrow();
            assert_eq!(stock[&Sku::parse("TEE").unwrap()].reserved(), 2);
            assert_eq!(orders.outbox.borrow()[0].kind(), EventKind::OrderCreated);
            assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::CheckedOut);
        },
    );
}

#[test]
fn charges_the_shipping_chosen_for_the_cart() {
    use crate::cart::ShippingChoice;
    use crate::fulfilment::shipping::Destination;
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 100);
    let provider = TestPaymentProvider { ids: &w.ids };
    let providers: [&dyn DynPaymentProvider; 1] = [&provider];
    let zones = crate::testing::test_zones();
    let checkout = Checkout {
        carts: &repo,
        orders: &orders,
        shipping: &zones,
        providers: &providers,
        ids: &w.ids,
        policy: &w.checkout,
        customer: None,
    };
    let carts = Carts {
        repo: &repo,
        shipping: &zones,
        ids: &w.ids,
        policy: &w.policy,
        customer: None,
    };
    let to = |country: &str, postal_code: &str| CheckoutRequest {
        shipping_method: None,
        shipping_address: Address {
            country: country.into(),
            postal_code: postal_code.into(),
            ..request("standard", "test").shipping_address
        },
        ..request("standard", "test")
    };
    block_on(async {
        let cart = cart_with(&w, &repo, &[("TEE", 1)]).await;
        let err = checkout
            .checkout(&cart, &to("NL", "1012AB"), "k0", T0)
            .await;
        assert_eq!(err.unwrap_err(), CheckoutError::ShippingMethodRequired);
        let choice = ShippingChoice {
            destination: Destination::parse("NL", "1012AB").unwrap(),
            method: "standard".into(),
        };
        let shown = carts
            .choose_shipping(&cart, &Precondition::None, choice, T0)
            .await
            .unwrap();
        assert_eq!(shown.totals.grand_total.amount().to_string(), "14.90");
        // Another method than the chosen one, or an address another price applies to:
        // refused before anything is written.
        let other = CheckoutRequest {
            shipping_method: Some("express".into()),
            ..to("NL", "1012AB")
        };
        let err = checkout
            .checkout(&cart, &other, "k1", T0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CheckoutError::ShippingMethodNotChosen {
                chosen: "standard".into()
            }
        );
        let err = checkout
            .checkout(&cart, &to("NL", "1701 AB"), "k2", T0)
            .await
            .unwrap_err();
        let eur = |a: &str| Money::parse(a, Currency::Eur).unwrap();
        assert_eq!(
            err,
            CheckoutError::ShippingChanged {
                shown: Some(eur("4.90")),
                at_address: eur("9.90")
            }
        );
        assert!(orders.orders.borrow().is_empty());
        // Another address of the same zone: the price the cart showed.
        let placed = checkout
            .checkout(&cart, &to("DE", "10115"), "k3", T0)
            .await
            .unwrap();
        assert_eq!(placed.order.shipping_method, "standard");
        assert_eq!(placed.order.totals.grand_total, shown.totals.grand_total);
    });
}

#[test]
fn short_stock_writes_nothing_and_names_each_short_sku() {
    with_checkout(
        &[("TEE", 1), ("MUG", 0)],
        async |w, repo, orders, checkout| {
            let cart = cart_with(w, repo, &[("TEE", 2), ("MUG", 1)]).await;
            let err = checkout
                .checkout(&cart, &request("standard", "test"), "k", T0)
                .await
                .unwrap_err();
            let CheckoutError::InsufficientStock(short) = err else {
                panic!("{err:?}")
            };
            assert_eq!(short.len(), 2);
            assert_eq!(
                (
                    short[0].sku.as_str(),
                    short[0].requested,
                    short[0].available
                ),
                ("MUG", 1, 0)
            );
            assert!(orders.orders.borrow().is_empty());
            assert!(orders.outbox.borrow().is_empty());
            assert_eq!(
                orders.stock.borrow()[&Sku::parse("TEE").unwrap()].reserved(),
                0
            );
            assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::Active);
        },
    );
}

#[test]
fn charges_only_the_current_price() {
    with_checkout(
        &[("TEE", 100), ("MUG", 100)],
        async |w, repo, orders, checkout| {
            let cart = cart_with(w, repo, &[("TEE", 1), ("MUG", 1)]).await;
            w.catalog.set_price("TEE", "99.00", Currency::Eur);
            w.catalog.set_price("MUG", "6.00", Currency::Eur);
            let carts = Carts {
                repo,
                shipping: &crate::fulfilment::shipping::Zones::default(),
                ids: &w.ids,
                policy: &w.policy,
                customer: None,
            };
            // Changing a line's quantity takes the current price (the shopper sees it).
            let tee = repo.carts.borrow()[&cart].lines[0].id.clone();
            let view = carts
                .set_quantity(&cart, &Precondition::None, &tee, 50, T0)
                .await
                .unwrap();
            assert_eq!(view.lines[0].unit_price.amount().to_string(), "99.00");
            // The other line still holds its old snapshot: checkout refuses, writes nothing.
            let err = checkout
                .checkout(&cart, &request("standard", "test"), "k", T0)
                .await
                .unwrap_err();
            let CheckoutError::PriceChanged(changes) = err else {
                panic!("{err:?}")
            };
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].sku.as_str(), "MUG");
            assert_eq!(changes[0].old_unit_price.amount().to_string(), "5.50");
            assert_eq!(
                changes[0].new_unit_price.unwrap().amount().to_string(),
                "6.00"
            );
            assert!(orders.orders.borrow().is_empty());
            assert!(orders.outbox.borrow().is_empty());
            assert_eq!(
                orders.stock.borrow()[&Sku::parse("TEE").unwrap()].reserved(),
                0
            );
            // After the refresh the current prices are charged.
            carts.refresh(&cart, &Precondition::None, T0).await.unwrap();
            let placed = checkout
                .checkout(&cart, &request("standard", "test"), "k2", T0)
                .await
                .unwrap();
            assert_eq!(placed.order.totals.subtotal.amount().to_string(), "4956.00");
        },
    );
}

/// A provider that takes its time: the admin changes a price while it creates the session.
struct RepricedDuringPayment<'a> {
    inner: TestPaymentProvider<'a>,
    catalog: &'a InMemoryCatalog,
}

impl PaymentProvider for RepricedDuringPayment<'_> {
    fn name(&self) -> &str {
        "test"
    }

    async fn create_session(
        &self,
        order: &OrderId,
        amount: Money,
        key: &str,
    ) -> Result<PaymentSession, PaymentError> {
        self.catalog.set_price("MUG", "7.25", Currency::Eur);
        PaymentProvider::create_session(&self.inner, order, amount, key).await
    }

    async fn client_secret(&self, payment_id: &str) -> Result<String, PaymentError> {
        PaymentProvider::client_secret(&self.inner, payment_id).await
    }
}

#[test]
fn a_price_changed_while_the_payment_is_created_places_nothing() {
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 10);
    orders.set_stock("MUG", 10);
    let provider = RepricedDuringPayment {
        inner: TestPaymentProvider { ids: &w.ids },
        catalog: &w.catalog,
    };
    let providers: [&dyn DynPaymentProvider; 1] = [&provider];
    let checkout = Checkout {
        carts: &repo,
        orders: &orders,
        shipping: &FlatRates,
        providers: &providers,
        ids: &w.ids,
        policy: &w.checkout,
        customer: None,
    };
    block_on(async {
        let cart = cart_with(&w, &repo, &[("TEE", 1), ("MUG", 2)]).await;
        let err = checkout
            .checkout(&cart, &request("standard", "test"), "k", T0)
            .await
            .unwrap_err();
        let CheckoutError::PriceChanged(changes) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            changes
                .iter()
                .map(|c| (
                    c.sku.as_str(),
                    c.old_unit_price.amount().to_string(),
                    c.new_unit_price.map(|p| p.amount().to_string())
                ))
                .collect::<Vec<_>>(),
            [("MUG", "5.50".to_owned(), Some("7.25".to_owned()))]
        );
        assert!(orders.orders.borrow().is_empty());
        assert!(orders.outbox.borrow().is_empty());
        assert_eq!(
            orders.stock.borrow()[&Sku::parse("MUG").unwrap()].reserved(),
            0
        );
        assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::Active);
    });
}

#[test]
fn an_order_holds_at_most_the_configured_units_of_one_sku() {
    with_checkout(&[("TEE", 100)], async |w, repo, orders, checkout| {
        let cart = cart_with(w, repo, &[("TEE", 61)]).await;
        assert_eq!(
            checkout
                .checkout(&cart, &request("standard", "test"), "k", T0)
                .await,
            Err(CheckoutError::TooManyUnits {
                sku: Sku::parse("TEE").unwrap(),
                requested: 61,
                max: 60
            })
        );
        assert!(orders.orders.borrow().is_empty());
        let ok = cart_with(w, repo, &[("TEE", 60)]).await;
        assert!(checkout
            .checkout(&ok, &request("standard", "test"), "k2", T0)
            .await
            .is_ok());
    });
}

#[test]
fn refusals_before_writing() {
    with_checkout(&[("TEE", 10)], async |w, repo, orders, checkout| {
        let empty = cart_with(w, repo, &[]).await;
        assert_eq!(
            checkout
                .checkout(&empty, &request("standard", "test"), "k", T0)
                .await,
            Err(CheckoutError::CartEmpty)
        );
        let cart = cart_with(w, repo, &[("TEE", 1)]).await;
        assert!(matches!(
            checkout
                .checkout(&cart, &request("drone", "test"), "k", T0)
                .await,
            Err(CheckoutError::UnknownShippingMethod { .. })
        ));
        assert!(matches!(
            checkout
                .checkout(&cart, &request("standard", "paypal"), "k", T0)
                .await,
            Err(CheckoutError::UnknownPaymentProvider { .. })
        ));
        let late = T0.plus(Duration::from_days(31));
        assert_eq!(
            checkout
                .checkout(&cart, &request("standard", "test"), "k", late)
                .await,
            Err(CheckoutError::CartExpired)
        );
        let first = checkout
            .checkout(&cart, &request("standard", "test"), "k", T0)
            .await
            .unwrap();
        assert_eq!(
            checkout
                .checkout(&cart, &request("express", "test"), "k2", T0)
                .await,
            Err(CheckoutError::AlreadyCheckedOut {
                order_id: first.order.id.clone()
            })
        );
        assert_eq!(orders.orders.borrow().len(), 1);
    });
}

/// A provider that records what it was asked, runs `during` while it creates the session
/// (someone else acting meanwhile), and answers `fails` if set.
struct Scripted<'a> {
    inner: TestPaymentProvider<'a>,
    fails: Option<PaymentError>,
    during: &'a dyn Fn(),
    asked: std::cell::RefCell<Vec<(String, i64)>>,
}

impl<'a> Scripted<'a> {
    fn new(ids: &'a SequentialIds, fails: Option<PaymentError>, during: &'a dyn Fn()) -> Self {
        Scripted {
            inner: TestPaymentProvider { ids },
            fails,
            during,
            asked: std::cell::RefCell::new(Vec::new()),
        }
    }
}

impl PaymentProvider for Scripted<'_> {
    fn name(&self) -> &str {
        "test"
    }

    async fn create_session(
        &self,
        order: &OrderId,
        amount: Money,
        key: &str,
    ) -> Result<PaymentSession, PaymentError> {
        self.asked
            .borrow_mut()
            .push((key.to_owned(), amount.minor_units()));
        (self.during)();
        match &self.fails {
            Some(e) => Err(e.clone()),
            None => PaymentProvider::create_session(&self.inner, order, amount, key).await,
        }
    }

    async fn client_secret(&self, payment_id: &str) -> Result<String, PaymentError> {
        PaymentProvider::client_secret(&self.inner, payment_id).await
    }
}

fn checkout_over<'a>(
    w: &'a World,
    repo: &'a InMemoryCarts<'a>,
    orders: &'a InMemoryOrders<'a>,
    providers: &'a [&'a dyn DynPaymentProvider],
    customer: Option<&'a CustomerId>,
) -> Checkout<'a, InMemoryCarts<'a>, InMemoryOrders<'a>, FlatRates> {
    Checkout {
        carts: repo,
        orders,
        shipping: &FlatRates,
        providers,
        ids: &w.ids,
        policy: &w.checkout,
        customer,
    }
}

fn tee() -> Sku {
    Sku::parse("TEE").unwrap()
}

#[test]
fn order_created_names_the_order_its_total_and_every_line() {
    with_checkout(
        &[("TEE", 5), ("MUG", 5)],
        async |w, repo, orders, checkout| {
            let cart = cart_with(w, repo, &[("TEE", 2), ("MUG", 3)]).await;
            let placed = checkout
                .checkout(&cart, &request("express", "test"), "k1", T0)
                .await
                .unwrap();
            assert_eq!(placed.events, orders.outbox.borrow().clone());
            let [event] = placed.events.as_slice() else {
                panic!("one event: {:?}", placed.events)
            };
            assert_eq!(event.created_at, T0);
            let Payload::OrderCreated(created) = &event.payload else {
                panic!("order.created: {event:?}")
            };
            assert_eq!(created.order_id, placed.order.id);
            assert_eq!(created.cart_id, cart);
            assert_eq!(created.currency, Currency::Eur);
            assert_eq!(created.total.amount().to_string(), "48.50", "36.50 + 12.00");
            let lines: Vec<(&str, u32, String)> = created
                .lines
                .iter()
                .map(|l| (l.sku.as_str(), l.quantity, l.total.amount().to_string()))
                .collect();
            assert_eq!(
                lines,
                [
                    ("TEE", 2, "20.00".to_owned()),
                    ("MUG", 3, "16.50".to_owned())
                ]
            );
            // The stored order is the one answered, and it is the cart's.
            let stored = orders.orders.borrow()[0].clone();
            assert_eq!(stored, placed.order);
            assert_eq!(stored.email.as_str(), "Ada@example.com");
            assert_eq!(stored.shipping_method, "express");
            assert_eq!(stored.customer_id, None);
            assert_eq!(stored.lines[1].id, repo.carts.borrow()[&cart].lines[1].id);
        },
    );
}

#[test]
fn a_customers_cart_checks_out_only_for_them_and_the_order_is_theirs() {
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 10);
    let provider = TestPaymentProvider { ids: &w.ids };
    let providers: [&dyn DynPaymentProvider; 1] = [&provider];
    let ada = CustomerId::parse(&format!("cus_{:032x}", 1)).unwrap();
    let bob = CustomerId::parse(&format!("cus_{:032x}", 2)).unwrap();
    block_on(async {
        let carts = Carts {
            repo: &repo,
            shipping: &crate::fulfilment::shipping::Zones::default(),
            ids: &w.ids,
            policy: &w.policy,
            customer: Some(&ada),
        };
        let cart = carts.create(Currency::Eur, T0).await.unwrap().id;
        carts
            .add_item(
                &cart,
                &Precondition::None,
                &tee(),
                Quantity::new(1).unwrap(),
                T0,
            )
            .await
            .unwrap();
        for other in [None, Some(&bob)] {
            let checkout = checkout_over(&w, &repo, &orders, &providers, other);
            assert_eq!(
                checkout
                    .checkout(&cart, &request("standard", "test"), "k", T0)
                    .await,
                Err(CheckoutError::CartNotFound),
                "{other:?}"
            );
        }
        assert!(orders.orders.borrow().is_empty());
        assert_eq!(orders.stock.borrow()[&tee()].reserved(), 0);
        let checkout = checkout_over(&w, &repo, &orders, &providers, Some(&ada));
        let placed = checkout
            .checkout(&cart, &request("standard", "test"), "k", T0)
            .await
            .unwrap();
        assert_eq!(placed.order.customer_id, Some(ada.clone()));
        assert_eq!(orders.orders.borrow()[0].customer_id, Some(ada.clone()));
        let missing = CartId::parse("cart_0000000000000000000000000000ffff").unwrap();
        assert_eq!(
            checkout
                .checkout(&missing, &request("standard", "test"), "k", T0)
                .await,
            Err(CheckoutError::CartNotFound)
        );
    });
}

#[test]
fn a_payment_the_provider_cannot_create_places_nothing() {
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 10);
    let down = Scripted::new(
        &w.ids,
        Some(PaymentError::Unavailable("timeout".into())),
        &|| {},
    );
    let providers: [&dyn DynPaymentProvider; 1] = [&down];
    let checkout = checkout_over(&w, &repo, &orders, &providers, None);
    block_on(async {
        let cart = cart_with(&w, &repo, &[("TEE", 3)]).await;
        assert_eq!(
            checkout
                .checkout(&cart, &request("standard", "test"), "k", T0)
                .await,
            Err(CheckoutError::Payment(PaymentError::Unavailable(
                "timeout".into()
            )))
        );
        // Asked for the whole total, under a key naming the request and the cart's version.
        assert_eq!(*down.asked.borrow(), [("k:v2".to_owned(), 3490)]);
        assert!(orders.orders.borrow().is_empty());
        assert!(orders.outbox.borrow().is_empty());
        assert_eq!(orders.stock.borrow()[&tee()].reserved(), 0);
        assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::Active);
    });
}

#[test]
fn a_placement_the_store_fails_or_a_cart_changed_meanwhile_places_nothing() {
    let w = world();
    let repo = InMemoryCarts::new(&w.catalog);
    let orders = InMemoryOrders::new(&repo);
    orders.set_stock("TEE", 10);
    // The shopper changes the cart in another tab while the payment is created.
    let bump = || {
        for cart in repo.carts.borrow_mut().values_mut() {
            cart.version += 1;
        }
    };
    let racing = Scripted::new(&w.ids, None, &bump);
    let providers: [&dyn DynPaymentProvider; 1] = [&racing];
    let checkout = checkout_over(&w, &repo, &orders, &providers, None);
    block_on(async {
        let cart = cart_with(&w, &repo, &[("TEE", 2)]).await;
        assert_eq!(
            checkout
                .checkout(&cart, &request("standard", "test"), "k", T0)
                .await,
            Err(CheckoutError::CartChanged)
        );
        assert!(orders.orders.borrow().is_empty());
        assert!(orders.outbox.borrow().is_empty());
        assert_eq!(orders.stock.borrow()[&tee()].reserved(), 0);
        assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::Active);
        // The store failing is said, and nothing is placed either.
        orders.fail.set(true);
        assert!(matches!(
            checkout
                .checkout(&cart, &request("standard", "test"), "k", T0)
                .await,
            Err(CheckoutError::Store(_))
        ));
        orders.fail.set(false);
        assert!(orders.orders.borrow().is_empty());
        assert_eq!(orders.stock.borrow()[&tee()].reserved(), 0);
        // A retry after the cart changed asks the provider under the new version's key.
        let keys: Vec<String> = racing
            .asked
            .borrow()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, ["k:v2", "k:v3"]);
    });
}

proptest::proptest! {
    /// Whatever carts check out against whatever stock: a placed order holds exactly its
    /// units and its totals add up (lines, tax, shipping, the payment, `order.created`); a
    /// refused one holds nothing and names exactly the short SKUs.
    #[test]
    fn placements_hold_exactly_what_they_order_and_their_totals_add_up(
        on_hand in 0i64..12,
        wanted in proptest::collection::vec((0i64..5, 0i64..4), 1..6),
        tax in 0i64..=2_500,
    ) {
        use proptest::prelude::*;
        let w = world();
        let repo = InMemoryCarts::new(&w.catalog);
        let orders = InMemoryOrders::new(&repo);
        orders.set_stock("TEE", on_hand);
        orders.set_stock("MUG", on_hand);
        let provider = TestPaymentProvider { ids: &w.ids };
        let providers: [&dyn DynPaymentProvider; 1] = [&provider];
        let policy = CheckoutPolicy {
            tax_rate: TaxRate::new(rust_decimal::Decimal::new(tax, 4)).unwrap(),
            ..w.checkout.clone()
        };
        let checkout = Checkout { policy: &policy, ..checkout_over(&w, &repo, &orders, &providers, None) };
        let sku = |s: &str| Sku::parse(s).unwrap();
        let held = |s: &str| orders.stock.borrow()[&sku(s)];
        block_on(async {
            let mut placed_units = [0i64, 0];
            for (n, (tees, mugs)) in wanted.into_iter().enumerate() {
                let items: Vec<(&str, i64)> = [("TEE", tees), ("MUG", mugs)]
                    .into_iter()
                    .filter(|(_, q)| *q > 0)
                    .collect();
                if items.is_empty() {
                    continue;
                }
                let cart = cart_with(&w, &repo, &items).await;
                let before = (held("TEE"), held("MUG"), orders.outbox.borrow().len());
                let result = checkout
                    .checkout(&cart, &request("standard", "test"), &format!("k{n}"), T0)
                    .await;
                // Named in SKU order, as the reservation is made.
                let short: Vec<&str> = [("MUG", mugs, 1), ("TEE", tees, 0)]
                    .into_iter()
                    .filter(|(_, q, i)| *q > on_hand - placed_units[*i])
                    .map(|(s, _, _)| s)
                    .collect();
                match result {
                    Ok(placed) => {
                        prop_assert!(short.is_empty());
                        placed_units[0] += tees;
                        placed_units[1] += mugs;
                        let o = &placed.order;
                        let t = &o.totals;
                        let sum = |f: fn(&crate::orders::order::OrderLine) -> Money| {
                            o.lines.iter().fold(Money::zero(Currency::Eur), |s, l| s.checked_add(f(l)).unwrap())
                        };
                        prop_assert_eq!(sum(|l| l.subtotal), t.subtotal);
                        prop_assert_eq!(sum(|l| l.tax), t.tax);
                        prop_assert_eq!(sum(|l| l.total).checked_add(t.shipping).unwrap(), t.grand_total);
                        prop_assert_eq!(
                            t.subtotal.checked_sub(t.discount).unwrap().checked_add(t.tax).unwrap().checked_add(t.shipping).unwrap(),
                            t.grand_total
                        );
                        for l in &o.lines {
                            prop_assert_eq!(l.subtotal, l.unit_price.checked_mul(l.quantity).unwrap());
                        }
                        prop_assert_eq!(placed.payment.amount_minor, t.grand_total.minor_units());
                        let Payload::OrderCreated(created) = &placed.events[0].payload else {
                            panic!("order.created")
                        };
                        prop_assert_eq!(created.total, t.grand_total);
                        prop_assert_eq!(created.units(), u64::try_from(tees + mugs).unwrap());
                        prop_assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::CheckedOut);
                    }
                    Err(CheckoutError::InsufficientStock(shortages)) => {
                        let named: Vec<&str> = shortages.iter().map(|s| s.sku.as_str()).collect();
                        prop_assert_eq!(named, short);
                        prop_assert_eq!((held("TEE"), held("MUG"), orders.outbox.borrow().len()), before);
                        prop_assert_eq!(repo.carts.borrow()[&cart].status, CartStatus::Active);
                    }
                    Err(e) => prop_assert!(false, "{:?}", e),
                }
                for (i, s) in ["TEE", "MUG"].into_iter().enumerate() {
                    prop_assert_eq!(held(s).reserved(), placed_units[i]);
                    prop_assert_eq!(held(s).on_hand(), on_hand);
                }
            }
            prop_assert_eq!(orders.orders.borrow().len(), orders.outbox.borrow().len());
            Ok(())
        })?;
    }
}
