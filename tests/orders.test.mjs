// Orders as their buyers read them: GET /v1/orders/{id} and GET /v1/orders/{id}/payment, with
// the order's access token or an admin's (a customer's own: accounts.test.mjs); and the order's
// lifecycle the cron drives: unpaid orders expire and release their stock, old carts and
// idempotency records are purged. (The merchant's capture and cancel: admin.test.mjs.)
// operationIds: getOrder, getOrderPayment
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { adminToken, assertProblem, newCart, spawnApp } from "./helpers.mjs";
import { ARLINGTON, placeOrder as place, restock, sendStripe, stripePaymentIntentEvent as event } from "./fixtures.mjs";

const STRIPE_SECRET = "whsec_orders_0123456789";

let app;
before(async () => (app = await spawnApp({ vars: { STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET } })));
after(async () => app?.close());

const stock = (sku) => app.db.prepare("SELECT on_hand, reserved FROM inventory WHERE sku = ?1").bind(sku).first();

/** An unpaid order of `quantity` × `sku`, its stock set to 20 first: the checkout's answer. */
async function checkout(sku, quantity) {
  await restock(app, sku, { onHand: 20 });
  return place(app, [{ sku, quantity }], { email: "kj@example.com", address: ARLINGTON, shippingMethod: "express" });
}
const placeOrder = async (sku, quantity) => (await checkout(sku, quantity)).order;
const deliver = (payload) => sendStripe(app, STRIPE_SECRET, payload);

const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
const events = (id) =>
  app.db.prepare("SELECT type, payload FROM outbox WHERE json_extract(payload, '$.order_id') = ?1 ORDER BY created_at").bind(id).all();

test("an order answers its access token and an admin with orders:read, no one else", async () => {
  const { order, order_token } = await checkout("BUCKETHAT-SAND", 1);
  // The access token reads this order, and only this one.
  const read = await app.get(`/v1/orders/${order.id}`, { headers: { Authorization: `Bearer ${order_token}` } });
  assert.equal(read.status, 200, read.text);
  assert.deepEqual(read.body, order);
  assertProblem(await app.get(`/v1/orders/${order.id}`), 401, "unauthenticated");
  const admin = await adminToken(["orders:read"]);
  assert.equal((await app.get(`/v1/orders/${order.id}`, { headers: { Authorization: `Bearer ${admin}` } })).status, 200);
  const other = await adminToken(["catalog:write"]);
  assertProblem(await app.get(`/v1/orders/${order.id}`, { headers: { Authorization: `Bearer ${other}` } }), 403, "insufficient_scope");
  const another = await checkout("BUCKETHAT-SAND", 1);
  assertProblem(await app.get(`/v1/orders/${order.id}`, { headers: { Authorization: `Bearer ${another.order_token}` } }), 403, "forbidden");
  assertProblem(await app.get(`/v1/orders/ord_${"0".repeat(32)}`, { headers: { Authorization: `Bearer ${admin}` } }), 404, "order_not_found");
});

test("GET /v1/orders/{id}/payment: status, amounts and the ledger, for the order's token or an admin", async () => {
  const placed = await checkout("BUCKETHAT-SAND", 1);
  const order = { ...placed.order, token: placed.order_token };
  const now = Math.floor(Date.now() / 1000);
  const failed = event(order, { type: "payment_intent.payment_failed", created: now - 20 });
  const succeeded = event(order, { created: now - 10 });
  // Delivered out of order: the ledger follows the provider's own time.
  assert.equal((await deliver(succeeded)).body.outcome, "paid");
  assert.equal((await deliver(failed)).body.outcome, "recorded");
  const read = (headers) => app.get(`/v1/orders/${order.id}/payment`, { headers });
  const res = await read({ Authorization: `Bearer ${order.token}` });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.status, "paid");
  assert.deepEqual(res.body.captured, order.totals.grand_total);
  assert.deepEqual(res.body.refunded, { amount: "0.00", currency: "EUR" });
  assert.deepEqual(
    res.body.events.map((e) => [e.event_id, e.type, e.outcome]),
    [[JSON.parse(failed).id, "payment_intent.payment_failed", "recorded"], [JSON.parse(succeeded).id, "payment_intent.succeeded", "paid"]],
  );
  assert.deepEqual(res.body.events[1].amount, order.totals.grand_total);

  const admin = await read({ Authorization: `Bearer ${await adminToken(["orders:read"])}` });
  assert.equal(admin.status, 200, admin.text);
  assertProblem(await read({}), 401, "unauthenticated");
  const other = await checkout("BUCKETHAT-SAND", 1);
  assertProblem(await read({ Authorization: `Bearer ${other.order_token}` }), 403, "forbidden");
});

test("the cron expires unpaid orders past their reservation and releases their stock", async () => {
  const due = await placeOrder("SKETCHBOOK-PLAIN", 3);
  const fresh = await placeOrder("SKETCHBOOK-RECYCLED", 2);
  assert.equal((await stock("SKETCHBOOK-PLAIN")).reserved, 3);
  const past = Date.now() - 1000;
  await app.db.prepare("UPDATE orders SET reservation_expires_at = ?2 WHERE id = ?1").bind(due.id, past).run();
  const result = await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.equal(result.outcome, "ok");
  assert.equal(await status(due.id), "expired");
  assert.deepEqual(await stock("SKETCHBOOK-PLAIN"), { on_hand: 20, reserved: 0 });
  const held = await app.db.prepare("SELECT status FROM reservations WHERE order_id = ?1").bind(due.id).all();
  assert.deepEqual(held.results.map((r) => r.status), ["released"]);
  const types = (await events(due.id)).results.map((e) => e.type);
  assert.deepEqual(types, ["order.created", "order.expired"]);
  assert.equal(await status(fresh.id), "pending_payment", "orders still within their reservation are untouched");
  assert.equal((await stock("SKETCHBOOK-RECYCLED")).reserved, 2);
  // Running again changes nothing.
  await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.deepEqual(await stock("SKETCHBOOK-PLAIN"), { on_hand: 20, reserved: 0 });
  assert.equal((await events(due.id)).results.length, 2);
});

test("the database refuses illegal order transitions on its own", async () => {
  const order = await placeOrder("LINEDNOTEB-PLAIN", 1);
  await assert.rejects(
    app.db.prepare("UPDATE orders SET status = 'delivered' WHERE id = ?1").bind(order.id).run(),
    /illegal order transition/,
  );
  await assert.rejects(
    app.db.prepare("UPDATE inventory SET reserved = on_hand + 1 WHERE sku = 'LINEDNOTEB-PLAIN'").run(),
    /CHECK constraint failed/,
  );
  assert.equal(await status(order.id), "pending_payment");
});

test("an expired order cannot be captured", async () => {
  const order = await placeOrder("RECIPEJOUR-RECYCLED", 1);
  await app.db.prepare("UPDATE orders SET reservation_expires_at = 0 WHERE id = ?1").bind(order.id).run();
  await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  const auth = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
  const res = await app.request("POST", `/v1/admin/orders/${order.id}/capture`, { headers: auth });
  assertProblem(res, 409, "illegal_transition");
  assert.deepEqual(await stock("RECIPEJOUR-RECYCLED"), { on_hand: 20, reserved: 0 });
});

test("the cron purges idempotency records past 24 h and carts expired more than 30 days ago", async () => {
  const old = await newCart(app);
  const kept = await newCart(app);
  const recent = await newCart(app);
  await app.db.prepare("UPDATE carts SET expires_at = ?2 WHERE id = ?1").bind(recent.id, Date.now() - 86400000).run();
  await app.db.prepare("UPDATE carts SET expires_at = 1 WHERE id = ?1").bind(old.id).run();
  await app.db
    .prepare("INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at, completed) VALUES ('t', 'old-key', 'f', 1, 2, 1), ('t', 'new-key', 'f', ?1, ?2, 1)")
    .bind(Date.now(), Date.now() + 86400000)
    .run();
  const result = await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.equal(result.outcome, "ok");
  assertProblem(await app.get(`/v1/carts/${old.id}`), 404, "cart_not_found");
  assert.equal((await app.get(`/v1/carts/${kept.id}`)).status, 200);
  assertProblem(await app.get(`/v1/carts/${recent.id}`), 404, "cart_expired");
  const keys = (await app.db.prepare("SELECT key FROM idempotency_keys WHERE key IN ('old-key', 'new-key')").all()).results.map((r) => r.key);
  assert.deepEqual(keys, ["new-key"]);
  const checkedOut = await app.db.prepare("SELECT count(*) AS n FROM carts WHERE status = 'checked_out'").first("n");
  assert.ok(checkedOut > 0, "carts with orders are kept");
});

test("one cron run expires every due order, however many (paged, not capped)", async () => {
  const sku = "SKETCHBOOK-PLAIN";
  await restock(app, sku, { onHand: 500 });
  const one = async () => (await place(app, [{ sku, quantity: 1 }], { email: "kj@example.com", address: ARLINGTON, shippingMethod: "express" })).order.id;
  const ids = [];
  for (let i = 0; i < 11; i++) ids.push(...(await Promise.all(Array.from({ length: 10 }, one))));
  assert.equal((await stock(sku)).reserved, 110);
  await app.db.prepare("UPDATE orders SET reservation_expires_at = ?1 WHERE status = 'pending_payment'").bind(Date.now() - 1000).run();
  const result = await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.equal(result.outcome, "ok");
  const left = await app.db
    .prepare("SELECT count(*) AS n FROM orders WHERE status = 'pending_payment' AND id IN (SELECT value FROM json_each(?1))")
    .bind(JSON.stringify(ids))
    .first("n");
  assert.equal(left, 0, "all 110 due orders expired in one run");
  assert.deepEqual(await stock(sku), { on_hand: 500, reserved: 0 });
});

test("a failing cron step does not stop the others; the next run completes it", async () => {
  const due = await placeOrder("SKETCHBOOK-RECYCLED", 1);
  await app.db.prepare("UPDATE orders SET reservation_expires_at = ?2 WHERE id = ?1").bind(due.id, Date.now() - 1000).run();
  await app.db
    .prepare("INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at, completed) VALUES ('t', 'stale-key', 'f', 1, 2, 1)")
    .run();
  const logged = app.logs.length;
  // Expiry fails: its reservations table is offline.
  await app.db.prepare("ALTER TABLE reservations RENAME TO reservations_offline").run();
  try {
    const result = await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
    assert.equal(result.outcome, "ok");
  } finally {
    await app.db.prepare("ALTER TABLE reservations_offline RENAME TO reservations").run();
  }
  assert.equal(await status(due.id), "pending_payment", "the failed step changed nothing");
  const stale = await app.db.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE key = 'stale-key'").first("n");
  assert.equal(stale, 0, "the purge step ran after the failed one");
  const lines = app.logs.slice(logged).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.level === "error" && l.context === "expired_orders"), "the failure is logged with its step");
  const summary = lines.find((l) => l.job === "maintenance");
  assert.equal(summary.expired_orders, null);
  assert.equal(summary.purged.idempotency_keys, 1);
  await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.equal(await status(due.id), "expired");
});
