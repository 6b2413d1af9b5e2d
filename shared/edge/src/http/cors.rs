//! CORS for storefront origins listed in `CORS_ALLOWED_ORIGINS` (`*` allows any origin).
//! Credentials are never allowed: carts are capabilities in the URL, admin calls use bearer
//! tokens, and no cookie is read.

use crate::http::problem::Problem;
use crate::reply::Reply;

pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-Id";
pub const EXPOSED_HEADERS: &str =
    "ETag, Location, X-Request-Id, Idempotent-Replayed, Retry-After, Allow";
const MAX_AGE_SECONDS: &str = "600";

pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|a| a == "*" || a == origin)
}

/// Headers to add to an actual (non-preflight) response.
pub fn response_headers(allowed: &[String], origin: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![("Vary".to_owned(), "Origin".to_owned())];
    if let Some(origin) = origin.filter(|o| origin_allowed(allowed, o)) {
        headers.push(("Access-Control-Allow-Origin".into(), origin.to_owned()));
        headers.push((
            "Access-Control-Expose-Headers".into(),
            EXPOSED_HEADERS.into(),
        ));
    }
    headers
}

/// Answer an `OPTIONS` request: a CORS preflight when it carries `Origin` and
/// `Access-Control-Request-Method`, otherwise a plain `Allow` answer.
pub fn preflight(
    allowed: &[String],
    origin: Option<&str>,
    request_method: Option<&str>,
) -> Result<Reply, Problem> {
    let (Some(origin), Some(method)) = (origin, request_method) else {
        return Ok(Reply::empty(204).header("Allow", ALLOWED_METHODS));
    };
    if !origin_allowed(allowed, origin) {
        return Err(Problem::new(
            403,
            "cors_origin_not_allowed",
            "Origin not allowed",
            format!("{origin} is not an allowed storefront origin"),
        ));
    }
    if !ALLOWED_METHODS.split(", ").any(|m| m == method) {
        return Err(Problem::new(
            403,
            "cors_method_not_allowed",
            "Method not allowed for CORS",
            format!("{method} is not allowed"),
        ));
    }
    Ok(Reply::empty(204)
        .header("Access-Control-Allow-Origin", origin)
        .header("Access-Control-Allow-Methods", ALLOWED_METHODS)
        .header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        .header("Access-Control-Max-Age", MAX_AGE_SECONDS)
        .header("Vary", "Origin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["https://shop.example".into()]
    }

    #[test]
    fn preflight_for_allowed_origin() {
        let r = preflight(&allowed(), Some("https://shop.example"), Some("POST")).unwrap();
        assert_eq!(r.status, 204);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "Access-Control-Allow-Origin" && v == "https://shop.example"));
    }

    #[test]
    fn preflight_for_other_origin_is_refused() {
        let p = preflight(&allowed(), Some("https://evil.example"), Some("POST")).unwrap_err();
        assert_eq!(p.status, 403);
        let p = preflight(&allowed(), Some("https://shop.example"), Some("TRACE")).unwrap_err();
        assert_eq!(p.status, 403);
    }

    #[test]
    fn actual_response_headers() {
        let h = response_headers(&allowed(), Some("https://evil.example"));
        assert!(!h.iter().any(|(k, _)| k == "Access-Control-Allow-Origin"));
        let h = response_headers(&["*".into()], Some("https://any.example"));
        assert!(h.iter().any(|(k, _)| k == "Access-Control-Allow-Origin"));
    }
}
