//! The order-events consumer: applies each event from the `ORDER_EVENTS` queue exactly once.
//!
//! Each message is acknowledged on its own. The event id is claimed with a plain INSERT into
//! `processed_events` in the same D1 batch as the event's effects, so a redelivered event
//! violates the key, changes nothing and is acknowledged. A failure is retried with backoff
//! (2, 4, 8 … s, at most 5 minutes); after `max_retries` the queue moves the message to the
//! dead-letter queue.

use shop_edge::outbox::Envelope;
use shop_edge::runtime::{self, log_error};
use shop_edge::{consumer, webhooks};
use worker::{
    console_log, event, Context, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder,
    ScheduleContext, ScheduledEvent,
};

#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let db = env.d1("DB")?;
    let sending = webhooks::Sending::from_config(
        &runtime::config(&env).map_err(|e| worker::Error::RustError(e.to_string()))?,
    );
    for message in batch.raw_iter() {
        let id = message.id();
        let body = message.body().as_string().unwrap_or_default();
        let envelope: Envelope = match serde_json::from_str(&body) {
            Ok(envelope) => envelope,
            Err(e) => {
                // Never valid, however often retried: straight to the dead-letter queue.
                log_error(&id, "undecodable order event", &e);
                message.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(0)
                        .build(),
                );
                continue;
            }
        };
        let now = runtime::now();
        match consumer::apply(&db, &envelope, now).await {
            Ok(outcome) => {
                // A failed send stays pending for the cron; the event itself is done.
                if let Err(e) =
                    webhooks::deliver_due(&db, Some(&envelope.id), now, 50, sending).await
                {
                    log_error(&envelope.id, "delivering webhooks", &e);
                }
                let line = serde_json::json!({
                    "level": "info", "job": "order-events", "event_id": envelope.id,
                    "type": envelope.kind, "outcome": outcome,
                });
                console_log!("{}", line);
                message.ack();
            }
            Err(e) => {
                log_error(&envelope.id, "applying order event", &e);
                let attempts = consumer::record_failure(&db, &envelope, &e)
                    .await
                    .unwrap_or(1);
                let delay = backoff_seconds(attempts);
                message.retry_with_options(
                    &QueueRetryOptionsBuilder::new()
                        .with_delay_seconds(delay)
                        .build(),
                );
            }
        }
    }
    Ok(())
}

/// Every minute: send webhook deliveries whose retry is due.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let result = match (env.d1("DB"), runtime::config(&env)) {
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
