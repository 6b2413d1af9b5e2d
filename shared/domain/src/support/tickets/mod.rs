//! Customer-service tickets: what a customer may submit, the conversation's status machine
//! (`open → pending → resolved → closed`, reopened within [`REOPEN_WINDOW`] of resolution), the
//! priority a ticket starts with, and the service metrics over a set of tickets.
//!
//! Everything a person wrote is kept and answered as plain text: never interpreted, only
//! checked (length, no control or bidirectional formatting characters).

use serde::{Deserialize, Serialize};

use crate::kernel::contact::{has_unsafe_characters, Email, FieldIssue};
use crate::kernel::ids::{OrderId, TicketId};
use crate::kernel::money::{Currency, Money};
use crate::kernel::time::{Duration, Timestamp};

mod desk;
pub use desk::{
    may_rate, open, rate, reply, stats_range, triage, Decided, Opened, Rating, TicketFacts,
    TicketRefusal, MAX_STATS_RANGE,
};

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 10_000;
pub const MAX_NAME_CHARS: usize = 200;
/// A resolved ticket may be reopened (by either side) for this long after its resolution.
pub const REOPEN_WINDOW: Duration = Duration::from_days(14);

/// What a ticket is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    OrderIssue,
    Shipping,
    Payment,
    Return,
    ProductQuestion,
    Other,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::OrderIssue,
        Category::Shipping,
        Category::Payment,
        Category::Return,
        Category::ProductQuestion,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::OrderIssue => "order_issue",
            Category::Shipping => "shipping",
            Category::Payment => "payment",
            Category::Return => "return",
            Category::ProductQuestion => "product_question",
            Category::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// How soon a ticket should be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Priority::ALL.into_iter().find(|p| p.as_str() == text)
    }

    fn raised(self) -> Self {
        match self {
            Priority::Low => Priority::Normal,
            Priority::Normal => Priority::High,
            Priority::High | Priority::Urgent => Priority::Urgent,
        }
    }

    /// The priority a new ticket starts with: by its category (money and broken orders first),
    /// one step higher when the linked order is worth at least the policy's amount in its
    /// currency.
    pub fn derive(category: Category, order_total: Option<Money>, policy: &TicketPolicy) -> Self {
        let base = match category {
            Category::Payment | Category::OrderIssue => Priority::High,
            Category::Shipping | Category::Return => Priority::Normal,
            Category::ProductQuestion | Category::Other => Priority::Low,
        };
        let valuable = order_total.is_some_and(|total| {
            policy
                .high_value
                .iter()
                .any(|t| t.currency() == total.currency() && total.minor_units() >= t.minor_units())
        });
        if valuable {
            base.raised()
        } else {
            base
        }
    }
}

/// Settings of ticket handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPolicy {
    /// From this order total on (per currency), a ticket about the order starts one priority
    /// higher.
    pub high_value: Vec<Money>,
    /// A first response later than this after submission breaches the service level.
    pub first_response_sla: Duration,
}

impl Default for TicketPolicy {
    fn default() -> Self {
        let money = |minor, currency| Money::from_minor(minor, currency).ok();
        TicketPolicy {
            high_value: [
                money(25_000, Currency::Eur),
                money(25_000, Currency::Usd),
                money(20_000, Currency::Gbp),
                money(40_000, Currency::Jpy),
                money(75_000, Currency::Kwd),
            ]
            .into_iter()
            .flatten()
            .collect(),
            first_response_sla: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for an agent.
    Open,
    /// Waiting for the customer.
    Pending,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        TicketStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Who wrote a message or asked for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer,
    Agent,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Customer => "customer",
            Author::Agent => "agent",
        }
    }
}

/// What happens to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A message from `Author`.
    Message(Author),
    /// An agent sets the status.
    Set(TicketStatus),
}

/// A transition the ticket's status does not allow (409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTicketTransition {
    pub from: TicketStatus,
    pub reason: &'static str,
}

/// A ticket's status with the time it was last resolved: what decides the next status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketState {
    pub status: TicketStatus,
    pub resolved_at: Option<Timestamp>,
}

impl TicketState {
    fn may_reopen(self, now: Timestamp) -> bool {
        self.status == TicketStatus::Resolved
            && self
                .resolved_at
                .is_some_and(|at| now < at.plus(REOPEN_WINDOW))
    }

    /// The status after `transition` at `now`. A customer's message reopens a pending ticket
    /// (and a resolved one within the window); an agent's answer puts an open ticket in
    /// `pending` (waiting for the customer). Nothing moves a closed ticket.
    pub fn apply(
        self,
        transition: Transition,
        now: Timestamp,
    ) -> Result<TicketStatus, IllegalTicketTransition> {
        use TicketStatus::{Closed, Open, Pending, Resolved};
        let illegal = |reason| {
            Err(IllegalTicketTransition {
                from: self.status,
                reason,
            })
        };
        match (self.status, transition) {
            (Closed, _) => illegal("a closed ticket does not change; open a new one"),
            (Resolved, Transition::Message(_) | Transition::Set(Open)) if !self.may_reopen(now) => {
                illegal("a resolved ticket can be reopened only within 14 days of its resolution")
            }
            (Resolved, Transition::Message(Author::Customer)) => Ok(Open),
            (Resolved, Transition::Message(Author::Agent)) => Ok(Pending),
            (Open | Pending, Transition::Message(Author::Customer)) => Ok(Open),
            (Open | Pending, Transition::Message(Author::Agent)) => Ok(Pending),
            (from, Transition::Set(to)) => match (from, to) {
                (Open, Pending) | (Pending, Open) => Ok(to),
                (Open | Pending, Resolved) => Ok(Resolved),
                (Resolved, Open) => Ok(Open),
                (Resolved, Closed) => Ok(Closed),
                (from, to) if from == to => illegal("the ticket already has this status"),
                _ => illegal("this status does not follow the ticket's status"),
            },
        }
    }
}

/// A person's text: trimmed, `1..=max` characters, no control or bidirectional formatting
/// characters (a message may have line breaks and tabs; `\r\n` is kept as `\n`). Also what a
/// review's title and body are held to.
pub(crate) fn text(
    input: &str,
    max: usize,
    multiline: bool,
    path: &str,
    issues: &mut Vec<FieldIssue>,
) -> Option<String> {
    let normalised = input.replace("\r\n", "\n");
    let trimmed = normalised.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > max {
        issues.push(FieldIssue::new(
            path,
            "invalid_length",
            format!("{} is 1 to {max} characters", &path[1..]),
        ));
        return None;
    }
    let unsafe_chars = if multiline {
        trimmed
            .split('\n')
            .any(|line| has_unsafe_characters(&line.replace('\t', " ")))
    } else {
        has_unsafe_characters(trimmed)
    };
    if unsafe_chars {
        issues.push(FieldIssue::new(
            path,
            "invalid_characters",
            format!(
                "{} contains control or bidirectional formatting characters",
                &path[1..]
            ),
        ));
        return None;
    }
    Some(trimmed.to_owned())
}

/// A message body, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(input: &str) -> Result<Self, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        text(input, MAX_MESSAGE_CHARS, true, "/message", &mut issues)
            .map(MessageBody)
            .ok_or(issues)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A ticket submission as received (strings).
#[derive(Debug, Clone, Default)]
pub struct TicketInput {
    pub email: String,
    pub name: Option<String>,
    pub subject: String,
    pub message: String,
    pub category: String,
    pub order_number: Option<String>,
}

/// A ticket submission, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub email: Email,
    pub name: Option<String>,
    pub subject: String,
    pub message: MessageBody,
    pub category: Category,
    pub order_number: Option<String>,
}

impl NewTicket {
    /// Check every field, reporting all problems at once.
    pub fn parse(input: TicketInput) -> Result<Self, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let email = Email::parse(&input.email);
        if email.is_none() {
            issues.push(FieldIssue::new(
                "/email",
                "invalid_email",
                "not an email address",
            ));
        }
        let name = match input.name.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(name) => text(name, MAX_NAME_CHARS, false, "/name", &mut issues).map(Some),
        };
        let subject = text(
            &input.subject,
            MAX_SUBJECT_CHARS,
            false,
            "/subject",
            &mut issues,
        );
        let message = text(
            &input.message,
            MAX_MESSAGE_CHARS,
            true,
            "/message",
            &mut issues,
        );
        let category = Category::parse(&input.category);
        if category.is_none() {
            let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            issues.push(FieldIssue::new(
                "/category",
                "invalid_category",
                format!("category is one of {}", known.join(", ")),
            ));
        }
        let order_number = match input.order_number.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(n) if n.chars().count() <= 32 && !has_unsafe_characters(n) => {
                Some(Some(n.to_owned()))
            }
            Some(_) => {
                issues.push(FieldIssue::new(
                    "/order_number",
                    "invalid_order_number",
                    "order_number is an order's number, as in its confirmation",
                ));
                None
            }
        };
        match (email, name, subject, message, category, order_number) {
            (
                Some(email),
                Some(name),
                Some(subject),
                Some(message),
                Some(category),
                Some(order),
            ) if issues.is_empty() => Ok(NewTicket {
                email,
                name,
                subject,
                message: MessageBody(message),
                category,
                order_number: order,
            }),
            _ => Err(issues),
        }
    }
}

/// The order a ticket is about, as far as tickets care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedOrder {
    pub id: OrderId,
    pub total: Money,
}

/// One ticket's times, for the service metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketTimes {
    pub created_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
}

/// Median and 90th percentile of a set of durations (nearest rank), with how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    /// Seconds; `None` for no durations.
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

impl Percentiles {
    /// Nearest-rank percentiles (the smallest value with at least p% at or below it).
    pub fn of(mut millis: Vec<i64>) -> Self {
        millis.sort_unstable();
        let rank = |p: usize| -> Option<i64> {
            let n = millis.len();
            if n == 0 {
                return None;
            }
            let index = (p * n).div_ceil(100).max(1) - 1;
            millis.get(index).map(|ms| ms / 1000)
        };
        Percentiles {
            count: millis.len(),
            median_seconds: rank(50),
            p90_seconds: rank(90),
        }
    }

    /// The same, from the values at those ranks as the database found them (milliseconds):
    /// the stats are computed where the tickets are, never shipped row by row.
    pub fn from_ranks(count: usize, median_millis: Option<i64>, p90_millis: Option<i64>) -> Self {
        Percentiles {
            count,
            median_seconds: median_millis.map(|ms| ms / 1000),
            p90_seconds: p90_millis.map(|ms| ms / 1000),
        }
    }
}

/// Service metrics over the tickets created in a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceTimes {
    pub first_response: Percentiles,
    pub resolution: Percentiles,
    /// Tickets whose first response came later than the service level, or has not come and
    /// is already late at `now`.
    pub sla_breaches: usize,
}

/// The metrics of `tickets` at `now`: first-response time (submission to the first agent
/// message) and resolution time (submission to resolution) of those that have one; breaches
/// of `sla` for the first response.
pub fn service_times(tickets: &[TicketTimes], sla: Duration, now: Timestamp) -> ServiceTimes {
    let since = |t: &TicketTimes, at: Timestamp| at.millis() - t.created_at.millis();
    let first: Vec<i64> = tickets
        .iter()
        .filter_map(|t| t.first_response_at.map(|at| since(t, at)))
        .collect();
    let resolution: Vec<i64> = tickets
        .iter()
        .filter_map(|t| t.resolved_at.map(|at| since(t, at)))
        .collect();
    let sla_breaches = tickets
        .iter()
        .filter(|t| since(t, t.first_response_at.unwrap_or(now)) > sla.millis())
        .count();
    ServiceTimes {
        first_response: Percentiles::of(first),
        resolution: Percentiles::of(resolution),
        sla_breaches,
    }
}

/// The mean of `ratings` rounded half away from zero to two decimals (`"4.33"`); `None` for no
/// ratings.
pub fn average_rating(ratings: &[u8]) -> Option<String> {
    average_rating_of(ratings.iter().map(|r| u64::from(*r)).sum(), ratings.len())
}

/// [`average_rating`] of `count` ratings summing to `sum`.
pub fn average_rating_of(sum: u64, count: usize) -> Option<String> {
    if count == 0 {
        return None;
    }
    let mean = rust_decimal::Decimal::from(sum) / rust_decimal::Decimal::from(count);
    let rounded =
        mean.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    Some(format!("{rounded:.2}"))
}

/// A ticket's human number: `T-<year>-<6 digits>`, from a per-year counter.
pub fn ticket_number(year: i32, counter: u64) -> String {
    format!("T-{year}-{counter:06}")
}

/// The most messages one ticket's conversation holds (the submission included): beyond it the
/// customer opens a new ticket. Mirrored by the `ticket_messages_limit` trigger (schema/0030).
pub const MAX_MESSAGES: usize = 100;

/// `ticket.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCreated {
    pub ticket_id: TicketId,
    pub number: String,
    pub email: String,
    pub subject: String,
    pub category: Category,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

/// `ticket.replied`: a message was added (by the customer or an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReplied {
    pub ticket_id: TicketId,
    pub number: String,
    pub author: Author,
    pub status: TicketStatus,
    /// The message's position in the conversation (1 is the submission).
    pub seq: u32,
}

/// `ticket.resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketResolved {
    pub ticket_id: TicketId,
    pub number: String,
}

#[cfg(test)]
mod tests;
