//! Dead events: messages the queue gave up on, listed for an operator and redriven on request.

use shop_edge::http::refusals::operations as refusals;
use shop_edge::store::{dead_events, outbox};
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["limit", "cursor"])?;
    let after = call.time_cursor()?;
    let db = call.db()?;
    let page = dead_events::list(&db, after, call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}

/// Send a dead event's outbox row to the queue again now. Safe to repeat: the consumer applies
/// an event once, whatever the number of deliveries.
pub async fn redrive(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = call.route.param(0);
    let db = call.db()?;
    let not_found = || Problem::not_found("dead_event_not_found", "No dead event with this id");
    let dead = dead_events::get(&db, id).await?.ok_or_else(not_found)?;
    let event_id = dead
        .event_id
        .as_deref()
        .ok_or_else(refusals::not_redrivable)?;
    let event = outbox::event(&db, event_id)
        .await?
        .ok_or_else(refusals::not_redrivable)?;
    outbox::publish(
        &call.env,
        &db,
        std::slice::from_ref(&event),
        call.now,
        call.config.checkout.outbox_resend_after,
    )
    .await?;
    dead_events::mark_redriven(&db, id, call.now).await?;
    let dead = dead_events::get(&db, id).await?.ok_or_else(not_found)?;
    Ok(Reply::json(200, &dead)?)
}
