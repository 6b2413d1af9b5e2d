//! `POST /v1/admin/orders/{id}/shipments`: the merchant ships units of a paid order under a
//! carrier's tracking number. Glue over `shop_domain::orders::shipments` and
//! `shop_edge::store::shipments`.

use serde::Deserialize;
use shop_domain::kernel::ids::OrderId;
use shop_domain::orders::shipments::{self, Carrier, ShipmentRequest, TrackingNumber};
use shop_edge::http::problem::FieldError;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::shipments::D1Shipments;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;
use shop_edge::http::refusals::orders as refusals;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShipmentBody {
    carrier: String,
    tracking_number: String,
    lines: Vec<LineBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    #[serde(default)]
    line_id: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    quantity: u32,
}

fn parse(body: ShipmentBody) -> Result<ShipmentRequest, Problem> {
    let mut errors = Vec::new();
    let carrier = Carrier::parse(&body.carrier);
    if carrier.is_none() {
        errors.push(FieldError::new(
            "/carrier",
            "invalid_carrier",
            "carrier is 1 to 40 letters, digits, '_' or '-'",
        ));
    }
    let tracking_number = TrackingNumber::parse(&body.tracking_number);
    if tracking_number.is_none() {
        errors.push(FieldError::new(
            "/tracking_number",
            "invalid_tracking_number",
            "tracking_number is 4 to 64 letters, digits or '-'",
        ));
    }
    if body.lines.is_empty() {
        errors.push(FieldError::new(
            "/lines",
            "invalid_lines",
            "lines names at least one line",
        ));
    }
    let mut lines = Vec::with_capacity(body.lines.len());
    for (i, line) in body.lines.into_iter().enumerate() {
        let named =
            refusals::line_ref(i, line.line_id.as_deref(), line.sku.as_deref(), &mut errors);
        if let Some(named) = named {
            lines.push((named, line.quantity));
        }
        if line.quantity == 0 {
            errors.push(FieldError::new(
                format!("/lines/{i}/quantity"),
                "invalid_quantity",
                "quantity is a whole number of units, at least 1",
            ));
        }
    }
    match (carrier, tracking_number) {
        (Some(carrier), Some(tracking_number)) if errors.is_empty() => Ok(ShipmentRequest {
            carrier,
            tracking_number,
            lines,
        }),
        _ => Err(Problem::invalid_fields(errors)),
    }
}

pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let order = call.path_param(0, OrderId::parse, refusals::order_not_found)?;
    let request = parse(call.json()?)?;
    let db = call.db()?;
    let store = D1Shipments { db: &db };
    let (shipment, events) = shipments::ship(&store, &CryptoIds, &order, &request, call.now)
        .await
        .map_err(Problem::from)?;
    call.publish(&events).await;
    Ok(Reply::json(201, &shipment)?)
}
