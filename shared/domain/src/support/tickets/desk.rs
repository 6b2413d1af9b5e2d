//! The help desk's use cases: each a pure decision over what one read returned, naming the
//! events its batch writes (the store applies it; the worker parses, calls and maps
//! [`TicketRefusal`] to one answer).

use crate::events::{Event, Payload};
use crate::kernel::ids::{IdSource, TicketId};
use crate::kernel::money::Money;
use crate::kernel::time::{Duration, Timestamp};

use super::{
    Author, IllegalTicketTransition, NewTicket, Priority, TicketCreated, TicketPolicy,
    TicketReplied, TicketResolved, TicketState, TicketStatus, Transition, MAX_MESSAGES,
};

/// The longest range the service statistics read at once.
pub const MAX_STATS_RANGE: Duration = Duration::from_days(366);

/// Why the desk refuses a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketRefusal {
    /// The conversation holds [`MAX_MESSAGES`] already.
    Full,
    /// The status machine refuses the move.
    Illegal(IllegalTicketTransition),
    /// A triage that names neither a status nor a priority.
    NothingToChange,
    /// A rating outside 1–5.
    InvalidRating,
    /// A second rating.
    AlreadyRated,
    /// A rating before the ticket is resolved.
    NotResolved,
    /// An agent tried to rate: only the ticket's customer does.
    CustomersOnly,
    /// A statistics range that is empty, reversed or longer than [`MAX_STATS_RANGE`].
    InvalidRange,
}

/// What the desk needs to know of a stored ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts<'a> {
    pub id: &'a TicketId,
    pub number: &'a str,
    pub state: TicketState,
    pub priority: Priority,
    pub messages: usize,
    pub rated: bool,
}

/// A new ticket: its id, the priority it starts with, and `ticket.created`.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub id: TicketId,
    pub priority: Priority,
    pub event: Event,
}

/// A change decided: the ticket's status and priority after it, and the events it announces.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub status: TicketStatus,
    pub priority: Priority,
    pub events: Vec<Event>,
}

/// `POST /v1/tickets`: a submission, linked to an order of `order_total` when it names one.
pub fn open(
    ticket: &NewTicket,
    order: Option<(&crate::kernel::ids::OrderId, Money)>,
    policy: &TicketPolicy,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Opened {
    let priority = Priority::derive(ticket.category, order.map(|(_, total)| total), policy);
    let id = TicketId::mint(ids);
    let event = Event::new(
        ids,
        now,
        Payload::TicketCreated(TicketCreated {
            ticket_id: id.clone(),
            // Numbered by the store's batch.
            number: String::new(),
            email: ticket.email.as_str().to_owned(),
            subject: ticket.subject.clone(),
            category: ticket.category,
            priority,
            order_id: order.map(|(id, _)| id.clone()),
        }),
    );
    Opened {
        id,
        priority,
        event,
    }
}

/// A message from `author`: the status follows the conversation (`ticket.replied`).
pub fn reply(
    ticket: &TicketFacts<'_>,
    author: Author,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<Decided, TicketRefusal> {
    if ticket.messages >= MAX_MESSAGES {
        return Err(TicketRefusal::Full);
    }
    let status = ticket
        .state
        .apply(Transition::Message(author), now)
        .map_err(TicketRefusal::Illegal)?;
    let event = Event::new(
        ids,
        now,
        Payload::TicketReplied(TicketReplied {
            ticket_id: ticket.id.clone(),
            number: ticket.number.to_owned(),
            author,
            status,
            seq: u32::try_from(ticket.messages + 1).unwrap_or(u32::MAX),
        }),
    );
    Ok(Decided {
        status,
        priority: ticket.priority,
        events: vec![event],
    })
}

/// An agent's triage: a new status (through the status machine) and/or priority; moving into
/// `resolved` announces `ticket.resolved`.
pub fn triage(
    ticket: &TicketFacts<'_>,
    status: Option<TicketStatus>,
    priority: Option<Priority>,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<Decided, TicketRefusal> {
    if status.is_none() && priority.is_none() {
        return Err(TicketRefusal::NothingToChange);
    }
    let from = ticket.state.status;
    let to = match status {
        Some(to) => ticket
            .state
            .apply(Transition::Set(to), now)
            .map_err(TicketRefusal::Illegal)?,
        None => from,
    };
    let mut events = Vec::new();
    if to == TicketStatus::Resolved && from != TicketStatus::Resolved {
        events.push(Event::new(
            ids,
            now,
            Payload::TicketResolved(TicketResolved {
                ticket_id: ticket.id.clone(),
                number: ticket.number.to_owned(),
            }),
        ));
    }
    Ok(Decided {
        status: to,
        priority: priority.unwrap_or(ticket.priority),
        events,
    })
}

/// Who may rate a ticket: its customer, never an agent.
pub fn may_rate(by: Author) -> Result<(), TicketRefusal> {
    match by {
        Author::Customer => Ok(()),
        Author::Agent => Err(TicketRefusal::CustomersOnly),
    }
}

/// A satisfaction rating: a whole number from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(value: u8) -> Result<Self, TicketRefusal> {
        if (1..=5).contains(&value) {
            Ok(Rating(value))
        } else {
            Err(TicketRefusal::InvalidRating)
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// The customer's rating of a resolved (or closed) ticket, once.
pub fn rate(ticket: &TicketFacts<'_>, rating: Rating) -> Result<Rating, TicketRefusal> {
    if ticket.rated {
        return Err(TicketRefusal::AlreadyRated);
    }
    if !matches!(
        ticket.state.status,
        TicketStatus::Resolved | TicketStatus::Closed
    ) {
        return Err(TicketRefusal::NotResolved);
    }
    Ok(rating)
}

/// The statistics range `[from, to)`: non-empty, at most [`MAX_STATS_RANGE`].
pub fn stats_range(from: Timestamp, to: Timestamp) -> Result<(), TicketRefusal> {
    if from >= to || to.millis() - from.millis() > MAX_STATS_RANGE.millis() {
        return Err(TicketRefusal::InvalidRange);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
