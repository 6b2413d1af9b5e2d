use super::*;

const BODY: &[u8] = br#"{"id":"evt_1"}"#;

#[test]
fn a_callback_announces_the_shipment_moved_and_the_order_delivered() {
    let ids = crate::testing::SequentialIds::default();
    let shipment = TrackedShipment {
        id: ShipmentId::mint(&ids),
        order_id: OrderId::mint(&ids),
        carrier: Carrier::parse("dhl").unwrap(),
        tracking_number: TrackingNumber::parse("JD0001").unwrap(),
    };
    let at = Timestamp::from_millis(1_800_000_000_000);
    let update = TrackingUpdate {
        event_id: "evt_1".into(),
        carrier: None,
        tracking_number: shipment.tracking_number.clone(),
        status: TrackingStatus::Failure,
        status_at: at,
        checkpoints: Vec::new(),
    };
    let announced = announce(&shipment, &update, &ids, at);
    let Payload::ShipmentUpdated(moved) = &announced.moved.payload else {
        panic!("shipment.updated");
    };
    assert_eq!(
        (moved.status, moved.exception),
        (TrackingStatus::Failure, true)
    );
    assert_eq!(moved.shipment_id, shipment.id);
    let Payload::OrderDelivered(delivered) = &announced.delivered.payload else {
        panic!("order.delivered");
    };
    assert_eq!(delivered.order_id, shipment.order_id);
    assert_ne!(announced.moved.id, announced.delivered.id);
}

fn hmac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn verifies_both_formats_with_any_configured_secret() {
    let secrets = vec!["old".to_owned(), "new".to_owned()];
    for secret in ["old", "new"] {
        let hex = format!("hmac-sha256-hex={}", hex::encode(hmac(secret, BODY)));
        assert_eq!(
            verify(PartnerFormat::EasyPost, Some(&hex), BODY, &secrets),
            Ok(())
        );
        let b64 = STANDARD.encode(hmac(secret, BODY));
        assert_eq!(
            verify(PartnerFormat::AfterShip, Some(&b64), BODY, &secrets),
            Ok(())
        );
    }
    let other = format!("hmac-sha256-hex={}", hex::encode(hmac("other", BODY)));
    assert_eq!(
        verify(PartnerFormat::EasyPost, Some(&other), BODY, &secrets),
        Err(SignatureError::NoMatch)
    );
    let good = format!("hmac-sha256-hex={}", hex::encode(hmac("new", BODY)));
    assert_eq!(
        verify(PartnerFormat::EasyPost, Some(&good), b"{}", &secrets),
        Err(SignatureError::NoMatch),
        "tampered"
    );
    assert_eq!(
        verify(PartnerFormat::EasyPost, Some("sha256=ab"), BODY, &secrets),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verify(PartnerFormat::AfterShip, None, BODY, &secrets),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify(PartnerFormat::AfterShip, Some("x"), BODY, &[]),
        Err(SignatureError::NoSecret)
    );
}

#[test]
fn partners_are_configured_by_name() {
    let setting = "easypost:easypost, acme_post:aftership,bad:csv";
    assert_eq!(
        partner_format(setting, "acme_post"),
        Some(PartnerFormat::AfterShip)
    );
    assert_eq!(
        partner_format(setting, "easypost"),
        Some(PartnerFormat::EasyPost)
    );
    assert_eq!(partner_format(setting, "bad"), None);
    assert_eq!(partner_format(setting, "other"), None);
    assert_eq!(
        secrets_setting("acme_post").as_deref(),
        Some("LOGISTICS_SECRETS_ACME_POST")
    );
    assert_eq!(secrets_setting("Acme"), None);
}

#[test]
fn reads_both_formats_into_one_model() {
    let easypost = read_easypost(
        r#"{"id":"evt_9","object":"Event","description":"tracker.updated","created_at":"2027-01-15T09:00:00Z",
           "result":{"id":"trk_1","object":"Tracker","tracking_code":"9400111899223817576354","carrier":"USPS","status":"out_for_delivery",
           "tracking_details":[{"message":"Accepted","status":"pre_transit","datetime":"2027-01-14T08:00:00Z","tracking_location":{"city":"Tulsa","country":"US"}},
                               {"message":"Out for delivery","status":"out_for_delivery","datetime":"2027-01-15T07:00:00Z","tracking_location":{"city":null,"country":"US"}}]}}"#,
    )
    .unwrap();
    assert_eq!(easypost.event_id, "evt_9");
    assert_eq!(easypost.carrier.as_ref().map(Carrier::as_str), Some("usps"));
    assert_eq!(easypost.status, TrackingStatus::OutForDelivery);
    assert_eq!(
        easypost.status_at,
        Timestamp::parse_rfc3339("2027-01-15T07:00:00Z").unwrap()
    );
    assert_eq!(
        easypost.checkpoints[0].location.as_deref(),
        Some("Tulsa, US")
    );
    assert_eq!(easypost.checkpoints[1].location.as_deref(), Some("US"));

    let aftership = read_aftership(
        r#"{"event":"tracking_update","event_id":"a1b2","ts":1800000000,
           "msg":{"id":"x","tracking_number":"1z999aa10123456784","slug":"ups","tag":"AttemptFail",
           "checkpoints":[{"checkpoint_time":"2027-01-15T07:30:00+01:00","tag":"AttemptFail","message":"No one home","city":"Utrecht","country_name":"Netherlands"}]}}"#,
    )
    .unwrap();
    assert_eq!(aftership.tracking_number.as_str(), "1Z999AA10123456784");
    assert_eq!(aftership.status, TrackingStatus::Failure);
    assert!(aftership.status.is_exception());
    assert_eq!(
        aftership.checkpoints[0].location.as_deref(),
        Some("Utrecht, Netherlands")
    );
    assert!(read_aftership(
        r#"{"event_id":"a","ts":1,"msg":{"tracking_number":"1","tag":"InTransit"}}"#
    )
    .is_err());
    assert!(read_easypost("{}").is_err());
}

#[test]
fn every_partner_status_has_a_place() {
    for status in [
        "pre_transit",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "available_for_pickup",
        "return_to_sender",
        "failure",
        "cancelled",
        "error",
    ] {
        assert_ne!(
            TrackingStatus::from_easypost(status),
            TrackingStatus::Unknown,
            "{status}"
        );
    }
    for tag in [
        "InfoReceived",
        "InTransit",
        "OutForDelivery",
        "AttemptFail",
        "Delivered",
        "AvailableForPickup",
        "Exception",
        "Pending",
    ] {
        assert_ne!(
            TrackingStatus::from_aftership(tag),
            TrackingStatus::Unknown,
            "{tag}"
        );
    }
    assert_eq!(
        TrackingStatus::from_aftership("Expired"),
        TrackingStatus::Unknown
    );
    assert!(TrackingStatus::Delivered.progress() > TrackingStatus::InTransit.progress());
}

#[test]
fn a_normal_status_is_announced_as_it_stands_and_only_forward_statuses_rank() {
    let ids = crate::testing::SequentialIds::default();
    let shipment = TrackedShipment {
        id: ShipmentId::mint(&ids),
        order_id: OrderId::mint(&ids),
        carrier: Carrier::parse("postnl").unwrap(),
        tracking_number: TrackingNumber::parse("3SABCD1234").unwrap(),
    };
    let reached = Timestamp::from_millis(1_799_999_000_000);
    let now = Timestamp::from_millis(1_800_000_000_000);
    let update = TrackingUpdate {
        event_id: "evt_2".into(),
        carrier: Carrier::parse("dhl"),
        tracking_number: shipment.tracking_number.clone(),
        status: TrackingStatus::OutForDelivery,
        status_at: reached,
        checkpoints: Vec::new(),
    };
    let announced = announce(&shipment, &update, &ids, now);
    assert_eq!(
        announced.moved.payload,
        Payload::ShipmentUpdated(ShipmentUpdated {
            shipment_id: shipment.id.clone(),
            order_id: shipment.order_id.clone(),
            carrier: shipment.carrier.clone(),
            tracking_number: shipment.tracking_number.clone(),
            status: TrackingStatus::OutForDelivery,
            status_at: reached,
            exception: false,
        }),
        "the shipment's own carrier, whatever the callback calls it"
    );
    assert_eq!(
        (announced.moved.created_at, announced.delivered.created_at),
        (now, now)
    );
    assert_eq!(
        announced.delivered.kind(),
        crate::events::EventKind::OrderDelivered
    );
    // The normal flow ranks strictly forward; exceptions and unknown do not rank.
    let flow = [
        TrackingStatus::PreTransit,
        TrackingStatus::InTransit,
        TrackingStatus::OutForDelivery,
        TrackingStatus::AvailableForPickup,
        TrackingStatus::Delivered,
    ];
    let ranks: Vec<Option<u8>> = flow.iter().map(|s| s.progress()).collect();
    assert!(ranks.iter().all(Option::is_some));
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    for status in TrackingStatus::ALL {
        assert_eq!(
            status.progress().is_none(),
            status.is_exception() || status == TrackingStatus::Unknown,
            "{status:?}"
        );
    }
}
