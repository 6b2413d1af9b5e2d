// Checkout: POST /v1/carts/{id}/checkout places an order that holds its stock, once per cart
// and per key, at the current prices, never beyond the stock however many check out at once;
// bad input writes nothing.
// operationIds: checkout
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, minor, newCart, spawnApp } from "./helpers.mjs";
import { LONDON as address, restock } from "./fixtures.mjs";

let app;
// Every unit may be held unpaid here: these tests are about the stock itself (the hold share has
// its own test in limits.test.mjs).
before(async () => (app = await spawnApp({ vars: { CHECKOUT_UNPAID_HOLD_SHARE: "1" } })));
after(async () => app?.close());

const body = (over = {}) => ({
  email: "ada@example.com",
  shipping_address: address,
  shipping_method: "standard",
  payment_provider: "test",
  ...over,
});
const checkout = (cartId, json = body(), key = randomUUID()) =>
  app.post(`/v1/carts/${cartId}/checkout`, json, { headers: { "Idempotency-Key": key } });

async function stock(sku) {
  return app.db.prepare("SELECT on_hand, reserved, available FROM inventory WHERE sku = ?1").bind(sku).first();
}
async function cartWith(items, currency = "EUR") {
  const cart = await newCart(app, currency);
  for (const [sku, quantity] of items) {
    const res = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity });
    assert.equal(res.status, 200, res.text);
  }
  return cart.id;
}
const counts = async () => ({
  orders: await app.count("orders"),
  lines: await app.count("order_lines"),
  reservations: await app.count("reservations"),
  outbox: await app.count("outbox"),
});

test("checkout places an order that holds the stock, with a payment session and an access token", async () => {
  await restock(app, "CLASSICTEE-M-BLACK", { onHand: 10 });
  await restock(app, "ENAMELMUG-WHITE", { onHand: 10 });
  const cartId = await cartWith([["CLASSICTEE-M-BLACK", 2], ["ENAMELMUG-WHITE", 1]]);
  const res = await checkout(cartId);
  assert.equal(res.status, 201, res.text);
  const { order, payment, order_token } = res.body;
  assert.match(order.id, /^ord_[0-9a-f]{32}$/);
  assert.match(order.number, /^SO-\d{4}-\d{6}$/);
  assert.equal(res.headers.get("location"), `/v1/orders/${order.id}`);
  assert.equal(order.status, "pending_payment");
  assert.equal(order.lines.length, 2);
  const t = order.totals;
  // 2 tees and a mug (760 g) to London: Rest of Europe's standard, 2 kg band (tests/shipping-rates).
  assert.equal(t.shipping.amount, "14.90");
  assert.equal(minor(t.grand_total), minor(t.subtotal) - minor(t.discount) + minor(t.shipping) + minor(t.tax));
  assert.equal(minor(t.subtotal), order.lines.reduce((s, l) => s + minor(l.subtotal), 0));
  assert.equal(payment.provider, "test");
  assert.equal(payment.amount_minor, minor(t.grand_total));
  assert.equal(order.payment_id, payment.payment_id);
  assert.ok(payment.client_secret.startsWith(payment.payment_id));

  assert.deepEqual(await stock("CLASSICTEE-M-BLACK"), { on_hand: 10, reserved: 2, available: 8 });
  const held = await app.db.prepare("SELECT sku, quantity, status, expires_at FROM reservations WHERE order_id = ?1 ORDER BY sku").bind(order.id).all();
  assert.equal(held.results.length, 2);
  assert.ok(held.results.every((r) => r.status === "held" && r.expires_at === Date.parse(order.reservation_expires_at)));
  assert.equal(Date.parse(order.reservation_expires_at) - Date.parse(order.created_at), 15 * 60 * 1000);
  const cart = await app.get(`/v1/carts/${cartId}`);
  assert.equal(cart.body.status, "checked_out");
  const event = await app.db.prepare("SELECT type, payload FROM outbox WHERE type = 'order.created' AND json_extract(payload, '$.order_id') = ?1").bind(order.id).first();
  assert.ok(event, "order.created is in the outbox");
  assert.equal(JSON.parse(event.payload).lines.length, 2);

  // An access token to this order (orders.test.mjs reads the order with it).
  assert.equal(JSON.parse(Buffer.from(order_token.split(".")[1], "base64url")).sub, order.id);
});

test("a cart checks out once: a second checkout answers 409 with the existing order", async () => {
  await restock(app, "POCKETTEE-S-BLACK", { onHand: 10 });
  const cartId = await cartWith([["POCKETTEE-S-BLACK", 1]]);
  const first = await checkout(cartId);
  assert.equal(first.status, 201, first.text);
  const before = await counts();
  const second = await checkout(cartId, body({ shipping_method: "express" }));
  const p = assertProblem(second, 409, "cart_already_checked_out");
  assert.equal(p.order_id, first.body.order.id);
  assert.deepEqual(await counts(), before);
  assertProblem(await app.post(`/v1/carts/${cartId}/items`, { sku: "POCKETTEE-S-BLACK", quantity: 1 }), 409, "cart_not_active");
});

test("short stock: 409 listing each short SKU, and nothing is written", async () => {
  await restock(app, "STRIPEDTEE-S-BLACK", { onHand: 5 });
  await restock(app, "STRIPEDTEE-S-WHITE", { onHand: 5 });
  const cartId = await cartWith([["STRIPEDTEE-S-BLACK", 3], ["STRIPEDTEE-S-WHITE", 4]]);
  await restock(app, "STRIPEDTEE-S-BLACK", { onHand: 2 });
  const before = await counts();
  const res = await checkout(cartId);
  const p = assertProblem(res, 409, "insufficient_stock");
  assert.deepEqual(p.shortages, [{ sku: "STRIPEDTEE-S-BLACK", requested: 3, available: 2 }]);
  assert.deepEqual(await counts(), before, "no order, line, reservation or event");
  assert.deepEqual(await stock("STRIPEDTEE-S-WHITE"), { on_hand: 5, reserved: 0, available: 5 }, "the other SKU was not reserved");
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");
});

test("checkout input is validated before anything is written", async () => {
  await restock(app, "ORGANICTEE-S-BLACK", { onHand: 5 });
  const cartId = await cartWith([["ORGANICTEE-S-BLACK", 1]]);
  const before = await counts();
  assertProblem(await app.post(`/v1/carts/${cartId}/checkout`, body()), 400, "idempotency_key_required");
  let p = assertProblem(await checkout(cartId, body({ email: "not-an-email", shipping_address: { ...address, country: "England" } })), 422, "validation_failed");
  assert.deepEqual(p.errors.map((e) => e.pointer), ["/email", "/shipping_address/country"]);
  p = assertProblem(await checkout(cartId, body({ shipping_method: "drone" })), 422, "validation_failed");
  assert.equal(p.errors[0].code, "unknown_shipping_method");
  p = assertProblem(await checkout(cartId, body({ payment_provider: "cash" })), 422, "validation_failed");
  assert.equal(p.errors[0].code, "unknown_payment_provider");
  p = assertProblem(await checkout(cartId, { ...body(), coupon: "FREE" }), 422, "validation_failed");
  assert.equal(p.errors[0].pointer, "/coupon");
  assertProblem(await checkout(cartId, { ...body(), shipping_address: { ...address, line1: undefined } }), 422, "validation_failed");
  assertProblem(await checkout("cart_00000000000000000000000000000000"), 404, "cart_not_found");
  const empty = await newCart(app);
  assertProblem(await checkout(empty.id), 422, "cart_empty");
  assert.deepEqual(await counts(), before);
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");
});

test("the same checkout sent 5 times at once with one key yields one order", async () => {
  await restock(app, "RAGLANTEE-S-BLACK", { onHand: 10 });
  const cartId = await cartWith([["RAGLANTEE-S-BLACK", 2]]);
  const key = randomUUID();
  const results = await Promise.all(Array.from({ length: 5 }, () => checkout(cartId, body(), key)));
  const created = results.filter((r) => r.status === 201);
  for (const r of results) {
    if (r.status !== 201) assertProblem(r, 409, "idempotency_key_in_use");
  }
  assert.ok(created.length >= 1);
  // The same order and payment; the tokens are issued afresh for each answer (a replay in
  // another second signs another iat), so they are compared apart: each opens this order.
  const answer = (r) => ({ ...r.body, order_token: undefined, tracking_token: undefined });
  for (const r of created) {
    assert.deepEqual(answer(r), answer(created[0]), "identical answers");
    assert.equal(JSON.parse(Buffer.from(r.body.order_token.split(".")[1], "base64url")).sub, created[0].body.order.id);
  }
  const { n } = await app.db.prepare("SELECT count(*) AS n FROM orders WHERE cart_id = ?1").bind(cartId).first();
  assert.equal(n, 1);
  const replay = await checkout(cartId, body(), key);
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get("idempotent-replayed"), "true");
  assert.equal(replay.headers.get("location"), created[0].headers.get("location"));
  assert.deepEqual(replay.body.order, created[0].body.order);
  assert.deepEqual(replay.body.payment, created[0].body.payment, "the same payment, client secret included");
  assert.equal((await stock("RAGLANTEE-S-BLACK")).reserved, 2);

  // The record keeps neither credential the answer shows; the replay issues them again, and
  // its order token reads the order.
  const record = await app.db.prepare("SELECT response_body FROM idempotency_keys WHERE key = ?1").bind(key).first();
  assert.ok(record.response_body.includes(replay.body.order.id));
  assert.ok(!record.response_body.includes(replay.body.payment.client_secret), "no client secret stored");
  assert.ok(!record.response_body.includes("order_token"), "no order token stored");
  const read = await app.get(`/v1/orders/${replay.body.order.id}`, { headers: { Authorization: `Bearer ${replay.body.order_token}` } });
  assert.equal(read.status, 200, read.text);
});

test("oversell: 60 concurrent checkouts for 25 units sell exactly 25", async () => {
  const sku = "GRAPHICTEE-S-BLACK";
  await restock(app, sku, { onHand: 1000 });
  const carts = [];
  for (let i = 0; i < 60; i++) carts.push(await cartWith([[sku, 1]]));
  await restock(app, sku, { onHand: 25 });
  const before = await counts();
  const results = await Promise.all(carts.map((c) => checkout(c)));
  const won = results.filter((r) => r.status === 201);
  const lost = results.filter((r) => r.status !== 201);
  for (const r of lost) {
    const p = assertProblem(r, 409, "insufficient_stock");
    assert.deepEqual(p.shortages, [{ sku, requested: 1, available: 0 }]);
  }
  const sold = won.reduce((s, r) => s + r.body.order.lines[0].quantity, 0);
  const s = await stock(sku);
  assert.equal(s.reserved, sold, "every unit held belongs to a placed order");
  assert.ok(s.available >= 0);
  assert.equal(sold, 25, "units sold equal the stock exactly");
  assert.equal(s.available, 0);
  const after = await counts();
  assert.equal(after.orders - before.orders, won.length, "losers wrote no order");
  const { m } = await app.db.prepare("SELECT count(*) AS m FROM carts WHERE status = 'checked_out' AND id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(carts)).first();
  assert.equal(m, won.length, "only winners' carts closed");
});

test("order numbers are unique and sequential within the year", async () => {
  const numbers = (await app.db.prepare("SELECT number FROM orders ORDER BY number").all()).results.map((r) => r.number);
  assert.equal(new Set(numbers).size, numbers.length);
  const seq = numbers.map((n) => Number(n.slice(-6))).sort((a, b) => a - b);
  assert.deepEqual(seq, Array.from({ length: seq.length }, (_, i) => i + 1));
});

test("checkout charges the current price: a stale snapshot is refused with 409 price_changed until the cart is refreshed", async () => {
  const [a, b] = ["CLASSICTEE-M-BLACK", "ENAMELMUG-WHITE"];
  await restock(app, a, { onHand: 100 });
  await restock(app, b, { onHand: 100 });
  const token = await adminToken(["catalog:write"]);
  const setPrice = async (sku, amount) => {
    const res = await app.request("PUT", `/v1/admin/variants/${sku}/prices/EUR`, {
      json: { amount },
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, res.text);
  };
  await setPrice(a, "10.00");
  await setPrice(b, "10.00");
  const cartId = await cartWith([[a, 1], [b, 1]]);
  await setPrice(a, "99.00");
  await setPrice(b, "99.00");

  // Changing a line's quantity takes the current price: the shopper sees 99.00 in the answer.
  const cart = await app.get(`/v1/carts/${cartId}`);
  const lineA = cart.body.lines.find((l) => l.sku === a);
  const patched = await app.patch(`/v1/carts/${cartId}/items/${lineA.id}`, { quantity: 50 });
  assert.equal(patched.status, 200, patched.text);
  const patchedA = patched.body.lines.find((l) => l.sku === a);
  assert.equal(patchedA.unit_price.amount, "99.00");
  assert.equal(patchedA.price_changed, false);

  // The other line still says 10.00: checkout refuses, and reserves nothing.
  const before = await counts();
  const stockBefore = [await stock(a), await stock(b)];
  const refused = assertProblem(await checkout(cartId), 409, "price_changed");
  assert.deepEqual(
    refused.changes.map((c) => [c.sku, c.old_unit_price.amount, c.new_unit_price.amount]),
    [[b, "10.00", "99.00"]],
  );
  assert.deepEqual(await counts(), before);
  assert.deepEqual([await stock(a), await stock(b)], stockBefore);
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");

  // The shopper accepts the new prices; checkout then charges them.
  const refreshed = await app.post(`/v1/carts/${cartId}/refresh`, undefined);
  assert.equal(refreshed.status, 200, refreshed.text);
  assert.ok(refreshed.body.lines.every((l) => l.unit_price.amount === "99.00" && !l.price_changed));
  const placed = await checkout(cartId);
  assert.equal(placed.status, 201, placed.text);
  assert.equal(placed.body.order.totals.subtotal.amount, "5049.00");
  assert.deepEqual(
    placed.body.order.lines.map((l) => [l.sku, l.unit_price.amount, l.quantity]).sort(),
    [[a, "99.00", 50], [b, "99.00", 1]].sort(),
  );
});

test("names and address lines with control or bidirectional-override characters are refused", async () => {
  await restock(app, "CLASSICTEE-M-BLACK", { onHand: 10 });
  const cartId = await cartWith([["CLASSICTEE-M-BLACK", 1]]);
  const before = await counts();
  const bad = body({
    shipping_address: { ...address, name: "Ada \u202Eecalevol", line1: "1 Analytical Way\r\nX-Injected: 1" },
    billing_address: { ...address, city: "Lon\u2066don\u2069" },
  });
  const p = assertProblem(await checkout(cartId, bad), 422, "validation_failed");
  assert.deepEqual(
    p.errors.map((e) => [e.pointer, e.code]),
    [
      ["/shipping_address/name", "invalid_characters"],
      ["/shipping_address/line1", "invalid_characters"],
      ["/billing_address/city", "invalid_characters"],
    ],
  );
  assert.deepEqual(await counts(), before);
  const ok = await checkout(cartId, body({ shipping_address: { ...address, name: "Zoë Ångström 東京" } }));
  assert.equal(ok.status, 201, ok.text);
});
