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
mod tests;
