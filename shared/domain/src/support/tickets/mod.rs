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
mod tests {

    proptest! {
        /// The stats route's SQL takes the value at rank max((n × p + 99) / 100, 1) of the sorted
        /// durations: the same as `Percentiles::of`.
        #[test]
        #[allow(clippy::manual_div_ceil)] // written as the SQL writes it, on purpose
        fn ranks_in_sql_are_the_nearest_ranks(mut millis in proptest::collection::vec(0i64..10_000_000, 0..200)) {
            let expected = Percentiles::of(millis.clone());
            millis.sort_unstable();
            let n = millis.len();
            let at = |p: usize| (n > 0).then(|| millis[((n * p + 99) / 100).max(1) - 1]);
            prop_assert_eq!(Percentiles::from_ranks(n, at(50), at(90)), expected);
        }
    }
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn input() -> TicketInput {
        TicketInput {
            email: "ada@example.com".into(),
            name: Some(" Ada ".into()),
            subject: "Where is my parcel?".into(),
            message: "Hello,\r\n\tit has not arrived.".into(),
            category: "shipping".into(),
            order_number: Some(" SO-2026-000001 ".into()),
        }
    }

    #[test]
    fn parses_a_submission_and_reports_every_bad_field() {
        let t = NewTicket::parse(input()).unwrap();
        assert_eq!(t.name.as_deref(), Some("Ada"));
        assert_eq!(t.message.as_str(), "Hello,\n\tit has not arrived.");
        assert_eq!(t.order_number.as_deref(), Some("SO-2026-000001"));
        assert_eq!(t.category, Category::Shipping);
        let issues = NewTicket::parse(TicketInput {
            email: "nope".into(),
            name: Some("A\u{202E}da".into()),
            subject: "s".repeat(201),
            message: "bell\u{7}".into(),
            category: "complaint".into(),
            order_number: Some("x".repeat(40)),
        })
        .unwrap_err();
        let paths: Vec<(&str, &str)> = issues.iter().map(|i| (i.path.as_str(), i.code)).collect();
        assert_eq!(
            paths,
            [
                ("/email", "invalid_email"),
                ("/name", "invalid_characters"),
                ("/subject", "invalid_length"),
                ("/message", "invalid_characters"),
                ("/category", "invalid_category"),
                ("/order_number", "invalid_order_number"),
            ]
        );
        let long = TicketInput {
            message: "m".repeat(MAX_MESSAGE_CHARS + 1),
            ..input()
        };
        assert_eq!(
            NewTicket::parse(long).unwrap_err()[0].code,
            "invalid_length"
        );
        let just = TicketInput {
            message: "é".repeat(MAX_MESSAGE_CHARS),
            subject: "ü".repeat(MAX_SUBJECT_CHARS),
            order_number: Some("№".repeat(32)),
            ..input()
        };
        assert!(NewTicket::parse(just).is_ok(), "limits count characters");
        assert!(MessageBody::parse("  ").is_err());
    }

    #[test]
    fn priority_by_category_and_order_value() {
        let policy = TicketPolicy::default();
        let eur = |minor| Some(Money::from_minor(minor, Currency::Eur).unwrap());
        assert_eq!(
            Priority::derive(Category::Payment, None, &policy),
            Priority::High
        );
        assert_eq!(
            Priority::derive(Category::Payment, eur(25_000), &policy),
            Priority::Urgent
        );
        assert_eq!(
            Priority::derive(Category::Shipping, eur(24_999), &policy),
            Priority::Normal
        );
        assert_eq!(
            Priority::derive(Category::Other, eur(30_000), &policy),
            Priority::Normal
        );
        let yen = Some(Money::from_minor(30_000, Currency::Jpy).unwrap());
        assert_eq!(
            Priority::derive(Category::Return, yen, &policy),
            Priority::Normal,
            "thresholds are per currency"
        );
    }

    #[test]
    fn the_status_machine() {
        use TicketStatus::*;
        let at = |status, resolved_at| TicketState {
            status,
            resolved_at,
        };
        let customer = Transition::Message(Author::Customer);
        let agent = Transition::Message(Author::Agent);
        assert_eq!(at(Open, None).apply(agent, T0), Ok(Pending));
        assert_eq!(at(Pending, None).apply(customer, T0), Ok(Open));
        assert_eq!(at(Open, None).apply(customer, T0), Ok(Open));
        assert_eq!(
            at(Pending, None).apply(Transition::Set(Resolved), T0),
            Ok(Resolved)
        );
        let resolved = at(Resolved, Some(T0));
        let day = Duration::from_days(1);
        assert_eq!(resolved.apply(customer, T0.plus(day)), Ok(Open));
        assert_eq!(
            resolved.apply(Transition::Set(Open), T0.plus(day)),
            Ok(Open)
        );
        assert_eq!(resolved.apply(Transition::Set(Closed), T0), Ok(Closed));
        let late = T0.plus(REOPEN_WINDOW);
        assert!(resolved.apply(customer, late).is_err(), "14 days on");
        assert!(resolved.apply(Transition::Set(Open), late).is_err());
        assert_eq!(resolved.apply(Transition::Set(Closed), late), Ok(Closed));
        for t in [
            customer,
            agent,
            Transition::Set(Open),
            Transition::Set(Resolved),
        ] {
            assert!(at(Closed, Some(T0)).apply(t, T0).is_err());
        }
        assert!(at(Open, None).apply(Transition::Set(Closed), T0).is_err());
        assert!(at(Open, None).apply(Transition::Set(Open), T0).is_err());
        assert!(resolved.apply(Transition::Set(Pending), T0).is_err());
    }

    #[test]
    fn service_times_over_known_timestamps() {
        let min = |m: i64| T0.plus(Duration::from_secs(m * 60));
        let ticket = |created: i64, first: Option<i64>, resolved: Option<i64>| TicketTimes {
            created_at: min(created),
            first_response_at: first.map(min),
            resolved_at: resolved.map(min),
        };
        let tickets = [
            ticket(0, Some(10), Some(60)),
            ticket(0, Some(20), Some(120)),
            ticket(0, Some(30), None),
            ticket(0, Some(40), Some(240)),
            ticket(0, Some(2000), None),
            ticket(0, None, None),
        ];
        let s = service_times(&tickets, Duration::from_secs(24 * 3600), min(3000));
        assert_eq!(s.first_response.count, 5);
        assert_eq!(s.first_response.median_seconds, Some(30 * 60));
        assert_eq!(s.first_response.p90_seconds, Some(2000 * 60));
        assert_eq!(s.resolution.count, 3);
        assert_eq!(s.resolution.median_seconds, Some(120 * 60));
        assert_eq!(s.resolution.p90_seconds, Some(240 * 60));
        assert_eq!(
            s.sla_breaches, 2,
            "the 2000-minute answer and the unanswered one"
        );
        let none = service_times(&[], Duration::from_secs(60), T0);
        assert_eq!(none.first_response.median_seconds, None);
        assert_eq!(ticket_number(2026, 123), "T-2026-000123");
        assert_eq!(average_rating(&[5, 4, 4]).as_deref(), Some("4.33"));
        assert_eq!(average_rating(&[5, 4]).as_deref(), Some("4.50"));
        assert_eq!(average_rating(&[1, 2, 2]).as_deref(), Some("1.67"));
        assert_eq!(average_rating(&[]), None);
    }

    proptest! {
        /// Percentiles are values of the set, in order: median <= p90, at least half at or
        /// below the median and at least 90% at or below the p90.
        #[test]
        fn percentiles_are_ranks(values in proptest::collection::vec(0i64..10_000_000, 1..200)) {
            let p = Percentiles::of(values.iter().map(|v| v * 1000).collect());
            let (median, p90) = (p.median_seconds.unwrap(), p.p90_seconds.unwrap());
            prop_assert!(values.contains(&median) && values.contains(&p90));
            prop_assert!(median <= p90);
            let at_or_below = |x: i64| values.iter().filter(|v| **v <= x).count();
            prop_assert!(at_or_below(median) * 100 >= values.len() * 50);
            prop_assert!(at_or_below(p90) * 100 >= values.len() * 90);
        }

        /// No sequence of transitions leaves `closed`, and `resolved` is left only within the
        /// window or to `closed`.
        #[test]
        fn closed_is_final(steps in proptest::collection::vec((0u8..6, 0i64..30), 1..30)) {
            let mut state = TicketState { status: TicketStatus::Open, resolved_at: None };
            let mut now = T0;
            for (step, days) in steps {
                now = now.plus(Duration::from_days(days));
                let transition = match step {
                    0 => Transition::Message(Author::Customer),
                    1 => Transition::Message(Author::Agent),
                    2 => Transition::Set(TicketStatus::Open),
                    3 => Transition::Set(TicketStatus::Pending),
                    4 => Transition::Set(TicketStatus::Resolved),
                    _ => Transition::Set(TicketStatus::Closed),
                };
                match state.apply(transition, now) {
                    Ok(next) => {
                        prop_assert_ne!(state.status, TicketStatus::Closed);
                        if state.status == TicketStatus::Resolved && next != TicketStatus::Closed {
                            prop_assert!(now < state.resolved_at.unwrap().plus(REOPEN_WINDOW));
                        }
                        let resolved_at = if next == TicketStatus::Resolved { Some(now) } else { state.resolved_at };
                        state = TicketState { status: next, resolved_at };
                    }
                    Err(e) => prop_assert_eq!(e.from, state.status),
                }
            }
        }
    }
}
