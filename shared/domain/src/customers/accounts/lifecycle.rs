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
mod tests {
    use super::*;
    use crate::customers::accounts::RESET_TTL;
    use crate::testing::SequentialIds;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn token() -> OpaqueToken {
        OpaqueToken::from_random([7; 32])
    }

    #[test]
    fn a_display_name_is_trimmed_plain_text_of_at_most_200_characters() {
        assert_eq!(DisplayName::parse(None), Ok(None));
        assert_eq!(DisplayName::parse(Some("   ")), Ok(None));
        let ada = DisplayName::parse(Some("  Ada King ")).unwrap().unwrap();
        assert_eq!(ada.as_str(), "Ada King");
        assert!(DisplayName::parse(Some(&"é".repeat(MAX_NAME_CHARS))).is_ok());
        assert!(DisplayName::parse(Some(&"é".repeat(MAX_NAME_CHARS + 1))).is_err());
        assert!(DisplayName::parse(Some("A\u{7}da")).is_err());
        assert!(DisplayName::parse(Some("A\u{202E}da")).is_err());
    }

    #[test]
    fn registration_sends_the_link_as_mail_and_announces_the_account_without_it() {
        let email = Email::parse("ada@example.com").unwrap();
        let name = DisplayName::parse(Some("Ada")).unwrap();
        let account = register(
            &email,
            name.as_ref(),
            token(),
            &SequentialIds::default(),
            T0,
        );
        assert_eq!(account.verification.customer_id, account.id);
        assert_eq!(account.verification.purpose, TokenPurpose::VerifyEmail);
        let Payload::CustomerRegistered(registered) = &account.event.payload else {
            panic!("customer.registered");
        };
        assert_eq!(registered.customer_id, account.id);
        assert_eq!(registered.name.as_deref(), Some("Ada"));
        let announced = serde_json::to_string(registered).unwrap();
        assert!(!announced.contains(account.verification.token.as_str()));
    }

    #[test]
    fn a_reset_link_expires_after_an_hour_and_its_event_says_when() {
        let ids = SequentialIds::default();
        let id = CustomerId::mint(&ids);
        let link = request_reset(&id, "ada@example.com", None, token(), &ids, T0);
        assert_eq!(link.message.expires_at, T0.plus(RESET_TTL));
        let Payload::CustomerPasswordResetRequested(requested) = &link.event.payload else {
            panic!("customer.password_reset_requested");
        };
        assert_eq!(requested.reset_expires_at, link.message.expires_at);
        let Payload::CustomerErased(erased) = &erase(&id, &ids, T0).payload else {
            panic!("customer.erased");
        };
        assert_eq!((&erased.customer_id, erased.erased_at), (&id, T0));
    }

    #[test]
    fn a_nameless_registration_links_a_two_day_verification_to_the_new_account() {
        let email = Email::parse("Ada@Example.COM").unwrap();
        let ids = SequentialIds::default();
        let account = register(&email, None, token(), &ids, T0);
        let link = &account.verification;
        assert_eq!(
            (
                link.customer_id.clone(),
                link.email.as_str(),
                link.name.clone()
            ),
            (account.id.clone(), "Ada@example.com", None)
        );
        assert_eq!(link.token, token());
        assert_eq!(link.created_at, T0);
        assert_eq!(
            link.expires_at,
            T0.plus(crate::customers::accounts::VERIFICATION_TTL)
        );
        assert!(link.id.starts_with("amsg_"));
        assert_eq!(
            account.event.payload,
            Payload::CustomerRegistered(CustomerRegistered {
                customer_id: account.id.clone(),
                email: "Ada@example.com".into(),
                name: None,
            })
        );
        assert_eq!(account.event.created_at, T0);
        // Every id is fresh: the account, its message and its event.
        let again = register(&email, None, token(), &ids, T0);
        assert_ne!(again.id, account.id);
        assert_ne!(again.verification.id, link.id);
        assert_ne!(again.event.id, account.event.id);
        // The mail carries the link; the event does not.
        assert!(link.body().contains(token().as_str()));
        assert!(link.body().contains("account.email_verification"));
        let event = serde_json::to_string(&account.event).unwrap();
        assert!(!event.contains(token().as_str()));
    }

    #[test]
    fn a_reset_link_goes_as_mail_to_the_account_and_its_event_names_no_token() {
        let ids = SequentialIds::default();
        let id = CustomerId::mint(&ids);
        let link = request_reset(&id, "ada@example.com", Some("Ada"), token(), &ids, T0);
        let message = &link.message;
        assert_eq!(message.purpose, TokenPurpose::ResetPassword);
        assert_eq!(
            (
                &message.customer_id,
                message.email.as_str(),
                message.name.as_deref()
            ),
            (&id, "ada@example.com", Some("Ada"))
        );
        assert_eq!(
            link.event.payload,
            Payload::CustomerPasswordResetRequested(PasswordResetRequested {
                customer_id: id.clone(),
                email: "ada@example.com".into(),
                reset_expires_at: T0.plus(RESET_TTL),
            })
        );
        assert!(message.body().contains("account.password_reset"));
        assert!(!serde_json::to_string(&link.event)
            .unwrap()
            .contains(token().as_str()));
        let later = T0.plus(crate::kernel::time::Duration::from_secs(60));
        let erased = erase(&id, &ids, later);
        assert_eq!(erased.created_at, later);
        assert_eq!(erased.kind(), crate::events::EventKind::CustomerErased);
    }
}
