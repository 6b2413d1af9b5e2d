//! Bearer JWT verification (jwt-compact). The algorithm is fixed by the server (HS256), `exp`
//! is required, scopes come from the `scopes` claim.

use chrono::{DateTime, TimeDelta};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, UntrustedToken, ValidationError};
use serde::{Deserialize, Serialize};
use shop_domain::time::Timestamp;

use crate::problem::Problem;

/// Shortest accepted signing secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub sub: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    WrongAlgorithm,
    BadSignature,
    MissingExpiry,
    Expired,
    InsufficientScope {
        needed: &'static str,
    },
    /// The server's own secret is unusable: a configuration fault, answered 500.
    Misconfigured,
}

impl AuthError {
    pub fn into_problem(self) -> Problem {
        let (code, detail) = match self {
            AuthError::Missing => ("unauthenticated", "Send Authorization: Bearer <token>"),
            AuthError::Malformed => ("invalid_token", "The bearer token is not a JWT"),
            AuthError::WrongAlgorithm => ("invalid_token", "The token's algorithm is not accepted"),
            AuthError::BadSignature => ("invalid_token", "The token's signature does not verify"),
            AuthError::MissingExpiry => ("invalid_token", "The token has no exp claim"),
            AuthError::Expired => ("invalid_token", "The token has expired"),
            AuthError::InsufficientScope { needed } => {
                return Problem::new(
                    403,
                    "insufficient_scope",
                    "Forbidden",
                    format!("This route needs the {needed} scope"),
                )
                .with_header(
                    "WWW-Authenticate",
                    format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\""),
                );
            }
            AuthError::Misconfigured => return Problem::internal(),
        };
        let challenge = if code == "invalid_token" {
            "Bearer error=\"invalid_token\"".to_owned()
        } else {
            "Bearer".to_owned()
        };
        Problem::new(401, code, "Unauthorized", detail).with_header("WWW-Authenticate", challenge)
    }
}

/// Verify `authorization` (the header's value) and require `scope`.
pub fn verify(
    authorization: Option<&str>,
    secret: &[u8],
    now: Timestamp,
    scope: &'static str,
) -> Result<Principal, AuthError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::Misconfigured);
    }
    let header = authorization.ok_or(AuthError::Missing)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AuthError::Missing)?
        .trim();
    let untrusted = UntrustedToken::new(token).map_err(|_| AuthError::Malformed)?;
    let key = Hs256Key::new(secret);
    let token = Hs256
        .validator::<Principal>(&key)
        .validate(&untrusted)
        .map_err(|e| match e {
            ValidationError::AlgorithmMismatch { .. } => AuthError::WrongAlgorithm,
            ValidationError::InvalidSignature
            | ValidationError::InvalidSignatureLen { .. }
            | ValidationError::MalformedSignature(_) => AuthError::BadSignature,
            _ => AuthError::Malformed,
        })?;
    let now = DateTime::from_timestamp_millis(now.millis()).ok_or(AuthError::Misconfigured)?;
    let options = jwt_compact::TimeOptions::new(TimeDelta::seconds(LEEWAY_SECONDS), move || now);
    token
        .claims()
        .validate_expiration(&options)
        .map_err(|e| match e {
            ValidationError::NoClaim(_) => AuthError::MissingExpiry,
            _ => AuthError::Expired,
        })?;
    let principal = token.claims().custom.clone();
    if !principal.scopes.iter().any(|s| s == scope) {
        return Err(AuthError::InsufficientScope { needed: scope });
    }
    Ok(principal)
}

/// Sign a token for `principal`, valid until `expires` (HS256). Used for order access tokens.
pub fn issue(
    principal: &Principal,
    secret: &[u8],
    now: Timestamp,
    expires: Timestamp,
) -> Result<String, AuthError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::Misconfigured);
    }
    let mut claims = jwt_compact::Claims::new(principal.clone());
    claims.issued_at = DateTime::from_timestamp_millis(now.millis());
    claims.expiration = DateTime::from_timestamp_millis(expires.millis());
    Hs256
        .token(
            &jwt_compact::Header::empty(),
            &claims,
            &Hs256Key::new(secret),
        )
        .map_err(|_| AuthError::Misconfigured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::alg::{Hs384, Hs384Key};
    use jwt_compact::{Claims, Header};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn claims(scopes: &[&str], exp_in: Option<i64>) -> Claims<Principal> {
        let mut c = Claims::new(Principal {
            sub: "admin@example.com".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        });
        c.expiration = exp_in.map(|s| DateTime::from_timestamp(NOW.seconds() + s, 0).unwrap());
        c
    }

    fn hs256(c: &Claims<Principal>, secret: &[u8]) -> String {
        format!(
            "Bearer {}",
            Hs256
                .token(&Header::empty(), c, &Hs256Key::new(secret))
                .unwrap()
        )
    }

    #[test]
    fn accepts_a_valid_token_with_the_scope() {
        let t = hs256(&claims(&["catalog:write"], Some(600)), SECRET);
        let p = verify(Some(&t), SECRET, NOW, "catalog:write").unwrap();
        assert_eq!(p.sub, "admin@example.com");
    }

    #[test]
    fn rejects_bad_tokens() {
        let check =
            |header: Option<&str>| verify(header, SECRET, NOW, "catalog:write").unwrap_err();
        assert_eq!(check(None), AuthError::Missing);
        assert_eq!(check(Some("Basic abc")), AuthError::Missing);
        assert_eq!(check(Some("Bearer not.a.jwt")), AuthError::Malformed);
        let other_secret = hs256(
            &claims(&["catalog:write"], Some(600)),
            b"another-secret-another-secret-xx",
        );
        assert_eq!(check(Some(&other_secret)), AuthError::BadSignature);
        let expired = hs256(&claims(&["catalog:write"], Some(-120)), SECRET);
        assert_eq!(check(Some(&expired)), AuthError::Expired);
        let no_exp = hs256(&claims(&["catalog:write"], None), SECRET);
        assert_eq!(check(Some(&no_exp)), AuthError::MissingExpiry);
        let wrong_scope = hs256(&claims(&["orders:read"], Some(600)), SECRET);
        assert_eq!(
            check(Some(&wrong_scope)),
            AuthError::InsufficientScope {
                needed: "catalog:write"
            }
        );
        let hs384 = Hs384
            .token(
                &Header::empty(),
                &claims(&["catalog:write"], Some(600)),
                &Hs384Key::new(SECRET),
            )
            .unwrap();
        assert_eq!(
            check(Some(&format!("Bearer {hs384}"))),
            AuthError::WrongAlgorithm
        );
    }

    #[test]
    fn issued_tokens_verify() {
        let p = Principal {
            sub: "ord_1".into(),
            scopes: vec!["order:read".into()],
        };
        let t = issue(
            &p,
            SECRET,
            NOW,
            NOW.plus(shop_domain::time::Duration::from_days(1)),
        )
        .unwrap();
        assert_eq!(
            verify(Some(&format!("Bearer {t}")), SECRET, NOW, "order:read").unwrap(),
            p
        );
        let later = NOW.plus(shop_domain::time::Duration::from_days(2));
        assert_eq!(
            verify(Some(&format!("Bearer {t}")), SECRET, later, "order:read").unwrap_err(),
            AuthError::Expired
        );
    }

    #[test]
    fn short_secret_is_a_server_fault() {
        assert_eq!(
            verify(Some("Bearer x"), b"short", NOW, "s").unwrap_err(),
            AuthError::Misconfigured
        );
        assert_eq!(AuthError::Misconfigured.into_problem().status, 500);
        assert_eq!(AuthError::Expired.into_problem().status, 401);
        assert_eq!(
            AuthError::InsufficientScope { needed: "x" }
                .into_problem()
                .status,
            403
        );
    }
}
