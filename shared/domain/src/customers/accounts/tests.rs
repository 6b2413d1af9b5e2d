use super::*;
use futures_executor::block_on;

/// The `pbkdf2` crate (RustCrypto) as the KDF, natively.
struct RustCryptoKdf;

impl Kdf for RustCryptoKdf {
    async fn pbkdf2_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; HASH_BYTES], StoreError> {
        Ok(pbkdf2::pbkdf2_hmac_array::<Sha256, HASH_BYTES>(
            password, salt, iterations,
        ))
    }
}

fn email() -> Email {
    Email::parse("Ada@Example.com").unwrap()
}

#[test]
fn the_password_policy() {
    assert_eq!(
        Password::new("short", &email()),
        Err(PasswordIssue::TooShort)
    );
    assert_eq!(
        Password::new(&"x".repeat(257), &email()),
        Err(PasswordIssue::TooLong)
    );
    assert_eq!(
        Password::new("ada@example.com", &email()),
        Err(PasswordIssue::IsTheEmail)
    );
    assert!(Password::new("ééééééééééé", &email()).is_ok(), "characters");
    assert!(Password::new(&"x".repeat(256), &email()).is_ok());
    assert_eq!(
        format!("{:?}", Password::new("correct horse", &email())),
        "Ok(Password(..))",
        "never displayed"
    );
}

#[test]
fn hashes_are_versioned_salted_and_verified() {
    let kdf = RustCryptoKdf;
    let params = KdfParams { iterations: 1000 };
    let password = Password::new("correct horse battery", &email()).unwrap();
    let hash = block_on(PasswordHash::new(&kdf, &password, [7; SALT_BYTES], params)).unwrap();
    let stored = hash.encode();
    assert!(stored.starts_with("pbkdf2-sha256$1000$BwcHBwcHBwcHBwcHBwcHBw$"));
    let parsed = PasswordHash::parse(&stored).unwrap();
    assert_eq!(parsed, hash);
    assert!(block_on(parsed.verify(&kdf, "correct horse battery")).unwrap());
    assert!(!block_on(parsed.verify(&kdf, "correct horse batterY")).unwrap());
    let other_salt = block_on(PasswordHash::new(&kdf, &password, [8; SALT_BYTES], params)).unwrap();
    assert_ne!(other_salt.encode(), stored, "a salt per user");
    assert!(parsed.needs_rehash(KdfParams { iterations: 2000 }));
    assert!(!parsed.needs_rehash(params));
    assert!(!block_on(PasswordHash::dummy(params).verify(&kdf, "anything at all")).unwrap());
    for bad in [
        "",
        "bcrypt$1000$BwcHBwcHBwcHBwcHBwcHBw$AAAA",
        "pbkdf2-sha256$0$BwcHBwcHBwcHBwcHBwcHBw$AAAA",
        "pbkdf2-sha256$1000$BwcHBwcHBwcHBwcHBwcHBw$AAAA",
        &format!("{stored}$extra"),
    ] {
        assert!(PasswordHash::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn the_kdf_is_pbkdf2_hmac_sha256() {
    // RFC 7914, section 11: PBKDF2-HMAC-SHA-256 (P="passwd", S="salt", c=1), first 32 bytes.
    let key = block_on(RustCryptoKdf.pbkdf2_sha256(b"passwd", b"salt", 1)).unwrap();
    assert_eq!(
        hex::encode(key),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
    );
}

#[test]
fn opaque_tokens_are_stored_as_digests() {
    let token = OpaqueToken::from_random([9; 32]);
    assert_eq!(token.as_str().len(), 43);
    assert_eq!(OpaqueToken::parse(token.as_str()), Some(token.clone()));
    assert_eq!(token.digest().len(), 64);
    assert_ne!(token.digest(), token.as_str());
    assert!(OpaqueToken::parse("short").is_none());
    assert!(OpaqueToken::parse(&"!".repeat(43)).is_none());
    assert_eq!(format!("{token:?}"), "OpaqueToken(..)");
}

#[test]
fn single_use_tokens_of_their_purpose_until_they_expire() {
    let now = Timestamp::from_millis(1_800_000_000_000);
    let token = StoredOneTime {
        customer: "cus".into(),
        email: "a@example.com".into(),
        purpose: TokenPurpose::ResetPassword,
        expires_at: now.plus(RESET_TTL),
        used: false,
    };
    let reset = TokenPurpose::ResetPassword;
    assert!(redeemable(Some(&token), reset, now).is_some());
    assert!(redeemable(Some(&token), TokenPurpose::VerifyEmail, now).is_none());
    assert!(redeemable(Some(&token), reset, now.plus(RESET_TTL)).is_none());
    let used = StoredOneTime {
        used: true,
        ..token
    };
    assert!(redeemable(Some(&used), reset, now).is_none());
    assert!(redeemable(None, reset, now).is_none());
}

#[test]
fn refresh_rotates_once_and_reuse_revokes_the_family() {
    let now = Timestamp::from_millis(1_800_000_000_000);
    let stored = |status, expires_at| StoredRefresh {
        family: "fam".into(),
        customer: "cus".into(),
        status,
        expires_at,
    };
    let later = now.plus(Duration::from_days(1));
    assert_eq!(
        refresh(Some(&stored(RefreshStatus::Active, later)), now),
        Refresh::Rotate {
            family: "fam".into(),
            customer: "cus".into()
        }
    );
    assert_eq!(
        refresh(Some(&stored(RefreshStatus::Rotated, later)), now),
        Refresh::RevokeFamily {
            family: "fam".into()
        }
    );
    assert_eq!(
        refresh(Some(&stored(RefreshStatus::Active, now)), now),
        Refresh::Refuse,
        "expired"
    );
    assert_eq!(
        refresh(Some(&stored(RefreshStatus::Revoked, later)), now),
        Refresh::Refuse
    );
    assert_eq!(refresh(None, now), Refresh::Refuse);
}
