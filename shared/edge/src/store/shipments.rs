//! D1 implementation of the shipment store (`shop_domain::orders::shipments::ShipmentStore`). Recording
//! a shipment is one batch: the shipment row (`UNIQUE (carrier, tracking_number)`), its units on
//! their lines (`CHECK (shipped_quantity <= quantity)`), the order's move (the status CASE and
//! trigger) and the outbox row; any guard aborts all of it (schema/0013).

use serde::{Deserialize, Serialize};
use shop_domain::events::Event;
use shop_domain::kernel::ids::{LineId, OrderId, Sku};
use shop_domain::orders::order::OrderStatus;
use shop_domain::orders::shipments::{Recorded, Shipment, ShipmentStore, Shippable, ShippableLine};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::outbox;
use crate::store::sql::{self, err, json, num, Db, Violation};

pub struct D1Shipments<'a> {
    pub db: &'a Db,
}

#[derive(Deserialize)]
struct ShippableDoc {
    id: OrderId,
    status: String,
    lines: Vec<LineRow>,
}

#[derive(Deserialize)]
struct LineRow {
    position: u32,
    id: LineId,
    sku: Sku,
    quantity: u32,
    shipped: u32,
}

const SHIPPABLE_SQL: &str = "\
SELECT json_object('id', o.id, 'status', o.status,
  'lines', json((SELECT json_group_array(json_object('position', l.position, 'id', l.line_id,
      'sku', l.sku, 'quantity', l.quantity, 'shipped', l.shipped_quantity))
    FROM (SELECT * FROM order_lines WHERE order_id = o.id ORDER BY position) l))) AS doc
FROM orders o WHERE o.id = ?1";

#[derive(Serialize)]
struct Units {
    position: u32,
    quantity: u32,
}

impl ShipmentStore for D1Shipments<'_> {
    async fn shippable(&self, order: &OrderId) -> Result<Option<Shippable>, StoreError> {
        let context = "shippable order";
        let Some(doc) = sql::doc(self.db, SHIPPABLE_SQL, &[order.as_str().into()], context).await?
        else {
            return Ok(None);
        };
        let doc: ShippableDoc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
        Ok(Some(Shippable {
            status: OrderStatus::parse(&doc.status)
                .ok_or_else(|| StoreError::new(format!("{context}: stored status is invalid")))?,
            order_id: doc.id,
            lines: doc
                .lines
                .into_iter()
                .map(|l| ShippableLine {
                    position: l.position,
                    id: l.id,
                    sku: l.sku,
                    quantity: l.quantity,
                    shipped: l.shipped,
                })
                .collect(),
        }))
    }

    async fn record(
        &self,
        shipment: &Shipment,
        from: OrderStatus,
        to: OrderStatus,
        event: &Event,
    ) -> Result<Recorded, StoreError> {
        let context = "record shipment";
        let order: JsValue = shipment.order_id.as_str().into();
        let now = num(shipment.created_at.millis());
        let units: Vec<Units> = shipment
            .lines
            .iter()
            .map(|l| Units {
                position: l.position,
                quantity: l.quantity,
            })
            .collect();
        let statements = vec![
            self.db
                .prepare(
                    "INSERT INTO shipments (id, order_id, carrier, tracking_number, status, lines, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                )
                .bind(&[
                    shipment.id.as_str().into(),
                    order.clone(),
                    shipment.carrier.as_str().into(),
                    shipment.tracking_number.as_str().into(),
                    shipment.status.as_str().into(),
                    json(&shipment.lines, context)?,
                    now.clone(),
                ])
                .map_err(err(context))?,
            self.db
                .prepare(
                    "UPDATE order_lines SET shipped_quantity = shipped_quantity + \
                       (SELECT json_extract(j.value, '$.quantity') FROM json_each(?2) j \
                        WHERE json_extract(j.value, '$.position') = order_lines.position) \
                     WHERE order_id = ?1 AND position IN (SELECT json_extract(value, '$.position') FROM json_each(?2))",
                )
                .bind(&[order.clone(), json(&units, context)?])
                .map_err(err(context))?,
            // When the order is no longer in `from`, 'invalid' violates the status CHECK.
            self.db
                .prepare(
                    "UPDATE orders SET status = CASE WHEN status = ?2 THEN ?3 ELSE 'invalid' END, updated_at = ?4 \
                     WHERE id = ?1",
                )
                .bind(&[order, from.as_str().into(), to.as_str().into(), now])
                .map_err(err(context))?,
            outbox::insert(self.db, event).map_err(err(context))?,
        ];
        match self.db.batch(statements).await {
            Ok(results) => Ok(Recorded::Recorded(
                outbox::written(
                    results.last().map(std::slice::from_ref).unwrap_or_default(),
                    std::slice::from_ref(event),
                )
                .map_err(err(context))?,
            )),
            Err(e) => {
                let message = e.to_string();
                match sql::violation(&message) {
                    Some(Violation::Unique(columns))
                        if columns.starts_with("shipments.carrier") =>
                    {
                        Ok(Recorded::TrackingNumberTaken)
                    }
                    // The order moved, a line has fewer units left than read, or the order's
                    // status no longer fits its lines (another shipment came first).
                    Some(Violation::Check(_))
                    | Some(Violation::Trigger(
                        "illegal order transition" | "fulfilment differs from the lines",
                    )) => Ok(Recorded::Moved),
                    _ => Err(StoreError::new(format!("{context}: {message}"))),
                }
            }
        }
    }
}
