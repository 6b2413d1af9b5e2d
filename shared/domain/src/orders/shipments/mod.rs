//! Shipments: the merchant ships some or all of a paid order's units under a carrier's tracking
//! number; the order is `partially_fulfilled` until every unit has shipped, then `fulfilled`.
//! Where a parcel is (its tracking status) is one normalised enum, whatever the carrier or the
//! logistics partner calls it.

use serde::{Deserialize, Serialize};

use crate::events::{Event, Payload};
use crate::kernel::ids::{IdSource, LineId, OrderId, ShipmentId, Sku};
use crate::kernel::time::Timestamp;
use crate::orders::order::{IllegalTransition, LineRef, OrderStatus, Transition};
use crate::StoreError;

pub use super::parcels::{
    Carrier, OrderDelivered, ShipmentCreated, ShipmentLine, ShipmentUpdated, TrackingNumber,
    TrackingStatus,
};

/// A shipment request, parsed: which units of which lines leave under which tracking number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentRequest {
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    pub lines: Vec<(LineRef, u32)>,
}

/// An order line as far as shipping goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippableLine {
    pub position: u32,
    pub id: LineId,
    pub sku: Sku,
    pub quantity: u32,
    pub shipped: u32,
}

/// An order as far as shipping goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shippable {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub lines: Vec<ShippableLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: ShipmentId,
    pub order_id: OrderId,
    pub carrier: Carrier,
    pub tracking_number: TrackingNumber,
    pub status: TrackingStatus,
    pub lines: Vec<ShipmentLine>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentError {
    NotFound,
    /// The order cannot ship in its state (unpaid, fulfilled, closed): 409.
    Illegal(IllegalTransition),
    /// A line of the request names no line of the order, or one named twice: 422.
    UnknownLine {
        index: usize,
        line: LineRef,
    },
    /// More units than the line has left to ship (or none): 422.
    TooManyUnits {
        index: usize,
        left: u32,
    },
    /// This carrier's tracking number is another shipment's: 409.
    TrackingNumberTaken,
    /// The order changed while the shipment was recorded: 409, retry.
    Moved,
    Store(StoreError),
}

impl From<StoreError> for ShipmentError {
    fn from(e: StoreError) -> Self {
        ShipmentError::Store(e)
    }
}

/// The shipment `request` makes of `order`, and the order's status after it.
pub fn plan(
    order: &Shippable,
    request: &ShipmentRequest,
    id: ShipmentId,
    now: Timestamp,
) -> Result<(Shipment, OrderStatus), ShipmentError> {
    // An order that cannot ship at all says so before its lines are looked at.
    order
        .status
        .apply(Transition::ShipPart)
        .map_err(ShipmentError::Illegal)?;
    let mut lines = Vec::with_capacity(request.lines.len());
    let mut seen = std::collections::BTreeSet::new();
    for (index, (wanted, quantity)) in request.lines.iter().enumerate() {
        let line = order
            .lines
            .iter()
            .find(|l| wanted.names(&l.id, &l.sku))
            .filter(|l| seen.insert(l.position))
            .ok_or_else(|| ShipmentError::UnknownLine {
                index,
                line: wanted.clone(),
            })?;
        let left = line.quantity - line.shipped;
        if *quantity == 0 || *quantity > left {
            return Err(ShipmentError::TooManyUnits { index, left });
        }
        lines.push(ShipmentLine {
            position: line.position,
            line_id: line.id.clone(),
            sku: line.sku.clone(),
            quantity: *quantity,
        });
    }
    let everything = order.lines.iter().all(|line| {
        let now_shipping = lines
            .iter()
            .find(|l| l.position == line.position)
            .map_or(0, |l| l.quantity);
        line.shipped + now_shipping == line.quantity
    });
    let transition = if everything {
        Transition::ShipAll
    } else {
        Transition::ShipPart
    };
    let to = order
        .status
        .apply(transition)
        .map_err(ShipmentError::Illegal)?;
    let shipment = Shipment {
        id,
        order_id: order.order_id.clone(),
        carrier: request.carrier.clone(),
        tracking_number: request.tracking_number.clone(),
        status: TrackingStatus::PreTransit,
        lines,
        created_at: now,
        updated_at: now,
    };
    Ok((shipment, to))
}

/// What recording a shipment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Recorded(Vec<Event>),
    TrackingNumberTaken,
    /// The order left `from`, or a line has fewer units left than read: nothing written.
    Moved,
}

/// Shipment storage (port).
pub trait ShipmentStore {
    async fn shippable(&self, order: &OrderId) -> Result<Option<Shippable>, StoreError>;
    /// Atomically: record `shipment`, count its units shipped on their lines (never beyond a
    /// line's quantity), move the order from `from` to `to`, and write `event`.
    async fn record(
        &self,
        shipment: &Shipment,
        from: OrderStatus,
        to: OrderStatus,
        event: &Event,
    ) -> Result<Recorded, StoreError>;
}

/// How many times a shipment is planned again when the order moved under it.
const ATTEMPTS: usize = 3;

/// Ship `request` of `order`. When another change of the order commits between the read and
/// the batch (a concurrent shipment, say), the shipment is planned again on what it wrote.
pub async fn ship<S: ShipmentStore>(
    store: &S,
    ids: &dyn IdSource,
    order: &OrderId,
    request: &ShipmentRequest,
    now: Timestamp,
) -> Result<(Shipment, Vec<Event>), ShipmentError> {
    let mut attempt = 1;
    loop {
        match ship_once(store, ids, order, request, now).await {
            Err(ShipmentError::Moved) if attempt < ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

async fn ship_once<S: ShipmentStore>(
    store: &S,
    ids: &dyn IdSource,
    order: &OrderId,
    request: &ShipmentRequest,
    now: Timestamp,
) -> Result<(Shipment, Vec<Event>), ShipmentError> {
    let shippable = store
        .shippable(order)
        .await?
        .ok_or(ShipmentError::NotFound)?;
    let (shipment, to) = plan(&shippable, request, ShipmentId::mint(ids), now)?;
    let event = Event::new(
        ids,
        now,
        Payload::ShipmentCreated(ShipmentCreated {
            shipment_id: shipment.id.clone(),
            order_id: shipment.order_id.clone(),
            carrier: shipment.carrier.clone(),
            tracking_number: shipment.tracking_number.clone(),
            lines: shipment.lines.clone(),
            order_status: to,
        }),
    );
    match store
        .record(&shipment, shippable.status, to, &event)
        .await?
    {
        Recorded::Recorded(events) => Ok((shipment, events)),
        Recorded::TrackingNumberTaken => Err(ShipmentError::TrackingNumberTaken),
        Recorded::Moved => Err(ShipmentError::Moved),
    }
}

#[cfg(test)]
mod tests;
