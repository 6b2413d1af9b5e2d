//! Glue shared by every worker, grouped by concern:
//! - `http`: the request pipeline and what handlers use from it;
//! - `store`: D1 (the adapters of the domain's ports, the outbox, idempotency records' SQL);
//! - `outbound`: calls to other systems (Stripe, merchant webhooks), with timeouts and no
//!   redirects;
//! - `kdf`: the runtime's WebCrypto (PBKDF2 for passwords, random bytes);
//! - `reply`: a response as plain data (what handlers return and idempotency records keep);
//! - `config`: settings.
//!
//! Workers stay thin: they declare routes, parse into domain types, call the domain and map
//! its errors; everything runtime-shaped that two workers would repeat lives here.

pub mod config;
pub mod http;
pub mod kdf;
pub mod outbound;
pub mod reply;
pub mod store;

pub use http::problem::{FieldError, Problem};
pub use http::routing::{Access, Route};
pub use http::runtime::{serve, Call};
pub use reply::Reply;
