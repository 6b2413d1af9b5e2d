//! A response as plain data: what handlers return, what idempotency records store and replay,
//! and what becomes a `worker::Response` once, at the edge of the worker.

use serde::{Deserialize, Serialize};

pub const JSON: &str = "application/json";

/// What a change to a `T` answers its caller, for an adapter to store with the change when the
/// request has an `Idempotency-Key` (the store's `Db::batch_answering`). `None`: no
/// answer to store (the pipeline stores the handler's reply afterwards).
pub type Answer<'a, T> = &'a dyn Fn(&T) -> Option<Reply>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// A binary body (an image), sent instead of `body`; never stored for a replay.
    #[serde(skip)]
    pub bytes: Option<Vec<u8>>,
    /// What an idempotent replay answers instead of `body`, when `body` holds a secret that is
    /// shown once (never stored in a replayable record).
    #[serde(skip)]
    pub replay_body: Option<String>,
    /// The stored body is incomplete: a replay runs the handler again with the stored reply in
    /// `Call::replayed`, for it to add what is never stored (an order token, a client secret)
    /// without repeating the mutation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub completed_on_replay: bool,
}

impl Reply {
    pub fn raw(status: u16, content_type: &str, body: String) -> Self {
        Reply {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body,
            bytes: None,
            replay_body: None,
            completed_on_replay: false,
        }
    }

    /// A binary reply of `content_type` (an image).
    pub fn binary(status: u16, content_type: &str, bytes: Vec<u8>) -> Self {
        Reply {
            bytes: Some(bytes),
            ..Reply::raw(status, content_type, String::new())
        }
    }

    /// Answer replays of this reply with `body` instead (see [`Reply::replay_body`]).
    pub fn replayed_as(mut self, body: String) -> Self {
        self.replay_body = Some(body);
        self
    }

    /// Store `body` instead, and let the handler complete it on replay (see
    /// [`Reply::completed_on_replay`]).
    pub fn complete_on_replay(mut self, body: String) -> Self {
        self.replay_body = Some(body);
        self.completed_on_replay = true;
        self
    }

    /// The form of this reply that may be stored and replayed.
    pub fn replayable(&self) -> Reply {
        match &self.replay_body {
            Some(body) => Reply {
                body: body.clone(),
                replay_body: None,
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// This reply with a strong `ETag` of its body (the first 128 bits of its SHA-256): equal
    /// bodies, equal tags, in every isolate.
    pub fn tagged(self) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.body.as_bytes());
        let tag = format!("\"{}\"", hex::encode(digest.get(..16).unwrap_or_default()));
        self.header("ETag", tag)
    }

    /// `304 Not Modified` (its `ETag` and caching headers, no body) when `if_none_match` names
    /// this reply's `ETag` (or is `*`).
    pub fn not_modified(&self, if_none_match: Option<&str>) -> Option<Reply> {
        let etag = self
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("ETag"))
            .map(|(_, value)| value.as_str())?;
        let known = if_none_match?
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
        known.then(|| Reply {
            headers: self
                .headers
                .iter()
                .filter(|(name, _)| {
                    name.eq_ignore_ascii_case("ETag") || name.eq_ignore_ascii_case("Cache-Control")
                })
                .cloned()
                .collect(),
            ..Reply::raw(304, "", String::new())
        })
    }

    /// A JSON reply. Serialising our own types cannot fail in practice; if it ever did, the
    /// caller gets an opaque 500 rather than a panic.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Self, serde_json::Error> {
        Ok(Reply::raw(status, JSON, serde_json::to_string(value)?))
    }

    /// The 200 an inbound webhook answers once a delivery is accepted: `{"received": true,
    /// "outcome": …}` (what was done with it, a duplicate included).
    pub fn received(outcome: &str) -> Self {
        Reply::json(
            200,
            &serde_json::json!({ "received": true, "outcome": outcome }),
        )
        .unwrap_or_else(|_| Reply::empty(200))
    }

    pub fn empty(status: u16) -> Self {
        Reply::raw(status, "", String::new())
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}
