//! Logistics partners' callbacks in D1: the shipment a tracking number names, the claim that
//! records a callback once (`logistics_events`, primary key `(partner, event_id)`), and the batch
//! that applies it: the claim, every checkpoint (kept once), the shipment's status moved by the
//! rules of `TrackingStatus::progress` (a guarded UPDATE), `shipment.updated` only if it moved,
//! the order `delivered` once every unit shipped and every shipment is delivered, and
//! `order.delivered` only if it moved (schema/0014).

use serde::{Deserialize, Serialize};
use shop_domain::events::Event;
use shop_domain::fulfilment::tracking::{Announcements, TrackedShipment, TrackingUpdate};
use shop_domain::kernel::ids::OrderId;
use shop_domain::kernel::time::Timestamp;
use shop_domain::orders::order::{OrderStatus, Transition};
use shop_domain::orders::shipments::{Carrier, TrackingNumber};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::claims;
use crate::store::outbox;
use crate::store::sql::{self, err, json, num, opt_str, Db, Stmt};

/// The shipment with this tracking number, the one of the same carrier first (partners may name
/// a carrier differently from the merchant).
pub async fn find_shipment(
    db: &Db,
    carrier: Option<&Carrier>,
    number: &TrackingNumber,
) -> Result<Option<TrackedShipment>, StoreError> {
    sql::first(
        db,
        "SELECT id, order_id, carrier, tracking_number FROM shipments WHERE tracking_number = ?1 \
         ORDER BY carrier = ?2 DESC, created_at LIMIT 1",
        &[
            number.as_str().into(),
            opt_str(carrier.map(Carrier::as_str)),
        ],
        "find shipment",
    )
    .await
}

#[derive(Serialize)]
struct CheckpointParam<'a> {
    occurred_at: i64,
    status: &'a str,
    message: &'a str,
    location: Option<&'a str>,
}

/// What applying a callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied, with the events it wrote (none when the status did not move).
    Applied(Vec<Event>),
    /// The claim was recorded before: a second delivery; nothing written.
    AlreadyRecorded,
}

/// Apply `update` to `shipment` in one batch led by `claim`.
pub async fn apply(
    db: &Db,
    claim: Stmt,
    partner: &str,
    shipment: &TrackedShipment,
    update: &TrackingUpdate,
    announce: &Announcements,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let Announcements { moved, delivered } = announce;
    let context = "apply tracking update";
    let checkpoints: Vec<CheckpointParam<'_>> = update
        .checkpoints
        .iter()
        .map(|c| CheckpointParam {
            occurred_at: c.occurred_at.millis(),
            status: c.status.as_str(),
            message: &c.message,
            location: c.location.as_deref(),
        })
        .collect();
    let id: JsValue = shipment.id.as_str().into();
    let mut statements = vec![
        claim,
        db.prepare(
            "INSERT OR IGNORE INTO shipment_checkpoints (shipment_id, occurred_at, status, message, location, \
               partner, recorded_at) \
             SELECT ?1, json_extract(value, '$.occurred_at'), json_extract(value, '$.status'), \
               json_extract(value, '$.message'), json_extract(value, '$.location'), ?2, ?3 FROM json_each(?4)",
        )
        .bind(&[
            id.clone(),
            partner.into(),
            num(now.millis()),
            json(&checkpoints, context)?,
        ])
        .map_err(err(context))?,
    ];
    let status = update.status;
    let guarded = match (status.progress(), status.is_exception()) {
        // The normal flow only moves forward; an exception gives way only to a newer normal
        // status at least as far along (a second delivery attempt after a failed one).
        (Some(progress), _) => Some(
            db.prepare(
                "UPDATE shipments SET status = ?2, progress = ?3, status_at = ?4, updated_at = ?5 \
                 WHERE id = ?1 AND (progress < ?3 OR (status IN ('failure', 'return_to_sender', 'cancelled') AND progress <= ?3)) \
                   AND (status NOT IN ('failure', 'return_to_sender', 'cancelled') OR coalesce(status_at, 0) <= ?4)",
            )
            .bind(&[
                id.clone(),
                status.as_str().into(),
                num(i64::from(progress)),
                num(update.status_at.millis()),
                num(now.millis()),
            ]),
        ),
        // An exception is surfaced when newer than the status it replaces, never after delivery.
        (None, true) => Some(
            db.prepare(
                "UPDATE shipments SET status = ?2, status_at = ?3, updated_at = ?4 \
                 WHERE id = ?1 AND status NOT IN ('delivered', ?2) AND coalesce(status_at, 0) <= ?3",
            )
            .bind(&[
                id.clone(),
                status.as_str().into(),
                num(update.status_at.millis()),
                num(now.millis()),
            ]),
        ),
        (None, false) => None,
    };
    let mut outbox_at = Vec::new();
    if let Some(guarded) = guarded {
        statements.push(guarded.map_err(err(context))?);
        outbox_at.push((statements.len(), moved));
        statements.push(outbox::insert_if_changed(db, moved).map_err(err(context))?);
        // The order's move when its last parcel arrives is the state machine's `Deliver`; the
        // statement makes it only when every unit shipped (the order is `from`) and every
        // shipment is delivered, which only the batch knows under concurrent callbacks.
        let from = OrderStatus::Fulfilled;
        let to = from
            .apply(Transition::Deliver)
            .map_err(|e| StoreError::new(format!("{context}: {e}")))?;
        statements.push(
            db.prepare(
                "UPDATE orders SET status = ?4, updated_at = ?2 WHERE id = ?1 AND status = ?3 \
                 AND NOT EXISTS (SELECT 1 FROM shipments WHERE order_id = ?1 AND status <> 'delivered')",
            )
            .bind(&[
                shipment.order_id.as_str().into(),
                num(now.millis()),
                from.as_str().into(),
                to.as_str().into(),
            ])
            .map_err(err(context))?,
        );
        outbox_at.push((statements.len(), delivered));
        statements.push(outbox::insert_if_changed(db, delivered).map_err(err(context))?);
    }
    match db.batch(statements).await {
        Ok(results) => {
            let mut events = Vec::new();
            for (at, event) in outbox_at {
                if let Some(result) = results.get(at) {
                    events.extend(
                        outbox::written(std::slice::from_ref(result), std::slice::from_ref(event))
                            .map_err(err(context))?,
                    );
                }
            }
            Ok(Applied::Applied(events))
        }
        Err(e) if claims::is_repeated(&e.to_string()) => Ok(Applied::AlreadyRecorded),
        Err(e) => Err(err(context)(e)),
    }
}

/// Which order a tracking lookup names.
pub enum Lookup<'a> {
    /// The order number and the email it was placed with (both must match).
    NumberAndEmail { number: &'a str, email: &'a str },
    /// The order a tracking token names.
    Order(&'a OrderId),
}

/// An order's parcels as its recipient sees them: no email, no street address.
#[derive(Debug, Clone, Serialize)]
pub struct TrackingView {
    pub order_number: String,
    pub order_status: String,
    /// Where the parcels go, as far as a recipient needs: city and country.
    pub ship_to: ShipTo,
    pub shipments: Vec<ShipmentView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShipTo {
    pub city: String,
    pub country: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShipmentView {
    pub carrier: String,
    pub tracking_number: String,
    pub status: String,
    /// When the partner says the parcel reached `status` (none before a partner reported).
    pub status_at: Option<Timestamp>,
    pub shipped_at: Timestamp,
    pub lines: Vec<ShippedLine>,
    /// Every checkpoint, oldest first.
    pub timeline: Vec<CheckpointView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShippedLine {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub status: String,
    pub message: String,
    pub location: Option<String>,
    pub occurred_at: Timestamp,
}

#[derive(Deserialize)]
struct ViewDoc {
    order_number: String,
    order_status: String,
    city: String,
    country: String,
    shipments: Vec<ShipmentDoc>,
}

#[derive(Deserialize)]
struct ShipmentDoc {
    carrier: String,
    tracking_number: String,
    status: String,
    status_at: Option<i64>,
    created_at: i64,
    lines: Vec<ShippedLine>,
    timeline: Vec<CheckpointDoc>,
}

#[derive(Deserialize)]
struct CheckpointDoc {
    status: String,
    message: String,
    location: Option<String>,
    occurred_at: i64,
}

/// The document of one order's parcels; `{condition}` picks the order.
macro_rules! view_sql {
    ($condition:literal) => {
        concat!(
            "SELECT json_object('order_number', o.number, 'order_status', o.status, \
               'city', json_extract(o.shipping_address, '$.city'), \
               'country', json_extract(o.shipping_address, '$.country'), \
               'shipments', json((SELECT json_group_array(json_object('carrier', s.carrier, \
                   'tracking_number', s.tracking_number, 'status', s.status, 'status_at', s.status_at, \
                   'created_at', s.created_at, 'lines', json(s.lines), \
                   'timeline', json((SELECT json_group_array(json_object('status', c.status, \
                       'message', c.message, 'location', c.location, 'occurred_at', c.occurred_at)) \
                     FROM (SELECT * FROM shipment_checkpoints WHERE shipment_id = s.id \
                           ORDER BY occurred_at, status) c)))) \
                 FROM (SELECT * FROM shipments WHERE order_id = o.id ORDER BY created_at, id) s))) AS doc \
             FROM orders o WHERE ",
            $condition
        )
    };
}

/// The parcels of the order `lookup` names; `None` when it names none (a wrong number and a
/// wrong email are the same `None`, from the same one-row index lookup).
pub async fn lookup(db: &Db, lookup: Lookup<'_>) -> Result<Option<TrackingView>, StoreError> {
    let context = "tracking lookup";
    let doc = match lookup {
        Lookup::NumberAndEmail { number, email } => {
            sql::doc(
                db,
                view_sql!("o.number = ?1 AND lower(o.email) = lower(?2)"),
                &[number.into(), email.into()],
                context,
            )
            .await?
        }
        Lookup::Order(id) => {
            sql::doc(db, view_sql!("o.id = ?1"), &[id.as_str().into()], context).await?
        }
    };
    let Some(doc) = doc else { return Ok(None) };
    let doc: ViewDoc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
    Ok(Some(TrackingView {
        order_number: doc.order_number,
        order_status: doc.order_status,
        ship_to: ShipTo {
            city: doc.city,
            country: doc.country,
        },
        shipments: doc
            .shipments
            .into_iter()
            .map(|s| ShipmentView {
                carrier: s.carrier,
                tracking_number: s.tracking_number,
                status: s.status,
                status_at: s.status_at.map(Timestamp::from_millis),
                shipped_at: Timestamp::from_millis(s.created_at),
                lines: s.lines,
                timeline: s
                    .timeline
                    .into_iter()
                    .map(|c| CheckpointView {
                        status: c.status,
                        message: c.message,
                        location: c.location,
                        occurred_at: Timestamp::from_millis(c.occurred_at),
                    })
                    .collect(),
            })
            .collect(),
    }))
}
