//! Orders in the back office: the admin listing, and the merchant's transitions (cancel,
//! capture).

use shop_domain::checkout::Email;
use shop_domain::kernel::ids::OrderId;
use shop_domain::orders::lifecycle::{self};
use shop_domain::orders::order::{OrderStatus, OrderStore};
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::order_search;
use shop_edge::store::orders::D1Orders;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;
use shop_edge::http::refusals::orders as refusals;

pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[
        "limit",
        "cursor",
        "status",
        "email",
        "created_from",
        "created_before",
    ])?;
    let status = call
        .query("status")
        .map(|s| {
            OrderStatus::parse(s)
                .map(|s| s.as_str().to_owned())
                .ok_or_else(|| {
                    Problem::invalid_field(
                        "/query/status",
                        "invalid_status",
                        "status is one of the order statuses",
                    )
                })
        })
        .transpose()?;
    let email = call
        .query("email")
        .map(|e| {
            Email::parse(e)
                .map(|e| e.as_str().to_owned())
                .ok_or_else(|| {
                    Problem::invalid_field("/query/email", "invalid_email", "not an email address")
                })
        })
        .transpose()?;
    let filter = order_search::OrderFilter {
        status,
        email,
        customer: None,
        created_from: call.timestamp_query("created_from")?,
        created_before: call.timestamp_query("created_before")?,
        after: call.time_cursor()?,
    };
    let db = call.db()?;
    let page = order_search::list_orders(&db, &filter, call.limit()?).await?;
    Ok(Reply::json(200, &page)?)
}

#[derive(Clone, Copy)]
pub enum Action {
    Cancel,
    Capture,
}

/// Merchant actions on an order: cancel (stock released or restocked) and capture (a payment
/// received outside a provider webhook, e.g. bank transfer; the reservation becomes a sale).
pub async fn transition(call: &Call<Endpoint>, action: Action) -> Result<Reply, Problem> {
    let id = call.path_param(0, OrderId::parse, refusals::order_not_found)?;
    let db = call.db()?;
    let orders = D1Orders::new(&db);
    let (verb, result) = match action {
        Action::Cancel => (
            "cancelled",
            lifecycle::cancel(&orders, &CryptoIds, &id, call.now).await,
        ),
        Action::Capture => (
            "captured",
            lifecycle::mark_paid(&orders, &CryptoIds, &id, call.now).await,
        ),
    };
    let moved = result.map_err(|e| refusals::lifecycle(e, verb))?;
    call.publish(&moved.events).await;
    let order = orders
        .get(&id)
        .await?
        .ok_or_else(refusals::order_not_found)?;
    Ok(Reply::json(200, &order)?)
}
