//! The HTTP side of every worker: the request pipeline (`runtime::serve`: request ids, CORS,
//! routing, body limits, authorization, `Idempotency-Key`, problem+json, one log line) and what
//! handlers use from it (parameters, bodies, replies, tokens, rate limits, the isolate cache).

pub mod access;
pub mod auth;
pub mod body;
pub mod call;
pub mod cors;
pub mod idempotency;
pub mod inbound;
pub mod memo;
pub mod params;
pub mod pipeline;
pub mod problem;
pub mod rate_limit;
pub mod refusals;
/// A response as plain data lives at the crate root (`crate::reply`), since the store keeps
/// replies too; here for the handlers that name it as part of HTTP.
pub use crate::reply;
pub mod routing;
pub mod runtime;
