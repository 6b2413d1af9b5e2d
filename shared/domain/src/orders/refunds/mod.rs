//! Refunds: what an order can still give back, how a refund is allocated across its lines and
//! shipping, and the use case that commits it, asks the provider, and waits for the provider's
//! webhook to confirm it.
//!
//! Money never leaves twice and never more than was captured: a refund's amount is committed on
//! the order when it is requested (`refund_pending`), and the store refuses a commitment that
//! would take refunded plus pending above captured (a constraint, so of two concurrent refunds
//! that together exceed it one wins). The provider's confirmation moves the amount from pending
//! to refunded; a provider's definite refusal releases it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::Event;
use crate::kernel::contact::has_unsafe_characters;
use crate::kernel::ids::{LineId, OrderId, RefundId, Sku};
use crate::kernel::money::{allocate, Currency, Money};
use crate::kernel::time::Timestamp;
use crate::orders::order::{LineRef, OrderStatus};
use crate::payments::PaymentError;
use crate::StoreError;

pub use crate::events::RefundLine;

/// The most characters a refund's reason may have.
pub const MAX_REASON_CHARS: usize = 500;

/// Why the merchant refunds: 1 to [`MAX_REASON_CHARS`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundReason(String);

impl RefundReason {
    pub fn parse(reason: &str) -> Option<Self> {
        let reason = reason.trim();
        let length = reason.chars().count();
        ((1..=MAX_REASON_CHARS).contains(&length) && !has_unsafe_characters(reason))
            .then(|| RefundReason(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One line of a refund request: `quantity` units of the order's line for `sku`, their stock
/// back on the shelf when the refund is confirmed if `restock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    pub line: LineRef,
    pub quantity: u32,
    pub restock: bool,
}

/// A parsed refund request. Without lines, the refund is of the order as a whole (allocated
/// across what each line and the shipping have left); with lines, of those units (their value
/// by default). Without an amount, everything the request covers that is still refundable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub amount: Option<Money>,
    pub reason: RefundReason,
    pub lines: Option<Vec<LineRequest>>,
}

/// An order line as far as refunds go (amounts in minor units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundableLine {
    pub position: u32,
    pub id: LineId,
    pub sku: Sku,
    pub quantity: u32,
    pub total: i64,
    /// Units and amount committed to refunds that have not failed.
    pub refunded_quantity: u32,
    pub refunded: i64,
}

/// What an order can still refund, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refundable {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub currency: Currency,
    pub provider: String,
    pub payment_id: String,
    pub captured: i64,
    /// Confirmed by the provider.
    pub refunded: i64,
    /// Requested, not yet confirmed.
    pub pending: i64,
    pub shipping: i64,
    /// Shipping committed to refunds that have not failed.
    pub shipping_refunded: i64,
    pub lines: Vec<RefundableLine>,
}

impl Refundable {
    /// Captured less what is refunded or being refunded.
    pub fn left(&self) -> i64 {
        self.captured - self.refunded - self.pending
    }
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Committed on the order; the provider has not (yet) said it has it.
    Requested,
    /// The provider has it; its webhook will confirm it.
    Pending,
    /// Confirmed by the provider: the money went back.
    Succeeded,
    /// The provider refused it; its amount is refundable again.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "requested",
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RefundStatus::Requested,
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A refund: planned, then stored and followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    pub order_id: OrderId,
    pub status: RefundStatus,
    pub amount: Money,
    /// The part of the amount that is shipping.
    pub shipping: Money,
    pub reason: String,
    pub lines: Vec<RefundLine>,
    pub provider: String,
    pub provider_refund_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundError {
    NotFound,
    /// Nothing was captured (unpaid, expired, in review): 409.
    NotPaid,
    /// More than is left to refund (of the order, or of the lines named): 422.
    Exceeds {
        refundable: Money,
    },
    /// The amount is not positive, not in the order's currency, or not in the steps its
    /// payment provider refunds in (`step`, in minor units: 10 for Stripe's three-decimal
    /// currencies): 422.
    InvalidAmount {
        currency: Currency,
        step: i64,
    },
    /// A line of the request names no line of the order, or one named twice: 422.
    UnknownLine {
        index: usize,
        line: LineRef,
    },
    /// More units than the line has left to refund: 422.
    TooManyUnits {
        index: usize,
        left: u32,
    },
    /// This request's key made a refund of another request (another reason, other lines or
    /// units, another amount): 409.
    KeyReused,
    /// Concurrent refunds kept changing the order: 409, retry.
    Busy,
    /// The provider refused the refund (nothing is committed any more) or could not be reached
    /// (the refund stays requested; retry with the same key): 502.
    Provider(PaymentError),
    Store(StoreError),
}

impl From<StoreError> for RefundError {
    fn from(e: StoreError) -> Self {
        RefundError::Store(e)
    }
}

/// The id of the refund a request makes: derived from the order, the caller and the request's
/// `Idempotency-Key`, so a retry (even after a crash between the commitment and the provider's
/// answer) continues the same refund instead of making a second one.
pub fn refund_id(order: &OrderId, caller: &str, key: &str) -> RefundId {
    let mut hasher = Sha256::new();
    for part in [order.as_str(), caller, key] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    RefundId::mint(&Derived(u128::from_be_bytes(first)))
}

/// 128 bits that are not random: derived from a request.
struct Derived(u128);

impl crate::kernel::ids::IdSource for Derived {
    fn next_u128(&self) -> u128 {
        self.0
    }
}

/// The value of `quantity` units of `line` still refundable: its share of the line total,
/// rounded half up, and exactly what is left when they are the last units.
fn units_value(line: &RefundableLine, quantity: u32) -> i64 {
    let left_units = line.quantity - line.refunded_quantity;
    let left = line.total - line.refunded;
    if quantity >= left_units {
        return left;
    }
    let quantity = i128::from(quantity);
    let units = i128::from(line.quantity.max(1));
    let share = (i128::from(line.total) * quantity * 2 + units) / (units * 2);
    i64::try_from(share).unwrap_or(i64::MAX).min(left)
}

/// Plan the refund `request` makes of `order`: its amount and how it is allocated (largest
/// remainder, so the parts sum exactly to the amount and none exceeds what its line or the
/// shipping has left).
pub fn plan(
    order: &Refundable,
    request: &RefundRequest,
    id: RefundId,
    now: Timestamp,
) -> Result<Refund, RefundError> {
    let currency = order.currency;
    let money = |minor: i64| Money::from_minor(minor, currency);
    // The provider refunds in steps (Stripe: 10 fils of a three-decimal currency); what was
    // captured is a whole number of them (`payments::charged_minor`), so a refund is too.
    let step = crate::payments::step_minor(&order.provider, currency);
    let invalid = || RefundError::InvalidAmount { currency, step };
    if order.captured <= 0 {
        return Err(RefundError::NotPaid);
    }
    let requested = match request.amount {
        Some(amount)
            if amount.currency() != currency
                || amount.minor_units() <= 0
                || amount.minor_units() % step != 0 =>
        {
            return Err(invalid())
        }
        Some(amount) => Some(amount.minor_units()),
        None => None,
    };
    // The buckets the amount is spread over: (the line, or None for shipping; units; restock;
    // the most it can take).
    let mut buckets: Vec<(Option<&RefundableLine>, u32, bool, i64)> = Vec::new();
    match &request.lines {
        None => {
            for line in &order.lines {
                buckets.push((Some(line), 0, false, line.total - line.refunded));
            }
            buckets.push((None, 0, false, order.shipping - order.shipping_refunded));
        }
        Some(lines) => {
            let mut seen = std::collections::BTreeSet::new();
            for (index, wanted) in lines.iter().enumerate() {
                let found = order
                    .lines
                    .iter()
                    .find(|l| wanted.line.names(&l.id, &l.sku))
                    .filter(|l| seen.insert(l.position));
                let Some(line) = found else {
                    return Err(RefundError::UnknownLine {
                        index,
                        line: wanted.line.clone(),
                    });
                };
                let left = line.quantity - line.refunded_quantity;
                if wanted.quantity == 0 || wanted.quantity > left {
                    return Err(RefundError::TooManyUnits { index, left });
                }
                let value = units_value(line, wanted.quantity);
                buckets.push((Some(line), wanted.quantity, wanted.restock, value));
            }
        }
    }
    let covered: i64 = buckets.iter().map(|b| b.3).sum();
    let limit = covered.min(order.left());
    let limit = limit - limit.rem_euclid(step);
    let amount = requested.unwrap_or(limit);
    if amount > limit || amount <= 0 {
        return Err(RefundError::Exceeds {
            refundable: money(limit.max(0)).map_err(|_| invalid())?,
        });
    }
    let weights: Vec<i64> = buckets.iter().map(|b| b.3).collect();
    let parts = allocate(amount, &weights);
    let mut lines = Vec::new();
    let mut shipping = 0;
    for ((bucket, units, restock, _), part) in buckets.into_iter().zip(parts) {
        match bucket {
            Some(line) => {
                if part == 0 && units == 0 {
                    continue;
                }
                lines.push(RefundLine {
                    position: line.position,
                    sku: line.sku.clone(),
                    quantity: units,
                    amount: money(part).map_err(|_| invalid())?,
                    restock,
                });
            }
            None => shipping = part,
        }
    }
    Ok(Refund {
        id,
        order_id: order.order_id.clone(),
        status: RefundStatus::Requested,
        amount: money(amount).map_err(|_| invalid())?,
        shipping: money(shipping).map_err(|_| invalid())?,
        reason: request.reason.as_str().to_owned(),
        lines,
        provider: order.provider.clone(),
        provider_refund_id: None,
        created_at: now,
        updated_at: now,
    })
}

/// What committing a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Committed now.
    Committed,
    /// A refund with this id exists already (a retry, or the key reused): as stored. Nothing
    /// was written.
    Exists(Box<Refund>),
    /// The order's refundable amounts changed since they were read (a concurrent refund took
    /// them); nothing was written.
    Conflict,
}

/// Refund storage (port).
pub trait RefundStore {
    async fn refundable(&self, order: &OrderId) -> Result<Option<Refundable>, StoreError>;
    async fn get(&self, refund: &RefundId) -> Result<Option<Refund>, StoreError>;
    /// Atomically: store `refund` as requested and commit its amounts on the order and its
    /// lines, refusing (constraints) any commitment above what is left.
    async fn commit(&self, refund: &Refund) -> Result<Committed, StoreError>;
    /// The provider has it: `requested` → `pending`, with the provider's id.
    async fn sent(
        &self,
        refund: &RefundId,
        provider_refund_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The provider refused it: `requested` → `failed`, its commitment released.
    async fn refused(&self, refund: &Refund, now: Timestamp) -> Result<(), StoreError>;
}

/// The provider's side of a refund (port): `key` is the provider's idempotency key (the refund
/// id), so asking twice refunds once.
pub trait RefundProvider {
    async fn refund(
        &self,
        payment_id: &str,
        refund: &Refund,
        key: &str,
    ) -> Result<String, PaymentError>;
}

/// Whether `stored`, the refund a request's id made before, was made by `request`: a retry is
/// recognised by its id and the request it repeats, never by planning it again on the order as
/// it is now (after the refund's own commitment, or other refunds, the same request can come to
/// another amount: units that became a line's last are valued at what it has left).
///
/// The store keeps the refund as made, not the request, so this compares what the refund
/// records of it: the reason; the lines named, in the request's order, each by its position,
/// units and restock (a line may be named by id one time and by SKU the next), or none (a
/// refund of the order as a whole, whose lines carry no units); and the amount, when the request
/// names one. A request without an amount ("everything the request covers") cannot be told
/// from one that named the amount its refund came to, so it is taken for a retry whatever the
/// stored amount.
fn made_by(stored: &Refund, order: &Refundable, request: &RefundRequest) -> bool {
    let same_amount = request.amount.is_none_or(|amount| amount == stored.amount);
    let same_lines = match &request.lines {
        None => stored.lines.iter().all(|l| l.quantity == 0),
        Some(lines) => {
            !lines.is_empty()
                && lines.len() == stored.lines.len()
                && lines.iter().zip(&stored.lines).all(|(wanted, taken)| {
                    wanted.quantity > 0
                        && wanted.quantity == taken.quantity
                        && wanted.restock == taken.restock
                        && order.lines.iter().any(|l| {
                            l.position == taken.position && wanted.line.names(&l.id, &l.sku)
                        })
                })
        }
    };
    stored.order_id == order.order_id
        && stored.reason == request.reason.as_str()
        && same_amount
        && same_lines
}

/// The refund a retry continues: `stored` if `request` made it, else the key is reused.
fn retry_of(
    stored: Refund,
    order: &Refundable,
    request: &RefundRequest,
) -> Result<Refund, RefundError> {
    if made_by(&stored, order, request) {
        Ok(stored)
    } else {
        Err(RefundError::KeyReused)
    }
}

/// Refund `request` of `order`: plan, commit, ask the provider. Returns the refund (pending when
/// the provider has it). A retry (the same id, so the same key, with the same request) continues
/// the stored refund where the last attempt stopped, whatever the order came to since: still
/// requested, it is sent (again); otherwise it is answered as it is (a declined one as failed).
/// The same key with another request is refused ([`RefundError::KeyReused`]).
pub async fn refund<S: RefundStore, P: RefundProvider + ?Sized>(
    store: &S,
    provider: &P,
    order: &OrderId,
    request: &RefundRequest,
    id: RefundId,
    now: Timestamp,
) -> Result<Refund, RefundError> {
    let mut refundable = store
        .refundable(order)
        .await?
        .ok_or(RefundError::NotFound)?;
    let mut refund = match store.get(&id).await? {
        Some(stored) => retry_of(stored, &refundable, request)?,
        None => {
            let mut attempts = 0;
            loop {
                attempts += 1;
                let planned = match plan(&refundable, request, id.clone(), now) {
                    Ok(planned) => planned,
                    // An attempt with this id may have committed since the look-up (and so taken
                    // what this plan needed).
                    Err(e) => match store.get(&id).await? {
                        Some(stored) => break retry_of(stored, &refundable, request)?,
                        None => return Err(e),
                    },
                };
                match store.commit(&planned).await? {
                    Committed::Committed => break planned,
                    Committed::Exists(stored) => break retry_of(*stored, &refundable, request)?,
                    Committed::Conflict if attempts < 3 => {
                        refundable = store
                            .refundable(order)
                            .await?
                            .ok_or(RefundError::NotFound)?;
                    }
                    Committed::Conflict => return Err(RefundError::Busy),
                }
            }
        }
    };
    if refund.status != RefundStatus::Requested {
        return Ok(refund);
    }
    match provider
        .refund(&refundable.payment_id, &refund, refund.id.as_str())
        .await
    {
        Ok(provider_refund_id) => {
            store.sent(&refund.id, &provider_refund_id, now).await?;
            refund.status = RefundStatus::Pending;
            refund.provider_refund_id = Some(provider_refund_id);
            refund.updated_at = now;
            Ok(refund)
        }
        Err(e @ PaymentError::Declined(_)) => {
            store.refused(&refund, now).await?;
            Err(RefundError::Provider(e))
        }
        Err(e) => Err(RefundError::Provider(e)),
    }
}

/// Confirmations: which of an order's open refunds a provider's event is about.
///
/// An event that names a refund (`named`: the provider's id or ours) is about that one; Stripe's
/// `charge.refunded` names only the cumulative amount refunded on the payment, which confirms open
/// refunds, oldest first, as far as it reaches beyond what is confirmed already.
pub fn confirmed_by(
    open: &[Refund],
    refunded_before: i64,
    named: &[String],
    cumulative: Option<i64>,
) -> Vec<RefundId> {
    if !named.is_empty() {
        return open
            .iter()
            .filter(|r| {
                named.iter().any(|n| {
                    r.id.as_str() == n || r.provider_refund_id.as_deref() == Some(n.as_str())
                })
            })
            .map(|r| r.id.clone())
            .collect();
    }
    let Some(cumulative) = cumulative else {
        return Vec::new();
    };
    let mut reached = refunded_before;
    let mut confirmed = Vec::new();
    let mut oldest_first: Vec<&Refund> = open.iter().collect();
    oldest_first.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    for refund in oldest_first {
        let next = reached + refund.amount.minor_units();
        if next > cumulative {
            break;
        }
        reached = next;
        confirmed.push(refund.id.clone());
    }
    confirmed
}

/// The event a confirmation writes.
pub fn refunded_event(
    ids: &dyn crate::kernel::ids::IdSource,
    refund: &Refund,
    refunded_total: i64,
    now: Timestamp,
) -> Event {
    Event::new(
        ids,
        now,
        crate::events::Payload::OrderRefunded(crate::events::OrderRefunded {
            order_id: refund.order_id.clone(),
            refund_id: refund.id.clone(),
            amount: refund.amount,
            shipping: refund.shipping,
            refunded_minor: refunded_total,
            reason: refund.reason.clone(),
            lines: refund.lines.clone(),
        }),
    )
}

/// What a provider's refund event does to an order's open refunds.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// About no open refund (confirmed before, or made outside this system, e.g. in the
    /// provider's dashboard): the event is recorded only.
    RecordOnly,
    /// The provider says this refund failed: its commitment is released.
    Failed(Refund),
    /// These refunds are confirmed, oldest first, each with its `order.refunded`, which carries
    /// the running total refunded on the order.
    Confirmed(Vec<(Refund, Event)>),
}

/// Settle the open refunds of an order (`refunded_before` confirmed already) that an event about
/// refunds `named` (or, without names, a `cumulative` amount refunded on the payment) is about;
/// `failed`: the provider says the refund failed.
pub fn settle(
    open: &[Refund],
    refunded_before: i64,
    named: &[String],
    cumulative: Option<i64>,
    failed: bool,
    ids: &dyn crate::kernel::ids::IdSource,
    now: Timestamp,
) -> Settlement {
    let cumulative = if failed { None } else { cumulative };
    let chosen: Vec<&Refund> = confirmed_by(open, refunded_before, named, cumulative)
        .iter()
        .filter_map(|id| open.iter().find(|r| r.id == *id))
        .collect();
    match (failed, chosen.first()) {
        (_, None) => Settlement::RecordOnly,
        (true, Some(refund)) => Settlement::Failed((*refund).clone()),
        (false, Some(_)) => {
            let mut total = refunded_before;
            Settlement::Confirmed(
                chosen
                    .into_iter()
                    .map(|refund| {
                        total += refund.amount.minor_units();
                        (refund.clone(), refunded_event(ids, refund, total, now))
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests;
