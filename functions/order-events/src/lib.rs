//! The order-events consumer: applies each event from the `ORDER_EVENTS` queue exactly once,
//! and records what reaches the dead-letter queue.
//!
//! Each message is acknowledged on its own. The event id is claimed (a row of
//! `processed_events`, `store::effects`) in the same D1 batch as the event's effects and the `applied_at` mark on
//! its outbox row, so a redelivered event violates the key, changes nothing and is
//! acknowledged. A storage failure is retried with backoff (2, 4, 8 … s, at most 5 minutes);
//! after `max_retries` the queue moves the message to `shop-order-events-dlq`, whose messages
//! this worker records in `dead_events` (the operations worker's cron keeps re-sending the
//! unapplied outbox row meanwhile, so the event is applied once storage is back). A message
//! that can never be applied (not an envelope, or data that does not fit its type) is recorded
//! at once instead of being retried.
//!
//! Before its effects, an event may need the order's payment provider told something
//! (`shop_domain::payments::Followup`: name a placed order on its Stripe PaymentIntent, cancel
//! the PaymentIntent of an order closed unpaid). Those calls are idempotent at the provider; when
//! it does not answer, the message is retried, and after `Followup::ATTEMPTS` the event is
//! applied without the call (logged), so a provider outage never holds back the effects.

use shop_domain::checkout::PaymentError;
use shop_domain::events::Event;
use shop_domain::payments::{Followup, PaymentFollowups};
use shop_edge::config::Config;
use shop_edge::http::runtime::{self, log_error};
use shop_edge::outbound::stripe::Stripe;
use shop_edge::outbound::webhooks;
use shop_edge::store::effects::{self, ApplyError, DeadReason};
use shop_edge::store::payments;
use shop_edge::store::sql::Db;
use worker::{
    console_log, event, Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder,
    RawMessage, ScheduleContext, ScheduledEvent,
};

/// The queue whose messages the main queue gave up on.
const DEAD_LETTER_QUEUE: &str = "shop-order-events-dlq";

#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let db = Db::open(&env)?;
    if batch.queue() == DEAD_LETTER_QUEUE {
        for message in batch.raw_iter() {
            dead_letter(&db, &message).await;
        }
        return Ok(());
    }
    let config = runtime::config(&env).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let sending = webhooks::Sending::from_config(&config);
    for message in batch.raw_iter() {
        let id = message.id();
        let body = message.body().as_string().unwrap_or_default();
        let now = runtime::now();
        let decoded = serde_json::from_str::<Event>(&body);
        if let Ok(event) = &decoded {
            if let Err(why) = follow_up(&db, &env, &config, event).await {
                let attempts = effects::record_failure(&db, event, &why, now)
                    .await
                    .unwrap_or(1);
                if Followup::retried_after(attempts) {
                    log_error(&id, "payment provider follow-up (retried)", &why);
                    retry(&message, attempts);
                    continue;
                }
                log_error(&id, "payment provider follow-up (given up)", &why);
            }
        }
        let applied = match decoded {
            Ok(event) => effects::apply(&db, &event, &config.membership, now)
                .await
                .map(|outcome| (event, outcome)),
            Err(e) => Err(ApplyError::Undecodable(e.to_string())),
        };
        match applied {
            Ok((event, outcome)) => {
                // A failed send stays pending for the cron; the event itself is done.
                if let Err(e) =
                    webhooks::deliver_due(&db, Some(event.id.as_str()), now, 50, sending).await
                {
                    log_error(event.id.as_str(), "delivering webhooks", &e);
                }
                let line = serde_json::json!({
                    "level": "info", "job": "order-events", "event_id": event.id,
                    "type": event.kind().as_str(), "outcome": outcome,
                });
                console_log!("{}", line);
                message.ack();
            }
            Err(ApplyError::Undecodable(e)) => {
                // Never applicable, however often retried: recorded at once.
                log_error(&id, "undecodable order event", &e);
                match effects::record_dead(&db, &id, &body, DeadReason::Undecodable, now).await {
                    Ok(()) => message.ack(),
                    Err(e) => {
                        log_error(&id, "recording a dead event", &e);
                        retry(&message, 1);
                    }
                }
            }
            Err(ApplyError::Storage(e)) => {
                log_error(&id, "applying order event", &e);
                let attempts = match serde_json::from_str::<Event>(&body) {
                    Ok(event) => effects::record_failure(&db, &event, &e, now)
                        .await
                        .unwrap_or(1),
                    Err(_) => 1,
                };
                retry(&message, attempts);
            }
        }
    }
    Ok(())
}

/// Tell the order's payment provider what `event` means for its payment, if anything. Only
/// Stripe keeps state to follow (the `test` provider keeps none). `Err`: the provider did not
/// answer (a refusal, e.g. cancelling a PaymentIntent that succeeded meanwhile, is logged and
/// done: a payment that succeeded is the webhook's to handle).
async fn follow_up(db: &Db, env: &Env, config: &Config, event: &Event) -> Result<(), String> {
    let Some(followup) = Followup::of(&event.payload) else {
        return Ok(());
    };
    let payment = payments::payment_of(db, followup.order())
        .await
        .map_err(|e| e.to_string())?;
    let Some(payment) = payment.filter(|p| p.provider == "stripe") else {
        return Ok(());
    };
    let stripe = Stripe::from_env(env, config, None);
    let result = match &followup {
        Followup::Annotate(order) => {
            stripe
                .annotate(&payment.payment_id, order, &payment.number)
                .await
        }
        Followup::Cancel(_) => stripe.cancel(&payment.payment_id).await,
    };
    match result {
        Ok(()) => Ok(()),
        Err(PaymentError::Declined(why)) => {
            log_error(
                event.id.as_str(),
                "payment provider follow-up declined",
                &why,
            );
            Ok(())
        }
        Err(PaymentError::Unavailable(why)) => Err(why),
    }
}

fn retry(message: &RawMessage, attempts: u32) {
    message.retry_with_options(
        &QueueRetryOptionsBuilder::new()
            .with_delay_seconds(backoff_seconds(attempts))
            .build(),
    );
}

/// A message the main queue gave up on: record it for the operator (list, redrive).
async fn dead_letter(db: &Db, message: &RawMessage) {
    let id = message.id();
    let body = message.body().as_string().unwrap_or_default();
    match effects::record_dead(db, &id, &body, DeadReason::RetriesExhausted, runtime::now()).await {
        Ok(()) => {
            console_log!(
                "{}",
                serde_json::json!({"level": "warn", "job": "dead-letters", "message_id": id, "recorded": true})
            );
            message.ack();
        }
        Err(e) => {
            log_error(&id, "recording a dead letter", &e);
            retry(message, 1);
        }
    }
}

/// Every minute: send webhook deliveries whose retry is due.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let result = match (Db::open(&env), runtime::config(&env)) {
        (Ok(db), Ok(config)) => {
            let sending = webhooks::Sending::from_config(&config);
            webhooks::deliver_due(&db, None, runtime::now(), 100, sending)
                .await
                .map_err(|e| e.to_string())
        }
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e.to_string()),
    };
    match result {
        Ok(sent) => console_log!(
            "{}",
            serde_json::json!({"level": "info", "job": "webhook-retries", "attempted": sent})
        ),
        Err(e) => log_error("cron", "webhook retries", &e),
    }
}

/// 2^attempts seconds, at most 300.
fn backoff_seconds(attempts: u32) -> u32 {
    2u32.saturating_pow(attempts.min(9)).min(300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_seconds(1), 2);
        assert_eq!(backoff_seconds(2), 4);
        assert_eq!(backoff_seconds(8), 256);
        assert_eq!(backoff_seconds(9), 300);
        assert_eq!(backoff_seconds(40), 300);
    }
}
