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
