//! The HTTP side of every worker: the request pipeline (`runtime::serve`: request ids, CORS,
//! routing, body limits, authorization, `Idempotency-Key`, problem+json, one log line) and what
//! handlers use from it (parameters, bodies, replies, tokens, rate limits, the isolate cache).

pub mod access;
pub mod auth;
pub mod body;
pub mod call;
pub mod cors;
pub mod idempotency;
pub mod memo;
pub mod params;
pub mod pipeline;
pub mod problem;
pub mod rate_limit;
pub mod reply;
pub mod routing;
pub mod runtime;
