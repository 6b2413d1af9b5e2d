//! The protocol of every signed inbound delivery (payment providers' events, their refund
//! confirmations, logistics partners' callbacks), in the order each route runs it:
//! 1. the sender's secrets (none configured: the sender does not exist, 404);
//! 2. the signature verified on the raw body before anything is read or written
//!    ([`Problem::signature_invalid`]);
//! 3. the body read ([`read_or_keep`]): a signed body that does not read is kept once for
//!    investigation (`store::claims`' malformed claims) and answered 400;
//! 4. the claim of the delivery's id with its effects in one batch (`store::claims`): a repeated
//!    claim is a duplicate, applied at most once;
//! 5. the answer, 200 with what became of it (`Reply::received`).
//!
//! Each route keeps its own step 1, 2 and 4 (formats and effects differ); this module holds
//! what is the same.

use shop_domain::StoreError;

use crate::http::problem::Problem;
use crate::store::claims;
use crate::store::sql::Stmt;

/// What a delivery's body is called in its 400 when it does not read.
pub struct Unreadable {
    /// `invalid_event`, `invalid_callback`.
    pub code: &'static str,
    pub title: &'static str,
}

/// Read a verified delivery's `body` (UTF-8, then `read`); when it does not read, record the
/// claim `keep` builds (once per distinct body) and answer 400 with why.
pub async fn read_or_keep<'b, T>(
    body: &'b [u8],
    read: impl FnOnce(&'b str) -> Result<T, String>,
    keep: impl FnOnce() -> Result<Stmt, StoreError>,
    unreadable: Unreadable,
) -> Result<(&'b str, T), Problem> {
    let parsed = std::str::from_utf8(body)
        .map_err(|_| "the body is not UTF-8".to_owned())
        .and_then(|text| read(text).map(|value| (text, value)));
    match parsed {
        Ok(parsed) => Ok(parsed),
        Err(detail) => {
            // Signed by its sender, so kept for investigation.
            claims::record(keep()?).await?;
            Err(Problem::unreadable_delivery(
                unreadable.code,
                unreadable.title,
                detail,
            ))
        }
    }
}
