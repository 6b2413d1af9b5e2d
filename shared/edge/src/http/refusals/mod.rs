//! What each domain refusal answers over HTTP, one file per context: the status, the code and
//! the words a client sees, written here once so that workers only map their error with
//! `Problem::from` (or a named function) and never build a 4xx of their own.

pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod customers;
pub mod inbound;
pub mod operations;
pub mod orders;
pub mod reviews;
pub mod tickets;
