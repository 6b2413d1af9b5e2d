//! An account's life, as pure decisions that name their events: registration (with its
//! verification link), a password reset request (with its link), erasure. The store writes each
//! in one batch; the worker parses, calls and answers.

use crate::events::{Event, Payload};
use crate::kernel::contact::{has_unsafe_characters, Email};
use crate::kernel::ids::{CustomerId, IdSource};
use crate::kernel::time::Timestamp;

use super::{
    AccountMessage, CustomerErased, CustomerRegistered, OpaqueToken, PasswordResetRequested,
    TokenPurpose,
};

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A display name that breaks the rule of [`DisplayName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidName;

impl InvalidName {
    pub fn message(self) -> &'static str {
        "name is up to 200 characters, without control characters"
    }
}

/// A customer's display name: trimmed, 1 to [`MAX_NAME_CHARS`] characters, without control or
/// bidirectional formatting characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// `None` or blank is no name (`Ok(None)`); anything else must be a valid name.
    pub fn parse(input: Option<&str>) -> Result<Option<Self>, InvalidName> {
        match input.map(str::trim) {
            None | Some("") => Ok(None),
            Some(name)
                if name.chars().count() <= MAX_NAME_CHARS && !has_unsafe_characters(name) =>
            {
                Ok(Some(DisplayName(name.to_owned())))
            }
            Some(_) => Err(InvalidName),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new account: its id, the verification link that travels as account mail, and
/// `customer.registered` (which carries no link).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub id: CustomerId,
    pub verification: AccountMessage,
    pub event: Event,
}

/// Register `email` (with `name`), `token` being the verification link's fresh secret.
pub fn register(
    email: &Email,
    name: Option<&DisplayName>,
    token: OpaqueToken,
    ids: &dyn IdSource,
    now: Timestamp,
) -> NewAccount {
    let id = CustomerId::mint(ids);
    let name = name.map(DisplayName::as_str);
    let verification = AccountMessage::new(
        ids,
        TokenPurpose::VerifyEmail,
        &id,
        email.as_str(),
        name,
        token,
        now,
    );
    let event = Event::new(
        ids,
        now,
        Payload::CustomerRegistered(CustomerRegistered {
            customer_id: id.clone(),
            email: email.as_str().to_owned(),
            name: name.map(str::to_owned),
        }),
    );
    NewAccount {
        id,
        verification,
        event,
    }
}

/// A password reset link and `customer.password_reset_requested` (which carries no link).
#[derive(Debug, Clone, PartialEq)]
pub struct ResetLink {
    pub message: AccountMessage,
    pub event: Event,
}

/// A reset link for the customer `id` of `email` (and `name`), `token` its fresh secret.
pub fn request_reset(
    id: &CustomerId,
    email: &str,
    name: Option<&str>,
    token: OpaqueToken,
    ids: &dyn IdSource,
    now: Timestamp,
) -> ResetLink {
    let message = AccountMessage::new(
        ids,
        TokenPurpose::ResetPassword,
        id,
        email,
        name,
        token,
        now,
    );
    let event = Event::new(
        ids,
        now,
        Payload::CustomerPasswordResetRequested(PasswordResetRequested {
            customer_id: id.clone(),
            email: email.to_owned(),
            reset_expires_at: message.expires_at,
        }),
    );
    ResetLink { message, event }
}

/// `customer.erased` for the customer `id`, erased `now`.
pub fn erase(id: &CustomerId, ids: &dyn IdSource, now: Timestamp) -> Event {
    Event::new(
        ids,
        now,
        Payload::CustomerErased(CustomerErased {
            customer_id: id.clone(),
            erased_at: now,
        }),
    )
}

#[cfg(test)]
mod tests;
