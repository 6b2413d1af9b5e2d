//! D1 implementation of the refund store (`shop_domain::orders::refunds::RefundStore`), and the batch
//! that confirms refunds when a provider's webhook says so. Every guard is a constraint of
//! schema/0012: a commitment above what is left violates a CHECK on `orders` or `order_lines`
//! and aborts its batch; a refund confirmed or failed twice violates the refunds status CHECK.

use serde::{Deserialize, Serialize};
use shop_domain::events::{Event, Payload};
use shop_domain::kernel::ids::{LineId, OrderId, RefundId, Sku};
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::time::Timestamp;
use shop_domain::orders::order::OrderStatus;
use shop_domain::orders::refunds::{
    Committed, Refund, RefundLine, RefundStatus, RefundStore, Refundable, RefundableLine,
};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::claims;
use crate::store::outbox;
use crate::store::sql::{self, err, json, num, Db, Stmt, Violation};

pub struct D1Refunds<'a> {
    pub db: &'a Db,
    /// Who asks (the admin's subject), recorded with a refund.
    pub caller: &'a str,
}

#[derive(Deserialize)]
struct RefundableDoc {
    id: OrderId,
    status: String,
    currency: String,
    provider: String,
    payment_id: String,
    captured: i64,
    refunded: i64,
    pending: i64,
    shipping: i64,
    shipping_refunded: i64,
    lines: Vec<LineRow>,
}

#[derive(Deserialize)]
struct LineRow {
    position: u32,
    id: LineId,
    sku: Sku,
    quantity: u32,
    total: i64,
    refunded_quantity: u32,
    refunded: i64,
}

const REFUNDABLE_SQL: &str = "\
SELECT json_object('id', o.id, 'status', o.status, 'currency', o.currency,
  'provider', o.payment_provider, 'payment_id', o.payment_id, 'captured', o.captured_minor,
  'refunded', o.refunded_minor, 'pending', o.refund_pending_minor, 'shipping', o.shipping_minor,
  'shipping_refunded', o.shipping_refunded_minor,
  'lines', json((SELECT json_group_array(json_object('position', l.position, 'id', l.line_id, 'sku', l.sku,
      'quantity', l.quantity, 'total', l.total_minor, 'refunded_quantity', l.refunded_quantity,
      'refunded', l.refunded_minor))
    FROM (SELECT * FROM order_lines WHERE order_id = o.id ORDER BY position) l))) AS doc
FROM orders o WHERE o.id = ?1";

/// A stored refund row.
#[derive(Deserialize)]
pub(crate) struct RefundRow {
    id: RefundId,
    order_id: OrderId,
    status: String,
    currency: String,
    amount_minor: i64,
    shipping_minor: i64,
    reason: String,
    lines: String,
    provider: String,
    provider_refund_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const REFUND_COLUMNS: &str =
    "id, order_id, status, currency, amount_minor, shipping_minor, reason, \
  lines, provider, provider_refund_id, created_at, updated_at";

impl RefundRow {
    pub(crate) fn into_refund(self) -> Result<Refund, StoreError> {
        let bad = |what: &str| StoreError::new(format!("stored refund {what} is invalid"));
        let currency: Currency = self.currency.parse().map_err(|_| bad("currency"))?;
        let money = |minor: i64| Money::from_minor(minor, currency).map_err(|_| bad("amount"));
        Ok(Refund {
            status: RefundStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            amount: money(self.amount_minor)?,
            shipping: money(self.shipping_minor)?,
            lines: serde_json::from_str(&self.lines).map_err(|_| bad("lines"))?,
            id: self.id,
            order_id: self.order_id,
            reason: self.reason,
            provider: self.provider,
            provider_refund_id: self.provider_refund_id,
            created_at: Timestamp::from_millis(self.created_at),
            updated_at: Timestamp::from_millis(self.updated_at),
        })
    }
}

/// What a refund takes of each line, as the batch's JSON parameter.
#[derive(Serialize)]
struct LineTake {
    position: u32,
    quantity: u32,
    amount: i64,
    restocked: u32,
}

fn takes(lines: &[RefundLine], sign: i64) -> Vec<LineTake> {
    lines
        .iter()
        .map(|l| LineTake {
            position: l.position,
            quantity: l.quantity,
            amount: sign * l.amount.minor_units(),
            restocked: if l.restock { l.quantity } else { 0 },
        })
        .collect()
}

/// Add (or, released, take back) what `refund` commits on its order and lines.
fn commitment(
    db: &Db,
    refund: &Refund,
    sign: i64,
    now: Timestamp,
) -> Result<[Stmt; 2], StoreError> {
    let context = "refund commitment";
    let order: JsValue = refund.order_id.as_str().into();
    // Quantities are multiplied by the sign in SQL; amounts carry it.
    let lines: Vec<LineTake> = takes(&refund.lines, sign);
    Ok([
        db.prepare(
            "UPDATE orders SET refund_pending_minor = refund_pending_minor + ?2, \
               shipping_refunded_minor = shipping_refunded_minor + ?3, updated_at = ?4 WHERE id = ?1",
        )
        .bind(&[
            order.clone(),
            num(sign * refund.amount.minor_units()),
            num(sign * refund.shipping.minor_units()),
            num(now.millis()),
        ])
        .map_err(err(context))?,
        db.prepare(
            "UPDATE order_lines SET \
               refunded_quantity = refunded_quantity + ?3 * (SELECT json_extract(j.value, '$.quantity') FROM json_each(?2) j \
                 WHERE json_extract(j.value, '$.position') = order_lines.position), \
               refunded_minor = refunded_minor + (SELECT json_extract(j.value, '$.amount') FROM json_each(?2) j \
                 WHERE json_extract(j.value, '$.position') = order_lines.position) \
             WHERE order_id = ?1 AND position IN (SELECT json_extract(value, '$.position') FROM json_each(?2))",
        )
        .bind(&[order, json(&lines, context)?, num(sign)])
        .map_err(err(context))?,
    ])
}

impl RefundStore for D1Refunds<'_> {
    async fn refundable(&self, order: &OrderId) -> Result<Option<Refundable>, StoreError> {
        let context = "refundable";
        let Some(doc) =
            sql::doc(self.db, REFUNDABLE_SQL, &[order.as_str().into()], context).await?
        else {
            return Ok(None);
        };
        let doc: RefundableDoc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
        let bad = |what: &str| StoreError::new(format!("{context}: stored {what} is invalid"));
        Ok(Some(Refundable {
            status: OrderStatus::parse(&doc.status).ok_or_else(|| bad("status"))?,
            currency: doc.currency.parse().map_err(|_| bad("currency"))?,
            order_id: doc.id,
            provider: doc.provider,
            payment_id: doc.payment_id,
            captured: doc.captured,
            refunded: doc.refunded,
            pending: doc.pending,
            shipping: doc.shipping,
            shipping_refunded: doc.shipping_refunded,
            lines: doc
                .lines
                .into_iter()
                .map(|l| RefundableLine {
                    position: l.position,
                    id: l.id,
                    sku: l.sku,
                    quantity: l.quantity,
                    total: l.total,
                    refunded_quantity: l.refunded_quantity,
                    refunded: l.refunded,
                })
                .collect(),
        }))
    }

    async fn get(&self, refund: &RefundId) -> Result<Option<Refund>, StoreError> {
        let row: Option<RefundRow> = sql::first(
            self.db,
            &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?1"),
            &[refund.as_str().into()],
            "refund",
        )
        .await?;
        row.map(RefundRow::into_refund).transpose()
    }

    async fn commit(&self, refund: &Refund) -> Result<Committed, StoreError> {
        let context = "commit refund";
        let [order, lines] = commitment(self.db, refund, 1, refund.created_at)?;
        let insert = self
            .db
            .prepare(
                "INSERT INTO refunds (id, order_id, status, currency, amount_minor, shipping_minor, reason, \
                   lines, provider, provider_refund_id, requested_by, created_at, updated_at) \
                 VALUES (?1, ?2, 'requested', ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10, ?10)",
            )
            .bind(&[
                refund.id.as_str().into(),
                refund.order_id.as_str().into(),
                refund.amount.currency().code().into(),
                num(refund.amount.minor_units()),
                num(refund.shipping.minor_units()),
                refund.reason.as_str().into(),
                json(&refund.lines, context)?,
                refund.provider.as_str().into(),
                self.caller.into(),
                num(refund.created_at.millis()),
            ])
            .map_err(err(context))?;
        match self.db.batch(vec![insert, order, lines]).await {
            Ok(_) => Ok(Committed::Committed),
            Err(e) => {
                let message = e.to_string();
                match sql::violation(&message) {
                    Some(Violation::Unique(columns)) if columns.starts_with("refunds.id") => {
                        let stored = self.get(&refund.id).await?.ok_or_else(|| {
                            StoreError::new(format!("{context}: {message}, then not found"))
                        })?;
                        Ok(Committed::Exists(Box::new(stored)))
                    }
                    Some(Violation::Check(_)) => Ok(Committed::Conflict),
                    _ => Err(StoreError::new(format!("{context}: {message}"))),
                }
            }
        }
    }

    async fn sent(
        &self,
        refund: &RefundId,
        provider_refund_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // A webhook may have confirmed it already: only a requested refund becomes pending.
        self.db
            .prepare(
                "UPDATE refunds SET status = CASE WHEN status = 'requested' THEN 'pending' ELSE status END, \
                   provider_refund_id = coalesce(provider_refund_id, ?2), updated_at = ?3 WHERE id = ?1",
            )
            .bind(&[
                refund.as_str().into(),
                provider_refund_id.into(),
                num(now.millis()),
            ])
            .map_err(err("refund sent"))?
            .run()
            .await
            .map_err(err("refund sent"))?;
        Ok(())
    }

    async fn refused(&self, refund: &Refund, now: Timestamp) -> Result<(), StoreError> {
        let statements = fail(self.db, refund, now)?;
        match self.db.batch(statements.to_vec()).await {
            Ok(_) => Ok(()),
            // Confirmed or failed meanwhile: nothing to release.
            Err(e) if matches!(sql::violation(&e.to_string()), Some(Violation::Check(_))) => Ok(()),
            Err(e) => Err(err("refund refused")(e)),
        }
    }
}

/// `requested` or `pending` → `failed`, its commitment released (a CHECK aborts the batch when
/// the refund was confirmed or failed already).
fn fail(db: &Db, refund: &Refund, now: Timestamp) -> Result<[Stmt; 3], StoreError> {
    let [order, lines] = commitment(db, refund, -1, now)?;
    let status = db
        .prepare(
            "UPDATE refunds SET status = CASE WHEN status IN ('requested', 'pending') THEN 'failed' \
               ELSE 'invalid' END, updated_at = ?2 WHERE id = ?1",
        )
        .bind(&[refund.id.as_str().into(), num(now.millis())])
        .map_err(err("refund failed"))?;
    Ok([status, order, lines])
}

#[derive(Deserialize)]
struct OpenDoc {
    refunded: i64,
    refunds: Vec<RefundRow>,
}

/// An order's confirmed refunded amount and its refunds still open (requested or pending),
/// oldest first. One statement.
pub async fn open_refunds(db: &Db, order: &OrderId) -> Result<(i64, Vec<Refund>), StoreError> {
    let context = "open refunds";
    let sql = "SELECT json_object('refunded', o.refunded_minor, 'refunds', json((SELECT json_group_array(json_object(\
         'id', r.id, 'order_id', r.order_id, 'status', r.status, 'currency', r.currency, \
         'amount_minor', r.amount_minor, 'shipping_minor', r.shipping_minor, 'reason', r.reason, \
         'lines', r.lines, 'provider', r.provider, 'provider_refund_id', r.provider_refund_id, \
         'created_at', r.created_at, 'updated_at', r.updated_at)) \
       FROM (SELECT * FROM refunds WHERE order_id = o.id AND status IN ('requested', 'pending') \
             ORDER BY created_at, id) r))) AS doc FROM orders o WHERE o.id = ?1";
    let Some(doc) = sql::doc(db, sql, &[order.as_str().into()], context).await? else {
        return Ok((0, Vec::new()));
    };
    let doc: OpenDoc = serde_json::from_str(&doc).map_err(sql::json_err(context))?;
    let refunds = doc
        .refunds
        .into_iter()
        .map(RefundRow::into_refund)
        .collect::<Result<_, _>>()?;
    Ok((doc.refunded, refunds))
}

/// What a confirmation batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Done(Vec<Event>),
    /// A refund was confirmed or failed meanwhile: nothing was written; decide again.
    Moved,
    /// The provider event (the claim) was recorded before: a second delivery.
    AlreadyRecorded,
}

/// Confirm `refunds` (each with its `order.refunded` event): in one batch led by `claim`, each
/// becomes succeeded, its amount moves from pending to refunded, the units of its lines marked
/// restock go back on the shelf, and its event is written.
pub async fn confirm(
    db: &Db,
    claim: Stmt,
    refunds: &[(Refund, Event)],
    now: Timestamp,
) -> Result<Settled, StoreError> {
    let context = "confirm refund";
    let mut statements = vec![claim];
    for (refund, event) in refunds {
        let order: JsValue = refund.order_id.as_str().into();
        let amount = num(refund.amount.minor_units());
        let restock: Vec<LineTake> = takes(&refund.lines, 1)
            .into_iter()
            .filter(|l| l.restocked > 0)
            .collect();
        statements.push(
            db.prepare(
                "UPDATE refunds SET status = CASE WHEN status IN ('requested', 'pending') THEN 'succeeded' \
                   ELSE 'invalid' END, updated_at = ?2 WHERE id = ?1",
            )
            .bind(&[refund.id.as_str().into(), num(now.millis())])
            .map_err(err(context))?,
        );
        statements.push(
            db.prepare(
                "UPDATE orders SET refund_pending_minor = refund_pending_minor - ?2, \
                   refunded_minor = refunded_minor + ?2, updated_at = ?3 WHERE id = ?1",
            )
            .bind(&[order.clone(), amount, num(now.millis())])
            .map_err(err(context))?,
        );
        if !restock.is_empty() {
            let restock = json(&restock, context)?;
            // The units come back only if they left and are not back yet (a cancel may have
            // returned them): `returned_quantity` rises towards `sold_quantity` (a CHECK caps
            // it), and the shelf follows its rise by a trigger (schema/0025).
            statements.push(
                db.prepare(
                    "UPDATE order_lines SET restocked_quantity = restocked_quantity + \
                       (SELECT json_extract(j.value, '$.restocked') FROM json_each(?2) j \
                        WHERE json_extract(j.value, '$.position') = order_lines.position), \
                       returned_quantity = min(sold_quantity, returned_quantity + \
                       (SELECT json_extract(j.value, '$.restocked') FROM json_each(?2) j \
                        WHERE json_extract(j.value, '$.position') = order_lines.position)) \
                     WHERE order_id = ?1 AND position IN (SELECT json_extract(value, '$.position') FROM json_each(?2))",
                )
                .bind(&[order.clone(), restock])
                .map_err(err(context))?,
            );
        }
        statements
            .push(outbox::insert_refunded(db, event, &refund.order_id).map_err(err(context))?);
    }
    settle(db, statements, context).await
}

/// Run a settlement batch led by its claim: a repeated claim is a second delivery, a CHECK a
/// refund that moved meanwhile.
async fn settle(db: &Db, statements: Vec<Stmt>, context: &str) -> Result<Settled, StoreError> {
    match db.batch(statements).await {
        // The events as the batch wrote them (`order.refunded` with the cumulative it read).
        Ok(results) => Ok(Settled::Done(
            outbox::written_as(&results, Payload::OrderRefunded).map_err(err(context))?,
        )),
        Err(e) => {
            let message = e.to_string();
            if claims::is_repeated(&message) {
                return Ok(Settled::AlreadyRecorded);
            }
            match sql::violation(&message) {
                Some(Violation::Check(_)) => Ok(Settled::Moved),
                _ => Err(StoreError::new(format!("{context}: {message}"))),
            }
        }
    }
}

/// Fail `refund` (the provider says it failed after accepting it), led by `claim`: its
/// commitment is released.
pub async fn fail_confirmed(
    db: &Db,
    claim: Stmt,
    refund: &Refund,
    now: Timestamp,
) -> Result<Settled, StoreError> {
    let mut statements = vec![claim];
    statements.extend(fail(db, refund, now)?);
    settle(db, statements, "refund failed").await
}
