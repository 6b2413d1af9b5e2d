//! The maintenance cron (every minute): expire every unpaid order past its reservation
//! (releasing the stock), send outbox rows still unapplied after `OUTBOX_RESEND_AFTER_SECONDS`,
//! and purge idempotency records older than 24 h and abandoned carts past their expiry. Each
//! step runs and is logged on its own: one failing step never keeps the others from running.

use shop_domain::kernel::time::{Duration, Timestamp};
use shop_domain::orders::lifecycle;
use shop_edge::http::runtime::{self, CryptoIds};
use shop_edge::store::orders::D1Orders;
use shop_edge::store::outbox;
use shop_edge::store::retention;
use shop_edge::store::sql::Db;
use worker::Env;

pub async fn run(env: &Env, run: &str) {
    let now = runtime::now();
    let config = match runtime::config(env) {
        Ok(config) => config,
        Err(e) => return runtime::log_error(run, "scheduled maintenance", &e),
    };
    let db = match Db::open(env) {
        Ok(db) => db,
        Err(e) => return runtime::log_error(run, "scheduled maintenance", &e),
    };
    let mut line = serde_json::Map::new();
    line.insert("level".into(), "info".into());
    line.insert("run".into(), run.into());
    line.insert("job".into(), "maintenance".into());
    let mut record = |step: &str, result: Result<serde_json::Value, String>| {
        let value = result.unwrap_or_else(|e| {
            runtime::log_error(run, step, &e);
            serde_json::Value::Null
        });
        line.insert(step.into(), value);
    };
    let resend_after = config.checkout.outbox_resend_after;
    record(
        "expired_orders",
        expire_orders(env, &db, now, resend_after, run).await,
    );
    record(
        "outbox_resent",
        resend_outbox(env, &db, now, resend_after).await,
    );
    record(
        "purged",
        retention::purge_expired(&db, now)
            .await
            .map(
                |p| serde_json::json!({ "idempotency_keys": p.idempotency_keys, "carts": p.carts }),
            )
            .map_err(|e| e.to_string()),
    );
    line.insert("d1_round_trips".into(), db.tally().round_trips().into());
    line.insert("d1_statements".into(), db.tally().statements().into());
    worker::console_log!("{}", serde_json::Value::Object(line));
}

async fn expire_orders(
    env: &Env,
    db: &Db,
    now: Timestamp,
    resend_after: Duration,
    run: &str,
) -> Result<serde_json::Value, String> {
    let orders = D1Orders::new(db);
    // On a failure, what was closed before it has its events in the outbox: the re-send step
    // sends them when due.
    let expired = lifecycle::expire_due(&orders, &CryptoIds, now, 100)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = outbox::publish(env, db, &expired.events, now, resend_after).await {
        runtime::log_error(run, "publishing expiry events", &e);
    }
    Ok(expired.orders.len().into())
}

/// Send again every outbox row the consumer has not applied and whose re-send is due, a page
/// at a time (each send moves the row's next re-send further out, so a page is never read twice).
async fn resend_outbox(
    env: &Env,
    db: &Db,
    now: Timestamp,
    resend_after: Duration,
) -> Result<serde_json::Value, String> {
    let mut resent = 0;
    loop {
        let due = outbox::unapplied_due(db, now, resend_after, outbox::RESEND_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        if !due.unreadable.is_empty() {
            // Not events this code wrote: logged, and pushed back like a failed send so the
            // page moves on (they stay unapplied, for an operator to see).
            for (id, e) in &due.unreadable {
                runtime::log_error(id, "unreadable outbox row", e);
            }
            let ids: Vec<&str> = due.unreadable.iter().map(|(id, _)| id.as_str()).collect();
            outbox::record_attempts(db, &ids, false, now, resend_after)
                .await
                .map_err(|e| e.to_string())?;
        }
        resent += outbox::publish(env, db, &due.events, now, resend_after)
            .await
            .map_err(|e| e.to_string())?;
        if due.len() < outbox::RESEND_PAGE as usize {
            return Ok(resent.into());
        }
    }
}
