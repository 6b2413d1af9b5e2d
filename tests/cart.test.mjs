// Carts: created, read and changed line by line (quantities bounded by the line limit and the
// stock, ETags for optimistic concurrency, price snapshots and their refresh, expiry), and the
// cart's shipping: the quotes for a destination, the choice kept on the cart and priced again as
// the cart changes. (How the quotes are priced: shipping-rates.test.mjs.)
// operationIds: createCart, getCart, addCartItem, clearCart, setCartItemQuantity, removeCartItem, refreshCart, shippingOptions, chooseCartShipping, clearCartShipping
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, minor, newCart, skuWithStock, spawnApp } from "./helpers.mjs";
import { cartWith as fixtureCart, restock } from "./fixtures.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

function assertTotalsConsistent(cart) {
  const sum = (key) => cart.lines.reduce((s, l) => s + minor(l[key]), 0);
  for (const line of cart.lines) {
    assert.equal(minor(line.subtotal), minor(line.unit_price) * line.quantity);
    assert.equal(minor(line.total), minor(line.subtotal) - minor(line.discount) + minor(line.tax));
  }
  assert.equal(sum("subtotal"), minor(cart.totals.subtotal));
  assert.equal(sum("tax"), minor(cart.totals.tax));
  assert.equal(sum("total"), minor(cart.totals.grand_total));
  assert.equal(cart.item_count, cart.lines.reduce((s, l) => s + l.quantity, 0));
}

test("the whole cart lifecycle", async () => {
  const created = await app.post("/v1/carts", { currency: "EUR" });
  assert.equal(created.status, 201);
  const cart = created.body;
  assert.match(cart.id, /^cart_[0-9a-f]{32}$/);
  assert.equal(created.headers.get("location"), `/v1/carts/${cart.id}`);
  assert.equal(created.headers.get("etag"), '"v1"');
  assert.deepEqual(cart.totals.grand_total, { amount: "0.00", currency: "EUR" });

  const a = await skuWithStock(app, "EUR", 10);
  const b = (await app.db.prepare(
    "SELECT i.sku FROM inventory i JOIN prices p ON p.sku = i.sku AND p.currency = 'EUR' WHERE i.available >= 5 AND i.sku <> ?1 ORDER BY i.sku DESC LIMIT 1",
  ).bind(a.sku).first()).sku;

  let res = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 2 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get("etag"), '"v2"');
  assert.equal(res.body.lines[0].unit_price.amount, (a.amount_minor / 100).toFixed(2));
  res = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 });
  assert.equal(res.body.lines.length, 1, "adding the same SKU grows its line");
  assert.equal(res.body.lines[0].quantity, 3);
  res = await app.post(`/v1/carts/${cart.id}/items`, { sku: b, quantity: 1 });
  assert.equal(res.body.lines.length, 2);
  assertTotalsConsistent(res.body);

  const lineB = res.body.lines.find((l) => l.sku === b).id;
  res = await app.patch(`/v1/carts/${cart.id}/items/${lineB}`, { quantity: 4 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.lines.find((l) => l.sku === b).quantity, 4);
  assertTotalsConsistent(res.body);

  res = await app.patch(`/v1/carts/${cart.id}/items/${lineB}`, { quantity: 0 });
  assert.equal(res.body.lines.length, 1, "quantity 0 removes the line");

  res = await app.post(`/v1/carts/${cart.id}/items`, { sku: b, quantity: 1 });
  const lineB2 = res.body.lines.find((l) => l.sku === b).id;
  res = await app.del(`/v1/carts/${cart.id}/items/${lineB2}`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.lines.map((l) => l.sku), [a.sku]);
  assertProblem(await app.del(`/v1/carts/${cart.id}/items/${lineB2}`), 404, "line_not_found");

  const read = await app.get(`/v1/carts/${cart.id}`);
  assert.deepEqual(read.body, res.body);
  assert.equal(read.headers.get("etag"), res.headers.get("etag"));

  res = await app.del(`/v1/carts/${cart.id}/items`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.lines, []);
  assert.equal(res.body.totals.grand_total.amount, "0.00");
});

test("a JPY cart has no minor digits", async () => {
  const cart = await newCart(app, "JPY");
  const a = await skuWithStock(app, "JPY", 3);
  const res = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 3 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.totals.subtotal.amount, String(a.amount_minor * 3));
  assert.equal(res.body.totals.subtotal.currency, "JPY");
  assertTotalsConsistent(res.body);
});

test("tax at a configured rate is split across lines without losing a minor unit", async (t) => {
  const taxed = await spawnApp({ vars: { TAX_RATE: "0.19" } });
  t.after(() => taxed.close());
  const cart = await newCart(taxed, "EUR");
  const rows = (await taxed.db.prepare(
    "SELECT i.sku FROM inventory i JOIN prices p ON p.sku = i.sku AND p.currency = 'EUR' WHERE i.available >= 3 ORDER BY i.sku LIMIT 3",
  ).all()).results;
  let res;
  for (const [i, row] of rows.entries()) {
    res = await taxed.post(`/v1/carts/${cart.id}/items`, { sku: row.sku, quantity: i + 1 });
    assert.equal(res.status, 200, res.text);
  }
  assertTotalsConsistent(res.body);
  const exact = minor(res.body.totals.subtotal) * 0.19;
  assert.ok(Math.abs(minor(res.body.totals.tax) - exact) <= 0.5, "tax rounded to the nearest cent");
  assert.ok(minor(res.body.totals.tax) > 0);
});

test("a line keeps its price snapshot; a read flags the changed price", async () => {
  const cart = await newCart(app);
  const a = await skuWithStock(app, "EUR", 2);
  await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 2 });
  const token = await adminToken(["catalog:write"]);
  const newPrice = ((a.amount_minor + 150) / 100).toFixed(2);
  const set = await app.request("PUT", `/v1/admin/variants/${a.sku}/prices/EUR`, {
    json: { amount: newPrice },
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(set.status, 200, set.text);
  const read = await app.get(`/v1/carts/${cart.id}`);
  const line = read.body.lines[0];
  assert.equal(line.unit_price.amount, (a.amount_minor / 100).toFixed(2));
  assert.equal(line.price_changed, true);
  assert.equal(line.current_unit_price.amount, newPrice);
  assert.equal(minor(read.body.totals.subtotal), a.amount_minor * 2, "totals stay at the snapshot");
});

test("a refresh accepts the current prices: every line takes the catalog's price now", async () => {
  const cart = await newCart(app);
  const a = await skuWithStock(app, "EUR", 2);
  const added = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 2 });
  assert.equal(added.status, 200, added.text);
  const token = await adminToken(["catalog:write"]);
  const newPrice = ((a.amount_minor + 250) / 100).toFixed(2);
  const set = await app.request("PUT", `/v1/admin/variants/${a.sku}/prices/EUR`, {
    json: { amount: newPrice },
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(set.status, 200, set.text);
  assertProblem(await app.post(`/v1/carts/${cart.id}/refresh`, undefined, { headers: { "If-Match": '"v1"' } }), 412, "precondition_failed");
  const res = await app.post(`/v1/carts/${cart.id}/refresh`, undefined);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.lines.map((l) => [l.sku, l.quantity, l.unit_price.amount, l.price_changed]), [[a.sku, 2, newPrice, false]]);
  assert.equal(minor(res.body.totals.subtotal), (a.amount_minor + 250) * 2, "the totals follow");
  assertTotalsConsistent(res.body);
  assert.notEqual(res.headers.get("etag"), added.headers.get("etag"), "the cart changed");
  assert.deepEqual((await app.get(`/v1/carts/${cart.id}`)).body, res.body, "kept");
  assertProblem(await app.post(`/v1/carts/cart_${"0".repeat(32)}/refresh`, undefined), 404, "cart_not_found");
});

test("quantity is limited per line and by available stock when adding", async () => {
  const cart = await newCart(app);
  const a = await skuWithStock(app, "EUR", 5);
  await restock(app, a.sku, { onHand: 4 });
  let p = assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 5 }), 409, "insufficient_stock");
  assert.deepEqual(p.shortages, [{ sku: a.sku, requested: 5, available: 4 }], "the one shape of insufficient_stock");
  let res = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 4 });
  assert.equal(res.status, 200);
  p = assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 }), 409, "insufficient_stock");
  assert.equal(p.shortages[0].requested, 5);
  const line = res.body.lines[0].id;
  assertProblem(await app.patch(`/v1/carts/${cart.id}/items/${line}`, { quantity: 6 }), 409, "insufficient_stock");
  res = await app.patch(`/v1/carts/${cart.id}/items/${line}`, { quantity: 2 });
  assert.equal(res.status, 200, "shrinking a line always works");

  await restock(app, a.sku, { onHand: 1000 });
  p = assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 98 }), 422, "validation_failed");
  assert.equal(p.max, 99);
  assert.equal(p.errors[0].pointer, "/quantity");
  const after = await app.get(`/v1/carts/${cart.id}`);
  assert.equal(after.body.lines[0].quantity, 2, "refused changes wrote nothing");
});

test("If-Match: a stale ETag gets 412 and changes nothing; the current one applies", async () => {
  const cart = await newCart(app);
  const a = await skuWithStock(app, "EUR", 3);
  const first = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 }, { headers: { "If-Match": '"v1"' } });
  assert.equal(first.status, 200, first.text);
  const stale = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 }, { headers: { "If-Match": '"v1"' } });
  assertProblem(stale, 412, "precondition_failed");
  assert.equal(stale.headers.get("etag"), '"v2"');
  assertProblem(await app.del(`/v1/carts/${cart.id}/items`, { headers: { "If-Match": '"v1"' } }), 412, "precondition_failed");
  const read = await app.get(`/v1/carts/${cart.id}`);
  assert.equal(read.body.lines[0].quantity, 1);
  assert.equal(read.headers.get("etag"), '"v2"');
  const ok = await app.del(`/v1/carts/${cart.id}/items`, { headers: { "If-Match": '"v2"' } });
  assert.equal(ok.status, 200);
  const any = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 }, { headers: { "If-Match": "*" } });
  assert.equal(any.status, 200);
});

test("concurrent adds without If-Match all land (optimistic retry)", async () => {
  const cart = await newCart(app);
  const a = await skuWithStock(app, "EUR", 20);
  const results = await Promise.all(
    Array.from({ length: 8 }, () => app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 })),
  );
  const ok = results.filter((r) => r.status === 200).length;
  for (const r of results) assert.ok([200, 409].includes(r.status), r.text);
  const read = await app.get(`/v1/carts/${cart.id}`);
  assert.equal(read.body.lines[0].quantity, ok, "every 200 is counted once, nothing lost");
  assert.equal(read.headers.get("etag"), `"v${1 + ok}"`);
});

test("an expired cart answers 404 cart_expired and cannot change", async () => {
  const cart = await newCart(app);
  await app.db.prepare("UPDATE carts SET expires_at = ?2 WHERE id = ?1").bind(cart.id, Date.now() - 1000).run();
  assertProblem(await app.get(`/v1/carts/${cart.id}`), 404, "cart_expired");
  const a = await skuWithStock(app, "EUR", 1);
  assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 }), 404, "cart_expired");
  const { version } = await app.db.prepare("SELECT version FROM carts WHERE id = ?1").bind(cart.id).first();
  assert.equal(version, 1);
});

test("a cart expires 30 days after its last change by default", async () => {
  const cart = await newCart(app);
  const created = Date.parse(cart.created_at);
  assert.equal(Date.parse(cart.expires_at) - created, 30 * 86400 * 1000);
});

test("unknown carts and lines are 404s", async () => {
  assertProblem(await app.get("/v1/carts/cart_00000000000000000000000000000000"), 404, "cart_not_found");
  assertProblem(await app.get("/v1/carts/whatever"), 404, "cart_not_found");
  const cart = await newCart(app);
  assertProblem(await app.patch(`/v1/carts/${cart.id}/items/line_00000000000000000000000000000000`, { quantity: 1 }), 404, "line_not_found");
  assertProblem(await app.patch(`/v1/carts/${cart.id}/items/nope`, { quantity: 1 }), 404, "line_not_found");
});

test("a change that would take the cart total out of range is refused with 422 and not saved", async () => {
  const cart = await newCart(app);
  const a = await skuWithStock(app, "EUR", 2);
  const token = await adminToken(["catalog:write"]);
  const set = await app.request("PUT", `/v1/admin/variants/${a.sku}/prices/EUR`, {
    json: { amount: "900000000000.00" },
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(set.status, 200, set.text);
  const first = await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 });
  assert.equal(first.status, 200, first.text);
  assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: a.sku, quantity: 1 }), 422, "cart_total_too_large");
  const read = await app.get(`/v1/carts/${cart.id}`);
  assert.equal(read.status, 200, read.text);
  assert.equal(read.headers.get("etag"), first.headers.get("etag"), "nothing was saved");
  assert.equal(read.body.lines[0].quantity, 1);
});


const cartWith = (currency, items) => fixtureCart(app, currency, items);
// Requested here, not through fixtures.shippingOptions: this tag file covers shippingOptions.
const options = async (cartId, country, postal = "") => {
  const res = await app.get(`/v1/carts/${cartId}/shipping-options?country=${country}&postal_code=${encodeURIComponent(postal)}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
};
const choose = (cartId, choice, headers = {}) => app.put(`/v1/carts/${cartId}/shipping`, choice, { headers });
const amounts = (cart) => [cart.totals.shipping.amount, cart.totals.grand_total.amount];

test("the chosen shipping enters the cart's totals and is priced again as the cart changes", async () => {
  const cartId = await cartWith("EUR", [["CLASSICTEE-M-WHITE", 2]]);
  const before = await app.get(`/v1/carts/${cartId}`);
  assert.equal(before.body.shipping, null);
  assert.deepEqual(amounts(before.body), ["0.00", "39.98"]);

  const key = randomUUID();
  const res = await choose(cartId, { country: "nl", postal_code: "1012 ab", method: "standard" }, { "Idempotency-Key": key });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(amounts(res.body), ["4.90", "44.88"]);
  assert.equal(res.body.weight_grams, 360);
  const { country, postal_code, method, quote } = res.body.shipping;
  assert.deepEqual([country, postal_code, method, quote.carrier, quote.price.amount], ["NL", "1012AB", "standard", "postnl", "4.90"]);
  assert.notEqual(res.headers.get("etag"), before.headers.get("etag"), "choosing shipping changes the cart");
  const replay = await choose(cartId, { country: "nl", postal_code: "1012 ab", method: "standard" }, { "Idempotency-Key": key });
  assert.deepEqual(replay.body, res.body, "a replay answers the same");
  assert.equal(replay.headers.get("etag"), res.headers.get("etag"));
  assert.deepEqual((await app.get(`/v1/carts/${cartId}`)).body, res.body, "kept on the cart");
  // What the cart shows is what the shipping options quote for its destination.
  const quoted = (await options(cartId, "NL", "1012AB")).options.find((o) => o.code === "standard");
  assert.deepEqual(res.body.shipping.quote, quoted);

  // A third tee: 540 g (the next band) and 59.97 (over the EU threshold): free.
  let cart = (await app.post(`/v1/carts/${cartId}/items`, { sku: "CLASSICTEE-M-WHITE", quantity: 1 })).body;
  assert.deepEqual(amounts(cart), ["0.00", "59.97"]);
  assert.equal(cart.shipping.quote.free, true);
  cart = (await choose(cartId, { country: "DE", method: "express" })).body;
  assert.deepEqual(amounts(cart), ["15.00", "74.97"]);
  cart = (await choose(cartId, { country: "GB", postal_code: "SW1Y 4JH", method: "standard" })).body;
  assert.deepEqual(amounts(cart), ["14.90", "74.87"], "rest of Europe: under its threshold, the 2 kg band");
  // Lighter again: the first band.
  const line = cart.lines[0].id;
  cart = (await app.patch(`/v1/carts/${cartId}/items/${line}`, { quantity: 1 })).body;
  assert.deepEqual(amounts(cart), ["9.90", "29.89"]);

  // Too heavy for every band (16 hoodies, 10.4 kg): the choice stays, unpriced, out of the totals.
  await restock(app, "ZIPHOODIE-S-GREY");
  cart = (await app.post(`/v1/carts/${cartId}/items`, { sku: "ZIPHOODIE-S-GREY", quantity: 16 })).body;
  assert.equal(cart.shipping.method, "standard");
  assert.equal(cart.shipping.quote, null);
  assert.equal(cart.totals.shipping.amount, "0.00");
  assert.equal(minor(cart.totals.grand_total), minor(cart.totals.subtotal) - minor(cart.totals.discount) + minor(cart.totals.tax));

  // Stale If-Match: 412, nothing changes; DELETE forgets the choice.
  assertProblem(await choose(cartId, { country: "NL", method: "standard" }, { "If-Match": before.headers.get("etag") }), 412, "precondition_failed");
  const cleared = await app.del(`/v1/carts/${cartId}/shipping`, { headers: { "Idempotency-Key": randomUUID() } });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.shipping, null);
});

test("a bad or unavailable choice is 422 and changes nothing", async () => {
  const cartId = await cartWith("EUR", [["CLASSICTEE-S-BLACK", 1]]);
  await choose(cartId, { country: "NL", method: "standard" });
  const before = await app.get(`/v1/carts/${cartId}`);
  const cases = [
    [{ country: "NLD", method: "standard" }, "/country", "invalid_country"],
    [{ country: "NL", postal_code: "1012<AB", method: "standard" }, "/postal_code", "invalid_postal_code"],
    [{ country: "NL", method: " " }, "/method", "invalid_shipping_method"],
    [{ country: "NL", method: "x".repeat(41) }, "/method", "invalid_shipping_method"],
  ];
  for (const [choice, pointer, code] of cases) {
    const p = assertProblem(await choose(cartId, choice), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(choice));
  }
  const p = assertProblem(await choose(cartId, { country: "US", method: "overnight" }), 422, "validation_failed");
  assert.equal(p.errors[0].code, "unknown_shipping_method");
  assert.deepEqual(p.available, ["standard", "express"], "what can take this cart there, cheapest first");
  for (const [choice, code] of [
    [{ country: "NL" }, "missing_field"],
    [{ country: "NL", method: "standard", extra: 1 }, "unknown_field"],
  ]) {
    assert.equal(assertProblem(await choose(cartId, choice), 422, "validation_failed").errors[0].code, code);
  }
  assertProblem(await choose(`cart_${"0".repeat(32)}`, { country: "NL", method: "standard" }), 404, "cart_not_found");
  const after = await app.get(`/v1/carts/${cartId}`);
  assert.deepEqual(after.body, before.body);
  assert.equal(after.headers.get("etag"), before.headers.get("etag"));
});
