//! Orders: the order read and its payment ledger (its own token, the customer's who placed it,
//! or an admin's). The admin listing and the merchant's transitions are `functions/admin`.

use shop_domain::kernel::ids::{CustomerId, OrderId};
use shop_domain::orders::order::OrderStore;
use shop_edge::http::auth::{self, Audience};
use shop_edge::store::order_search;
use shop_edge::store::orders::D1Orders;
use shop_edge::store::payments;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;
use shop_edge::http::refusals::orders as refusals;

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
    let id = call.path_param(0, OrderId::parse, refusals::order_not_found)?;
    let reader = match call.require_token(Audience::Order, "order:read") {
        Ok(principal) if principal.sub == id.as_str() => Reader::OrderToken,
        Ok(_) => return Err(refusals::another_order()),
        Err(_) => match call.require_token(Audience::Customer, auth::CUSTOMER_SCOPE) {
            Ok(principal) => Reader::Customer(
                CustomerId::parse(&principal.sub).map_err(|_| refusals::another_order())?,
            ),
            Err(_) => {
                call.require_token(Audience::Admin, "orders:read")?;
                Reader::Admin
            }
        },
    };
    Ok((id, reader))
}

/// A customer reads only the orders they placed signed in.
fn check_customer(reader: &Reader, placed_by: Option<&CustomerId>) -> Result<(), Problem> {
    match reader {
        Reader::Customer(customer) if placed_by != Some(customer) => Err(refusals::another_order()),
        _ => Ok(()),
    }
}

pub async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let (id, reader) = readable_order(call)?;
    let db = call.db()?;
    let order = D1Orders::new(&db)
        .get(&id)
        .await?
        .ok_or_else(refusals::order_not_found)?;
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
            .ok_or_else(refusals::order_not_found)?;
        check_customer(&reader, placed_by.as_ref())?;
    }
    let payment = payments::ledger(&db, &id)
        .await?
        .ok_or_else(refusals::order_not_found)?;
    Ok(Reply::json(200, &payment)?)
}
