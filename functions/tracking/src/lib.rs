//! Logistics partners' tracking callbacks, `POST /v1/webhooks/logistics/{partner}`, and the
//! public tracking lookup, `GET /v1/tracking?order_number=&email=` and `GET
//! /v1/tracking/{token}`. Thin glue over `shop_domain::fulfilment::tracking` (the partner's format and
//! secrets, verification, the callback read into one model) and `shop_edge::store::tracking`
//! (the shipment, the claim, the batch, the recipient's view).
//!
//! A callback is verified on its raw body before anything is read or written, and recorded once
//! (`logistics_events`, primary key `(partner, event_id)`): the claim leads the batch of its
//! effects, so a second delivery changes nothing and is answered 200.

use shop_domain::fulfilment::tracking::{self, PartnerFormat};
use shop_domain::kernel::ids::OrderId;
use shop_edge::http::auth::{self, Audience};
use shop_edge::http::inbound::{self, Unreadable};
use shop_edge::http::refusals::inbound as refusals;
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::store::claims;
use shop_edge::store::tracking::{self as store, Applied, Lookup, TrackingView};
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Callback,
    LookUp,
    ByToken,
}

/// Every route of this worker: dispatch, 405 answers and the OpenAPI test all read this table.
pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "POST",
        path: "/v1/webhooks/logistics/{partner}",
        access: Access::Signed,
        endpoint: Endpoint::Callback,
    },
    Route {
        method: "GET",
        path: "/v1/tracking",
        access: Access::Public,
        endpoint: Endpoint::LookUp,
    },
    Route {
        method: "GET",
        path: "/v1/tracking/{token}",
        access: Access::Public,
        endpoint: Endpoint::ByToken,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::Callback => callback(&call).await,
        Endpoint::LookUp => look_up(&call).await,
        Endpoint::ByToken => by_token(&call).await,
    }
}

/// The one answer for every lookup that finds nothing: a wrong number, a wrong email, a bad
/// token. The same status, code and text, so a script learns nothing from it.
fn nothing_tracked() -> Problem {
    Problem::not_found(
        "tracking_not_found",
        "No order matches; check the order number and the email address, or the tracking link",
    )
}

/// The answer: private (a recipient's own), cacheable for a minute.
fn tracked(view: Option<TrackingView>) -> Result<Reply, Problem> {
    let view = view.ok_or_else(nothing_tracked)?;
    Ok(Reply::json(200, &view)?.header("Cache-Control", "private, max-age=60"))
}

/// Throttle lookups per client with the platform's limiter, before anything is read.
async fn throttle(call: &Call<Endpoint>) -> Result<(), Problem> {
    call.rate_limit_client("TRACKING_BY_CLIENT").await
}

/// `GET /v1/tracking?order_number=…&email=…`.
async fn look_up(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["order_number", "email"])?;
    let required = |name: &str| {
        call.query(name)
            .map(str::to_owned)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                Problem::invalid_field(
                    &format!("/query/{name}"),
                    "missing_parameter",
                    format!("{name} is required"),
                )
            })
    };
    let (number, email) = (required("order_number")?, required("email")?);
    throttle(call).await?;
    let db = call.db()?;
    let lookup = Lookup::NumberAndEmail {
        number: number.trim(),
        email: email.trim(),
    };
    tracked(store::lookup(&db, lookup).await?)
}

/// `GET /v1/tracking/{token}`: the token (from the order's confirmation) names the order.
async fn by_token(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    throttle(call).await?;
    let secret = call.jwt_secret()?;
    let bearer = format!("Bearer {}", call.route.param(0));
    let order = auth::verify(
        Some(&bearer),
        secret.as_bytes(),
        call.now,
        Audience::Tracking,
        "tracking:read",
    )
    .ok()
    .and_then(|principal| OrderId::parse(&principal.sub).ok())
    .ok_or_else(nothing_tracked)?;
    let db = call.db()?;
    tracked(store::lookup(&db, Lookup::Order(&order)).await?)
}

fn received(outcome: &str) -> Result<Reply, Problem> {
    Ok(Reply::received(outcome))
}

/// The partner in the path, with its format and secrets; `None` when it is not configured.
fn partner(call: &Call<Endpoint>) -> Option<(String, PartnerFormat, Vec<String>)> {
    let name = call.route.param(0);
    let setting = call
        .env
        .var("LOGISTICS_PARTNERS")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let format = tracking::partner_format(&setting, name)?;
    let secrets = tracking::secrets_setting(name)
        .map(|setting| call.secrets(&setting))
        .filter(|secrets| !secrets.is_empty())?;
    Some((name.to_owned(), format, secrets))
}

async fn callback(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let Some((partner, format, secrets)) = partner(call) else {
        return Err(refusals::unknown_partner());
    };
    let body = call.raw_body();
    tracking::verify(
        format,
        call.header(format.signature_header()).as_deref(),
        body,
        &secrets,
    )
    .map_err(|e| Problem::signature_invalid(format.signature_header(), e))?;
    let db = call.db()?;
    let (text, update) = inbound::read_or_keep(
        body,
        |text| tracking::read(format, text),
        || claims::logistics_malformed(&db, &partner, body, call.now),
        Unreadable {
            code: "invalid_callback",
            title: "Invalid callback",
        },
    )
    .await?;
    let Some(shipment) =
        store::find_shipment(&db, update.carrier.as_ref(), &update.tracking_number).await?
    else {
        let claim = claims::logistics(
            &db,
            &partner,
            &update,
            None,
            "unknown_shipment",
            text,
            call.now,
        )?;
        if !claims::record(claim).await? {
            return received("duplicate");
        }
        log_error(
            &call.request_id,
            "logistics callback",
            format!(
                "{partner} {}: no shipment has tracking number {}",
                update.event_id,
                update.tracking_number.as_str()
            ),
        );
        return received("unknown_shipment");
    };
    let announce = tracking::announce(&shipment, &update, &CryptoIds, call.now);
    let claim = claims::logistics(
        &db,
        &partner,
        &update,
        Some(&shipment.id),
        "updated",
        text,
        call.now,
    )?;
    match store::apply(
        &db, claim, &partner, &shipment, &update, &announce, call.now,
    )
    .await?
    {
        Applied::Applied(events) => {
            call.publish(&events).await;
            received("updated")
        }
        Applied::AlreadyRecorded => received("duplicate"),
    }
}

shop_edge::route_table_test!();
