use super::*;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

/// A vector from the `stripe` npm package:
/// `stripe.webhooks.generateTestHeaderString({payload, secret: "whsec_test_secret", timestamp: 1800000000})`.
const OFFICIAL: &str =
    "t=1800000000,v1=334f9dbfd609cf6c38f112f028756732c80faa7fdbeab117549d6303a5dcf896";

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn accepts_what_the_official_library_signs() {
    let header = format!(
        "t=1800000000,v1={}",
        sign("whsec_test_secret", 1_800_000_000, BODY)
    );
    assert_eq!(
        header, OFFICIAL,
        "our HMAC agrees with the official library's"
    );
    assert_eq!(
        verify_stripe(
            Some(OFFICIAL),
            BODY,
            &secrets(&["whsec_test_secret"]),
            NOW,
            DEFAULT_TOLERANCE
        ),
        Ok(NOW)
    );
}

#[test]
fn refuses_forged_stale_tampered_and_missing() {
    let ok = secrets(&["whsec_new"]);
    let t = 1_800_000_000;
    let good = format!("t={t},v1={}", sign("whsec_new", t, BODY));
    let check = |header: Option<&str>, body: &[u8], now: Timestamp| {
        verify_stripe(header, body, &ok, now, DEFAULT_TOLERANCE)
    };
    assert!(check(Some(&good), BODY, NOW).is_ok());
    assert_eq!(check(None, BODY, NOW), Err(SignatureError::Missing));
    assert_eq!(
        check(Some("v1=abc"), BODY, NOW),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        check(Some("t=x,v1=ab"), BODY, NOW),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        check(Some(&format!("t={t}")), BODY, NOW),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        check(Some(&good), b"{\"id\":\"evt_2\"}", NOW),
        Err(SignatureError::NoMatch),
        "tampered body"
    );
    let wrong = format!("t={t},v1={}", sign("whsec_other", t, BODY));
    assert_eq!(check(Some(&wrong), BODY, NOW), Err(SignatureError::NoMatch));
    let late = NOW.plus(Duration::from_secs(301));
    assert_eq!(
        check(Some(&good), BODY, late),
        Err(SignatureError::OutsideTolerance)
    );
    let early = NOW.minus(Duration::from_secs(301));
    assert_eq!(
        check(Some(&good), BODY, early),
        Err(SignatureError::OutsideTolerance),
        "from the future"
    );
    assert!(check(Some(&good), BODY, NOW.plus(Duration::from_secs(300))).is_ok());
    assert_eq!(
        verify_stripe(Some(&good), BODY, &[], NOW, DEFAULT_TOLERANCE),
        Err(SignatureError::NoSecret)
    );
}

#[test]
fn rotation_accepts_old_and_new_secrets_and_several_signatures() {
    let t = 1_800_000_000;
    let both = secrets(&["whsec_old", "whsec_new"]);
    for secret in ["whsec_old", "whsec_new"] {
        let header = format!("t={t},v1={}", sign(secret, t, BODY));
        assert!(verify_stripe(Some(&header), BODY, &both, NOW, DEFAULT_TOLERANCE).is_ok());
    }
    let header = format!(
        "t={t},v1=00ff,v1=zz,v0=abc,v1={}",
        sign("whsec_new", t, BODY)
    );
    assert!(verify_stripe(
        Some(&header),
        BODY,
        &secrets(&["whsec_new"]),
        NOW,
        DEFAULT_TOLERANCE
    )
    .is_ok());
    assert_eq!(
        secrets_from(" whsec_a, ,whsec_b "),
        secrets(&["whsec_a", "whsec_b"])
    );
}

#[test]
fn reads_the_payment_an_event_is_about() {
    let event: StripeEvent = serde_json::from_str(
        r#"{"id":"evt_1","type":"charge.refunded","created":1800000000,"data":{"object":{"id":"ch_1","object":"charge","amount":1000,"amount_refunded":500,"currency":"eur","payment_intent":"pi_1","metadata":{"order_id":"ord_1"}}},"livemode":false}"#,
    )
    .unwrap();
    assert_eq!(event.payment_id(), "pi_1");
    assert_eq!(event.occurred_at(), NOW);
    assert_eq!(
        event
            .data
            .object
            .metadata
            .get("order_id")
            .map(String::as_str),
        Some("ord_1")
    );
}

fn succeeded(amount: i64, currency: &str) -> StripeEvent {
    serde_json::from_value(serde_json::json!({
        "id": "evt_1", "type": "payment_intent.succeeded", "created": 1_800_000_000,
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": amount,
            "amount_received": amount, "currency": currency}}
    }))
    .unwrap()
}

fn order(status: OrderStatus) -> PayableOrder {
    let total = Money::from_minor(4490, Currency::Eur).unwrap();
    PayableOrder {
        id: OrderId::parse("ord_0000000000000000000000000000000a").unwrap(),
        status,
        total,
        charged: total,
        ledger: crate::orders::order::PaymentLedger::default(),
    }
}

#[test]
fn stripe_charges_three_decimal_currencies_in_tens() {
    let kwd = |minor| Money::from_minor(minor, Currency::Kwd).unwrap();
    assert_eq!(
        charged_minor("stripe", kwd(12_347)),
        12_340,
        "never more than the total"
    );
    assert_eq!(charged_minor("stripe", kwd(12_344)), 12_340);
    assert_eq!(charged_minor("stripe", kwd(12_349)), 12_340);
    assert_eq!(charged_minor("stripe", kwd(12_340)), 12_340);
    assert_eq!(charged_minor("test", kwd(12_347)), 12_347);
    let eur = Money::from_minor(4_497, Currency::Eur).unwrap();
    assert_eq!(charged_minor("stripe", eur), 4_497);
    let jpy = Money::from_minor(1_234, Currency::Jpy).unwrap();
    assert_eq!(charged_minor("stripe", jpy), 1_234);
    // A success of the charged amount pays the order; one of the exact total does not.
    let pending = PayableOrder {
        total: kwd(12_347),
        charged: kwd(12_340),
        ..order(OrderStatus::PendingPayment)
    };
    let paid = |minor: i64| {
        let mut event = succeeded(minor, "kwd").read();
        event.amount = Some(kwd(minor));
        decide(&event, Some(&pending))
    };
    assert_eq!(
        paid(12_340),
        Verdict::Pay {
            order: pending.id.clone()
        }
    );
    assert!(matches!(paid(12_347), Verdict::Review { .. }));
    assert!(matches!(paid(12_350), Verdict::Review { .. }));
}

#[test]
fn only_the_exact_total_pays_a_pending_order() {
    let pending = order(OrderStatus::PendingPayment);
    assert_eq!(
        decide(&succeeded(4490, "eur").read(), Some(&pending)),
        Verdict::Pay {
            order: pending.id.clone()
        }
    );
    for wrong in [
        succeeded(4489, "eur"),
        succeeded(4490, "usd"),
        succeeded(4490, "xxx"),
    ] {
        assert_eq!(
            decide(&wrong.read(), Some(&pending)),
            Verdict::Review {
                order: pending.id.clone(),
                from: OrderStatus::PendingPayment,
                reason: ReviewReason::AmountMismatch,
                captured: if wrong.read().amount.map(|a| a.currency()) == Some(Currency::Eur) {
                    4489
                } else {
                    0
                },
            }
        );
    }
    // Money taken for an order that expired or was cancelled is recorded as captured, so
    // the merchant can refund it; a paid order's or one in review already is not again.
    for (status, reason, captured) in [
        (OrderStatus::Paid, ReviewReason::AlreadyPaid, 0),
        (OrderStatus::Delivered, ReviewReason::AlreadyPaid, 0),
        (OrderStatus::Expired, ReviewReason::OrderExpired, 4490),
        (OrderStatus::Cancelled, ReviewReason::OrderCancelled, 4490),
        (OrderStatus::PaymentReview, ReviewReason::AlreadyInReview, 0),
    ] {
        assert_eq!(
            decide(&succeeded(4490, "eur").read(), Some(&order(status))),
            Verdict::Review {
                order: pending.id.clone(),
                from: status,
                reason,
                captured,
            },
            "a success never pays an order that is not pending ({status:?})"
        );
    }
    assert_eq!(
        decide(&succeeded(4490, "eur").read(), None),
        Verdict::Record(Outcome::UnknownOrder)
    );
}

#[test]
fn other_events_are_recorded_and_unknown_types_ignored() {
    let mut failed = succeeded(4490, "eur");
    failed.kind = "payment_intent.payment_failed".into();
    let paid = order(OrderStatus::Paid);
    assert_eq!(
        decide(&failed.read(), Some(&paid)),
        Verdict::Record(Outcome::Recorded)
    );
    let mut other = succeeded(4490, "eur");
    other.kind = "customer.created".into();
    assert_eq!(decide(&other.read(), Some(&paid)), Verdict::Ignore);
}

#[test]
fn refund_events_name_their_refund_or_the_cumulative_amount() {
    let charge: StripeEvent = serde_json::from_str(
        r#"{"id":"evt_1","type":"charge.refunded","created":1800000000,"data":{"object":{"id":"ch_1","object":"charge","amount":4490,"amount_refunded":1500,"currency":"eur","payment_intent":"pi_1"}}}"#,
    )
    .unwrap();
    let read = charge.read();
    assert_eq!(
        (read.effect, read.refunded_total, read.refund_ids.len()),
        (Some(Effect::Refunded), Some(1500), 0)
    );
    let paid = order(OrderStatus::Paid);
    assert_eq!(
        decide(&read, Some(&paid)),
        Verdict::Refund {
            order: paid.id.clone(),
            failed: false
        }
    );
    let refund = |status: &str| -> PaymentEvent {
        serde_json::from_value::<StripeEvent>(serde_json::json!({
            "id": "evt_2", "type": "refund.updated", "created": 1_800_000_000,
            "data": {"object": {"id": "re_1", "object": "refund", "amount": 500,
                "currency": "eur", "payment_intent": "pi_1", "status": status,
                "metadata": {"refund_id": "rfd_1"}}}
        }))
        .unwrap()
        .read()
    };
    let succeeded = refund("succeeded");
    assert_eq!(succeeded.effect, Some(Effect::Refunded));
    assert_eq!(
        succeeded.refund_ids,
        vec!["re_1".to_owned(), "rfd_1".to_owned()]
    );
    assert_eq!(succeeded.payment_id, "pi_1");
    assert_eq!(succeeded.refunded_total, None);
    assert_eq!(refund("failed").effect, Some(Effect::RefundFailed));
    assert_eq!(refund("pending").effect, None, "not settled yet: ignored");
}

#[test]
fn followups_name_placed_orders_and_cancel_payments_of_orders_closed_unpaid() {
    use crate::events::OrderClosed;
    let id = order(OrderStatus::Paid).id;
    let closed = |from, status| OrderClosed {
        order_id: id.clone(),
        from,
        status,
        refund_required: false,
    };
    let pending = OrderStatus::PendingPayment;
    assert_eq!(
        Followup::of(&Payload::OrderExpired(closed(
            pending,
            OrderStatus::Expired
        ))),
        Some(Followup::Cancel(id.clone()))
    );
    assert_eq!(
        Followup::of(&Payload::OrderCancelled(closed(
            pending,
            OrderStatus::Cancelled
        ))),
        Some(Followup::Cancel(id.clone()))
    );
    for from in [OrderStatus::Paid, OrderStatus::PaymentReview] {
        assert_eq!(
            Followup::of(&Payload::OrderCancelled(closed(
                from,
                OrderStatus::Cancelled
            ))),
            None,
            "money was taken: nothing to cancel ({from:?})"
        );
    }
}

#[test]
fn a_provider_name_gives_its_secrets_setting() {
    assert_eq!(
        standard_secrets_setting("acme_pay2").as_deref(),
        Some("PAYMENT_WEBHOOK_SECRETS_ACME_PAY2")
    );
    for bad in ["", "Acme", "2pay", "acme-pay", "a%2Fb", &"a".repeat(33)] {
        assert_eq!(standard_secrets_setting(bad), None, "{bad}");
    }
}

#[test]
fn reads_the_standard_webhooks_vocabulary() {
    let event: StandardEvent = serde_json::from_str(
        r#"{"type":"payment.succeeded","timestamp":"2027-01-15T08:00:00Z","data":{"payment_id":"pay_1","amount_minor":4490,"currency":"eur","order_id":"ord_0000000000000000000000000000000a"}}"#,
    )
    .unwrap();
    let read = event.read("msg_1");
    assert_eq!(read.id, "msg_1");
    assert_eq!(read.effect, Some(Effect::Succeeded));
    assert_eq!(read.payment_id, "pay_1");
    assert_eq!(read.occurred_at, NOW);
    assert_eq!(read.amount, Money::from_minor(4490, Currency::Eur).ok());
    assert_eq!(read.order_hint, Some(order(OrderStatus::Paid).id));
    let pending = order(OrderStatus::PendingPayment);
    assert_eq!(
        decide(&read, Some(&pending)),
        Verdict::Pay {
            order: pending.id.clone()
        }
    );
    for (kind, effect) in [
        ("payment.failed", Some(Effect::Failed)),
        ("refund.succeeded", Some(Effect::Refunded)),
        ("payment.created", None),
    ] {
        let other = StandardEvent {
            kind: kind.into(),
            ..event.clone()
        };
        assert_eq!(other.read("msg_2").effect, effect, "{kind}");
    }
    for bad in [
        r#"{"type":"payment.succeeded","timestamp":"yesterday","data":{"payment_id":"p"}}"#,
        r#"{"type":"payment.succeeded","timestamp":"2027-01-15T08:00:00Z","data":{}}"#,
        r#"{"type":"payment.succeeded","timestamp":"2027-01-15T08:00:00Z"}"#,
    ] {
        assert!(serde_json::from_str::<StandardEvent>(bad).is_err(), "{bad}");
    }
}

proptest::proptest! {
    /// A success pays an order only when it is pending payment and the amount is exactly
    /// what the provider charges for it; every other success goes to review from the status
    /// it found (never un-paying anything), recording as captured at most that charge, and
    /// only when the order enters review with nothing captured before.
    #[test]
    fn only_an_exact_success_pays_and_a_review_captures_within_the_charge(
        status in proptest::sample::select(OrderStatus::ALL.to_vec()),
        paid_minor in 0i64..10_000,
        in_euros in proptest::bool::ANY,
        charged_minor in 1i64..10_000,
        captured_before in 0i64..10_000,
    ) {
        use proptest::prelude::*;
        use crate::orders::order::Transition;
        let charged = Money::from_minor(charged_minor, Currency::Eur).unwrap();
        let ledger =
            crate::orders::order::PaymentLedger::restore(captured_before.min(charged_minor), 0).unwrap();
        let order = PayableOrder { status, charged, total: charged, ledger, ..order(status) };
        let event = succeeded(paid_minor, if in_euros { "eur" } else { "usd" }).read();
        let exact = event.amount == Some(charged);
        match decide(&event, Some(&order)) {
            Verdict::Pay { order: paid } => {
                prop_assert_eq!(paid, order.id);
                prop_assert!(exact && status == OrderStatus::PendingPayment);
            }
            Verdict::Review { order: reviewed, from, reason, captured } => {
                prop_assert_eq!(reviewed, order.id);
                prop_assert_eq!(from, status);
                prop_assert!(!(exact && status == OrderStatus::PendingPayment));
                prop_assert_eq!(reason == ReviewReason::AmountMismatch, !exact);
                prop_assert!((0..=charged_minor).contains(&captured));
                let may_capture = in_euros
                    && ledger.captured() == 0
                    && status.apply(Transition::Review).is_ok();
                let expected = if may_capture { paid_minor.min(charged_minor) } else { 0 };
                prop_assert_eq!(captured, expected);
            }
            other => prop_assert!(false, "a success is paid or reviewed: {:?}", other),
        }
    }
}

#[test]
fn a_failed_followup_is_retried_until_its_third_delivery() {
    assert!(Followup::retried_after(1));
    assert!(Followup::retried_after(2));
    assert!(!Followup::retried_after(Followup::ATTEMPTS));
    assert!(!Followup::retried_after(7));
}
