//! Domain events, written to the outbox in the same batch as the change they announce.
//! Envelope on the queue and to merchants: `{id, type, created_at, data}`.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, IdSource};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: Timestamp,
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(ids: &dyn IdSource, kind: &str, now: Timestamp, data: serde_json::Value) -> Self {
        Event {
            id: EventId::mint(ids),
            kind: kind.to_owned(),
            created_at: now,
            data,
        }
    }
}

/// Every kind of event this system writes (payment, shipment and ticket events join here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    OrderCreated,
    OrderPaid,
    OrderCancelled,
    OrderExpired,
    InventoryLow,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::OrderCreated,
        EventKind::OrderPaid,
        EventKind::OrderCancelled,
        EventKind::OrderExpired,
        EventKind::InventoryLow,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order.created",
            EventKind::OrderPaid => "order.paid",
            EventKind::OrderCancelled => "order.cancelled",
            EventKind::OrderExpired => "order.expired",
            EventKind::InventoryLow => "inventory.low",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

pub const ORDER_CREATED: &str = EventKind::OrderCreated.as_str();
pub const ORDER_PAID: &str = EventKind::OrderPaid.as_str();
pub const ORDER_CANCELLED: &str = EventKind::OrderCancelled.as_str();
pub const ORDER_EXPIRED: &str = EventKind::OrderExpired.as_str();
pub const INVENTORY_LOW: &str = EventKind::InventoryLow.as_str();

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

/// The part of `order.created` the orders-placed rollup reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderCreated {
    pub order_id: crate::ids::OrderId,
    pub currency: crate::money::Currency,
    pub total: crate::money::Money,
    pub lines: Vec<OrderCreatedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderCreatedLine {
    pub sku: crate::ids::Sku,
    pub product_id: crate::ids::ProductId,
    pub quantity: u32,
    pub total: crate::money::Money,
}

impl OrderCreated {
    pub fn units(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }
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
}
