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
