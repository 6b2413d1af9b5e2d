//! What the ticket routes answer when the help desk refuses: the one mapping of `TicketRefusal`,
//! and the problems the routes share.

use shop_domain::support::tickets::{self, TicketRefusal};

use crate::http::problem::Problem;

pub fn ticket_not_found() -> Problem {
    Problem::not_found("ticket_not_found", "No ticket with this id")
}

pub fn not_ratable(detail: &str) -> Problem {
    Problem::new(409, "not_ratable", "Cannot rate", detail)
}

pub fn ticket_full() -> Problem {
    Problem::new(
        409,
        "ticket_full",
        "Conversation full",
        format!(
            "A ticket holds at most {} messages; open a new ticket (it may name the same order)",
            tickets::MAX_MESSAGES
        ),
    )
}

pub fn ticket_changed() -> Problem {
    Problem::new(
        409,
        "ticket_changed",
        "Ticket changed",
        "The ticket changed while this request was handled; read it again and retry",
    )
    .with_header("Retry-After", "1")
}

/// The one answer for each of the desk's refusals.
impl From<TicketRefusal> for Problem {
    fn from(refusal: TicketRefusal) -> Self {
        match refusal {
            TicketRefusal::Full => ticket_full(),
            TicketRefusal::Illegal(e) => {
                Problem::new(409, "illegal_transition", "Illegal transition", e.reason)
                    .with_extra("ticket_status", e.from.as_str().into())
            }
            TicketRefusal::NothingToChange => Problem::invalid_field(
                "/status",
                "nothing_to_change",
                "name a status or a priority",
            ),
            TicketRefusal::InvalidRating => Problem::invalid_field(
                "/rating",
                "invalid_rating",
                "rating is a whole number from 1 to 5",
            ),
            TicketRefusal::AlreadyRated => not_ratable("This ticket was rated already"),
            TicketRefusal::NotResolved => not_ratable("A ticket is rated once it is resolved"),
            TicketRefusal::CustomersOnly => Problem::new(
                403,
                "customers_only",
                "Forbidden",
                "Only the ticket's customer rates it (with the ticket token)",
            ),
            TicketRefusal::InvalidRange => Problem::invalid_field(
                "/query/from",
                "invalid_range",
                "from is before to, at most 366 days before it",
            ),
        }
    }
}
