//! The agents' views over many tickets: the filtered list and the service statistics.

use crate::Endpoint;
use serde::Serialize;
use shop_domain::kernel::time::Duration;
use shop_domain::support::tickets::{self, Category, Priority, TicketStatus};
use shop_edge::store::tickets::{self as store, TicketFilter};
use shop_edge::{Call, Problem, Reply};

/// `GET /v1/admin/tickets`: newest first, filtered, cursor-paged.
pub(crate) async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[
        "limit",
        "cursor",
        "status",
        "category",
        "priority",
        "email",
        "order_number",
    ])?;
    let filter = TicketFilter {
        status: call.parsed_query(
            "status",
            "invalid_status",
            "one of open, pending, resolved, closed",
            TicketStatus::parse,
        )?,
        category: call.parsed_query(
            "category",
            "invalid_category",
            "a ticket category",
            Category::parse,
        )?,
        priority: call.parsed_query(
            "priority",
            "invalid_priority",
            "one of low, normal, high, urgent",
            Priority::parse,
        )?,
        email: call.parsed_query("email", "invalid_email", "an email address", |e| {
            shop_domain::checkout::Email::parse(e).map(|e| e.as_str().to_owned())
        })?,
        order_number: call.query("order_number").map(str::to_owned),
        after: call.time_cursor()?,
    };
    let db = call.db()?;
    let page = store::list(&db, &filter, call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}

#[derive(Serialize)]
struct Stats {
    from: shop_domain::kernel::time::Timestamp,
    to: shop_domain::kernel::time::Timestamp,
    tickets: usize,
    by_status: std::collections::BTreeMap<&'static str, usize>,
    first_response: tickets::Percentiles,
    resolution: tickets::Percentiles,
    sla_seconds: i64,
    sla_breaches: usize,
    rating: RatingStats,
}

#[derive(Serialize)]
struct RatingStats {
    count: usize,
    /// The mean of the ratings, to two decimals (as a string); `null` without ratings.
    average: Option<String>,
}

/// `GET /v1/admin/tickets/stats?from=&to=&sla_seconds=`: the tickets created in `[from, to)`
/// (default the last 30 days, at most a year): count by status, median and 90th percentile
/// first-response and resolution times, SLA breaches, satisfaction.
pub(crate) async fn stats(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&["from", "to", "sla_seconds"])?;
    let to = call.timestamp_query("to")?.unwrap_or(call.now);
    let from = call
        .timestamp_query("from")?
        .unwrap_or(to.minus(Duration::from_days(30)));
    tickets::stats_range(from, to).map_err(Problem::from)?;
    let sla = match call.parsed_query(
        "sla_seconds",
        "invalid_sla",
        "a whole number of seconds from 1",
        |s| s.parse::<i64>().ok().filter(|s| *s > 0),
    )? {
        Some(seconds) => Duration::from_secs(seconds),
        None => call.config.tickets.first_response_sla,
    };
    let db = call.db()?;
    let facts = store::stats(&db, from, to, call.now, sla).await?;
    let by_status = TicketStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                facts.by_status.get(s.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    let ranked =
        |r: &store::RankedMillis| tickets::Percentiles::from_ranks(r.count, r.median, r.p90);
    let answer = Stats {
        from,
        to,
        tickets: facts.tickets,
        by_status,
        first_response: ranked(&facts.first_response),
        resolution: ranked(&facts.resolution),
        sla_seconds: sla.millis() / 1000,
        sla_breaches: facts.sla_breaches,
        rating: RatingStats {
            count: facts.rating_count,
            average: tickets::average_rating_of(facts.rating_sum, facts.rating_count),
        },
    };
    Ok(Reply::json(200, &answer)?)
}
