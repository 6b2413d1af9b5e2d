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

/// The part of `order.created` the sales rollups read.
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

/// Units and revenue (minor units) of one product in one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSale {
    pub product_id: crate::ids::ProductId,
    pub units: u64,
    pub revenue_minor: i64,
}

impl OrderCreated {
    pub fn units(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }

    /// Lines grouped by product (several variants of one product add up).
    pub fn product_sales(&self) -> Vec<ProductSale> {
        let mut sales: std::collections::BTreeMap<&crate::ids::ProductId, (u64, i64)> =
            Default::default();
        for line in &self.lines {
            let entry = sales.entry(&line.product_id).or_default();
            entry.0 += u64::from(line.quantity);
            entry.1 += line.total.minor_units();
        }
        sales
            .into_iter()
            .map(|(id, (units, revenue_minor))| ProductSale {
                product_id: id.clone(),
                units,
                revenue_minor,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_created_groups_lines_by_product() {
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
        let sales = created.product_sales();
        assert_eq!(sales.len(), 2);
        assert_eq!(
            (
                sales[1].product_id.as_str(),
                sales[1].units,
                sales[1].revenue_minor
            ),
            ("prod_tee", 3, 3000)
        );
    }
}
