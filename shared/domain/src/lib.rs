//! The commerce domain: money, catalog, carts and the rules around them.
//!
//! One folder per bounded context: `kernel` (the shared words), `catalog`, `cart`, `checkout`,
//! `orders`, `payments`, `fulfilment`, `support`, `customers`; `events` (the published language
//! every context announces in) and `webhooks` (where merchants receive it).
//!
//! Pure Rust. This crate never imports the Workers runtime, never reads a clock and never
//! draws randomness: time ([`kernel::time::Timestamp`]) and ids ([`kernel::ids::IdSource`]) are
//! passed in.
//! Storage is reached through the traits (ports) declared next to the logic that needs them;
//! the D1 implementations live in the glue crate, in-memory ones under `testing` (feature
//! `test-utils`).

pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod customers;
pub mod events;
pub mod fulfilment;
pub mod kernel;
pub mod orders;
pub mod payments;
pub mod support;
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
