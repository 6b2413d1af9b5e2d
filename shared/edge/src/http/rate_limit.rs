//! Abuse limits on the Workers Rate Limiting binding (`[[ratelimits]]` in a worker's
//! `wrangler.toml`; Miniflare emulates it locally). No counters of our own: the platform keeps
//! them. A missing binding is a deployment fault and fails closed (500, logged).

use sha2::{Digest, Sha256};
use worker::Env;

/// Outcome of asking a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited,
}

/// Ask the limiter bound as `binding` about `key`.
pub async fn check(env: &Env, binding: &str, key: &str) -> worker::Result<Verdict> {
    let limiter = env.rate_limiter(binding)?;
    let outcome = limiter.limit(key.to_owned()).await?;
    Ok(if outcome.success {
        Verdict::Allowed
    } else {
        Verdict::Limited
    })
}

/// A stable, non-reversible key for personal data (an email) sent to the limiter.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_hide_the_input() {
        let d = digest("ada@example.com");
        assert_eq!(d, digest("ada@example.com"));
        assert_eq!(d.len(), 64);
        assert!(!d.contains("ada"));
        assert_ne!(d, digest("ada@example.org"));
    }
}
