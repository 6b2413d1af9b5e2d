//! Domain events, written to the outbox in the same batch as the change they announce, then sent
//! on the queue and to merchants. [`Event`] is the envelope itself: serialized, it is
//! `{"id", "created_at", "type", "data"}`, and every kind has a typed payload ([`Payload`]).

use serde::{Deserialize, Serialize};

use crate::kernel::ids::{CartId, EventId, IdSource, OrderId, ProductId, RefundId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::time::Timestamp;
use crate::orders::status::OrderStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub created_at: Timestamp,
    /// `type` and `data`.
    #[serde(flatten)]
    pub payload: Payload,
}

impl Event {
    pub fn new(ids: &dyn IdSource, now: Timestamp, payload: Payload) -> Self {
        Event {
            id: EventId::mint(ids),
            created_at: now,
            payload,
        }
    }

    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

/// What an event says, by kind. A message whose `type` is not one of these, or whose `data` is
/// not its kind's payload, is not an event (the consumer records it as undecodable at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Payload {
    #[serde(rename = "order.created")]
    OrderCreated(OrderCreated),
    #[serde(rename = "order.paid")]
    OrderPaid(OrderPaid),
    #[serde(rename = "order.cancelled")]
    OrderCancelled(OrderClosed),
    #[serde(rename = "order.expired")]
    OrderExpired(OrderClosed),
    #[serde(rename = "order.payment_review")]
    OrderPaymentReview(PaymentReview),
    #[serde(rename = "order.refunded")]
    OrderRefunded(OrderRefunded),
    #[serde(rename = "shipment.created")]
    ShipmentCreated(crate::orders::parcels::ShipmentCreated),
    #[serde(rename = "shipment.updated")]
    ShipmentUpdated(crate::orders::parcels::ShipmentUpdated),
    #[serde(rename = "order.delivered")]
    OrderDelivered(crate::orders::parcels::OrderDelivered),
    #[serde(rename = "inventory.low")]
    InventoryLow(InventoryLow),
    #[serde(rename = "ticket.created")]
    TicketCreated(crate::support::tickets::TicketCreated),
    #[serde(rename = "ticket.replied")]
    TicketReplied(crate::support::tickets::TicketReplied),
    #[serde(rename = "ticket.resolved")]
    TicketResolved(crate::support::tickets::TicketResolved),
    #[serde(rename = "customer.registered")]
    CustomerRegistered(crate::customers::accounts::CustomerRegistered),
    #[serde(rename = "customer.password_reset_requested")]
    CustomerPasswordResetRequested(crate::customers::accounts::PasswordResetRequested),
    #[serde(rename = "customer.erased")]
    CustomerErased(crate::customers::accounts::CustomerErased),
    #[serde(rename = "product.created")]
    ProductCreated(crate::catalog::management::product::ProductChanged),
    #[serde(rename = "product.updated")]
    ProductUpdated(crate::catalog::management::product::ProductChanged),
    #[serde(rename = "product.archived")]
    ProductArchived(crate::catalog::management::product::ProductChanged),
    #[serde(rename = "variant.created")]
    VariantCreated(crate::catalog::management::variant::VariantChanged),
    #[serde(rename = "variant.updated")]
    VariantUpdated(crate::catalog::management::variant::VariantChanged),
    #[serde(rename = "variant.archived")]
    VariantArchived(crate::catalog::management::variant::VariantChanged),
    #[serde(rename = "category.created")]
    CategoryCreated(crate::catalog::management::category::CategoryChanged),
    #[serde(rename = "category.updated")]
    CategoryUpdated(crate::catalog::management::category::CategoryChanged),
}

impl Payload {
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::OrderCreated(_) => EventKind::OrderCreated,
            Payload::OrderPaid(_) => EventKind::OrderPaid,
            Payload::OrderCancelled(_) => EventKind::OrderCancelled,
            Payload::OrderExpired(_) => EventKind::OrderExpired,
            Payload::OrderPaymentReview(_) => EventKind::OrderPaymentReview,
            Payload::OrderRefunded(_) => EventKind::OrderRefunded,
            Payload::ShipmentCreated(_) => EventKind::ShipmentCreated,
            Payload::ShipmentUpdated(_) => EventKind::ShipmentUpdated,
            Payload::OrderDelivered(_) => EventKind::OrderDelivered,
            Payload::TicketCreated(_) => EventKind::TicketCreated,
            Payload::TicketReplied(_) => EventKind::TicketReplied,
            Payload::TicketResolved(_) => EventKind::TicketResolved,
            Payload::CustomerRegistered(_) => EventKind::CustomerRegistered,
            Payload::CustomerPasswordResetRequested(_) => EventKind::CustomerPasswordResetRequested,
            Payload::CustomerErased(_) => EventKind::CustomerErased,
            Payload::InventoryLow(_) => EventKind::InventoryLow,
            Payload::ProductCreated(_) => EventKind::ProductCreated,
            Payload::ProductUpdated(_) => EventKind::ProductUpdated,
            Payload::ProductArchived(_) => EventKind::ProductArchived,
            Payload::VariantCreated(_) => EventKind::VariantCreated,
            Payload::VariantUpdated(_) => EventKind::VariantUpdated,
            Payload::VariantArchived(_) => EventKind::VariantArchived,
            Payload::CategoryCreated(_) => EventKind::CategoryCreated,
            Payload::CategoryUpdated(_) => EventKind::CategoryUpdated,
        }
    }

    /// The `data` alone, as JSON text (what the outbox's `payload` column holds).
    pub fn data_json(&self) -> Result<String, serde_json::Error> {
        match self {
            Payload::OrderCreated(p) => serde_json::to_string(p),
            Payload::OrderPaid(p) => serde_json::to_string(p),
            Payload::OrderCancelled(p) | Payload::OrderExpired(p) => serde_json::to_string(p),
            Payload::OrderPaymentReview(p) => serde_json::to_string(p),
            Payload::OrderRefunded(p) => serde_json::to_string(p),
            Payload::ShipmentCreated(p) => serde_json::to_string(p),
            Payload::ShipmentUpdated(p) => serde_json::to_string(p),
            Payload::OrderDelivered(p) => serde_json::to_string(p),
            Payload::TicketCreated(p) => serde_json::to_string(p),
            Payload::TicketReplied(p) => serde_json::to_string(p),
            Payload::TicketResolved(p) => serde_json::to_string(p),
            Payload::CustomerRegistered(p) => serde_json::to_string(p),
            Payload::CustomerPasswordResetRequested(p) => serde_json::to_string(p),
            Payload::CustomerErased(p) => serde_json::to_string(p),
            Payload::InventoryLow(p) => serde_json::to_string(p),
            Payload::ProductCreated(p)
            | Payload::ProductUpdated(p)
            | Payload::ProductArchived(p) => serde_json::to_string(p),
            Payload::VariantCreated(p)
            | Payload::VariantUpdated(p)
            | Payload::VariantArchived(p) => serde_json::to_string(p),
            Payload::CategoryCreated(p) | Payload::CategoryUpdated(p) => serde_json::to_string(p),
        }
    }

    /// From the outbox's `type` and `payload` columns.
    /// Each kind's `data` is read straight from the text by its own type: no `Value` and no
    /// buffered tag in between, which keeps every producing worker's wasm small.
    pub fn from_parts(kind: &str, data: &str) -> Result<Self, serde_json::Error> {
        use serde::de::Error as _;
        use serde_json::from_str as read;
        let Some(kind) = EventKind::parse(kind) else {
            return Err(serde_json::Error::custom(format!(
                "unknown event type `{kind}`"
            )));
        };
        Ok(match kind {
            EventKind::OrderCreated => Payload::OrderCreated(read(data)?),
            EventKind::OrderPaid => Payload::OrderPaid(read(data)?),
            EventKind::OrderCancelled => Payload::OrderCancelled(read(data)?),
            EventKind::OrderExpired => Payload::OrderExpired(read(data)?),
            EventKind::OrderPaymentReview => Payload::OrderPaymentReview(read(data)?),
            EventKind::OrderRefunded => Payload::OrderRefunded(read(data)?),
            EventKind::ShipmentCreated => Payload::ShipmentCreated(read(data)?),
            EventKind::ShipmentUpdated => Payload::ShipmentUpdated(read(data)?),
            EventKind::OrderDelivered => Payload::OrderDelivered(read(data)?),
            EventKind::InventoryLow => Payload::InventoryLow(read(data)?),
            EventKind::TicketCreated => Payload::TicketCreated(read(data)?),
            EventKind::TicketReplied => Payload::TicketReplied(read(data)?),
            EventKind::TicketResolved => Payload::TicketResolved(read(data)?),
            EventKind::CustomerRegistered => Payload::CustomerRegistered(read(data)?),
            EventKind::CustomerPasswordResetRequested => {
                Payload::CustomerPasswordResetRequested(read(data)?)
            }
            EventKind::CustomerErased => Payload::CustomerErased(read(data)?),
            EventKind::ProductCreated => Payload::ProductCreated(read(data)?),
            EventKind::ProductUpdated => Payload::ProductUpdated(read(data)?),
            EventKind::ProductArchived => Payload::ProductArchived(read(data)?),
            EventKind::VariantCreated => Payload::VariantCreated(read(data)?),
            EventKind::VariantUpdated => Payload::VariantUpdated(read(data)?),
            EventKind::VariantArchived => Payload::VariantArchived(read(data)?),
            EventKind::CategoryCreated => Payload::CategoryCreated(read(data)?),
            EventKind::CategoryUpdated => Payload::CategoryUpdated(read(data)?),
        })
    }
}

/// `order.created`: an order was placed (paid or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: OrderId,
    pub cart_id: CartId,
    pub currency: Currency,
    pub total: Money,
    pub lines: Vec<OrderCreatedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreatedLine {
    pub sku: Sku,
    pub product_id: ProductId,
    pub quantity: u32,
    pub total: Money,
}

impl OrderCreated {
    pub fn units(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }
}

/// `order.paid`: the payment was captured in full; the order's stock is sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub order_id: OrderId,
    /// What has been captured in all, in minor units of the order's currency.
    pub captured_minor: i64,
}

/// `order.cancelled` and `order.expired`: the order closed and its stock went back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderClosed {
    pub order_id: OrderId,
    pub from: OrderStatus,
    pub status: OrderStatus,
    /// A paid order that is cancelled must be refunded.
    pub refund_required: bool,
}

/// `order.payment_review`: a provider reports a payment that could not pay its order as it
/// stood (see [`ReviewReason`]). The money was taken: the merchant must look, a refund may be
/// due. `status` is where the order is now (`payment_review`, or unchanged when it was paid
/// already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReview {
    pub order_id: OrderId,
    pub from: OrderStatus,
    pub status: OrderStatus,
    #[serde(flatten)]
    pub payment: ReviewedPayment,
}

/// The payment behind an `order.payment_review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewedPayment {
    pub reason: ReviewReason,
    pub provider: String,
    pub payment_id: String,
    /// The provider's event that reported it.
    pub provider_event_id: String,
    /// What the provider says was paid, when it says it in a known currency.
    pub amount: Option<Money>,
}

/// Why a successful payment did not pay its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The amount or currency is not the order's total.
    AmountMismatch,
    /// The order had expired (its stock released) before the payment arrived.
    OrderExpired,
    /// The order had been cancelled.
    OrderCancelled,
    /// The order was paid already (a second payment).
    AlreadyPaid,
    /// The order is in review already (another payment arrived).
    AlreadyInReview,
}

/// `order.refunded`: the provider confirmed a refund; the money went back (and the stock of the
/// lines marked `restock` is on the shelf again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub order_id: OrderId,
    pub refund_id: RefundId,
    pub amount: Money,
    /// The part of the amount that is shipping.
    pub shipping: Money,
    /// What has been refunded of the order in all, in minor units.
    pub refunded_minor: i64,
    pub reason: String,
    pub lines: Vec<RefundLine>,
}

/// `inventory.low`: a SKU's availability fell to or below its threshold, because of an order or
/// an adjustment (written by SQL inside the batch that took the stock, see `shared/edge`'s
/// outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLow {
    pub sku: Sku,
    pub available: i64,
    pub low_threshold: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment_id: Option<String>,
}

/// Every kind of event this system writes (payment, shipment and ticket events join here, each
/// with its [`Payload`] variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    OrderCreated,
    OrderPaid,
    OrderCancelled,
    OrderExpired,
    OrderPaymentReview,
    OrderRefunded,
    ShipmentCreated,
    ShipmentUpdated,
    OrderDelivered,
    InventoryLow,
    TicketCreated,
    TicketReplied,
    TicketResolved,
    CustomerRegistered,
    CustomerPasswordResetRequested,
    CustomerErased,
    ProductCreated,
    ProductUpdated,
    ProductArchived,
    VariantCreated,
    VariantUpdated,
    VariantArchived,
    CategoryCreated,
    CategoryUpdated,
}

impl EventKind {
    pub const ALL: [EventKind; 24] = [
        EventKind::OrderCreated,
        EventKind::OrderPaid,
        EventKind::OrderCancelled,
        EventKind::OrderExpired,
        EventKind::OrderPaymentReview,
        EventKind::OrderRefunded,
        EventKind::ShipmentCreated,
        EventKind::ShipmentUpdated,
        EventKind::OrderDelivered,
        EventKind::InventoryLow,
        EventKind::TicketCreated,
        EventKind::TicketReplied,
        EventKind::TicketResolved,
        EventKind::CustomerRegistered,
        EventKind::CustomerPasswordResetRequested,
        EventKind::CustomerErased,
        EventKind::ProductCreated,
        EventKind::ProductUpdated,
        EventKind::ProductArchived,
        EventKind::VariantCreated,
        EventKind::VariantUpdated,
        EventKind::VariantArchived,
        EventKind::CategoryCreated,
        EventKind::CategoryUpdated,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order.created",
            EventKind::OrderPaid => "order.paid",
            EventKind::OrderCancelled => "order.cancelled",
            EventKind::OrderExpired => "order.expired",
            EventKind::OrderPaymentReview => "order.payment_review",
            EventKind::OrderRefunded => "order.refunded",
            EventKind::ShipmentCreated => "shipment.created",
            EventKind::ShipmentUpdated => "shipment.updated",
            EventKind::OrderDelivered => "order.delivered",
            EventKind::InventoryLow => "inventory.low",
            EventKind::TicketCreated => "ticket.created",
            EventKind::TicketReplied => "ticket.replied",
            EventKind::TicketResolved => "ticket.resolved",
            EventKind::CustomerRegistered => "customer.registered",
            EventKind::CustomerPasswordResetRequested => "customer.password_reset_requested",
            EventKind::CustomerErased => "customer.erased",
            EventKind::ProductCreated => "product.created",
            EventKind::ProductUpdated => "product.updated",
            EventKind::ProductArchived => "product.archived",
            EventKind::VariantCreated => "variant.created",
            EventKind::VariantUpdated => "variant.updated",
            EventKind::VariantArchived => "variant.archived",
            EventKind::CategoryCreated => "category.created",
            EventKind::CategoryUpdated => "category.updated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What a merchant webhook endpoint subscribes to: `*` (every kind, present and future) or 1
/// to [`Subscription::MAX_TYPES`] kinds. Stored and shown as the list of strings it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription(Vec<String>);

/// Why a subscription is refused: `index` is the offending entry, when one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionError {
    pub index: Option<usize>,
    pub message: String,
}

impl Subscription {
    pub const MAX_TYPES: usize = 20;

    pub fn parse(types: Vec<String>) -> Result<Self, SubscriptionError> {
        if types.is_empty() || types.len() > Self::MAX_TYPES {
            return Err(SubscriptionError {
                index: None,
                message: format!("event_types lists 1 to {} types", Self::MAX_TYPES),
            });
        }
        if let Some((i, bad)) = types
            .iter()
            .enumerate()
            .find(|(_, t)| t.as_str() != "*" && EventKind::parse(t).is_none())
        {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(SubscriptionError {
                index: Some(i),
                message: format!(
                    "{bad:?} is not an event type; known: *, {}",
                    known.join(", ")
                ),
            });
        }
        Ok(Subscription(types))
    }

    pub fn types(&self) -> &[String] {
        &self.0
    }

    pub fn into_types(self) -> Vec<String> {
        self.0
    }
}

/// A refund line as allocated (amounts in minor units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub position: u32,
    pub sku: Sku,
    /// Units refunded (0 when the refund is of an amount, not of units).
    pub quantity: u32,
    pub amount: Money,
    pub restock: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip_and_subscriptions_parse() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        let types = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(Subscription::parse(types(&["*"])).is_ok());
        assert_eq!(
            Subscription::parse(types(&["order.paid", "inventory.low"]))
                .unwrap()
                .types(),
            ["order.paid", "inventory.low"]
        );
        assert_eq!(Subscription::parse(vec![]).unwrap_err().index, None);
        assert_eq!(
            Subscription::parse(types(&["order.paid", "order.payed"]))
                .unwrap_err()
                .index,
            Some(1)
        );
        assert!(Subscription::parse(vec!["order.paid".into(); 21]).is_err());
    }

    #[test]
    fn order_created_counts_units() {
        let data = serde_json::json!({
            "order_id": "ord_0000000000000000000000000000000a",
            "cart_id": "cart_0000000000000000000000000000000a",
            "currency": "EUR",
            "total": {"amount": "44.90", "currency": "EUR"},
            "lines": [
                {"sku": "TEE-M", "product_id": "prod_tee", "quantity": 2, "total": {"amount": "20.00", "currency": "EUR"}},
                {"sku": "TEE-L", "product_id": "prod_tee", "quantity": 1, "total": {"amount": "10.00", "currency": "EUR"}},
                {"sku": "MUG", "product_id": "prod_mug", "quantity": 1, "total": {"amount": "10.00", "currency": "EUR"}}
            ]
        });
        let created: OrderCreated = serde_json::from_value(data).unwrap();
        assert_eq!(created.units(), 4);
    }

    #[test]
    fn an_event_is_the_envelope_and_its_payload_is_typed_by_kind() {
        let text = r#"{"id":"evt_0000000000000000000000000000000a","type":"inventory.low","created_at":"2026-11-28T10:00:00.000Z","data":{"sku":"MUG","available":3,"low_threshold":5,"order_id":"ord_0000000000000000000000000000000a"}}"#;
        let event: Event = serde_json::from_str(text).unwrap();
        assert_eq!(event.kind(), EventKind::InventoryLow);
        let Payload::InventoryLow(low) = &event.payload else {
            panic!("typed by its kind: {event:?}");
        };
        assert_eq!((low.available, low.adjustment_id.as_deref()), (3, None));
        // Serialized back: the same envelope, and the same payload text the outbox keeps.
        let again: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        let stored = event.payload.data_json().unwrap();
        assert_eq!(
            Payload::from_parts("inventory.low", &stored).unwrap(),
            event.payload
        );

        // Two kinds that share a payload type are still read as their own kind.
        let closed = r#"{"order_id":"ord_0000000000000000000000000000000a","from":"pending_payment","status":"cancelled","refund_required":false}"#;
        for kind in [EventKind::OrderCancelled, EventKind::OrderExpired] {
            let payload = Payload::from_parts(kind.as_str(), closed).unwrap();
            assert_eq!(payload.kind(), kind);
            assert_eq!(payload.data_json().unwrap(), closed);
        }

        // Not an event: an unknown kind, or a payload that is not its kind's.
        assert!(Payload::from_parts("order.note", "{}").is_err());
        assert!(Payload::from_parts("order.paid", r#"{"order_id":42}"#).is_err());
        assert!(
            serde_json::from_str::<Event>(&text.replace("inventory.low", "order.paid")).is_err()
        );
    }

    #[test]
    fn a_subscription_takes_up_to_twenty_known_types_or_the_wildcard() {
        let every: Vec<String> = EventKind::ALL
            .iter()
            .map(|k| k.as_str().to_owned())
            .cycle()
            .take(Subscription::MAX_TYPES)
            .collect();
        assert_eq!(
            Subscription::parse(every.clone()).unwrap().into_types(),
            every,
            "kept as given"
        );
        let mut too_many = every;
        too_many.push("order.paid".into());
        let refused = Subscription::parse(too_many).unwrap_err();
        assert_eq!(refused.index, None);
        assert!(refused.message.contains("1 to 20"));
        assert!(Subscription::parse(vec!["*".into(), "order.paid".into()]).is_ok());
        let unknown = Subscription::parse(vec!["*".into(), "Order.Paid".into()]).unwrap_err();
        assert_eq!(unknown.index, Some(1), "types are exact");
        assert!(unknown.message.contains("known: *, "));
        assert!(unknown.message.contains("order.paid"));
    }
}
