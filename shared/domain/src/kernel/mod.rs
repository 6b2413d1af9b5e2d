//! The words every context shares: money and its rounding, ids, time, contact details,
//! pagination cursors, the `Idempotency-Key` rules, line and cart pricing, and Standard Webhooks
//! signatures.

pub mod contact;
pub mod idempotency;
pub mod ids;
pub mod money;
pub mod pagination;
pub mod precondition;
pub mod pricing;
pub mod standard_webhooks;
pub mod time;
