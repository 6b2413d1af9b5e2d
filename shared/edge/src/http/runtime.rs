//! What a worker uses of the HTTP runtime, in one place: the pipeline (`serve`, `forward`,
//! `config`) and the request it hands to handlers (`Call`), with the runtime's ids and clock.

pub use crate::http::call::{log_error, now, Call, CryptoIds};
pub use crate::http::pipeline::{config, forward, serve};
