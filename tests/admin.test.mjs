// The admin API, as the merchant's tools call it: every route verifies an admin token (algorithm,
// signature, expiry, audience, scope); order listings, capture, cancellation, refunds and
// shipments; stock and prices; webhook endpoints and their delivery log; dead events. The flows
// behind them are followed in their own files (orders, refunds, shipments, webhooks, events).
// operationIds: setPrice, listOrders, captureOrder, cancelOrder, refundOrder, shipOrder, listInventory, adjustInventory, setLowThreshold, createWebhookEndpoint, listWebhookDeliveries, redeliverWebhookDelivery, redeliverWebhookEndpoint, listDeadEvents, redriveDeadEvent
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { adminToken, assertProblem, eventually, spawnApp } from "./helpers.mjs";
import { ARLINGTON, paidOrder, placeOrder, restock, trackingNumber as tracking } from "./fixtures.mjs";

let app, read, write, admin, orders;
before(async () => {
  app = await spawnApp();
  read = { Authorization: `Bearer ${await adminToken(["orders:read", "inventory:read"])}` };
  write = { Authorization: `Bearer ${await adminToken(["inventory:write"])}` };
  admin = `Bearer ${await adminToken(["orders:write", "orders:read"])}`;
  // The orders the listing test finds (it runs first: later tests place more).
  orders = [];
  for (const [i, email] of ["a@example.com", "b@example.com", "a@example.com", "c@example.com", "a@example.com"].entries()) {
    const sku = "POCKETNOTE-PLAIN";
    await restock(app, sku);
    orders.push((await placeOrder(app, [{ sku, quantity: 1 + i }], { email })).order);
  }
});
after(async () => app?.close());

const PRICE = "/v1/admin/variants/BEANIE-BLACK/prices/EUR";
const setPrice = (headers, amount = "30.00") => app.request("PUT", PRICE, { json: { amount }, headers });
const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const storedPrice = async () =>
  (await app.db.prepare("SELECT amount_minor FROM prices WHERE sku = 'BEANIE-BLACK' AND currency = 'EUR'").first()).amount_minor;

test("admin routes verify the bearer token: algorithm, signature, expiry, scope", async () => {
  const before = await storedPrice();
  let res = await setPrice({});
  assertProblem(res, 401, "unauthenticated");
  assert.match(res.headers.get("www-authenticate"), /^Bearer/);
  assertProblem(await setPrice(bearer("not-a-jwt")), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { secret: "x".repeat(40) }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { ttlSeconds: -300 }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { ttlSeconds: null }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { alg: "HS512" }))), 401, "invalid_token");
  const unsigned = await new SignJWT({ scopes: ["catalog:write"] })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode("k".repeat(32)));
  const [, p] = unsigned.split(".");
  const none = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
  assertProblem(await setPrice(bearer(`${none}.${p}.`)), 401, "invalid_token");
  // iat is required and may not lie in the future; nbf is honoured; at most 24 hours of life.
  const now = Math.floor(Date.now() / 1000);
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { iat: false }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { iat: now + 600 }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { nbf: now + 600 }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { ttlSeconds: 2 * 86400 }))), 401, "invalid_token");
  // The audience separates admin tokens from order access tokens.
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { aud: null }))), 401, "invalid_token");
  assertProblem(await setPrice(bearer(await adminToken(["catalog:write"], { aud: "shop-order" }))), 401, "invalid_token");
  res = await setPrice(bearer(await adminToken(["orders:read"])));
  assertProblem(res, 403, "insufficient_scope");
  assert.equal(await storedPrice(), before, "refused requests changed nothing");

  assert.equal((await setPrice(bearer(await adminToken(["catalog:write"], { nbf: now - 5 })), "31.00")).status, 200);
  res = await setPrice(bearer(await adminToken(["catalog:write"])), "31.50");
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { sku: "BEANIE-BLACK", price: { amount: "31.50", currency: "EUR" } });
  assert.equal(await storedPrice(), 3150);
});

test("admin price input is validated", async () => {
  const auth = bearer(await adminToken(["catalog:write"]));
  for (const amount of ["-1.00", "1.999", "abc", ""]) {
    assertProblem(await setPrice(auth, amount), 422, "validation_failed");
  }
  assertProblem(await app.request("PUT", "/v1/admin/variants/NOPE/prices/EUR", { json: { amount: "1.00" }, headers: auth }), 404, "variant_not_found");
  assertProblem(await app.request("PUT", "/v1/admin/variants/BEANIE-BLACK/prices/XXX", { json: { amount: "1.00" }, headers: auth }), 404, "unsupported_currency");
  const yen = await app.request("PUT", "/v1/admin/variants/BEANIE-BLACK/prices/JPY", { json: { amount: "4800" }, headers: auth });
  assert.equal(yen.body.price.amount, "4800");
  assertProblem(await app.request("PUT", "/v1/admin/variants/BEANIE-BLACK/prices/JPY", { json: { amount: "4800.5" }, headers: auth }), 422, "validation_failed");
});

async function walk(path, limit) {
  const seen = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res = await app.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, { headers: read });
    assert.equal(res.status, 200, res.text);
    seen.push(...res.body.data);
    cursor = res.body.next_cursor;
  } while (cursor);
  return seen;
}

test("orders list newest first, every order once, filtered by status, email and date", async () => {
  const all = await walk("/v1/admin/orders", 2);
  assert.deepEqual(new Set(all.map((o) => o.id)), new Set(orders.map((o) => o.id)));
  assert.equal(all.length, orders.length, "every order once");
  const key = (o) => `${String(Date.parse(o.created_at)).padStart(15, "0")}:${o.id}`;
  assert.deepEqual(all.map(key), all.map(key).sort().reverse(), "newest first");
  assert.equal(all[0].total.currency, "EUR");
  const a = await walk("/v1/admin/orders?email=a@example.com", 1);
  assert.equal(a.length, 3);
  assert.ok(a.every((o) => o.email === "a@example.com"));
  assert.equal((await walk("/v1/admin/orders?status=pending_payment", 10)).length, 5);
  assert.equal((await walk("/v1/admin/orders?status=paid", 10)).length, 0);
  const from = orders[2].created_at;
  const since = await walk(`/v1/admin/orders?created_from=${encodeURIComponent(from)}`, 10);
  assert.ok(since.every((o) => o.created_at >= from) && since.length >= 3);
  assert.equal((await walk(`/v1/admin/orders?created_before=${encodeURIComponent(orders[0].created_at)}`, 10)).length, 0);
  for (const qs of ["status=shipped", "email=nope", "created_from=yesterday", "limit=0", "cursor=abc", "sort=asc"]) {
    assertProblem(await app.get(`/v1/admin/orders?${qs}`, { headers: read }), 422, "validation_failed");
  }
  assertProblem(await app.get("/v1/admin/orders", { headers: write }), 403, "insufficient_scope");
});

test("inventory lists every SKU once and filters low stock", async () => {
  const total = await app.count("inventory");
  const all = await walk("/v1/admin/inventory", 40);
  assert.equal(all.length, total);
  assert.equal(new Set(all.map((s) => s.sku)).size, total);
  assert.ok(all.every((s) => s.available === s.on_hand - s.reserved));
  const low = await walk("/v1/admin/inventory?low=true", 40);
  assert.ok(low.length > 0 && low.every((s) => s.low && s.available <= s.low_threshold));
  assertProblem(await app.get("/v1/admin/inventory?low=maybe", { headers: read }), 422, "validation_failed");
});

test("an adjustment changes stock with an audit row, cannot take reserved units, and may emit inventory.low", async () => {
  const sku = "RECIPEJOUR-PLAIN";
  await restock(app, sku, { onHand: 10, reserved: 4, lowThreshold: 3 });
  const adjust = (json, headers = write, key = randomUUID()) =>
    app.post(`/v1/admin/inventory/${sku}/adjust`, json, { headers: { ...headers, "Idempotency-Key": key } });
  // A retried delta must never apply twice: the key is required, and a retry replays.
  assertProblem(await app.post(`/v1/admin/inventory/${sku}/adjust`, { delta: 5, reason: "delivery from supplier" }, { headers: write }), 400, "idempotency_key_required");
  const key = randomUUID();
  let res = await adjust({ delta: 5, reason: "delivery from supplier" }, write, key);
  const retried = await adjust({ delta: 5, reason: "delivery from supplier" }, write, key);
  assert.equal(retried.headers.get("idempotent-replayed"), "true");
  assert.equal(retried.text, res.text);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { sku, on_hand: 15, reserved: 4, available: 11, low_threshold: 3, low: false });
  const p = assertProblem(await adjust({ delta: -12, reason: "stocktake" }), 409, "insufficient_stock");
  assert.deepEqual(p.shortages, [{ sku, requested: 12, available: 11 }], "the one shape of insufficient_stock");
  res = await adjust({ delta: -8, reason: "damaged in storage" });
  assert.equal(res.body.available, 3);
  assert.equal(res.body.low, true);
  const audit = (await app.db.prepare("SELECT delta, reason, actor, on_hand_after FROM inventory_adjustments WHERE sku = ?1 ORDER BY created_at").bind(sku).all()).results;
  assert.deepEqual(audit, [
    { delta: 5, reason: "delivery from supplier", actor: "dev-admin", on_hand_after: 15 },
    { delta: -8, reason: "damaged in storage", actor: "dev-admin", on_hand_after: 7 },
  ]);
  const low = await app.db.prepare("SELECT payload FROM outbox WHERE type = 'inventory.low' AND json_extract(payload, '$.sku') = ?1").bind(sku).all();
  assert.equal(low.results.length, 1, "one crossing, one event");
  assertProblem(await adjust({ delta: 0, reason: "x" }), 422, "validation_failed");
  assertProblem(await adjust({ delta: 1, reason: " " }), 422, "validation_failed");
  assertProblem(await adjust({ delta: 1 }), 422, "validation_failed");
  // The most negative 64-bit number once slipped through a range check (its absolute value
  // overflows); a reason with a line break or a bidi override is refused like an empty one.
  const tooNegative = await app.request("POST", `/v1/admin/inventory/${sku}/adjust`, {
    body: `{"delta": -9223372036854775808, "reason": "x"}`,
    headers: { ...write, "Content-Type": "application/json", "Idempotency-Key": randomUUID() },
  });
  assert.equal(assertProblem(tooNegative, 422, "validation_failed").errors[0].code, "invalid_delta");
  for (const reason of ["stock\ntake", "a\u202Eb"]) {
    assert.equal(assertProblem(await adjust({ delta: 1, reason }), 422, "validation_failed").errors[0].code, "invalid_reason");
  }
  assertProblem(await adjust({ delta: 1, reason: "x" }, read), 403, "insufficient_scope");
  assertProblem(
    await app.post("/v1/admin/inventory/NO-SUCH-SKU/adjust", { delta: 1, reason: "x" }, { headers: { ...write, "Idempotency-Key": randomUUID() } }),
    404,
    "sku_not_found",
  );
  assert.equal((await app.db.prepare("SELECT count(*) AS n FROM inventory_adjustments WHERE sku = ?1").bind(sku).first()).n, 2, "refusals wrote no audit row");
});

test("a SKU's low-stock threshold is set by an admin", async () => {
  const sku = "LINEDNOTEB-RECYCLED";
  await restock(app, sku, { onHand: 10, lowThreshold: 5 });
  const set = (json, headers = write) => app.patch(`/v1/admin/inventory/${sku}`, json, { headers });
  const res = await set({ low_threshold: 12 });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { sku, on_hand: 10, reserved: 0, available: 10, low_threshold: 12, low: true });
  assertProblem(await set({ low_threshold: -1 }), 422, "validation_failed");
  assertProblem(await set({ low_threshold: 3, extra: 1 }), 422, "validation_failed");
  assertProblem(await set({ low_threshold: 3 }, read), 403, "insufficient_scope");
  assertProblem(await app.patch("/v1/admin/inventory/NO-SUCH", { low_threshold: 1 }, { headers: write }), 404, "sku_not_found");
  assert.equal(await app.db.prepare("SELECT low_threshold FROM inventory WHERE sku = ?1").bind(sku).first("low_threshold"), 12);
});

const stock = (sku) => app.db.prepare("SELECT on_hand, reserved FROM inventory WHERE sku = ?1").bind(sku).first();
const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
const events = (id) =>
  app.db.prepare("SELECT type, payload FROM outbox WHERE json_extract(payload, '$.order_id') = ?1 ORDER BY created_at").bind(id).all();

/** An unpaid order of `quantity` × `sku`, its stock set to 20 first. */
async function pendingOrder(sku, quantity) {
  await restock(app, sku, { onHand: 20 });
  return (await placeOrder(app, [{ sku, quantity }], { email: "kj@example.com", address: ARLINGTON, shippingMethod: "express" })).order;
}

test("an admin cancels an unpaid order: stock released, event written, once", async () => {
  const order = await pendingOrder("DOTGRIDNOT-PLAIN", 4);
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

test("capture turns the reservation into a sale; cancelling a paid order restocks and asks for a refund", async () => {
  const sku = "POCKETNOTE-RECYCLED";
  const order = await pendingOrder(sku, 3);
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

const SKUS = ["BUCKETHAT-SAND", "BUCKETHAT-BLACK"];

/** An order of 3 × BUCKETHAT-SAND and 1 × BUCKETHAT-BLACK, paid unless `paid` is false. */
async function order({ paid = true } = {}) {
  await restock(app, SKUS);
  const items = [{ sku: SKUS[0], quantity: 3 }, { sku: SKUS[1], quantity: 1 }];
  return (paid ? await paidOrder(app, items, admin) : await placeOrder(app, items)).order;
}

const refund = (orderId, body, key = randomUUID()) =>
  app.post(`/v1/admin/orders/${orderId}/refunds`, body, { headers: { Authorization: admin, "Idempotency-Key": key } });
const payment = async (orderId) => (await app.get(`/v1/orders/${orderId}/payment`, { headers: { Authorization: admin } })).body;
const eur = (minorUnits) => ({ amount: (minorUnits / 100).toFixed(2), currency: "EUR" });
const ship = (orderId, body, headers = {}) =>
  app.post(`/v1/admin/orders/${orderId}/shipments`, body, { headers: { Authorization: admin, ...headers } });

test("an unpaid order cannot be refunded; bad requests are refused and change nothing", async () => {
  const unpaid = await order({ paid: false });
  assertProblem(await refund(unpaid.id, { reason: "r" }), 409, "order_not_paid");
  const placed = await order();
  const ghost = `ord_${"0".repeat(31)}9`;
  assertProblem(await refund(ghost, { reason: "r" }), 404, "order_not_found");
  const noKey = await app.post(`/v1/admin/orders/${placed.id}/refunds`, { reason: "r" }, { headers: { Authorization: admin } });
  assertProblem(noKey, 400, "idempotency_key_required");
  const reader = `Bearer ${await adminToken(["orders:read"])}`;
  const forbidden = await app.post(`/v1/admin/orders/${placed.id}/refunds`, { reason: "r" }, { headers: { Authorization: reader, "Idempotency-Key": randomUUID() } });
  assertProblem(forbidden, 403, "insufficient_scope");
  assertProblem(await refund(placed.id, { reason: "" }), 422, "validation_failed");
  const invalid = async (body, pointer, code) => {
    const p = assertProblem(await refund(placed.id, body), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(body));
  };
  await invalid({ reason: "r", amount: { amount: "1.00", currency: "USD" } }, "/amount", "invalid_amount");
  await invalid({ reason: "r", amount: eur(0) }, "/amount", "invalid_amount");
  await invalid({ reason: "r", lines: [] }, "/lines", "invalid_lines");
  await invalid({ reason: "r", lines: [{ sku: SKUS[1], quantity: 0 }] }, "/lines/0/quantity", "invalid_quantity");
  await invalid({ reason: "r", lines: [{ sku: "NOT-IN-ORDER", quantity: 1 }] }, "/lines/0/sku", "unknown_line");
  await invalid({ reason: "r", lines: [{ sku: SKUS[1], quantity: 1 }, { sku: SKUS[1], quantity: 1 }] }, "/lines/1/sku", "unknown_line");
  await invalid({ reason: "r", lines: [{ line_id: `line_${"f".repeat(32)}`, quantity: 1 }] }, "/lines/0/line_id", "unknown_line");
  await invalid({ reason: "r", lines: [{ quantity: 1 }] }, "/lines/0/line_id", "invalid_line");
  await invalid({ reason: "r", lines: [{ sku: SKUS[1], quantity: 2 }] }, "/lines/0/quantity", "too_many_units");
  await invalid({ reason: "r", extra: 1 }, "/extra", "unknown_field");
  const view = await payment(placed.id);
  assert.deepEqual([view.refund_pending, view.refunds.length], [eur(0), 0], "nothing committed");
});

test("a line never ships more units than it has; a tracking number is one carrier's once; an unpaid order does not ship", async () => {
  const placed = await order();
  const invalid = async (body, pointer, code) => {
    const p = assertProblem(await ship(placed.id, body), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(body));
  };
  const number = tracking();
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 4 }] }, "/lines/0/quantity", "too_many_units");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ sku: "NOT-IN-ORDER", quantity: 1 }] }, "/lines/0/sku", "unknown_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: `line_${"0".repeat(32)}`, quantity: 1 }] }, "/lines/0/line_id", "unknown_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: "L1", quantity: 1 }] }, "/lines/0/line_id", "invalid_line_id");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ quantity: 1 }] }, "/lines/0/line_id", "invalid_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: placed.lines[0].id, sku: SKUS[0], quantity: 1 }] }, "/lines/0/line_id", "invalid_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: placed.lines[0].id, quantity: 1 }, { sku: SKUS[0], quantity: 1 }] }, "/lines/1/sku", "unknown_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [] }, "/lines", "invalid_lines");
  await invalid({ carrier: "u p s", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 1 }] }, "/carrier", "invalid_carrier");
  await invalid({ carrier: "ups", tracking_number: "1Z 1", lines: [{ sku: SKUS[0], quantity: 1 }] }, "/tracking_number", "invalid_tracking_number");
  assert.equal(await status(placed.id), "paid", "nothing changed");

  assert.equal((await ship(placed.id, { carrier: "ups", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 1 }] })).status, 201);
  const other = await order();
  assertProblem(await ship(other.id, { carrier: "UPS", tracking_number: number.toLowerCase(), lines: [{ sku: SKUS[0], quantity: 1 }] }), 409, "tracking_number_taken");
  assert.equal(await status(other.id), "paid", "nothing changed");
  assert.equal((await ship(other.id, { carrier: "fedex", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 1 }] })).status, 201, "another carrier's number");

  const unpaid = await order({ paid: false });
  assertProblem(await ship(unpaid.id, { carrier: "ups", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] }), 409, "illegal_transition");
  assertProblem(await ship(`ord_${"0".repeat(31)}8`, { carrier: "ups", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] }), 404, "order_not_found");
  // The database refuses more units than a line has, whatever the statement.
  await assert.rejects(
    app.db.prepare("UPDATE order_lines SET shipped_quantity = quantity + 1 WHERE order_id = ?1").bind(placed.id).run(),
    /CHECK constraint failed/,
  );
});

test("by default endpoint URLs must be https to a named host", async () => {
  const auth = { Authorization: `Bearer ${await adminToken(["webhooks:write", "webhooks:read"])}` };
  const strict = await spawnApp({ vars: { WEBHOOKS_ALLOW_INSECURE_URLS: "false" } });
  try {
    const create = (url) => strict.post("/v1/admin/webhook-endpoints", { url, event_types: ["*"] }, { headers: auth });
    for (const url of ["http://127.0.0.1:8080/x", "http://merchant.example/x", "https://localhost/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::1]/x", "https://u:p@merchant.example/x"]) {
      const p = assertProblem(await create(url), 422, "validation_failed");
      assert.deepEqual([p.errors[0].pointer, p.errors[0].code], ["/url", "invalid_url"], url);
    }
    assert.equal(await strict.count("webhook_endpoints"), 0);
    assert.equal((await create("https://merchant.example/hooks")).status, 201);
  } finally {
    await strict.close();
  }
});

test("the delivery log lists an endpoint's deliveries newest first, by status; a failed one, or every failed one since a time, is sent again", async () => {
  const auth = { Authorization: `Bearer ${await adminToken(["webhooks:write", "webhooks:read"])}` };
  const reader = { Authorization: `Bearer ${await adminToken(["webhooks:read"])}` };
  // The merchant's endpoint (nothing leaves this machine: the harness answers for it, 502).
  const created = await app.post("/v1/admin/webhook-endpoints", { url: "https://merchant.example/hooks", event_types: ["order.paid"] }, { headers: auth });
  assert.equal(created.status, 201, created.text);
  const endpoint = created.body.id;
  // Deliveries of made-up events: failed an hour ago, failed a minute ago, delivered a second ago.
  const plant = async (status, age) => {
    const id = `whd_${randomUUID().replaceAll("-", "")}`;
    const event = `evt_${randomUUID().replaceAll("-", "")}`;
    const at = Date.now() - age;
    const payload = JSON.stringify({ id: event, type: "order.paid", created_at: new Date(at).toISOString(), data: { order_id: "ord_x" } });
    await app.db
      .prepare(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, last_status_code, next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, 'order.paid', ?4, ?5, ?6, ?7, ?8, ?8, ?8)",
      )
      .bind(id, endpoint, event, payload, status, status === "failed" ? 3 : 1, status === "failed" ? 400 : 200, at)
      .run();
    return id;
  };
  const old = await plant("failed", 3600 * 1000);
  const recent = await plant("failed", 60 * 1000);
  const delivered = await plant("succeeded", 1000);
  const list = async (query) => {
    const res = await app.get(`/v1/admin/webhook-deliveries?endpoint_id=${endpoint}${query}`, { headers: reader });
    assert.equal(res.status, 200, res.text);
    return res.body;
  };
  const all = await list("");
  assert.deepEqual(all.data.map((d) => [d.id, d.status, d.attempts, d.last_status_code]), [[delivered, "succeeded", 1, 200], [recent, "failed", 3, 400], [old, "failed", 3, 400]], "newest first");
  const page = await list("&status=failed&limit=1");
  assert.deepEqual([page.data.map((d) => d.id), page.has_more], [[recent], true]);
  const next = await list(`&status=failed&limit=1&cursor=${encodeURIComponent(page.next_cursor)}`);
  assert.deepEqual([next.data.map((d) => d.id), next.has_more, next.next_cursor], [[old], false, null]);
  assertProblem(await app.get("/v1/admin/webhook-deliveries?status=lost", { headers: auth }), 422, "validation_failed");
  assertProblem(await app.get("/v1/admin/webhook-deliveries", { headers: { Authorization: `Bearer ${await adminToken(["orders:read"])}` } }), 403, "insufficient_scope");

  // One failed delivery: pending again with a fresh set of attempts; asked for again, answered as it is.
  const redeliver = (id, headers = auth) => app.post(`/v1/admin/webhook-deliveries/${id}/redeliver`, undefined, { headers });
  const again = await redeliver(recent);
  assert.equal(again.status, 202, again.text);
  assert.deepEqual([again.body.id, again.body.status, again.body.attempts], [recent, "pending", 0]);
  const twice = await redeliver(recent);
  assert.deepEqual([twice.status, twice.body.id, twice.body.status], [200, recent, "pending"]);
  assertProblem(await redeliver(`whd_${"0".repeat(32)}`), 404, "delivery_not_found");
  assertProblem(await redeliver(old, reader), 403, "insufficient_scope");

  // Every failed one of the endpoint since a time: the older one is all that is left failed.
  const since = new Date(Date.now() - 2 * 3600 * 1000).toISOString();
  const redeliverAll = (body, id = endpoint) => app.post(`/v1/admin/webhook-endpoints/${id}/redeliver`, body, { headers: auth });
  const moved = await redeliverAll({ since });
  assert.equal(moved.status, 202, moved.text);
  assert.equal(moved.body.redelivered, 1);
  assert.deepEqual((await list("&status=failed")).data, []);
  const none = await redeliverAll({ since });
  assert.deepEqual([none.status, none.body.redelivered], [202, 0]);
  assertProblem(await redeliverAll({ since }, `whe_${"0".repeat(32)}`), 404, "endpoint_not_found");
  assertProblem(await redeliverAll({ since: "yesterday" }), 422, "validation_failed");
});

test("a message that can never be applied is recorded at once, and cannot be redriven", async () => {
  const write = { Authorization: `Bearer ${await adminToken(["events:read", "events:write"])}` };
  const producer = await app.mf.getQueueProducer("ORDER_EVENTS", "shop-checkout");
  const garbage = `not an event ${randomUUID()}`;
  await producer.send(garbage);
  const bad = JSON.stringify({ id: `evt_${randomUUID().replaceAll("-", "")}`, type: "order.created", created_at: new Date().toISOString(), data: { order_id: 42 } });
  await producer.send(bad);
  const rows = await eventually(async () => {
    const r = (await app.db.prepare("SELECT id, reason, type, body FROM dead_events WHERE body IN (?1, ?2)").bind(garbage, bad).all()).results;
    return r.length === 2 ? r : null;
  }, "both to be recorded");
  assert.ok(rows.every((r) => r.reason === "undecodable"));
  assert.equal(await app.db.prepare("SELECT count(*) AS n FROM event_failures WHERE event_id = ?1").bind(JSON.parse(bad).id).first("n"), 0, "not retried");
  // Listed for an operator, a page at a time.
  const readOnly = { Authorization: `Bearer ${await adminToken(["events:read"])}` };
  const first = await app.get("/v1/admin/dead-events?limit=1", { headers: readOnly });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.body.has_more, true);
  const second = await app.get(`/v1/admin/dead-events?limit=1&cursor=${encodeURIComponent(first.body.next_cursor)}`, { headers: readOnly });
  assert.equal(second.status, 200, second.text);
  assert.equal(second.body.has_more, false);
  const listed = [...first.body.data, ...second.body.data];
  assert.deepEqual(listed.map((d) => d.id).sort(), rows.map((r) => r.id).sort(), "each once");
  assert.deepEqual(listed.map((d) => d.body).sort(), [garbage, bad].sort(), "as it arrived");
  assert.ok(listed.every((d) => d.reason === "undecodable" && d.applied === false && d.redriven_at === null));
  assertProblem(await app.get("/v1/admin/dead-events?limit=0", { headers: readOnly }), 422, "validation_failed");
  assertProblem(await app.get("/v1/admin/dead-events", { headers: { Authorization: `Bearer ${await adminToken(["orders:read"])}` } }), 403, "insufficient_scope");
  const undecodable = rows.find((r) => r.body === garbage);
  assertProblem(await app.post(`/v1/admin/dead-events/${undecodable.id}/redrive`, undefined, { headers: write }), 409, "not_redrivable");
  assertProblem(await app.post("/v1/admin/dead-events/dead_nope/redrive", undefined, { headers: write }), 404, "dead_event_not_found");
  assertProblem(await app.post(`/v1/admin/dead-events/${undecodable.id}/redrive`, undefined, { headers: readOnly }), 403, "insufficient_scope");
});
