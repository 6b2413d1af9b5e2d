//! Bearer JWT verification (jwt-compact). The algorithm is fixed by the server (HS256); `exp`
//! and `iat` are required, `nbf` is honoured, a token may live at most its audience's maximum
//! lifetime, and the audience (`aud`) separates admin tokens from order access tokens so
//! neither is ever accepted as the other. Scopes come from the `scopes` claim.

use chrono::{DateTime, TimeDelta};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, UntrustedToken, ValidationError};
use serde::{Deserialize, Serialize};
use shop_domain::kernel::time::{Duration, Timestamp};

use crate::http::problem::Problem;

/// Shortest accepted signing secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// The placeholder secret of `.dev.vars.example`: refused outside development.
pub const EXAMPLE_SECRET: &str = "change-me-to-at-least-32-random-bytes-of-secret";
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: i64 = 30;

/// The scope of a customer's access token: everything a customer may do as themselves.
pub const CUSTOMER_SCOPE: &str = "customer";

/// Who a token is for. Each kind has its own `aud` value and longest lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Staff and back-office tools: `aud` = `shop-admin`, at most 24 hours.
    Admin,
    /// A guest's access to one order (`sub` = the order id): `aud` = `shop-order`, at most
    /// 400 days.
    Order,
    /// Whoever has an order's tracking link may follow its parcels (`sub` = the order id, no
    /// other access): `aud` = `shop-tracking`, at most 400 days.
    Tracking,
    /// Whoever submitted a ticket follows and answers it (`sub` = the ticket id):
    /// `aud` = `shop-ticket`, at most 400 days.
    Ticket,
    /// A customer's short-lived access token (`sub` = the customer id): `aud` =
    /// `shop-customer`, at most an hour (issued for 15 minutes).
    Customer,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Admin => "shop-admin",
            Audience::Order => "shop-order",
            Audience::Tracking => "shop-tracking",
            Audience::Ticket => "shop-ticket",
            Audience::Customer => "shop-customer",
        }
    }

    pub fn max_lifetime(self) -> Duration {
        match self {
            Audience::Admin => Duration::from_days(1),
            Audience::Order | Audience::Tracking | Audience::Ticket => Duration::from_days(400),
            Audience::Customer => Duration::from_secs(3600),
        }
    }
}

/// `aud` as JWT allows it: one string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Aud {
    One(String),
    Many(Vec<String>),
}

impl Aud {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Aud::One(a) => a == wanted,
            Aud::Many(list) => list.iter().any(|a| a == wanted),
        }
    }
}

/// The custom claims of our tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TokenClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Aud>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub audience: Audience,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Who this is, for scoping records to their caller (idempotency keys).
    pub fn identity(&self) -> String {
        format!("{}:{}", self.audience.as_str(), self.sub)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    WrongAlgorithm,
    BadSignature,
    MissingExpiry,
    MissingIssuedAt,
    MissingSubject,
    Expired,
    NotYetValid,
    TooLongLived,
    WrongAudience,
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
            AuthError::MissingIssuedAt => ("invalid_token", "The token has no iat claim"),
            AuthError::MissingSubject => ("invalid_token", "The token has no sub claim"),
            AuthError::Expired => ("invalid_token", "The token has expired"),
            AuthError::NotYetValid => ("invalid_token", "The token is not valid yet"),
            AuthError::TooLongLived => (
                "invalid_token",
                "The token's lifetime is longer than this API accepts",
            ),
            AuthError::WrongAudience => ("invalid_token", "The token is not meant for this route"),
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

/// The signing secret, if it is usable: long enough, and not the published example unless
/// `development` says this is a development setup.
pub fn usable_secret(secret: &str, development: bool) -> Result<&[u8], AuthError> {
    if secret.len() < MIN_SECRET_LEN || (secret == EXAMPLE_SECRET && !development) {
        return Err(AuthError::Misconfigured);
    }
    Ok(secret.as_bytes())
}

fn chrono_time(t: Timestamp) -> Result<DateTime<chrono::Utc>, AuthError> {
    DateTime::from_timestamp_millis(t.millis()).ok_or(AuthError::Misconfigured)
}

/// Verify `authorization` (the header's value) for `audience` and require `scope`.
pub fn verify(
    authorization: Option<&str>,
    secret: &[u8],
    now: Timestamp,
    audience: Audience,
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
        .validator::<TokenClaims>(&key)
        .validate(&untrusted)
        .map_err(|e| match e {
            ValidationError::AlgorithmMismatch { .. } => AuthError::WrongAlgorithm,
            ValidationError::InvalidSignature
            | ValidationError::InvalidSignatureLen { .. }
            | ValidationError::MalformedSignature(_) => AuthError::BadSignature,
            _ => AuthError::Malformed,
        })?;
    let claims = token.claims();
    let now_utc = chrono_time(now)?;
    let leeway = TimeDelta::seconds(LEEWAY_SECONDS);
    let options = jwt_compact::TimeOptions::new(leeway, move || now_utc);
    claims.validate_expiration(&options).map_err(|e| match e {
        ValidationError::NoClaim(_) => AuthError::MissingExpiry,
        _ => AuthError::Expired,
    })?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|_| AuthError::NotYetValid)?;
    }
    let custom = &claims.custom;
    if !custom
        .aud
        .as_ref()
        .is_some_and(|a| a.contains(audience.as_str()))
    {
        return Err(AuthError::WrongAudience);
    }
    let issued = claims.issued_at.ok_or(AuthError::MissingIssuedAt)?;
    if issued > now_utc + leeway {
        return Err(AuthError::NotYetValid);
    }
    let expires = claims.expiration.ok_or(AuthError::MissingExpiry)?;
    let max = TimeDelta::milliseconds(audience.max_lifetime().millis());
    if expires - issued > max + leeway {
        return Err(AuthError::TooLongLived);
    }
    // Every caller is someone: idempotency records are scoped to the subject.
    let sub = custom
        .sub
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingSubject)?;
    if !custom.scopes.iter().any(|s| s == scope) {
        return Err(AuthError::InsufficientScope { needed: scope });
    }
    Ok(Principal {
        sub,
        audience,
        scopes: custom.scopes.clone(),
    })
}

/// Sign a token for `principal` (its audience decides `aud`), valid from `now` until
/// `expires` (HS256). Used for order access tokens.
pub fn issue(
    principal: &Principal,
    secret: &[u8],
    now: Timestamp,
    expires: Timestamp,
) -> Result<String, AuthError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::Misconfigured);
    }
    let mut claims = jwt_compact::Claims::new(TokenClaims {
        sub: Some(principal.sub.clone()),
        aud: Some(Aud::One(principal.audience.as_str().to_owned())),
        scopes: principal.scopes.clone(),
    });
    claims.issued_at = Some(chrono_time(now)?);
    claims.expiration = Some(chrono_time(expires)?);
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

    struct T {
        scopes: &'static [&'static str],
        aud: Option<&'static str>,
        iat: Option<i64>,
        nbf: Option<i64>,
        exp: Option<i64>,
    }

    const ADMIN: T = T {
        scopes: &["catalog:write"],
        aud: Some("shop-admin"),
        iat: Some(0),
        nbf: None,
        exp: Some(600),
    };

    fn at(offset: i64) -> DateTime<chrono::Utc> {
        DateTime::from_timestamp(NOW.seconds() + offset, 0).unwrap()
    }

    fn claims(t: T) -> Claims<TokenClaims> {
        let mut c = Claims::new(TokenClaims {
            sub: Some("admin@example.com".into()),
            aud: t.aud.map(|a| Aud::One(a.into())),
            scopes: t.scopes.iter().map(|s| s.to_string()).collect(),
        });
        c.issued_at = t.iat.map(at);
        c.not_before = t.nbf.map(at);
        c.expiration = t.exp.map(at);
        c
    }

    fn hs256(c: &Claims<TokenClaims>, secret: &[u8]) -> String {
        format!(
            "Bearer {}",
            Hs256
                .token(&Header::empty(), c, &Hs256Key::new(secret))
                .unwrap()
        )
    }

    fn check(header: Option<&str>) -> Result<Principal, AuthError> {
        verify(header, SECRET, NOW, Audience::Admin, "catalog:write")
    }

    #[test]
    fn accepts_a_valid_token_with_the_scope() {
        let p = check(Some(&hs256(&claims(ADMIN), SECRET))).unwrap();
        assert_eq!(p.sub, "admin@example.com");
        assert_eq!(p.identity(), "shop-admin:admin@example.com");
        let list = Claims::new(TokenClaims {
            aud: Some(Aud::Many(vec!["other".into(), "shop-admin".into()])),
            ..claims(ADMIN).custom
        });
        let mut list = list;
        list.issued_at = Some(at(0));
        list.expiration = Some(at(60));
        assert!(check(Some(&hs256(&list, SECRET))).is_ok());
    }

    #[test]
    fn rejects_bad_tokens() {
        let err = |t: T| check(Some(&hs256(&claims(t), SECRET))).unwrap_err();
        assert_eq!(check(None).unwrap_err(), AuthError::Missing);
        assert_eq!(check(Some("Basic abc")).unwrap_err(), AuthError::Missing);
        assert_eq!(
            check(Some("Bearer not.a.jwt")).unwrap_err(),
            AuthError::Malformed
        );
        let other_secret = hs256(&claims(ADMIN), b"another-secret-another-secret-xx");
        assert_eq!(
            check(Some(&other_secret)).unwrap_err(),
            AuthError::BadSignature
        );
        assert_eq!(
            err(T {
                iat: Some(-700),
                exp: Some(-120),
                ..ADMIN
            }),
            AuthError::Expired
        );
        assert_eq!(err(T { exp: None, ..ADMIN }), AuthError::MissingExpiry);
        assert_eq!(err(T { iat: None, ..ADMIN }), AuthError::MissingIssuedAt);
        assert_eq!(
            err(T {
                iat: Some(300),
                ..ADMIN
            }),
            AuthError::NotYetValid,
            "issued in the future"
        );
        assert_eq!(
            err(T {
                nbf: Some(300),
                ..ADMIN
            }),
            AuthError::NotYetValid
        );
        assert!(check(Some(&hs256(
            &claims(T {
                nbf: Some(-10),
                ..ADMIN
            }),
            SECRET
        )))
        .is_ok());
        assert_eq!(
            err(T {
                exp: Some(2 * 86_400),
                ..ADMIN
            }),
            AuthError::TooLongLived
        );
        assert_eq!(err(T { aud: None, ..ADMIN }), AuthError::WrongAudience);
        let mut anonymous = claims(ADMIN);
        anonymous.custom.sub = None;
        assert_eq!(
            check(Some(&hs256(&anonymous, SECRET))).unwrap_err(),
            AuthError::MissingSubject
        );
        assert_eq!(
            err(T {
                aud: Some("shop-order"),
                ..ADMIN
            }),
            AuthError::WrongAudience
        );
        assert_eq!(
            err(T {
                scopes: &["orders:read"],
                ..ADMIN
            }),
            AuthError::InsufficientScope {
                needed: "catalog:write"
            }
        );
        let hs384 = Hs384
            .token(&Header::empty(), &claims(ADMIN), &Hs384Key::new(SECRET))
            .unwrap();
        assert_eq!(
            check(Some(&format!("Bearer {hs384}"))).unwrap_err(),
            AuthError::WrongAlgorithm
        );
    }

    #[test]
    fn order_tokens_are_not_admin_tokens() {
        let p = Principal {
            sub: "ord_1".into(),
            audience: Audience::Order,
            scopes: vec!["order:read".into(), "catalog:write".into()],
        };
        let t = format!(
            "Bearer {}",
            issue(&p, SECRET, NOW, NOW.plus(Duration::from_days(90))).unwrap()
        );
        assert_eq!(
            verify(Some(&t), SECRET, NOW, Audience::Order, "order:read").unwrap(),
            p
        );
        assert_eq!(
            verify(Some(&t), SECRET, NOW, Audience::Admin, "catalog:write").unwrap_err(),
            AuthError::WrongAudience
        );
        let later = NOW.plus(Duration::from_days(91));
        assert_eq!(
            verify(Some(&t), SECRET, later, Audience::Order, "order:read").unwrap_err(),
            AuthError::Expired
        );
    }

    #[test]
    fn unusable_secrets_are_a_server_fault() {
        assert_eq!(
            verify(Some("Bearer x"), b"short", NOW, Audience::Admin, "s").unwrap_err(),
            AuthError::Misconfigured
        );
        assert_eq!(
            usable_secret(EXAMPLE_SECRET, false).unwrap_err(),
            AuthError::Misconfigured
        );
        assert!(usable_secret(EXAMPLE_SECRET, true).is_ok());
        assert!(usable_secret("short", true).is_err());
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
