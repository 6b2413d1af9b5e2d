//! A verified event applied: its order found, `payments::decide`, then the claim with the
//! effects in one batch (paid, review, refunds settled, or recorded only), decided again when the
//! order moved meanwhile.

use crate::Endpoint;
use shop_domain::events::ReviewedPayment;
use shop_domain::kernel::ids::OrderId;
use shop_domain::orders::lifecycle::{self, AsRead, LifecycleError};
use shop_domain::orders::refunds::{self, Settlement};
use shop_domain::payments::{self, Effect, Outcome, PaymentEvent, Verdict};
use shop_edge::http::refusals::inbound as refusals;
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::store::claims;
use shop_edge::store::orders::D1Orders;
use shop_edge::store::payments as store;
use shop_edge::store::refunds::{self as store_refunds, Settled};
use shop_edge::store::sql::Db;
use shop_edge::{Call, Problem, Reply};

/// The answer to a delivery taken (applied, recorded, ignored or a duplicate): 200 and what
/// became of it.
fn received(outcome: &str) -> Result<Reply, Problem> {
    Ok(Reply::received(outcome))
}

/// A verified delivery of `provider`, read (`text`, `event`): find the event's order, decide,
/// and write the claim with the effects.
pub(crate) async fn accept(
    call: &Call<Endpoint>,
    db: &Db,
    provider: &str,
    text: &str,
    event: PaymentEvent,
) -> Result<Reply, Problem> {
    if event.effect.is_none() {
        return received("ignored");
    }
    let delivery = Delivery {
        provider,
        event: &event,
        text,
    };
    // The order may move between its read and the batch (another event, the cron, an admin):
    // the batch's guard then aborts it, and the event is decided again on the order as it is.
    for _ in 0..3 {
        if let Some(reply) = apply(call, db, delivery).await? {
            return Ok(reply);
        }
    }
    Err(refusals::order_busy())
}

/// Decide on the order as it is now and apply: `None` when the order moved meanwhile (nothing
/// was written; decide again).
async fn apply(
    call: &Call<Endpoint>,
    db: &Db,
    delivery: Delivery<'_>,
) -> Result<Option<Reply>, Problem> {
    let Delivery {
        provider,
        event,
        text,
    } = delivery;
    let order = store::find_order(db, provider, event).await?;
    let claim = |order: &OrderId, outcome: Outcome| {
        let claim = claims::payment(db, provider, event, Some(order), outcome, text, call.now)?;
        Ok::<_, Problem>(D1Orders::with_receipt(db, claim))
    };
    let (order_id, outcome, result) = match payments::decide(event, order.as_ref()) {
        Verdict::Ignore => return received("ignored").map(Some),
        Verdict::Record(outcome) => {
            let order = order.as_ref().map(|o| &o.id);
            return record(call, db, delivery, order, outcome).await.map(Some);
        }
        Verdict::Refund { order, failed } => {
            return settle_refunds(call, db, delivery, &order, failed).await
        }
        Verdict::Pay { order: id } => {
            let orders = claim(&id, Outcome::Paid)?;
            // As found: the pay batch is guarded by the status, so no second read is needed.
            let result = match &order {
                Some(read) => {
                    let read = AsRead {
                        status: read.status,
                        charged: read.charged.minor_units(),
                        ledger: read.ledger,
                    };
                    lifecycle::pay_as_read(&orders, &CryptoIds, &id, read, call.now).await
                }
                None => Err(LifecycleError::NotFound),
            };
            (id, Outcome::Paid, result)
        }
        Verdict::Review {
            order,
            from,
            reason,
            captured,
        } => {
            let orders = claim(&order, reason.outcome())?;
            let payment = ReviewedPayment {
                reason,
                provider: provider.to_owned(),
                payment_id: event.payment_id.clone(),
                provider_event_id: event.id.clone(),
                amount: event.amount,
            };
            let result = lifecycle::review(
                &orders, &CryptoIds, &order, from, payment, captured, call.now,
            )
            .await;
            (order, reason.outcome(), result)
        }
    };
    match result {
        Ok(moved) => {
            call.publish(&moved.events).await;
            received(outcome.as_str()).map(Some)
        }
        Err(LifecycleError::AlreadyRecorded) => received("duplicate").map(Some),
        Err(LifecycleError::Moved | LifecycleError::Illegal(_)) => Ok(None),
        Err(LifecycleError::NotFound) => record(call, db, delivery, None, Outcome::UnknownOrder)
            .await
            .map(Some),
        Err(LifecycleError::Ledger(e)) => Err(Problem::internal_because(format!(
            "paying order {order_id}: {e:?}"
        ))),
        Err(LifecycleError::Store(e)) => Err(e.into()),
    }
}

/// Confirm (or, when the provider says one failed, release) the order's open refunds that the
/// event is about, with the claim in one batch; an event about no open refund (confirmed before,
/// or made outside this system, e.g. in the provider's dashboard) is recorded only. `None`: a
/// refund moved meanwhile (decide again).
async fn settle_refunds(
    call: &Call<Endpoint>,
    db: &Db,
    delivery: Delivery<'_>,
    order: &OrderId,
    failed: bool,
) -> Result<Option<Reply>, Problem> {
    let Delivery {
        provider,
        event,
        text,
    } = delivery;
    let (refunded_before, open) = store_refunds::open_refunds(db, order).await?;
    let settlement = refunds::settle(
        &open,
        refunded_before,
        &event.refund_ids,
        event.refunded_total,
        failed,
        &CryptoIds,
        call.now,
    );
    let outcome = if failed {
        Outcome::RefundFailed
    } else {
        Outcome::Refunded
    };
    let claim = || claims::payment(db, provider, event, Some(order), outcome, text, call.now);
    let settled = match settlement {
        Settlement::RecordOnly => {
            return record(call, db, delivery, Some(order), Outcome::Recorded)
                .await
                .map(Some)
        }
        Settlement::Failed(refund) => {
            store_refunds::fail_confirmed(db, claim()?, &refund, call.now).await?
        }
        Settlement::Confirmed(confirmed) => {
            store_refunds::confirm(db, claim()?, &confirmed, call.now).await?
        }
    };
    match settled {
        Settled::Done(events) => {
            call.publish(&events).await;
            received(outcome.as_str()).map(Some)
        }
        Settled::AlreadyRecorded => received("duplicate").map(Some),
        Settled::Moved => Ok(None),
    }
}

/// A verified, readable delivery.
#[derive(Clone, Copy)]
struct Delivery<'a> {
    provider: &'a str,
    event: &'a PaymentEvent,
    text: &'a str,
}

/// Record the event with `outcome` and no other effect.
async fn record(
    call: &Call<Endpoint>,
    db: &Db,
    delivery: Delivery<'_>,
    order: Option<&OrderId>,
    outcome: Outcome,
) -> Result<Reply, Problem> {
    let Delivery {
        provider,
        event,
        text,
    } = delivery;
    let claim = claims::payment(db, provider, event, order, outcome, text, call.now)?;
    if !claims::record(claim).await? {
        return received("duplicate");
    }
    if outcome == Outcome::UnknownOrder && event.effect == Some(Effect::Succeeded) {
        // Money taken for no order known here: it may need a refund, someone must look.
        log_error(
            &call.request_id,
            "payment needs review",
            format!(
                "{provider} {} {}: no order has payment {}",
                event.kind, event.id, event.payment_id
            ),
        );
    }
    received(outcome.as_str())
}
