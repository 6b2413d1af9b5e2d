// Admin listings and stock adjustments.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, newCart, spawnApp } from "./helpers.mjs";

let app, read, write, orders;
before(async () => {
  app = await spawnApp();
  read = { Authorization: `Bearer ${await adminToken(["orders:read", "inventory:read"])}` };
  write = { Authorization: `Bearer ${await adminToken(["inventory:write"])}` };
  orders = [];
  for (const [i, email] of ["a@example.com", "b@example.com", "a@example.com", "c@example.com", "a@example.com"].entries()) {
    const sku = "POCKETNOTE-PLAIN";
    await app.db.prepare("UPDATE inventory SET on_hand = 100, low_threshold = 0 WHERE sku = ?1").bind(sku).run();
    const cart = await newCart(app);
    await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 + i });
    const res = await app.post(
      `/v1/carts/${cart.id}/checkout`,
      { email, shipping_address: { name: "N", line1: "L", city: "C", postal_code: "P", country: "FR" }, shipping_method: "standard", payment_provider: "test" },
      { headers: { "Idempotency-Key": randomUUID() } },
    );
    assert.equal(res.status, 201, res.text);
    orders.push(res.body.order);
  }
});
after(async () => app?.close());

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
  await app.db.prepare("UPDATE inventory SET on_hand = 10, reserved = 4, low_threshold = 3 WHERE sku = ?1").bind(sku).run();
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
  await app.db.prepare("UPDATE inventory SET on_hand = 10, reserved = 0, low_threshold = 5 WHERE sku = ?1").bind(sku).run();
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
