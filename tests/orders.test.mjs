// Order lifecycle: unpaid orders expire and release stock; the merchant cancels.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, newCart, spawnApp } from "./helpers.mjs";
import { placeOrder as place, restock } from "./fixtures.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

const address = { name: "Katherine Johnson", line1: "1 Langley", city: "Hampton", postal_code: "23681", country: "US" };
const stock = (sku) => app.db.prepare("SELECT on_hand, reserved FROM inventory WHERE sku = ?1").bind(sku).first();

async function placeOrder(sku, quantity) {
  await restock(app, sku, { onHand: 20 });
  return (await place(app, [{ sku, quantity }], { email: "kj@example.com", address, shippingMethod: "express" })).order;
}

const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
const events = (id) =>
  app.db.prepare("SELECT type, payload FROM outbox WHERE json_extract(payload, '$.order_id') = ?1 ORDER BY created_at").bind(id).all();

test("the cron expires unpaid orders past their reservation and releases their stock", async () => {
  const due = await placeOrder("SKETCHBOOK-PLAIN", 3);
  const fresh = await placeOrder("SKETCHBOOK-RECYCLED", 2);
  assert.equal((await stock("SKETCHBOOK-PLAIN")).reserved, 3);
  const past = Date.now() - 1000;
  await app.db.prepare("UPDATE orders SET reservation_expires_at = ?2 WHERE id = ?1").bind(due.id, past).run();
  const result = await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
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
  await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
  assert.deepEqual(await stock("SKETCHBOOK-PLAIN"), { on_hand: 20, reserved: 0 });
  assert.equal((await events(due.id)).results.length, 2);
});

test("an admin cancels an unpaid order: stock released, event written, once", async () => {
  const order = await placeOrder("DOTGRIDNOT-PLAIN", 4);
  const cancel = (headers) => app.request("POST", `/v1/admin/orders/${order.id}/cancel`, { headers });
  assertProblem(await cancel({}), 401, "unauthenticated");
  assertProblem(await cancel({ Authorization: `Bearer ${await adminToken(["orders:read"])}` }), 403, "insufficient_scope");
  assert.equal(await status(order.id), "pending_payment");
  const auth = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
  const res = await cancel(auth);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.status, "cancelled");
  assert.equal((await stock("DOTGRIDNOT-PLAIN")).reserved, 0);
  const cancelled = (await events(order.id)).results.find((e) => e.type === "order.cancelled");
  assert.equal(JSON.parse(cancelled.payload).refund_required, false);
  const again = await cancel(auth);
  assertProblem(again, 409, "illegal_transition");
  assert.equal((await events(order.id)).results.length, 2, "the refused cancel wrote nothing");
  assertProblem(
    await app.request("POST", "/v1/admin/orders/ord_00000000000000000000000000000000/cancel", { headers: auth }),
    404,
    "order_not_found",
  );
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

test("capture turns the reservation into a sale; cancelling a paid order restocks and asks for a refund", async () => {
  const sku = "POCKETNOTE-RECYCLED";
  const order = await placeOrder(sku, 3);
  const auth = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
  const capture = () => app.request("POST", `/v1/admin/orders/${order.id}/capture`, { headers: auth });
  const res = await capture();
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.status, "paid");
  assert.deepEqual(await stock(sku), { on_hand: 17, reserved: 0 }, "sold: off the shelf, no longer held");
  const sold = await app.db.prepare("SELECT status FROM reservations WHERE order_id = ?1").bind(order.id).first("status");
  assert.equal(sold, "sold");
  const { captured_minor, total_minor } = await app.db.prepare("SELECT captured_minor, total_minor FROM orders WHERE id = ?1").bind(order.id).first();
  assert.equal(captured_minor, total_minor);
  assertProblem(await capture(), 409, "illegal_transition");

  const cancelled = await app.request("POST", `/v1/admin/orders/${order.id}/cancel`, { headers: auth });
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.deepEqual(await stock(sku), { on_hand: 20, reserved: 0 }, "restocked");
  const types = (await events(order.id)).results;
  assert.deepEqual(types.map((e) => e.type), ["order.created", "order.paid", "order.cancelled"]);
  assert.equal(JSON.parse(types[2].payload).refund_required, true);
});

test("an expired order cannot be captured", async () => {
  const order = await placeOrder("RECIPEJOUR-RECYCLED", 1);
  await app.db.prepare("UPDATE orders SET reservation_expires_at = 0 WHERE id = ?1").bind(order.id).run();
  await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
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
  const result = await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
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
  await app.db.prepare("UPDATE inventory SET on_hand = 500, reserved = 0, low_threshold = 0 WHERE sku = ?1").bind(sku).run();
  const place = async () => {
    const cart = await newCart(app);
    assert.equal((await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 })).status, 200);
    const res = await app.post(
      `/v1/carts/${cart.id}/checkout`,
      { email: "kj@example.com", shipping_address: address, shipping_method: "express", payment_provider: "test" },
      { headers: { "Idempotency-Key": randomUUID() } },
    );
    assert.equal(res.status, 201, res.text);
    return res.body.order.id;
  };
  const ids = [];
  for (let i = 0; i < 11; i++) ids.push(...(await Promise.all(Array.from({ length: 10 }, place))));
  assert.equal((await stock(sku)).reserved, 110);
  await app.db.prepare("UPDATE orders SET reservation_expires_at = ?1 WHERE status = 'pending_payment'").bind(Date.now() - 1000).run();
  const result = await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
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
    const result = await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
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
  await (await app.mf.getWorker("shop-checkout")).scheduled({ cron: "* * * * *" });
  assert.equal(await status(due.id), "expired");
});
