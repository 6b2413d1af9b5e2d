//! The commerce domain: money, catalog, carts and the rules around them.
//!
//! Pure Rust. This crate never imports the Workers runtime, never reads a clock and never
//! draws randomness: time ([`time::Timestamp`]) and ids ([`ids::IdSource`]) are passed in.
//! Storage is reached through the traits (ports) declared next to the logic that needs them;
//! the D1 implementations live in the glue crate, in-memory ones under `testing` (feature
//! `test-utils`).

pub mod accounts;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod contact;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod inventory;
pub mod lifecycle;
pub mod membership;
pub mod money;
pub mod order;
pub mod pagination;
pub mod payments;
pub mod pricing;
pub mod refunds;
pub mod reviews;
pub mod shipments;
pub mod shipping;
pub mod standard_webhooks;
pub mod tickets;
pub mod time;
pub mod tracking;
pub mod webhooks;

#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

use std::fmt;

/// A storage failure. Its message is for logs only, never for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}
