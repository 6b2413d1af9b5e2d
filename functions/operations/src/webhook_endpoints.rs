//! Merchant webhook endpoints: create one (its signing secret shown once), list deliveries, and
//! send failed ones again (one, or all of an endpoint's since a time).

use serde::Deserialize;
use shop_domain::events::Subscription;
use shop_domain::kernel::ids::IdSource;
use shop_domain::kernel::time::Timestamp;
use shop_domain::webhooks::EndpointUrl;
use shop_edge::http::refusals::operations as refusals;
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::outbound::webhooks::{self, Sending};
use shop_edge::store::sql::Db;
use shop_edge::store::webhooks::{self as store, Redelivery};
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    url: String,
    event_types: Vec<String>,
}

pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let body: EndpointBody = call.json()?;
    let url = EndpointUrl::parse(&body.url, call.config.webhooks)
        .map_err(|why| Problem::invalid_field("/url", "invalid_url", why))?;
    let subscription = Subscription::parse(body.event_types).map_err(|e| match e.index {
        Some(i) => Problem::invalid_field(
            &format!("/event_types/{i}"),
            "unknown_event_type",
            e.message,
        ),
        None => Problem::invalid_field("/event_types", "invalid_value", e.message),
    })?;
    let secret = webhooks::new_secret(&CryptoIds);
    let endpoint = store::Endpoint {
        id: format!("whe_{:032x}", CryptoIds.next_u128()),
        url: url.as_str().to_owned(),
        event_types: subscription.into_types(),
        secret: Some(secret.clone()),
        secret_already_issued: false,
        created_at: call.now,
    };
    let db = call.db()?;
    store::create_endpoint(&db, &endpoint, &secret).await?;
    // The secret is shown once: a replay of this answer says it was issued, without it.
    let replay = store::Endpoint {
        secret: None,
        secret_already_issued: true,
        ..endpoint.clone()
    };
    let replay_body = serde_json::to_string(&replay)?;
    Ok(Reply::json(201, &endpoint)?.replayed_as(replay_body))
}

pub async fn list_deliveries(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor", "endpoint_id", "status"])?;
    let status = call.parsed_query(
        "status",
        "invalid_status",
        "pending, succeeded or failed",
        |s| {
            ["pending", "succeeded", "failed"]
                .into_iter()
                .find(|k| *k == s)
        },
    )?;
    let after = call.time_cursor()?;
    let db = call.db()?;
    let page = store::list_deliveries(&db, call.query("endpoint_id"), status, after, call.limit()?)
        .await?;
    Ok(Reply::json(200, &page)?)
}

/// `POST /v1/admin/webhook-deliveries/{id}/redeliver`: a failed delivery is sent again (202,
/// pending, due now, with a fresh set of attempts); a pending or succeeded one is answered as it
/// is (200), so asking twice sends it once.
pub async fn redeliver(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = call.path_param(0, prefixed("whd_"), refusals::delivery_not_found)?;
    let db = call.db()?;
    match store::redeliver(&db, &id, call.now).await? {
        Redelivery::Again(log) => {
            send_due_after_answer(call, Some(log.event_id.clone()));
            Ok(Reply::json(202, &log)?)
        }
        Redelivery::AsItIs(log) => Ok(Reply::json(200, &log)?),
        Redelivery::NotFound => Err(refusals::delivery_not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinceBody {
    since: String,
}

/// `POST /v1/admin/webhook-endpoints/{id}/redeliver` `{since}`: every failed delivery of the
/// endpoint created since then is sent again (202 with how many; asking again finds them
/// pending or delivered and moves none).
pub async fn redeliver_endpoint(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let endpoint = call.path_param(0, prefixed("whe_"), refusals::endpoint_not_found)?;
    let body: SinceBody = call.json()?;
    let since = Timestamp::parse_rfc3339(&body.since).ok_or_else(|| {
        Problem::invalid_field("/since", "invalid_timestamp", "an RFC 3339 timestamp")
    })?;
    let db = call.db()?;
    let count = store::redeliver_since(&db, &endpoint, since, call.now)
        .await?
        .ok_or_else(refusals::endpoint_not_found)?;
    if count > 0 {
        send_due_after_answer(call, None);
    }
    Ok(Reply::json(
        202,
        &serde_json::json!({ "endpoint_id": endpoint, "redelivered": count }),
    )?)
}

/// After the answer, send what is due now (of one event, or all); the consumer's cron sends
/// whatever this leaves.
fn send_due_after_answer(call: &Call<Endpoint>, event: Option<String>) {
    let env = call.env.clone();
    let sending = Sending::from_config(&call.config);
    let request_id = call.request_id.clone();
    let now = call.now;
    call.after_answer(async move {
        let sent = match Db::open(&env) {
            Ok(db) => webhooks::deliver_due(&db, event.as_deref(), now, 20, sending)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            log_error(&request_id, "redelivering webhooks", &e);
        }
    });
}

/// A path id as this API mints them: `prefix` and at most 64 characters in all.
fn prefixed(prefix: &'static str) -> impl FnOnce(&str) -> Result<String, ()> {
    move |id| {
        (id.starts_with(prefix) && id.len() <= 64)
            .then(|| id.to_owned())
            .ok_or(())
    }
}
