//! The order's status machine: every status an order can be in, the transitions between them
//! (`OrderStatus::apply`), and where its stock stands in each.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an order is in its life. Terminal states: `Completed`, `Cancelled`, `Expired`;
/// `PaymentReview` is a side exit the merchant resolves (by cancelling, with a refund).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    /// Some lines shipped.
    PartiallyFulfilled,
    /// Every line shipped.
    Fulfilled,
    Delivered,
    Completed,
    Cancelled,
    Expired,
    /// A payment arrived that could not pay the order as it stood (another amount, or the order
    /// had expired or was cancelled): not paid, holding no stock; a refund may be due.
    PaymentReview,
}

/// Where an order's stock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    /// Reserved: held for the order, still on the shelf.
    Held,
    /// Sold: off the shelf.
    Sold,
    /// Given back (released or restocked), or never taken.
    None,
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The payment was captured.
    Pay,
    /// Some lines shipped (more may follow).
    ShipPart,
    /// The last lines shipped.
    ShipAll,
    Deliver,
    Complete,
    /// From `PendingPayment` (stock released) or `Paid` (restock, refund required).
    Cancel,
    /// Unpaid past its reservation's expiry.
    Expire,
    /// A payment arrived that cannot pay the order as it stands.
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub transition: Transition,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {:?} an order that is {}",
            self.transition,
            self.from.as_str()
        )
    }
}

impl std::error::Error for IllegalTransition {}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::PartiallyFulfilled,
        OrderStatus::Fulfilled,
        OrderStatus::Delivered,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::PaymentReview,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::PartiallyFulfilled => "partially_fulfilled",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::PaymentReview => "payment_review",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        OrderStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Progress along the happy path; terminal side exits rank last. No transition lowers it.
    pub fn rank(self) -> u8 {
        match self {
            OrderStatus::PendingPayment => 0,
            OrderStatus::Paid => 1,
            OrderStatus::PartiallyFulfilled => 2,
            OrderStatus::Fulfilled => 3,
            OrderStatus::Delivered => 4,
            OrderStatus::Completed => 5,
            OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::PaymentReview => 6,
        }
    }

    /// The state machine. Every legal move is listed here; everything else is illegal.
    pub fn apply(self, transition: Transition) -> Result<OrderStatus, IllegalTransition> {
        use OrderStatus as S;
        use Transition as T;
        let next = match (self, transition) {
            (S::PendingPayment, T::Pay) => S::Paid,
            (S::PendingPayment, T::Cancel) => S::Cancelled,
            (S::PendingPayment, T::Expire) => S::Expired,
            (S::Paid, T::ShipPart) | (S::PartiallyFulfilled, T::ShipPart) => S::PartiallyFulfilled,
            (S::Paid, T::ShipAll) | (S::PartiallyFulfilled, T::ShipAll) => S::Fulfilled,
            (S::Paid, T::Cancel) => S::Cancelled,
            (S::Fulfilled, T::Deliver) => S::Delivered,
            (S::Delivered, T::Complete) => S::Completed,
            (S::PendingPayment | S::Expired | S::Cancelled, T::Review) => S::PaymentReview,
            (S::PaymentReview, T::Cancel) => S::Cancelled,
            (from, transition) => return Err(IllegalTransition { from, transition }),
        };
        Ok(next)
    }

    /// Where the order's stock is in this state: what leaving it gives back.
    pub fn stock(self) -> Stock {
        match self {
            OrderStatus::PendingPayment => Stock::Held,
            OrderStatus::Paid
            | OrderStatus::PartiallyFulfilled
            | OrderStatus::Fulfilled
            | OrderStatus::Delivered
            | OrderStatus::Completed => Stock::Sold,
            OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::PaymentReview => {
                Stock::None
            }
        }
    }

    /// Money was captured at some point, so refunds may be issued.
    pub fn refundable(self) -> bool {
        !matches!(self, OrderStatus::PendingPayment | OrderStatus::Expired)
    }

    /// Goods can come back only after delivery.
    pub fn returnable(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Completed)
    }
}
