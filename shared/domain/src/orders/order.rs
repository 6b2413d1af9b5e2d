//! Orders: the order itself, its storage port and the money ledger of captures and refunds. The
//! status machine (the one place transitions are decided) is `status`, re-exported here.

use serde::{Deserialize, Serialize};

use crate::catalog::inventory::Shortage;
use crate::events::Event;
use crate::kernel::contact::{Address, Email};
use crate::kernel::ids::{CartId, CustomerId, LineId, OrderId, ProductId, Sku};
use crate::kernel::money::{Currency, Money};
use crate::kernel::time::Timestamp;
use crate::payments::charge::PaymentReference;
use crate::StoreError;

pub use super::status::{IllegalTransition, OrderStatus, Stock, Transition};

/// How a request (a shipment, a refund) names one of an order's lines: by its id, or by its SKU
/// (an order has one line per SKU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineRef {
    Id(LineId),
    Sku(Sku),
}

impl LineRef {
    /// Does this name the line `id` of SKU `sku`?
    pub fn names(&self, id: &LineId, sku: &Sku) -> bool {
        match self {
            LineRef::Id(wanted) => wanted == id,
            LineRef::Sku(wanted) => wanted == sku,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The line's id in the cart it came from; what a shipment names.
    pub id: LineId,
    pub sku: Sku,
    pub product_id: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotals {
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub tax: Money,
    pub grand_total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    /// Human order number, assigned by the store when the order is placed (`SO-2026-000123`).
    pub number: String,
    pub cart_id: CartId,
    pub status: OrderStatus,
    pub currency: Currency,
    pub email: Email,
    pub lines: Vec<OrderLine>,
    pub totals: OrderTotals,
    pub shipping_method: String,
    pub shipping_address: Address,
    pub billing_address: Address,
    pub payment_provider: String,
    pub payment_id: String,
    /// The customer who placed it signed in; `None`: a guest's order.
    #[serde(default)]
    pub customer_id: Option<CustomerId>,
    #[serde(skip)]
    pub ledger: PaymentLedger,
    pub reservation_expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Order {
    /// The payment session created for this order, as a reference (no client secret).
    pub fn payment_reference(&self) -> PaymentReference {
        PaymentReference {
            provider: self.payment_provider.clone(),
            payment_id: self.payment_id.clone(),
            amount_minor: crate::payments::charge::charged_minor(
                &self.payment_provider,
                self.totals.grand_total,
            ),
            currency: self.currency,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceOutcome {
    Placed {
        number: String,
        /// Every event the batch wrote: `order.created` and any `inventory.low` crossings.
        events: Vec<Event>,
    },
    /// At least one SKU is short; nothing was written.
    Short(Vec<Shortage>),
    /// Unpaid orders would hold more of these SKUs than the hold share allows; nothing was
    /// written.
    HoldLimit(Vec<Sku>),
    /// The cart already has an order; nothing was written.
    AlreadyCheckedOut { order_id: OrderId },
    /// The cart changed since it was read; nothing was written.
    CartChanged,
    /// A line's unit price is no longer the current price (it changed after the cart was read,
    /// while the payment session was created): the current price of each SKU, `None` when it
    /// is no longer sold. Nothing was written.
    PriceChanged(Vec<(Sku, Option<Money>)>),
}

/// Order storage (port).
pub trait OrderStore {
    /// Atomically: insert the order and its lines with a fresh order number (only if every
    /// line's unit price is still the current price), reserve every `(sku, quantity)` (only if
    /// unpaid orders then hold no more of each SKU than `hold` allows), close the cart (only if
    /// still at `cart_version`), write `event` to the outbox. All or nothing.
    async fn place(
        &self,
        order: &Order,
        reservations: &[(Sku, u32)],
        hold: crate::catalog::inventory::HoldShare,
        cart_version: u64,
        event: &Event,
    ) -> Result<PlaceOutcome, StoreError>;
    async fn order_for_cart(&self, cart: &CartId) -> Result<Option<OrderId>, StoreError>;
    async fn get(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
}

/// Captured and refunded amounts of an order, in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentLedger {
    captured: i64,
    refunded: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerError {
    /// Amounts are positive.
    NotPositive,
    /// More than the order total would be captured.
    OverCapture { capturable: i64 },
    /// More than was captured would be refunded.
    OverRefund { refundable: i64 },
}

impl PaymentLedger {
    pub fn captured(&self) -> i64 {
        self.captured
    }

    pub fn refunded(&self) -> i64 {
        self.refunded
    }

    pub fn restore(captured: i64, refunded: i64) -> Option<Self> {
        (0 <= refunded && refunded <= captured).then_some(PaymentLedger { captured, refunded })
    }

    pub fn capture(&mut self, amount: i64, order_total: i64) -> Result<(), LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::NotPositive);
        }
        let capturable = order_total.saturating_sub(self.captured);
        if amount > capturable {
            return Err(LedgerError::OverCapture { capturable });
        }
        self.captured += amount;
        Ok(())
    }

    pub fn refund(&mut self, amount: i64) -> Result<(), LedgerError> {
        if amount <= 0 {
            return Err(LedgerError::NotPositive);
        }
        let refundable = self.captured - self.refunded;
        if amount > refundable {
            return Err(LedgerError::OverRefund { refundable });
        }
        self.refunded += amount;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TRANSITIONS: [Transition; 8] = [
        Transition::Pay,
        Transition::ShipPart,
        Transition::ShipAll,
        Transition::Deliver,
        Transition::Complete,
        Transition::Cancel,
        Transition::Expire,
        Transition::Review,
    ];

    #[test]
    fn the_whole_table() {
        use OrderStatus as S;
        use Transition as T;
        let legal = [
            (S::PendingPayment, T::Pay, S::Paid),
            (S::PendingPayment, T::Cancel, S::Cancelled),
            (S::PendingPayment, T::Expire, S::Expired),
            (S::Paid, T::ShipPart, S::PartiallyFulfilled),
            (S::Paid, T::ShipAll, S::Fulfilled),
            (S::Paid, T::Cancel, S::Cancelled),
            (S::PartiallyFulfilled, T::ShipPart, S::PartiallyFulfilled),
            (S::PartiallyFulfilled, T::ShipAll, S::Fulfilled),
            (S::Fulfilled, T::Deliver, S::Delivered),
            (S::Delivered, T::Complete, S::Completed),
            (S::PendingPayment, T::Review, S::PaymentReview),
            (S::Expired, T::Review, S::PaymentReview),
            (S::Cancelled, T::Review, S::PaymentReview),
            (S::PaymentReview, T::Cancel, S::Cancelled),
        ];
        for from in OrderStatus::ALL {
            for t in TRANSITIONS {
                let expected = legal
                    .iter()
                    .find(|(f, tr, _)| *f == from && *tr == t)
                    .map(|(_, _, to)| *to);
                match expected {
                    Some(to) => assert_eq!(from.apply(t), Ok(to), "{from:?} {t:?}"),
                    None => assert_eq!(
                        from.apply(t),
                        Err(IllegalTransition {
                            from,
                            transition: t
                        }),
                        "{from:?} {t:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }

    #[test]
    fn refunds_and_returns_by_state() {
        assert!(!OrderStatus::PendingPayment.refundable());
        assert!(OrderStatus::Paid.refundable());
        assert!(OrderStatus::Cancelled.refundable());
        assert!(OrderStatus::PaymentReview.refundable());
        assert_eq!(OrderStatus::PaymentReview.stock(), Stock::None);
        assert_eq!(OrderStatus::PendingPayment.stock(), Stock::Held);
        assert_eq!(OrderStatus::Delivered.stock(), Stock::Sold);
        assert!(!OrderStatus::Fulfilled.returnable());
        assert!(OrderStatus::Delivered.returnable());
    }

    proptest! {
        #[test]
        fn the_state_machine_never_moves_backwards(
            steps in proptest::collection::vec(proptest::sample::select(TRANSITIONS.to_vec()), 0..40)
        ) {
            let mut status = OrderStatus::PendingPayment;
            for t in steps {
                match status.apply(t) {
                    Ok(next) => {
                        prop_assert!(next.rank() >= status.rank(), "{:?} -> {:?}", status, next);
                        status = next;
                    }
                    Err(e) => prop_assert_eq!(e.from, status),
                }
            }
        }

        #[test]
        fn refunds_never_exceed_captures(
            total in 1i64..1_000_000,
            ops in proptest::collection::vec((any::<bool>(), -10i64..600_000), 0..60),
        ) {
            let mut ledger = PaymentLedger::default();
            for (is_capture, amount) in ops {
                let before = ledger;
                let result = if is_capture { ledger.capture(amount, total) } else { ledger.refund(amount) };
                if result.is_err() {
                    prop_assert_eq!(ledger, before, "a refused operation changes nothing");
                }
                prop_assert!(0 <= ledger.refunded());
                prop_assert!(ledger.refunded() <= ledger.captured());
                prop_assert!(ledger.captured() <= total);
            }
        }
    }
}
