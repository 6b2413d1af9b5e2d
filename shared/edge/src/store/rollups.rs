//! The sales rollups the queue consumer keeps (see ARCHITECTURE.md, "Rollups"): orders placed per
//! day, sales per day and per product on the day of payment, refunds shrinking the day's revenue.
//! Each function is one statement of the consumer's effect batch.

use shop_domain::events::{OrderCreated, OrderRefunded};
use shop_domain::kernel::ids::OrderId;
use worker::wasm_bindgen::JsValue;

use crate::store::sql::{num, Db, Stmt};

/// `order.created`: placed (paid or not), counted apart from sales.
pub fn placed(db: &Db, day: &str, created: &OrderCreated) -> worker::Result<Stmt> {
    db.prepare(
        "INSERT INTO orders_placed (day, currency, orders, units, value_minor) VALUES (?1, ?2, 1, ?3, ?4) \
         ON CONFLICT (day, currency) DO UPDATE SET orders = orders + 1, units = units + excluded.units, \
         value_minor = value_minor + excluded.value_minor",
    )
    .bind(&[
        day.into(),
        created.currency.code().into(),
        num(i64::try_from(created.units()).unwrap_or(i64::MAX)),
        num(created.total.minor_units()),
    ])
}

/// `order.paid`: an order counts as a sale when it is paid, on the day of payment, from its own
/// stored lines (immutable once placed) read inside the batch: the day's sales and each
/// product's.
pub fn paid(db: &Db, day: &str, order: &OrderId) -> worker::Result<Vec<Stmt>> {
    let order: JsValue = order.as_str().into();
    Ok(vec![
        db.prepare(
            "INSERT INTO daily_sales (day, currency, orders, units, revenue_minor) \
             SELECT ?1, o.currency, 1, (SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE order_id = o.id), \
             o.total_minor FROM orders o WHERE o.id = ?2 \
             ON CONFLICT (day, currency) DO UPDATE SET orders = orders + 1, units = units + excluded.units, \
             revenue_minor = revenue_minor + excluded.revenue_minor",
        )
        .bind(&[day.into(), order.clone()])?,
        db.prepare(
            "INSERT INTO product_sales (day, product_id, currency, units, revenue_minor) \
             SELECT ?1, l.product_id, o.currency, sum(l.quantity), sum(l.total_minor) \
             FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE l.order_id = ?2 GROUP BY l.product_id \
             ON CONFLICT (day, product_id, currency) DO UPDATE SET units = units + excluded.units, \
             revenue_minor = revenue_minor + excluded.revenue_minor",
        )
        .bind(&[day.into(), order])?,
    ])
}

/// `order.refunded`: the refund shrinks the revenue of its own day (sales stay counted).
pub fn refunded(db: &Db, day: &str, refunded: &OrderRefunded) -> worker::Result<Stmt> {
    db.prepare(
        "INSERT INTO daily_sales (day, currency, orders, units, revenue_minor) VALUES (?1, ?2, 0, 0, ?3) \
         ON CONFLICT (day, currency) DO UPDATE SET revenue_minor = revenue_minor + excluded.revenue_minor",
    )
    .bind(&[
        day.into(),
        refunded.amount.currency().code().into(),
        num(-refunded.amount.minor_units()),
    ])
}
