//! RFC 9457 problem details (`application/problem+json`): the one shape of every error answer.

use serde::Serialize;
use shop_domain::catalog::inventory::Shortage;

use crate::reply::Reply;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://edge-commerce.dev/problems/";

/// One invalid part of a request body or query, located by a JSON Pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub code: &'static str,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            code,
            detail: detail.into(),
        }
    }
}

/// An error answer. `code` is stable and machine-readable; `detail` is for humans.
/// 5xx problems are opaque: their detail never carries internal causes (those go to the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extra members of the problem object (e.g. `available` for stock).
    pub extra: Vec<(&'static str, serde_json::Value)>,
    /// Extra response headers (e.g. `Allow` on 405).
    pub headers: Vec<(&'static str, String)>,
    /// Why an internal error happened: logged by the pipeline with the request id, never sent.
    pub cause: Option<String>,
}

impl Problem {
    pub fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            extra: Vec::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// An extension member; never one of the problem's own members, which it would hide.
    pub fn with_extra(mut self, name: &'static str, value: serde_json::Value) -> Self {
        debug_assert!(
            ![
                "type",
                "title",
                "status",
                "detail",
                "instance",
                "code",
                "request_id",
                "errors"
            ]
            .contains(&name),
            "{name} is a member of every problem"
        );
        self.extra.push((name, value));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 422 for every field the domain found invalid.
    pub fn invalid_inputs(issues: Vec<shop_domain::checkout::FieldIssue>) -> Self {
        Problem::invalid_fields(
            issues
                .into_iter()
                .map(|i| FieldError::new(i.path, i.code, i.message))
                .collect(),
        )
    }

    /// 422 for every invalid field of a request.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        Problem::new(
            422,
            "validation_failed",
            "Request is not valid",
            "Some fields are not valid",
        )
        .with_errors(errors)
    }

    /// 422 for one invalid field.
    pub fn invalid_field(pointer: &str, code: &'static str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(
            422,
            "validation_failed",
            "Request is not valid",
            detail.clone(),
        )
        .with_errors(vec![FieldError::new(pointer, code, detail)])
    }

    /// 409 `insufficient_stock`, with each short SKU: the one shape of every "not enough stock"
    /// answer (cart, checkout, admin adjustment).
    pub fn insufficient_stock(shortages: &[Shortage]) -> Self {
        let detail = shortages
            .iter()
            .map(|s| {
                format!(
                    "{}: {} requested, {} available",
                    s.sku,
                    s.requested,
                    s.available.max(0)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Problem::new(409, "insufficient_stock", "Not enough stock", detail).with_extra(
            "shortages",
            serde_json::to_value(shortages).unwrap_or_default(),
        )
    }

    /// An inbound delivery whose signature (in the `header`) does not verify: nothing of it was
    /// read or written.
    pub fn signature_invalid(header: &str, error: shop_domain::payments::SignatureError) -> Self {
        Problem::new(
            400,
            "signature_invalid",
            "Signature invalid",
            format!("The {header} does not verify: {}", error.as_str()),
        )
    }

    /// A signed delivery whose body cannot be read (`code`: `invalid_event`, `invalid_callback`);
    /// it was kept for investigation.
    pub fn unreadable_delivery(code: &'static str, title: &'static str, detail: String) -> Self {
        Problem::new(400, code, title, detail)
    }

    /// A replayed request of the account workers: what it answered (tokens) is shown once.
    pub fn credentials_shown_once() -> Self {
        Problem::new(
            409,
            "credentials_shown_once",
            "Already answered",
            "The request with this Idempotency-Key succeeded; the tokens it answered are shown only once. Log in (or refresh) again with a new key",
        )
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(404, code, "Not found", detail)
    }

    pub fn route_not_found() -> Self {
        Problem::not_found("route_not_found", "No route matches this path")
    }

    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        Problem::new(
            405,
            "method_not_allowed",
            "Method not allowed",
            format!("This route accepts {allow}"),
        )
        .with_header("Allow", allow)
    }

    /// The opaque 500: the cause is logged by the caller, never sent.
    pub fn internal() -> Self {
        Problem::new(
            500,
            "internal_error",
            "Internal error",
            "Something went wrong on our side; quote the request id when reporting it",
        )
    }

    /// The opaque 500 for `cause`, which the pipeline logs (see [`Problem::cause`]).
    pub fn internal_because(cause: impl std::fmt::Display) -> Self {
        Problem {
            cause: Some(cause.to_string()),
            ..Problem::internal()
        }
    }

    pub fn into_reply(self, request_id: &str) -> Reply {
        let mut body = serde_json::Map::new();
        body.insert("type".into(), format!("{TYPE_BASE}{}", self.code).into());
        body.insert("title".into(), self.title.into());
        body.insert("status".into(), self.status.into());
        body.insert("detail".into(), self.detail.into());
        body.insert("code".into(), self.code.into());
        body.insert("request_id".into(), request_id.into());
        if !self.errors.is_empty() {
            body.insert(
                "errors".into(),
                serde_json::to_value(&self.errors).unwrap_or_default(),
            );
        }
        for (name, value) in self.extra {
            body.insert(name.into(), value);
        }
        let mut reply = Reply::raw(
            self.status,
            PROBLEM_CONTENT_TYPE,
            serde_json::Value::Object(body).to_string(),
        );
        for (name, value) in self.headers {
            reply = reply.header(name, value);
        }
        reply
    }
}

/// A storage failure in a handler is an internal error: `?` turns it into the opaque 500 and the
/// pipeline logs its cause (a `StoreError` says what was being done). One exception: a write the
/// database refused because the token's customer was erased since the token was issued (the
/// triggers of schema/0024) is that token's 401, wherever it happens.
impl From<shop_domain::StoreError> for Problem {
    fn from(e: shop_domain::StoreError) -> Self {
        match crate::store::sql::violation(e.message()) {
            Some(crate::store::sql::Violation::Trigger("customer erased")) => Problem::new(
                401,
                "invalid_token",
                "Unauthorized",
                "The token's customer no longer exists",
            ),
            _ => Problem::internal_because(e),
        }
    }
}

/// A runtime failure (D1, a queue) in a handler: the opaque 500, its cause logged.
impl From<worker::Error> for Problem {
    fn from(e: worker::Error) -> Self {
        Problem::internal_because(e)
    }
}

/// Serialising our own answer failed: the opaque 500, its cause logged. (Request bodies are
/// parsed by `Call::json`, which answers 4xx problems of its own.)
impl From<serde_json::Error> for Problem {
    fn from(e: serde_json::Error) -> Self {
        Problem::internal_because(format!("serialising an answer: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_cause_is_kept_for_the_log_and_never_sent() {
        let problem: Problem =
            shop_domain::StoreError::new("get order: D1_ERROR: no such table: orders").into();
        assert_eq!(problem.status, 500);
        assert_eq!(
            problem.cause.as_deref(),
            Some("get order: D1_ERROR: no such table: orders")
        );
        let reply = problem.into_reply("req_1");
        assert!(!reply.body.contains("orders"), "opaque: {}", reply.body);
        assert!(reply.body.contains("req_1"));
    }

    #[test]
    fn renders_rfc9457_members() {
        let reply = Problem::invalid_field("/quantity", "out_of_range", "too many")
            .with_extra("max", 99.into())
            .into_reply("req_1");
        assert_eq!(reply.status, 422);
        assert_eq!(reply.content_type, PROBLEM_CONTENT_TYPE);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            body["type"],
            "https://edge-commerce.dev/problems/validation_failed"
        );
        assert_eq!(body["status"], 422);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["request_id"], "req_1");
        assert_eq!(body["errors"][0]["pointer"], "/quantity");
        assert_eq!(body["max"], 99);
    }

    #[test]
    fn method_not_allowed_lists_allow_header() {
        let reply = Problem::method_not_allowed(&["GET", "POST"]).into_reply("r");
        assert_eq!(reply.status, 405);
        assert!(reply
            .headers
            .contains(&("Allow".to_string(), "GET, POST".to_string())));
    }
}
