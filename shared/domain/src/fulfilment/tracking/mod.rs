//! Logistics partners' tracking callbacks. Each partner is configured with a format and its own
//! secrets; a callback is verified on its raw body before anything is read (HMAC-SHA256 of the
//! body, compared in constant time by the `hmac` crate's `verify_slice`, any of several secrets
//! during a rotation), then read into one [`TrackingUpdate`], whatever the format.
//!
//! - `easypost`: `X-Hmac-Signature: hmac-sha256-hex=<hex>`; an EasyPost Event whose `result` is a
//!   Tracker (`tracking_code`, `carrier`, `status`, `tracking_details`).
//! - `aftership`: `aftership-hmac-sha256: <base64>`; an AfterShip webhook (`event_id`, `msg` with
//!   `tracking_number`, `slug`, `tag`, `checkpoints`).
//!
//! Statuses are read into [`TrackingStatus`]; what a status does to a shipment is
//! [`TrackingStatus::progress`]: the normal flow only moves forward, exceptions are surfaced.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::events::{Event, Payload};
use crate::kernel::ids::{IdSource, OrderId, ShipmentId};
use crate::kernel::time::Timestamp;
use crate::orders::shipments::{
    Carrier, OrderDelivered, ShipmentUpdated, TrackingNumber, TrackingStatus,
};
use crate::payments::SignatureError;

/// How a partner signs and what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerFormat {
    EasyPost,
    AfterShip,
}

impl PartnerFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "easypost" => Some(PartnerFormat::EasyPost),
            "aftership" => Some(PartnerFormat::AfterShip),
            _ => None,
        }
    }

    /// The header that carries the signature.
    pub fn signature_header(self) -> &'static str {
        match self {
            PartnerFormat::EasyPost => "X-Hmac-Signature",
            PartnerFormat::AfterShip => "aftership-hmac-sha256",
        }
    }
}

/// The format of `partner` in the `LOGISTICS_PARTNERS` setting (`name:format,name:format`).
pub fn partner_format(setting: &str, partner: &str) -> Option<PartnerFormat> {
    setting
        .split(',')
        .filter_map(|entry| entry.split_once(':'))
        .find(|(name, _)| name.trim() == partner)
        .and_then(|(_, format)| PartnerFormat::parse(format))
}

/// The setting that holds `partner`'s secrets: `LOGISTICS_SECRETS_<PARTNER>`. A partner name is
/// 1–32 lowercase letters, digits and underscores, starting with a letter.
pub fn secrets_setting(partner: &str) -> Option<String> {
    crate::payments::setting_for("LOGISTICS_SECRETS_", partner)
}

/// Verify a callback of `format`: `header` is its signature header as received.
pub fn verify(
    format: PartnerFormat,
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let signature = match format {
        PartnerFormat::EasyPost => header
            .strip_prefix("hmac-sha256-hex=")
            .and_then(|hex| hex::decode(hex).ok()),
        PartnerFormat::AfterShip => STANDARD.decode(header).ok(),
    }
    .ok_or(SignatureError::Malformed)?;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

/// One checkpoint of a parcel's journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub status: TrackingStatus,
    pub message: String,
    pub location: Option<String>,
    pub occurred_at: Timestamp,
}

/// A callback, read: which parcel, where it is now, and the checkpoints sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingUpdate {
    /// The partner's event id: the claim.
    pub event_id: String,
    pub carrier: Option<Carrier>,
    pub tracking_number: TrackingNumber,
    pub status: TrackingStatus,
    /// When the partner says the parcel reached `status`: its latest checkpoint's time (or the
    /// event's, without checkpoints).
    pub status_at: Timestamp,
    pub checkpoints: Vec<Checkpoint>,
}

/// The shipment a callback is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TrackedShipment {
    pub id: ShipmentId,
    pub order_id: OrderId,
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
}

/// The events a callback may write: each only if what it announces happens in its batch (the
/// store's guarded statements decide).
#[derive(Debug, Clone, PartialEq)]
pub struct Announcements {
    /// `shipment.updated`, if the shipment's status moves.
    pub moved: Event,
    /// `order.delivered`, if the order is delivered.
    pub delivered: Event,
}

/// What a verified callback about `shipment` may announce.
pub fn announce(
    shipment: &TrackedShipment,
    update: &TrackingUpdate,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Announcements {
    let moved = Event::new(
        ids,
        now,
        Payload::ShipmentUpdated(ShipmentUpdated {
            shipment_id: shipment.id.clone(),
            order_id: shipment.order_id.clone(),
            carrier: shipment.carrier.clone(),
            tracking_number: shipment.tracking_number.clone(),
            status: update.status,
            status_at: update.status_at,
            exception: update.status.is_exception(),
        }),
    );
    let delivered = Event::new(
        ids,
        now,
        Payload::OrderDelivered(OrderDelivered {
            order_id: shipment.order_id.clone(),
        }),
    );
    Announcements { moved, delivered }
}

impl TrackingStatus {
    /// EasyPost's tracker statuses.
    pub fn from_easypost(status: &str) -> Self {
        match status {
            "pre_transit" => TrackingStatus::PreTransit,
            "in_transit" => TrackingStatus::InTransit,
            "out_for_delivery" => TrackingStatus::OutForDelivery,
            "delivered" => TrackingStatus::Delivered,
            "available_for_pickup" => TrackingStatus::AvailableForPickup,
            "return_to_sender" => TrackingStatus::ReturnToSender,
            "failure" | "error" => TrackingStatus::Failure,
            "cancelled" => TrackingStatus::Cancelled,
            _ => TrackingStatus::Unknown,
        }
    }

    /// AfterShip's tags.
    pub fn from_aftership(tag: &str) -> Self {
        match tag {
            "InfoReceived" | "Pending" => TrackingStatus::PreTransit,
            "InTransit" => TrackingStatus::InTransit,
            "OutForDelivery" => TrackingStatus::OutForDelivery,
            "AvailableForPickup" => TrackingStatus::AvailableForPickup,
            "Delivered" => TrackingStatus::Delivered,
            "AttemptFail" | "Exception" => TrackingStatus::Failure,
            _ => TrackingStatus::Unknown,
        }
    }

    /// How far along the normal flow this status is (`None` for exceptions and unknown). A
    /// shipment's status only moves to a normal status further along than any it reached; an
    /// exception is surfaced when it is newer than the status it replaces (and never after
    /// delivery); `unknown` changes nothing.
    pub fn progress(self) -> Option<u8> {
        match self {
            TrackingStatus::PreTransit => Some(1),
            TrackingStatus::InTransit => Some(2),
            TrackingStatus::OutForDelivery => Some(3),
            TrackingStatus::AvailableForPickup => Some(4),
            TrackingStatus::Delivered => Some(5),
            TrackingStatus::ReturnToSender
            | TrackingStatus::Failure
            | TrackingStatus::Cancelled
            | TrackingStatus::Unknown => None,
        }
    }

    pub fn is_exception(self) -> bool {
        matches!(
            self,
            TrackingStatus::ReturnToSender | TrackingStatus::Failure | TrackingStatus::Cancelled
        )
    }
}

fn time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).ok_or_else(|| format!("not an RFC 3339 time: {text:?}"))
}

fn tracking_number(text: &str) -> Result<TrackingNumber, String> {
    TrackingNumber::parse(text).ok_or_else(|| format!("not a tracking number: {text:?}"))
}

#[derive(Deserialize)]
struct EasyPostEvent {
    id: String,
    created_at: String,
    result: EasyPostTracker,
}

#[derive(Deserialize)]
struct EasyPostTracker {
    tracking_code: String,
    #[serde(default)]
    carrier: Option<String>,
    status: String,
    #[serde(default)]
    tracking_details: Vec<EasyPostDetail>,
}

#[derive(Deserialize)]
struct EasyPostDetail {
    #[serde(default)]
    message: Option<String>,
    status: String,
    datetime: String,
    #[serde(default)]
    tracking_location: Option<EasyPostLocation>,
}

#[derive(Deserialize)]
struct EasyPostLocation {
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// Where a checkpoint was, as a recipient reads it: "city, country".
fn place(parts: &[Option<&str>]) -> Option<String> {
    let parts: Vec<&str> = parts
        .iter()
        .flatten()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn latest(checkpoints: &[Checkpoint], otherwise: Timestamp) -> Timestamp {
    checkpoints
        .iter()
        .map(|c| c.occurred_at)
        .max()
        .unwrap_or(otherwise)
}

/// An EasyPost-style tracker event.
pub fn read_easypost(body: &str) -> Result<TrackingUpdate, String> {
    let event: EasyPostEvent =
        serde_json::from_str(body).map_err(|e| format!("not a tracker event: {e}"))?;
    let tracker = event.result;
    let checkpoints = tracker
        .tracking_details
        .iter()
        .map(|d| {
            Ok(Checkpoint {
                status: TrackingStatus::from_easypost(&d.status),
                message: d.message.clone().unwrap_or_default(),
                location: d
                    .tracking_location
                    .as_ref()
                    .and_then(|l| place(&[l.city.as_deref(), l.country.as_deref()])),
                occurred_at: time(&d.datetime)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(TrackingUpdate {
        status_at: latest(&checkpoints, time(&event.created_at)?),
        event_id: event.id,
        carrier: tracker.carrier.as_deref().and_then(Carrier::parse),
        tracking_number: tracking_number(&tracker.tracking_code)?,
        status: TrackingStatus::from_easypost(&tracker.status),
        checkpoints,
    })
}

#[derive(Deserialize)]
struct AfterShipEvent {
    event_id: String,
    ts: i64,
    msg: AfterShipTracking,
}

#[derive(Deserialize)]
struct AfterShipTracking {
    tracking_number: String,
    #[serde(default)]
    slug: Option<String>,
    tag: String,
    #[serde(default)]
    checkpoints: Vec<AfterShipCheckpoint>,
}

#[derive(Deserialize)]
struct AfterShipCheckpoint {
    checkpoint_time: String,
    tag: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    country_name: Option<String>,
    #[serde(default)]
    location: Option<String>,
}

/// An AfterShip-style tracking webhook.
pub fn read_aftership(body: &str) -> Result<TrackingUpdate, String> {
    let event: AfterShipEvent =
        serde_json::from_str(body).map_err(|e| format!("not a tracking webhook: {e}"))?;
    let tracking = event.msg;
    let checkpoints = tracking
        .checkpoints
        .iter()
        .map(|c| {
            Ok(Checkpoint {
                status: TrackingStatus::from_aftership(&c.tag),
                message: c.message.clone().unwrap_or_default(),
                location: place(&[c.city.as_deref(), c.country_name.as_deref()])
                    .or_else(|| c.location.clone()),
                occurred_at: time(&c.checkpoint_time)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let sent_at = Timestamp::from_millis(event.ts.saturating_mul(1000));
    Ok(TrackingUpdate {
        status_at: latest(&checkpoints, sent_at),
        event_id: event.event_id,
        carrier: tracking.slug.as_deref().and_then(Carrier::parse),
        tracking_number: tracking_number(&tracking.tracking_number)?,
        status: TrackingStatus::from_aftership(&tracking.tag),
        checkpoints,
    })
}

/// Read a verified callback of `format`.
pub fn read(format: PartnerFormat, body: &str) -> Result<TrackingUpdate, String> {
    match format {
        PartnerFormat::EasyPost => read_easypost(body),
        PartnerFormat::AfterShip => read_aftership(body),
    }
}

#[cfg(test)]
mod tests;
