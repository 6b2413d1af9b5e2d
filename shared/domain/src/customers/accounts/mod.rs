//! Customer accounts: the password policy, the versioned password hash (PBKDF2-HMAC-SHA256 from
//! a well-kept implementation behind the [`Kdf`] port: WebCrypto in a Worker), constant-time
//! verification with a dummy hash for unknown emails, and the refresh-token family rules
//! (rotated on every use; a rotated token used again revokes its family).

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::kernel::contact::Email;
use crate::kernel::time::{Duration, Timestamp};
use crate::StoreError;

mod lifecycle;
pub use lifecycle::{
    erase, register, request_reset, DisplayName, InvalidName, NewAccount, ResetLink, MAX_NAME_CHARS,
};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;
pub const SALT_BYTES: usize = 16;
pub const HASH_BYTES: usize = 32;
/// How long an access token opens the customer's routes.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// How long an unused refresh token stays good.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_days(30);
/// How long an email verification link stays good.
pub const VERIFICATION_TTL: Duration = Duration::from_days(2);
/// How long a password reset link stays good.
pub const RESET_TTL: Duration = Duration::from_secs(3600);

/// A password that meets the policy: 10 to 256 characters, not the account's email address.
/// Never displayed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordIssue {
    TooShort,
    TooLong,
    IsTheEmail,
}

impl PasswordIssue {
    pub fn message(self) -> &'static str {
        match self {
            PasswordIssue::TooShort | PasswordIssue::TooLong => {
                "a password is 10 to 256 characters"
            }
            PasswordIssue::IsTheEmail => "a password is not the account's email address",
        }
    }
}

impl Password {
    /// The policy for a new password of the account `email`.
    pub fn new(text: &str, email: &Email) -> Result<Self, PasswordIssue> {
        let chars = text.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordIssue::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordIssue::TooLong);
        }
        if text.trim().eq_ignore_ascii_case(email.as_str()) {
            return Err(PasswordIssue::IsTheEmail);
        }
        Ok(Password(text.to_owned()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The KDF's work factor. Raising it makes every stored hash with less work be replaced on the
/// customer's next login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub iterations: u32,
}

/// PBKDF2-HMAC-SHA256 at 100,000 iterations: the most Cloudflare's WebCrypto accepts.
pub const CURRENT_KDF: KdfParams = KdfParams {
    iterations: 100_000,
};

/// PBKDF2-HMAC-SHA256 (port): a well-kept implementation derives the key; this crate never does.
pub trait Kdf {
    async fn pbkdf2_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; HASH_BYTES], StoreError>;
}

/// A stored password hash: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (standard base64, no
/// padding). The scheme and its parameters travel with the hash, so they can be raised later.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_BYTES],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PasswordHash(pbkdf2-sha256, {} iterations)",
            self.iterations
        )
    }
}

const SCHEME: &str = "pbkdf2-sha256";

impl PasswordHash {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('$');
        let (scheme, iterations, salt, hash) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if scheme != SCHEME || parts.next().is_some() {
            return None;
        }
        let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0)?;
        let salt = STANDARD_NO_PAD
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())?;
        let hash: [u8; HASH_BYTES] = STANDARD_NO_PAD.decode(hash).ok()?.try_into().ok()?;
        Some(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    pub fn encode(&self) -> String {
        format!(
            "{SCHEME}${}${}${}",
            self.iterations,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(self.hash)
        )
    }

    /// Was this hash made with less work than `params` ask for now?
    pub fn needs_rehash(&self, params: KdfParams) -> bool {
        self.iterations < params.iterations
    }

    /// Hash `password` with a fresh random `salt`.
    pub async fn new(
        kdf: &impl Kdf,
        password: &Password,
        salt: [u8; SALT_BYTES],
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let hash = kdf
            .pbkdf2_sha256(password.as_bytes(), &salt, params.iterations)
            .await?;
        Ok(PasswordHash {
            iterations: params.iterations,
            salt: salt.to_vec(),
            hash,
        })
    }

    /// Does `candidate` produce this hash? Compared in constant time.
    pub async fn verify(&self, kdf: &impl Kdf, candidate: &str) -> Result<bool, StoreError> {
        let derived = kdf
            .pbkdf2_sha256(candidate.as_bytes(), &self.salt, self.iterations)
            .await?;
        Ok(bool::from(derived.ct_eq(&self.hash)))
    }

    /// What a login for an unknown email verifies against, so it costs what a wrong password
    /// costs (and always fails: no password derives an all-zero key in practice).
    pub fn dummy(params: KdfParams) -> Self {
        PasswordHash {
            iterations: params.iterations,
            salt: vec![0; SALT_BYTES],
            hash: [0; HASH_BYTES],
        }
    }
}

/// An opaque token handed to a client (refresh, email verification, password reset): 32 random
/// bytes, base64url. Only its SHA-256 is stored, so a database read never yields a usable token.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(String);

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(..)")
    }
}

impl OpaqueToken {
    pub fn from_random(bytes: [u8; 32]) -> Self {
        OpaqueToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token as a client sent it: 43 base64url characters, or nothing.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        (text.len() == 43
            && URL_SAFE_NO_PAD
                .decode(text)
                .is_ok_and(|bytes| bytes.len() == 32))
        .then(|| OpaqueToken(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored and looked up: the token's SHA-256, hex.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// `customer.registered`: a new account. Announces the account only: the verification link is
/// the customer's alone and travels as an [`AccountMessage`], never as an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRegistered {
    pub customer_id: crate::kernel::ids::CustomerId,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `customer.password_reset_requested`: someone asked to reset the account's password (an
/// audit fact for the merchant's systems). The link itself travels as an [`AccountMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    pub customer_id: crate::kernel::ids::CustomerId,
    pub email: String,
    pub reset_expires_at: Timestamp,
}

impl TokenPurpose {
    /// How long a link of this purpose stays good.
    pub fn ttl(self) -> Duration {
        match self {
            TokenPurpose::VerifyEmail => VERIFICATION_TTL,
            TokenPurpose::ResetPassword => RESET_TTL,
        }
    }

    /// The type of the message that carries a link of this purpose.
    pub fn message_type(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "account.email_verification",
            TokenPurpose::ResetPassword => "account.password_reset",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
        }
    }
}

/// A message for one customer's eyes: a single-use link (email verification, password reset).
/// It goes to the merchant's account mail endpoint alone (configured on its own, with its own
/// secret), never into the event stream that webhook subscribers receive; only the token's
/// digest is kept once it was handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMessage {
    pub id: String,
    pub purpose: TokenPurpose,
    pub customer_id: crate::kernel::ids::CustomerId,
    pub email: String,
    pub name: Option<String>,
    pub token: OpaqueToken,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

impl AccountMessage {
    /// A link of `purpose` for the customer, good for the purpose's time from `now`.
    pub fn new(
        ids: &dyn crate::kernel::ids::IdSource,
        purpose: TokenPurpose,
        customer_id: &crate::kernel::ids::CustomerId,
        email: &str,
        name: Option<&str>,
        token: OpaqueToken,
        now: Timestamp,
    ) -> Self {
        AccountMessage {
            id: format!("amsg_{:032x}", ids.next_u128()),
            purpose,
            customer_id: customer_id.clone(),
            email: email.to_owned(),
            name: name.map(str::to_owned),
            token,
            expires_at: now.plus(purpose.ttl()),
            created_at: now,
        }
    }

    /// The body sent, signed with Standard Webhooks: `{type, timestamp, data: {customer_id,
    /// email, name?, token, expires_at}}`.
    pub fn body(&self) -> String {
        let mut data = serde_json::json!({
            "customer_id": self.customer_id,
            "email": self.email,
            "token": self.token.as_str(),
            "expires_at": self.expires_at.to_rfc3339(),
        });
        if let (Some(name), Some(map)) = (&self.name, data.as_object_mut()) {
            map.insert("name".into(), name.as_str().into());
        }
        serde_json::json!({
            "type": self.purpose.message_type(),
            "timestamp": self.created_at.to_rfc3339(),
            "data": data,
        })
        .to_string()
    }
}

/// `customer.erased`: the customer's personal data is gone (`DELETE /v1/me`); the merchant's
/// other systems (email, CRM) erase theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerErased {
    pub customer_id: crate::kernel::ids::CustomerId,
    pub erased_at: Timestamp,
}

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

/// A stored single-use token, with its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOneTime {
    pub customer: String,
    pub email: String,
    pub purpose: TokenPurpose,
    pub expires_at: Timestamp,
    pub used: bool,
}

/// The token, if it may be redeemed for `purpose` at `now`: of that purpose, unused, unexpired.
/// (Its single use is also a constraint: redeeming it twice aborts the second batch.)
pub fn redeemable(
    stored: Option<&StoredOneTime>,
    purpose: TokenPurpose,
    now: Timestamp,
) -> Option<&StoredOneTime> {
    stored.filter(|t| t.purpose == purpose && !t.used && now < t.expires_at)
}

/// A refresh token's state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshStatus {
    /// The newest token of its family: it may be used once.
    Active,
    /// Used: a new token replaced it. Presented again, it was stolen or replayed.
    Rotated,
    /// Logged out, reused, or the password changed.
    Revoked,
}

/// A stored refresh token, as far as deciding a refresh goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefresh {
    pub family: String,
    pub customer: String,
    pub status: RefreshStatus,
    pub expires_at: Timestamp,
}

/// What a presented refresh token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Issue a new pair; the presented token is rotated.
    Rotate { family: String, customer: String },
    /// A rotated token came back: revoke its whole family (every session it started), answer
    /// as for an invalid token.
    RevokeFamily { family: String },
    /// Unknown, expired or revoked: refuse.
    Refuse,
}

pub fn refresh(stored: Option<&StoredRefresh>, now: Timestamp) -> Refresh {
    match stored {
        Some(t) if t.status == RefreshStatus::Rotated => Refresh::RevokeFamily {
            family: t.family.clone(),
        },
        Some(t) if t.status == RefreshStatus::Active && now < t.expires_at => Refresh::Rotate {
            family: t.family.clone(),
            customer: t.customer.clone(),
        },
        _ => Refresh::Refuse,
    }
}

#[cfg(test)]
mod tests;
