//! Standard Webhooks (<https://www.standardwebhooks.com>), both ways: the merchant deliveries
//! this system signs, and the payment providers' deliveries it verifies.
//!
//! A message is signed with `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256>` over `"<id>.<timestamp>.<body>"`, keyed by the
//! base64-decoded `whsec_` secret. Several space-separated signatures may be sent (the sender's
//! rotation); several secrets may be configured (ours). The comparison is the `hmac` crate's
//! constant-time `verify_slice`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::kernel::time::{Duration, Timestamp};
use crate::payments::{signed_within, SignatureError};

fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(mac)
}

/// The `webhook-signature` value for one message; `None` when `secret` is not a `whsec_` secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let mac = mac(&key(secret)?, msg_id, timestamp, body.as_bytes())?;
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The three headers of a delivery, as received (`None` when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verify a delivery on its raw `body`. Returns the signed timestamp. A secret that is not a
/// `whsec_` secret is skipped (and none at all refuses everything).
pub fn verify(
    headers: Headers<'_>,
    body: &[u8],
    secrets: &[String],
    now: Timestamp,
    tolerance: Duration,
) -> Result<Timestamp, SignatureError> {
    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| key(s)).collect();
    if keys.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let (Some(id), Some(timestamp), Some(signature)) =
        (headers.id, headers.timestamp, headers.signature)
    else {
        return Err(SignatureError::Missing);
    };
    if id.is_empty() || id.len() > 255 {
        return Err(SignatureError::Malformed);
    }
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    let signed_at = signed_within(seconds, now, tolerance)?;
    // An undecodable or other-version signature can match nothing; others may still match.
    let signatures: Vec<Vec<u8>> = signature
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .collect();
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    for key in &keys {
        for signature in &signatures {
            let Some(mac) = mac(key, id, seconds, body) else {
                continue;
            };
            if mac.verify_slice(signature).is_ok() {
                return Ok(signed_at);
            }
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &str = r#"{"test": 2432232314}"#;
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const T: i64 = 1614265330;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const NOW: Timestamp = Timestamp::from_millis(T * 1000);

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn headers<'a>(id: &'a str, t: &'a str, signature: &'a str) -> Headers<'a> {
        Headers {
            id: Some(id),
            timestamp: Some(t),
            signature: Some(signature),
        }
    }

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        assert_eq!(sign(SECRET, ID, T, BODY).unwrap(), SIGNATURE);
        assert_eq!(sign("not-a-secret", "m", 1, BODY), None);
    }

    #[test]
    fn verifies_the_reference_and_refuses_everything_else() {
        let ok = secrets(&[SECRET]);
        let t = T.to_string();
        let check = |h: Headers<'_>, body: &str, now: Timestamp| {
            verify(h, body.as_bytes(), &ok, now, Duration::from_secs(300))
        };
        assert_eq!(check(headers(ID, &t, SIGNATURE), BODY, NOW), Ok(NOW));
        // Several signatures, one of another version, one undecodable: any match will do.
        let several = format!("v2,abc v1,!!! v1,AAAA {SIGNATURE}");
        assert_eq!(check(headers(ID, &t, &several), BODY, NOW), Ok(NOW));
        assert_eq!(
            check(headers(ID, &t, SIGNATURE), r#"{"test": 2432232315}"#, NOW),
            Err(SignatureError::NoMatch),
            "tampered body"
        );
        assert_eq!(
            check(headers("msg_other", &t, SIGNATURE), BODY, NOW),
            Err(SignatureError::NoMatch),
            "the id is signed"
        );
        assert_eq!(
            check(
                headers(ID, &t, SIGNATURE),
                BODY,
                NOW.plus(Duration::from_secs(301))
            ),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            check(
                headers(ID, &t, SIGNATURE),
                BODY,
                NOW.minus(Duration::from_secs(301))
            ),
            Err(SignatureError::OutsideTolerance),
            "from the future"
        );
        assert_eq!(
            check(headers(ID, "soon", SIGNATURE), BODY, NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(headers(ID, &t, "g0hM9SsE"), BODY, NOW),
            Err(SignatureError::Malformed)
        );
        let mut missing = headers(ID, &t, SIGNATURE);
        missing.id = None;
        assert_eq!(check(missing, BODY, NOW), Err(SignatureError::Missing));
        assert_eq!(
            verify(
                headers(ID, &t, SIGNATURE),
                BODY.as_bytes(),
                &secrets(&["plain-text"]),
                NOW,
                Duration::from_secs(300)
            ),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn rotation_accepts_old_and_new_secrets() {
        let new = "whsec_bmV3LXNlY3JldC1ieXRlcy0wMTIzNDU2Nzg5";
        let both = secrets(&[SECRET, new]);
        let t = T.to_string();
        for secret in [SECRET, new] {
            let signature = sign(secret, ID, T, BODY).unwrap();
            assert_eq!(
                verify(
                    headers(ID, &t, &signature),
                    BODY.as_bytes(),
                    &both,
                    NOW,
                    Duration::from_secs(300)
                ),
                Ok(NOW)
            );
        }
    }
}
