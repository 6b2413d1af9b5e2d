//! Merchant webhook endpoints: create one (its signing secret shown once) and list deliveries.

use serde::Deserialize;
use shop_domain::events::Subscription;
use shop_domain::ids::IdSource;
use shop_domain::webhooks::EndpointUrl;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::outbound::webhooks;
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
    let endpoint = webhooks::Endpoint {
        id: format!("whe_{:032x}", CryptoIds.next_u128()),
        url: url.as_str().to_owned(),
        event_types: subscription.into_types(),
        secret: Some(secret.clone()),
        secret_already_issued: false,
        created_at: call.now,
    };
    let db = call.db()?;
    webhooks::create_endpoint(&db, &endpoint, &secret).await?;
    // The secret is shown once: a replay of this answer says it was issued, without it.
    let replay = webhooks::Endpoint {
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
    let page =
        webhooks::list_deliveries(&db, call.query("endpoint_id"), status, after, call.limit()?)
            .await?;
    Ok(Reply::json(200, &page)?)
}
