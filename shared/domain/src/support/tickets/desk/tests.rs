use super::*;
use crate::events::EventKind;
use crate::support::tickets::{Category, TicketInput};
use crate::testing::SequentialIds;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn facts(id: &TicketId, status: TicketStatus, messages: usize) -> TicketFacts<'_> {
    TicketFacts {
        id,
        number: "T-000001",
        state: TicketState {
            status,
            resolved_at: (status == TicketStatus::Resolved).then_some(T0),
        },
        priority: Priority::Normal,
        messages,
        rated: false,
    }
}

fn id() -> TicketId {
    TicketId::mint(&SequentialIds::default())
}

#[test]
fn opening_names_the_ticket_its_priority_and_ticket_created() {
    let ticket = NewTicket::parse(TicketInput {
        email: "ada@example.com".into(),
        name: None,
        subject: "Charged twice".into(),
        message: "Hello".into(),
        category: "payment".into(),
        order_number: None,
    })
    .unwrap();
    let opened = open(
        &ticket,
        None,
        &TicketPolicy::default(),
        &SequentialIds::default(),
        T0,
    );
    assert_eq!(opened.priority, Priority::High);
    assert_eq!(opened.event.kind(), EventKind::TicketCreated);
    let Payload::TicketCreated(created) = &opened.event.payload else {
        panic!("ticket.created");
    };
    assert_eq!(created.ticket_id, opened.id);
    assert_eq!(created.category, Category::Payment);
}

#[test]
fn a_reply_moves_the_status_and_counts_the_message_until_the_conversation_is_full() {
    let id = id();
    let ids = SequentialIds::default();
    let decided = reply(&facts(&id, TicketStatus::Open, 1), Author::Agent, &ids, T0).unwrap();
    assert_eq!(decided.status, TicketStatus::Pending);
    let Payload::TicketReplied(replied) = &decided.events[0].payload else {
        panic!("ticket.replied");
    };
    assert_eq!((replied.seq, replied.author), (2, Author::Agent));
    assert_eq!(
        reply(
            &facts(&id, TicketStatus::Open, MAX_MESSAGES),
            Author::Customer,
            &ids,
            T0
        ),
        Err(TicketRefusal::Full)
    );
    assert!(matches!(
        reply(
            &facts(&id, TicketStatus::Closed, 3),
            Author::Customer,
            &ids,
            T0
        ),
        Err(TicketRefusal::Illegal(_))
    ));
}

#[test]
fn triage_announces_resolution_once_and_needs_something_to_change() {
    let id = id();
    let ids = SequentialIds::default();
    let open_ticket = facts(&id, TicketStatus::Open, 2);
    let resolved = triage(&open_ticket, Some(TicketStatus::Resolved), None, &ids, T0).unwrap();
    assert_eq!(resolved.events.len(), 1);
    assert_eq!(resolved.events[0].kind(), EventKind::TicketResolved);
    let reprioritised = triage(&open_ticket, None, Some(Priority::Urgent), &ids, T0).unwrap();
    assert_eq!(
        (
            reprioritised.status,
            reprioritised.priority,
            reprioritised.events.len()
        ),
        (TicketStatus::Open, Priority::Urgent, 0)
    );
    assert_eq!(
        triage(&open_ticket, None, None, &ids, T0),
        Err(TicketRefusal::NothingToChange)
    );
}

#[test]
fn only_the_customer_rates_a_resolved_ticket_once_from_one_to_five() {
    assert_eq!(may_rate(Author::Customer), Ok(()));
    assert_eq!(may_rate(Author::Agent), Err(TicketRefusal::CustomersOnly));
    assert_eq!(Rating::parse(6), Err(TicketRefusal::InvalidRating));
    assert_eq!(Rating::parse(0), Err(TicketRefusal::InvalidRating));
    let five = Rating::parse(5).unwrap();
    let id = id();
    let resolved = facts(&id, TicketStatus::Resolved, 2);
    assert_eq!(rate(&resolved, five).map(Rating::get), Ok(5));
    let rated = TicketFacts {
        rated: true,
        ..resolved.clone()
    };
    assert_eq!(rate(&rated, five), Err(TicketRefusal::AlreadyRated));
    let pending = facts(&id, TicketStatus::Pending, 2);
    assert_eq!(rate(&pending, five), Err(TicketRefusal::NotResolved));
}

#[test]
fn the_stats_range_is_forward_and_at_most_a_year_and_a_day() {
    let year = T0.plus(MAX_STATS_RANGE);
    assert_eq!(stats_range(T0, year), Ok(()));
    assert_eq!(
        stats_range(T0, year.plus(Duration::from_secs(1))),
        Err(TicketRefusal::InvalidRange)
    );
    assert_eq!(stats_range(T0, T0), Err(TicketRefusal::InvalidRange));
}

#[test]
fn opening_about_a_valuable_order_raises_the_priority_and_names_the_order() {
    let ticket = NewTicket::parse(TicketInput {
        email: "ada@example.com".into(),
        name: Some("Ada".into()),
        subject: "Parcel lost".into(),
        message: "Where is it?".into(),
        category: "shipping".into(),
        order_number: Some("SO-2026-000001".into()),
    })
    .unwrap();
    let ids = SequentialIds::default();
    let order = crate::kernel::ids::OrderId::mint(&ids);
    let eur = |minor| Money::from_minor(minor, crate::kernel::money::Currency::Eur).unwrap();
    let policy = TicketPolicy::default();
    let opened = open(&ticket, Some((&order, eur(25_000))), &policy, &ids, T0);
    assert_eq!(opened.priority, Priority::High, "shipping, raised one step");
    assert_eq!(opened.event.created_at, T0);
    assert_ne!(opened.event.id.as_str(), opened.id.as_str());
    assert_eq!(
        opened.event.payload,
        Payload::TicketCreated(TicketCreated {
            ticket_id: opened.id.clone(),
            number: String::new(),
            email: "ada@example.com".into(),
            subject: "Parcel lost".into(),
            category: Category::Shipping,
            priority: Priority::High,
            order_id: Some(order.clone()),
        }),
        "numbered by the store's batch"
    );
    let cheaper = open(&ticket, Some((&order, eur(24_999))), &policy, &ids, T0);
    assert_eq!(cheaper.priority, Priority::Normal);
    assert_ne!(cheaper.id, opened.id);
}

#[test]
fn triage_refuses_what_the_status_machine_refuses_and_resolves_once() {
    let id = id();
    let ids = SequentialIds::default();
    let open_ticket = facts(&id, TicketStatus::Open, 2);
    for (to, priority) in [
        (TicketStatus::Closed, None),
        (TicketStatus::Open, Some(Priority::High)),
    ] {
        assert!(matches!(
            triage(&open_ticket, Some(to), priority, &ids, T0),
            Err(TicketRefusal::Illegal(_))
        ));
    }
    let pending = facts(&id, TicketStatus::Pending, 2);
    let resolved = triage(&pending, Some(TicketStatus::Resolved), None, &ids, T0).unwrap();
    assert_eq!(
        resolved.events[0].payload,
        Payload::TicketResolved(TicketResolved {
            ticket_id: id.clone(),
            number: "T-000001".into(),
        })
    );
    // Resolved already: closing it, or changing its priority, announces nothing more.
    let done = facts(&id, TicketStatus::Resolved, 2);
    let closed = triage(&done, Some(TicketStatus::Closed), None, &ids, T0).unwrap();
    assert_eq!(
        (closed.status, closed.events.len()),
        (TicketStatus::Closed, 0)
    );
    let raised = triage(&done, None, Some(Priority::Low), &ids, T0).unwrap();
    assert_eq!(
        (raised.status, raised.priority, raised.events.len()),
        (TicketStatus::Resolved, Priority::Low, 0)
    );
    let rated_closed = facts(&id, TicketStatus::Closed, 2);
    assert_eq!(
        rate(&rated_closed, Rating::parse(1).unwrap()).map(Rating::get),
        Ok(1)
    );
}

#[test]
fn a_reply_to_a_resolved_ticket_reopens_it_within_the_window_only() {
    let id = id();
    let ids = SequentialIds::default();
    let resolved = facts(&id, TicketStatus::Resolved, 4);
    let soon = T0.plus(Duration::from_days(13));
    let reopened = reply(&resolved, Author::Customer, &ids, soon).unwrap();
    assert_eq!(
        reopened.events[0].payload,
        Payload::TicketReplied(TicketReplied {
            ticket_id: id.clone(),
            number: "T-000001".into(),
            author: Author::Customer,
            status: TicketStatus::Open,
            seq: 5,
        })
    );
    assert_eq!(reopened.events[0].created_at, soon);
    assert_eq!(
        reply(&resolved, Author::Agent, &ids, soon).map(|d| d.status),
        Ok(TicketStatus::Pending)
    );
    let late = T0.plus(crate::support::tickets::REOPEN_WINDOW);
    assert!(matches!(
        reply(&resolved, Author::Customer, &ids, late),
        Err(TicketRefusal::Illegal(_))
    ));
}

#[derive(Debug, Clone)]
enum Act {
    Reply(Author),
    Triage(Option<TicketStatus>, Option<Priority>),
    Rate(u8),
    Wait(i64),
}

fn act() -> impl proptest::strategy::Strategy<Value = Act> {
    use proptest::prelude::*;
    let status = proptest::sample::select(vec![
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ]);
    let priority = proptest::sample::select(vec![
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ]);
    let author = proptest::sample::select(vec![Author::Customer, Author::Agent]);
    prop_oneof![
        author.prop_map(Act::Reply),
        (proptest::option::of(status), proptest::option::of(priority))
            .prop_map(|(s, p)| Act::Triage(s, p)),
        (0u8..7).prop_map(Act::Rate),
        (0i64..10).prop_map(Act::Wait),
    ]
}

proptest::proptest! {
    /// Over any conversation: each decision follows the status machine, a refused one
    /// changes nothing, a reply is announced with its place in the conversation (never past
    /// the limit), `ticket.resolved` is announced exactly when the ticket enters
    /// `resolved`, and a ticket is rated once, by then resolved or closed.
    #[test]
    fn the_desk_announces_each_change_once(
        first in (MAX_MESSAGES - 8)..MAX_MESSAGES,
        acts in proptest::collection::vec(act(), 1..40),
    ) {
        use proptest::prelude::*;
        let id = id();
        let ids = SequentialIds::default();
        let mut state = TicketState { status: TicketStatus::Open, resolved_at: None };
        let (mut messages, mut rated, mut priority, mut now) = (first, false, Priority::Normal, T0);
        for act in acts {
            let ticket = TicketFacts { id: &id, number: "T-1", state, priority, messages, rated };
            match act {
                Act::Wait(days) => now = now.plus(Duration::from_days(days)),
                Act::Reply(author) => match reply(&ticket, author, &ids, now) {
                    Ok(decided) => {
                        prop_assert!(messages < MAX_MESSAGES);
                        prop_assert_eq!(Ok(decided.status), state.apply(Transition::Message(author), now));
                        let [event] = decided.events.as_slice() else { panic!("one event") };
                        let Payload::TicketReplied(replied) = &event.payload else { panic!("ticket.replied") };
                        prop_assert_eq!(replied.seq as usize, messages + 1);
                        prop_assert_eq!((replied.author, replied.status), (author, decided.status));
                        messages += 1;
                        state.status = decided.status;
                    }
                    Err(TicketRefusal::Full) => prop_assert_eq!(messages, MAX_MESSAGES),
                    Err(TicketRefusal::Illegal(_)) => {
                        prop_assert!(state.apply(Transition::Message(author), now).is_err());
                    }
                    Err(other) => prop_assert!(false, "{:?}", other),
                },
                Act::Triage(to, new_priority) => match triage(&ticket, to, new_priority, &ids, now) {
                    Ok(decided) => {
                        let entered = decided.status == TicketStatus::Resolved
                            && state.status != TicketStatus::Resolved;
                        let kinds: Vec<EventKind> = decided.events.iter().map(Event::kind).collect();
                        prop_assert_eq!(kinds, if entered { vec![EventKind::TicketResolved] } else { vec![] });
                        prop_assert_eq!(decided.priority, new_priority.unwrap_or(priority));
                        if entered {
                            state.resolved_at = Some(now);
                        }
                        state.status = decided.status;
                        priority = decided.priority;
                    }
                    Err(TicketRefusal::NothingToChange) => prop_assert!(to.is_none() && new_priority.is_none()),
                    Err(TicketRefusal::Illegal(_)) => {
                        let to = to.unwrap();
                        prop_assert!(state.apply(Transition::Set(to), now).is_err());
                    }
                    Err(other) => prop_assert!(false, "{:?}", other),
                },
                Act::Rate(stars) => match Rating::parse(stars).and_then(|r| rate(&ticket, r)) {
                    Ok(rating) => {
                        prop_assert!(!rated && (1..=5).contains(&rating.get()));
                        prop_assert!(matches!(state.status, TicketStatus::Resolved | TicketStatus::Closed));
                        rated = true;
                    }
                    Err(TicketRefusal::InvalidRating) => prop_assert!(!(1..=5).contains(&stars)),
                    Err(TicketRefusal::AlreadyRated) => prop_assert!(rated),
                    Err(TicketRefusal::NotResolved) => {
                        prop_assert!(!matches!(state.status, TicketStatus::Resolved | TicketStatus::Closed));
                    }
                    Err(other) => prop_assert!(false, "{:?}", other),
                },
            }
        }
    }
}
