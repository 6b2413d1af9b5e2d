//! A response as plain data: what handlers return, what idempotency records store and replay,
//! and what becomes a `worker::Response` once, at the edge of the worker.

use serde::{Deserialize, Serialize};

pub const JSON: &str = "application/json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn raw(status: u16, content_type: &str, body: String) -> Self {
        Reply {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body,
        }
    }

    /// A JSON reply. Serialising our own types cannot fail in practice; if it ever did, the
    /// caller gets an opaque 500 rather than a panic.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Self, serde_json::Error> {
        Ok(Reply::raw(status, JSON, serde_json::to_string(value)?))
    }

    pub fn empty(status: u16) -> Self {
        Reply::raw(status, "", String::new())
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}
