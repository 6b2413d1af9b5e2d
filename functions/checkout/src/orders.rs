//! Orders: the order read and its payment ledger (its own token, the customer's who placed it,
//! or an admin's), the admin listing, and the merchant's transitions (cancel, capture).

use shop_domain::checkout::Email;
use shop_domain::ids::{CustomerId, OrderId};
use shop_domain::lifecycle::{self, LifecycleError};
use shop_domain::order::OrderStatus;
use shop_domain::order::OrderStore;
use shop_edge::http::auth::{self, Audience};
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::order_search;
use shop_edge::store::orders::D1Orders;
use shop_edge::store::payments;
use shop_edge::{Call, Problem, Reply};

use crate::problems;
use crate::Endpoint;

/// Who reads an order: its own token's holder, the customer who placed it signed in, or an
/// admin with `orders:read`.
enum Reader {
    OrderToken,
    Customer(CustomerId),
    Admin,
}

/// The order in the path and who reads it: the holder of the order's own access token, a
/// customer's access token (their own orders only: checked against the order), or an admin
/// token with `orders:read`; verified before anything is read.
fn readable_order(call: &Call<Endpoint>) -> Result<(OrderId, Reader), Problem> {
    let id = call.path_param(0, OrderId::parse, problems::order_not_found)?;
    let reader = match call.require_token(Audience::Order, "order:read") {
        Ok(principal) if principal.sub == id.as_str() => Reader::OrderToken,
        Ok(_) => return Err(another_order()),
        Err(_) => match call.require_token(Audience::Customer, auth::CUSTOMER_SCOPE) {
            Ok(principal) => {
                Reader::Customer(CustomerId::parse(&principal.sub).map_err(|_| another_order())?)
            }
            Err(_) => {
                call.require_token(Audience::Admin, "orders:read")?;
                Reader::Admin
            }
        },
    };
    Ok((id, reader))
}

fn another_order() -> Problem {
    Problem::new(
        403,
        "forbidden",
        "Forbidden",
        "This token is for another order",
    )
}

/// A customer reads only the orders they placed signed in.
fn check_customer(reader: &Reader, placed_by: Option<&CustomerId>) -> Result<(), Problem> {
    match reader {
        Reader::Customer(customer) if placed_by != Some(customer) => Err(another_order()),
        _ => Ok(()),
    }
}

pub async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let (id, reader) = readable_order(call)?;
    let db = call.db()?;
    let order = D1Orders::new(&db)
        .get(&id)
        .await?
        .ok_or_else(problems::order_not_found)?;
    check_customer(&reader, order.customer_id.as_ref())?;
    Ok(Reply::json(200, &order)?)
}

/// `GET /v1/orders/{id}/payment`: status, captured and refunded amounts, and the ledger of
/// provider events recorded for the order.
pub async fn payment(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let (id, reader) = readable_order(call)?;
    let db = call.db()?;
    if let Reader::Customer(_) = reader {
        let placed_by = order_search::customer_of(&db, &id)
            .await?
            .ok_or_else(problems::order_not_found)?;
        check_customer(&reader, placed_by.as_ref())?;
    }
    let payment = payments::ledger(&db, &id)
        .await?
        .ok_or_else(problems::order_not_found)?;
    Ok(Reply::json(200, &payment)?)
}

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
    let id = call.path_param(0, OrderId::parse, problems::order_not_found)?;
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
    let moved = result.map_err(|e| lifecycle_problem(e, verb))?;
    call.publish(&moved.events).await;
    let order = orders
        .get(&id)
        .await?
        .ok_or_else(problems::order_not_found)?;
    Ok(Reply::json(200, &order)?)
}

/// The one mapping of order lifecycle errors to HTTP (`verb`: what was attempted).
fn lifecycle_problem(error: LifecycleError, verb: &str) -> Problem {
    match error {
        LifecycleError::NotFound => problems::order_not_found(),
        LifecycleError::Illegal(illegal) => Problem::new(
            409,
            "illegal_transition",
            "Not allowed in this state",
            format!(
                "An order that is {} cannot be {verb}",
                illegal.from.as_str()
            ),
        ),
        LifecycleError::Ledger(_) => Problem::new(
            409,
            "nothing_to_capture",
            "Nothing to capture",
            "The order is captured in full",
        ),
        LifecycleError::Moved | LifecycleError::AlreadyRecorded => {
            problems::order_changed("The order changed meanwhile; retry")
        }
        LifecycleError::Store(e) => e.into(),
    }
}
