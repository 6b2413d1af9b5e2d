//! Parcels as every context names them: a carrier, its tracking number, the normalised tracking
//! status, a shipment's lines, and the shipment events' payloads.

use serde::{Deserialize, Serialize};

use crate::kernel::ids::{LineId, OrderId, ShipmentId, Sku};
use crate::kernel::time::Timestamp;
use crate::orders::status::OrderStatus;

/// A carrier's name: 1 to 40 of `[a-z0-9_-]` (given in any case, kept lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Carrier(String);

impl Carrier {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        ((1..=40).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'))
        .then_some(Carrier(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Carrier {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Carrier::parse(&value).ok_or_else(|| format!("not a carrier: {value:?}"))
    }
}

impl From<Carrier> for String {
    fn from(value: Carrier) -> String {
        value.0
    }
}

/// A tracking number: 4 to 64 letters, digits and hyphens (given in any case, kept uppercase,
/// so the same parcel is never two numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackingNumber(String);

impl TrackingNumber {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_uppercase();
        ((4..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(TrackingNumber(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TrackingNumber {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TrackingNumber::parse(&value).ok_or_else(|| format!("not a tracking number: {value:?}"))
    }
}

impl From<TrackingNumber> for String {
    fn from(value: TrackingNumber) -> String {
        value.0
    }
}

/// Where a parcel is: the one vocabulary every partner's statuses are read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    PreTransit,
    InTransit,
    OutForDelivery,
    AvailableForPickup,
    Delivered,
    /// An exception: the parcel goes back to the sender.
    ReturnToSender,
    /// An exception: delivery failed (an attempt, an error, an expired tracker).
    Failure,
    Cancelled,
    Unknown,
}

impl TrackingStatus {
    pub const ALL: [TrackingStatus; 9] = [
        TrackingStatus::PreTransit,
        TrackingStatus::InTransit,
        TrackingStatus::OutForDelivery,
        TrackingStatus::AvailableForPickup,
        TrackingStatus::Delivered,
        TrackingStatus::ReturnToSender,
        TrackingStatus::Failure,
        TrackingStatus::Cancelled,
        TrackingStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrackingStatus::PreTransit => "pre_transit",
            TrackingStatus::InTransit => "in_transit",
            TrackingStatus::OutForDelivery => "out_for_delivery",
            TrackingStatus::AvailableForPickup => "available_for_pickup",
            TrackingStatus::Delivered => "delivered",
            TrackingStatus::ReturnToSender => "return_to_sender",
            TrackingStatus::Failure => "failure",
            TrackingStatus::Cancelled => "cancelled",
            TrackingStatus::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        TrackingStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentLine {
    pub position: u32,
    pub line_id: LineId,
    pub sku: Sku,
    pub quantity: u32,
}

/// `shipment.created`: units of an order left under a tracking number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCreated {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    pub lines: Vec<ShipmentLine>,
    /// The order's status after it (`partially_fulfilled` or `fulfilled`).
    pub order_status: OrderStatus,
}

/// `shipment.updated`: a logistics partner moved a shipment's status (written only when the
/// status changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentUpdated {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    pub status: TrackingStatus,
    /// When the partner says the parcel reached it.
    pub status_at: Timestamp,
    /// An exception (failure, return to sender, cancelled): someone should look.
    pub exception: bool,
}

/// `order.delivered`: every unit shipped and every shipment delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {
    pub order_id: OrderId,
}
