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

pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_PAID: &str = "order.paid";
pub const ORDER_CANCELLED: &str = "order.cancelled";
pub const ORDER_EXPIRED: &str = "order.expired";
pub const INVENTORY_LOW: &str = "inventory.low";

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
