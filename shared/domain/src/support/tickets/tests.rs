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
