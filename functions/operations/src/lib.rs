//! The operations worker (crate `operations-worker`, deployed as `shop-operations`): stock,
//! merchant webhooks and dead events in the back office (every route behind an admin token with
//! its scope), and the maintenance cron. Thin glue over `shop_domain`: each concern is one
//! module, and this file holds only the route table and dispatch.

mod dead_events;
mod inventory;
mod maintenance;
mod webhook_endpoints;

use shop_domain::kernel::ids::IdSource;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::{serve, Access, Call, Problem, Reply, Route};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListInventory,
    AdjustInventory,
    SetLowThreshold,
    CreateWebhookEndpoint,
    ListDeadEvents,
    RedriveDeadEvent,
    ListWebhookDeliveries,
    RedeliverDelivery,
    RedeliverEndpoint,
}

pub const ROUTES: &[Route<Endpoint>] = &[
    Route {
        method: "GET",
        path: "/v1/admin/inventory",
        access: Access::Admin("inventory:read"),
        endpoint: Endpoint::ListInventory,
    },
    Route {
        method: "POST",
        path: "/v1/admin/inventory/{sku}/adjust",
        access: Access::Admin("inventory:write"),
        endpoint: Endpoint::AdjustInventory,
    },
    Route {
        method: "PATCH",
        path: "/v1/admin/inventory/{sku}",
        access: Access::Admin("inventory:write"),
        endpoint: Endpoint::SetLowThreshold,
    },
    Route {
        method: "POST",
        path: "/v1/admin/webhook-endpoints",
        access: Access::Admin("webhooks:write"),
        endpoint: Endpoint::CreateWebhookEndpoint,
    },
    Route {
        method: "GET",
        path: "/v1/admin/dead-events",
        access: Access::Admin("events:read"),
        endpoint: Endpoint::ListDeadEvents,
    },
    Route {
        method: "POST",
        path: "/v1/admin/dead-events/{dead_event_id}/redrive",
        access: Access::Admin("events:write"),
        endpoint: Endpoint::RedriveDeadEvent,
    },
    Route {
        method: "GET",
        path: "/v1/admin/webhook-deliveries",
        access: Access::Admin("webhooks:read"),
        endpoint: Endpoint::ListWebhookDeliveries,
    },
    Route {
        method: "POST",
        path: "/v1/admin/webhook-deliveries/{delivery_id}/redeliver",
        access: Access::Admin("webhooks:write"),
        endpoint: Endpoint::RedeliverDelivery,
    },
    Route {
        method: "POST",
        path: "/v1/admin/webhook-endpoints/{endpoint_id}/redeliver",
        access: Access::Admin("webhooks:write"),
        endpoint: Endpoint::RedeliverEndpoint,
    },
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(req, env, ctx, ROUTES, handle).await
}

async fn handle(call: Call<Endpoint>) -> Result<Reply, Problem> {
    match call.route.endpoint {
        Endpoint::ListInventory => inventory::list(&call).await,
        Endpoint::AdjustInventory => inventory::adjust(&call).await,
        Endpoint::SetLowThreshold => inventory::set_low_threshold(&call).await,
        Endpoint::CreateWebhookEndpoint => webhook_endpoints::create(&call).await,
        Endpoint::ListDeadEvents => dead_events::list(&call).await,
        Endpoint::RedriveDeadEvent => dead_events::redrive(&call).await,
        Endpoint::ListWebhookDeliveries => webhook_endpoints::list_deliveries(&call).await,
        Endpoint::RedeliverDelivery => webhook_endpoints::redeliver(&call).await,
        Endpoint::RedeliverEndpoint => webhook_endpoints::redeliver_endpoint(&call).await,
    }
}

/// Every minute: see [`maintenance::run`].
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let run = format!("cron_{}", CryptoIds.next_u128());
    maintenance::run(&env, &run).await;
}

shop_edge::route_table_test!();
