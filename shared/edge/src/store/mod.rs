//! D1: the adapters of the domain's storage ports and the records around them. Every statement
//! runs through `sql::Db`, which counts round trips and carries the request's idempotency key.

pub mod account_messages;
pub mod accounts;
pub mod addresses;
pub mod carts;
pub mod catalog;
pub mod claims;
pub mod collections;
pub mod dead_events;
pub mod effects;
pub mod idempotency;
pub mod images;
pub mod inventory;
pub mod membership;
pub mod order_search;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod products;
pub mod refunds;
pub mod retention;
pub mod reviews;
pub mod rollups;
pub mod search;
pub mod shipments;
pub mod shipping;
pub mod sql;
pub mod tickets;
pub mod tracking;
pub mod webhooks;
