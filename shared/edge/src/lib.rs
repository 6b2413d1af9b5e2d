//! Glue shared by every worker: the D1 adapters of the domain's ports, the request pipeline
//! (request ids, CORS, body limits, `Idempotency-Key`, problem+json, logging) and JWT auth.
//!
//! Workers stay thin: they declare routes, parse into domain types, call the domain and map
//! its errors; everything runtime-shaped that two workers would repeat lives here.

pub mod admin;
pub mod auth;
pub mod body;
pub mod config;
pub mod consumer;
pub mod cors;
pub mod d1;
pub mod dead_letters;
pub mod idempotency;
pub mod memo;
pub mod orders;
pub mod outbound;
pub mod outbox;
pub mod params;
pub mod problem;
pub mod rate_limit;
pub mod reply;
pub mod routing;
pub mod runtime;
pub mod shipping;
pub mod sql;
pub mod stripe;
pub mod webhooks;

pub use problem::{FieldError, Problem};
pub use reply::Reply;
pub use routing::{Access, Route};
pub use runtime::{serve, Call};
