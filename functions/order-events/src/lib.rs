//! The order-events consumer: applies each event from the `ORDER_EVENTS` queue exactly once.
//!
//! Each message is acknowledged on its own. The event id is claimed with a plain INSERT into
//! `processed_events` in the same D1 batch as the event's effects, so a redelivered event
//! violates the key, changes nothing and is acknowledged. A failure is retried with backoff
//! (2, 4, 8 … s, at most 5 minutes); after `max_retries` the queue moves the message to the
//! dead-letter queue.

use serde::Deserialize;
use shop_domain::events::{OrderCreated, INVENTORY_LOW, ORDER_CREATED};
use shop_domain::time::Timestamp;
use shop_edge::outbox::Envelope;
use shop_edge::runtime::{self, log_error};
use shop_edge::webhooks;
use worker::wasm_bindgen::JsValue;
use worker::{
    console_log, event, Context, D1Database, D1PreparedStatement, Env, MessageBatch, MessageExt,
    QueueRetryOptionsBuilder, ScheduleContext, ScheduledEvent,
};

#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let db = env.d1("DB")?;
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
        match apply(&db, &envelope, now).await {
            Ok(outcome) => {
                // A failed send stays pending for the cron; the event itself is done.
                if let Err(e) = webhooks::deliver_due(&db, Some(&envelope.id), now, 50).await {
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
                let attempts = record_failure(&db, &envelope, &e).await.unwrap_or(1);
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
    let result = match env.d1("DB") {
        Ok(db) => webhooks::deliver_due(&db, None, runtime::now(), 100)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
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

fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Apply one event: its effects and its claim in one batch. `"duplicate"` when it was
/// applied before.
async fn apply(
    db: &D1Database,
    envelope: &Envelope,
    now: Timestamp,
) -> Result<&'static str, String> {
    let mut statements: Vec<D1PreparedStatement> = vec![db
        .prepare("INSERT INTO processed_events (event_id, type, processed_at) VALUES (?1, ?2, ?3)")
        .bind(&[
            envelope.id.as_str().into(),
            envelope.kind.as_str().into(),
            num(now.millis()),
        ])
        .map_err(err)?];
    let day = envelope
        .created_at
        .get(..10)
        .unwrap_or("1970-01-01")
        .to_owned();
    match envelope.kind.as_str() {
        ORDER_CREATED => {
            let created: OrderCreated =
                serde_json::from_value(envelope.data.clone()).map_err(err)?;
            let currency: JsValue = created.currency.code().into();
            statements.push(
                db.prepare(
                    "INSERT INTO daily_sales (day, currency, orders, units, revenue_minor) VALUES (?1, ?2, 1, ?3, ?4) \
                     ON CONFLICT (day, currency) DO UPDATE SET orders = orders + 1, units = units + excluded.units, \
                     revenue_minor = revenue_minor + excluded.revenue_minor",
                )
                .bind(&[
                    day.as_str().into(),
                    currency.clone(),
                    num(i64::try_from(created.units()).unwrap_or(i64::MAX)),
                    num(created.total.minor_units()),
                ])
                .map_err(err)?,
            );
            let products: Vec<(String, u64, i64)> = created
                .product_sales()
                .into_iter()
                .map(|s| (s.product_id.to_string(), s.units, s.revenue_minor))
                .collect();
            statements.push(
                db.prepare(
                    "INSERT INTO product_sales (day, product_id, currency, units, revenue_minor) \
                     SELECT ?1, json_extract(value, '$[0]'), ?2, json_extract(value, '$[1]'), json_extract(value, '$[2]') \
                     FROM json_each(?3) WHERE true \
                     ON CONFLICT (day, product_id, currency) DO UPDATE SET units = units + excluded.units, \
                     revenue_minor = revenue_minor + excluded.revenue_minor",
                )
                .bind(&[day.as_str().into(), currency, serde_json::to_string(&products).map_err(err)?.into()])
                .map_err(err)?,
            );
        }
        INVENTORY_LOW => {
            let low: LowStock = serde_json::from_value(envelope.data.clone()).map_err(err)?;
            statements.push(
                db.prepare(
                    "INSERT INTO stock_alerts (event_id, sku, available, low_threshold, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .bind(&[
                    envelope.id.as_str().into(),
                    low.sku.as_str().into(),
                    num(low.available),
                    num(low.low_threshold),
                    num(now.millis()),
                ])
                .map_err(err)?,
            );
        }
        // Other events have no effect here yet; claiming them keeps the log complete.
        _ => {}
    }
    // Outbound webhooks: created once, with the claim; sent below and by the cron.
    statements.push(webhooks::enqueue(db, envelope, now).map_err(err)?);
    match db.batch(statements).await {
        Ok(_) => Ok("applied"),
        Err(e) if e.to_string().contains("processed_events.event_id") => Ok("duplicate"),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Deserialize)]
struct LowStock {
    sku: String,
    available: i64,
    low_threshold: i64,
}

#[derive(Deserialize)]
struct Attempts {
    attempts: i64,
}

/// Count the failure (for backoff and for the operator) and keep the last error.
async fn record_failure(db: &D1Database, envelope: &Envelope, error: &str) -> worker::Result<u32> {
    let row: Option<Attempts> = db
        .prepare(
            "INSERT INTO event_failures (event_id, type, attempts, last_error, updated_at) VALUES (?1, ?2, 1, ?3, ?4) \
             ON CONFLICT (event_id) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error, \
             updated_at = excluded.updated_at RETURNING attempts",
        )
        .bind(&[
            envelope.id.as_str().into(),
            envelope.kind.as_str().into(),
            error.into(),
            num(runtime::now().millis()),
        ])?
        .first(None)
        .await?;
    Ok(row.map_or(1, |r| u32::try_from(r.attempts).unwrap_or(1)))
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
