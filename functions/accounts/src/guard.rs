//! What every credential route does first: the email address parsed, and the platform's
//! limiter by client and by address, before any password is derived.

use shop_domain::checkout::Email;
use shop_edge::{Call, Problem};

use crate::Endpoint;

/// Throttle by client address and by email address (the platform's limiter), before any
/// password is derived.
pub(crate) async fn throttle(call: &Call<Endpoint>, email: Option<&Email>) -> Result<(), Problem> {
    call.rate_limit_client("AUTH_BY_CLIENT").await?;
    if let Some(email) = email {
        call.rate_limit_email("AUTH_BY_EMAIL", email.as_str())
            .await?;
    }
    Ok(())
}

pub(crate) fn email(text: &str) -> Result<Email, Problem> {
    Email::parse(text)
        .ok_or_else(|| Problem::invalid_field("/email", "invalid_email", "not an email address"))
}
