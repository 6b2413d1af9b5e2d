//! `POST /v1/admin/orders/{id}/refunds`: the merchant refunds all or part of a paid order. Glue
//! over `shop_domain::orders::refunds` (plan, commit, ask the provider) and `shop_edge::store::refunds`.
//! The refund is answered 202 `pending`: the provider's webhook confirms it (`order.refunded`).

use serde::Deserialize;
use shop_domain::kernel::ids::OrderId;
use shop_domain::kernel::money::Money;
use shop_domain::orders::refunds::{
    self, LineRequest, RefundError, RefundReason, RefundRequest, MAX_REASON_CHARS,
};
use shop_edge::http::problem::FieldError;
use shop_edge::http::runtime::{log_error, CryptoIds};
use shop_edge::outbound::providers::Providers;
use shop_edge::store::refunds::D1Refunds;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;
use shop_edge::http::refusals::orders as refusals;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    amount: Option<Money>,
    reason: String,
    #[serde(default)]
    lines: Option<Vec<LineBody>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    #[serde(default)]
    line_id: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    quantity: u32,
    #[serde(default)]
    restock: bool,
}

fn parse(body: RefundBody) -> Result<RefundRequest, Problem> {
    let mut errors = Vec::new();
    let reason = RefundReason::parse(&body.reason);
    if reason.is_none() {
        errors.push(FieldError::new(
            "/reason",
            "invalid_reason",
            format!("reason is 1 to {MAX_REASON_CHARS} characters, without control characters"),
        ));
    }
    let lines = match body.lines {
        None => None,
        Some(lines) if lines.is_empty() => {
            errors.push(FieldError::new(
                "/lines",
                "invalid_lines",
                "lines, when given, names at least one line",
            ));
            None
        }
        Some(lines) => Some(
            lines
                .into_iter()
                .enumerate()
                .filter_map(|(i, line)| {
                    let named = refusals::line_ref(
                        i,
                        line.line_id.as_deref(),
                        line.sku.as_deref(),
                        &mut errors,
                    );
                    if line.quantity == 0 {
                        errors.push(FieldError::new(
                            format!("/lines/{i}/quantity"),
                            "invalid_quantity",
                            "quantity is a whole number of units, at least 1",
                        ));
                    }
                    Some(LineRequest {
                        line: named?,
                        quantity: line.quantity,
                        restock: line.restock,
                    })
                })
                .collect(),
        ),
    };
    match reason {
        Some(reason) if errors.is_empty() => Ok(RefundRequest {
            amount: body.amount,
            reason,
            lines,
        }),
        _ => Err(Problem::invalid_fields(errors)),
    }
}

pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let key = call.require_idempotency_key()?;
    let principal = call.admin()?;
    let order = call.path_param(0, OrderId::parse, refusals::order_not_found)?;
    let request = parse(call.json()?)?;
    let db = call.db()?;
    let store = D1Refunds {
        db: &db,
        caller: &principal.sub,
    };
    let providers = Providers::new(&call.env, &call.config, None, &CryptoIds);
    let id = refunds::refund_id(&order, &principal.sub, &key);
    let refund = refunds::refund(&store, &providers, &order, &request, id, call.now)
        .await
        .map_err(|e| {
            if let RefundError::Provider(cause) = &e {
                log_error(&call.request_id, "refund", cause);
            }
            Problem::from(e)
        })?;
    Ok(Reply::json(202, &refund)?)
}
