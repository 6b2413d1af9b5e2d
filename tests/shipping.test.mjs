// Shipping quotes: GET /v1/carts/{id}/shipping-options prices every method of the destination's
// zone (configured in D1, seeded by the demo catalog) for the cart's weight and subtotal.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { assertProblem, minor, newCart, spawnApp } from "./helpers.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

async function cartWith(currency, items) {
  const cart = await newCart(app, currency);
  for (const [sku, quantity] of items) {
    await app.db.prepare("UPDATE inventory SET on_hand = 100, reserved = 0 WHERE sku = ?1").bind(sku).run();
    const res = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity });
    assert.equal(res.status, 200, res.text);
  }
  return cart.id;
}

const options = async (cartId, country, postal = "") => {
  const res = await app.get(`/v1/carts/${cartId}/shipping-options?country=${country}&postal_code=${encodeURIComponent(postal)}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
};
const prices = (body) => body.options.map((o) => [o.code, o.price.amount, o.free]);

test("quotes by zone, weight band and currency, cheapest first, with delivery estimates", async () => {
  // 2 tees (180 g each): 360 g, the lightest band.
  const light = await cartWith("EUR", [["CLASSICTEE-M-BLACK", 2]]);
  const nl = await options(light, "NL", "1012 AB");
  assert.equal(nl.weight_grams, 360);
  assert.deepEqual(prices(nl), [["standard", "4.90", false], ["express", "12.00", false]]);
  assert.deepEqual([nl.options[0].carrier, nl.options[0].min_days, nl.options[0].max_days], ["postnl", 1, 3]);
  assert.deepEqual(prices(await options(light, "gb", "SW1Y 4JH")), [["standard", "9.90", false], ["express", "22.00", false]]);
  assert.deepEqual(prices(await options(light, "US", "22202")), [["standard", "14.90", false], ["express", "32.00", false]]);
  assert.deepEqual(prices(await options(light, "JP", "100-0001")), [["standard", "19.90", false], ["express", "45.00", false]], "rest of world");

  // 4 hoodies (650 g each): 2600 g, the heaviest band.
  const heavy = await cartWith("USD", [["ZIPHOODIE-M-GREY", 4]]);
  const us = await options(heavy, "US");
  assert.equal(us.weight_grams, 2600);
  assert.deepEqual(prices(us), [["standard", "0.00", true], ["express", "74.52", false]], "the 10 kg band in USD; 237.56 USD is over the US threshold (162.00)");
  // 16 hoodies: 10.4 kg, too heavy for every band.
  const tooHeavy = await cartWith("EUR", [["ZIPHOODIE-S-GREY", 16]]);
  assert.deepEqual((await options(tooHeavy, "DE")).options, []);
});

test("the free-shipping threshold applies to the cart's subtotal, in its currency", async () => {
  // 2 tees at 19.99: under 50.00; 3 tees (540 g, the 2 kg band): 59.97, free standard shipping within the EU.
  const under = await cartWith("EUR", [["CLASSICTEE-L-BLACK", 2]]);
  const below = await options(under, "DE");
  assert.deepEqual(below.options[0].free_from, { amount: "50.00", currency: "EUR" });
  assert.equal(below.options[0].free, false);
  const over = await cartWith("EUR", [["CLASSICTEE-L-BLACK", 3]]);
  assert.deepEqual(prices(await options(over, "DE")), [["standard", "0.00", true], ["express", "15.00", false]]);
  assert.deepEqual(prices(await options(over, "CH")), [["standard", "14.90", false], ["express", "29.00", false]], "rest of Europe's threshold is 100.00");
});

test("a bad destination is 422; an unknown cart 404", async () => {
  const cart = await cartWith("EUR", [["CLASSICTEE-M-BLACK", 1]]);
  for (const query of ["country=NLD", "country=", "country=NL&postal_code=1012%3CAB", "country=NL&extra=1"]) {
    assertProblem(await app.get(`/v1/carts/${cart}/shipping-options?${query}`), 422, "validation_failed");
  }
  assertProblem(await app.get(`/v1/carts/cart_${"0".repeat(32)}/shipping-options?country=NL`), 404, "cart_not_found");
});

test("the checkout charges the quote of the destination's zone: weight band, currency, free threshold; a method the zone lacks is 422", async () => {
  const place = async (cartId, country, postal_code, shipping_method = "standard") =>
    app.post(
      `/v1/carts/${cartId}/checkout`,
      {
        email: "ship@example.com",
        shipping_address: { name: "S", line1: "1 Road", city: "Town", postal_code, country },
        shipping_method,
        payment_provider: "test",
      },
      { headers: { "Idempotency-Key": randomUUID() } },
    );
  const cases = [
    // [currency, items, country, postal code, method, expected shipping, what the quote said]
    ["EUR", [["CLASSICTEE-S-WHITE", 2]], "NL", "1012 AB", "standard", "4.90"],
    ["EUR", [["CLASSICTEE-S-WHITE", 3]], "DE", "10115", "standard", "0.00"],
    ["EUR", [["CLASSICTEE-S-WHITE", 3]], "DE", "10115", "express", "15.00"],
    ["USD", [["ZIPHOODIE-S-NAVY", 1]], "US", "22202", "express", "45.36"],
    ["EUR", [["CLASSICTEE-S-WHITE", 1]], "JP", "100-0001", "standard", "19.90"],
  ];
  for (const [currency, items, country, postal, method, expected] of cases) {
    const cartId = await cartWith(currency, items);
    const quoted = (await options(cartId, country, postal)).options.find((o) => o.code === method);
    const res = await place(cartId, country, postal, method);
    assert.equal(res.status, 201, res.text);
    const t = res.body.order.totals;
    assert.equal(t.shipping.amount, expected, `${country} ${method}`);
    assert.deepEqual(t.shipping, quoted.price, "the checkout charges what the quote said");
    assert.equal(minor(t.grand_total), minor(t.subtotal) - minor(t.discount) + minor(t.shipping) + minor(t.tax));
  }
  const cartId = await cartWith("EUR", [["CLASSICTEE-S-WHITE", 1]]);
  const res = await place(cartId, "NL", "1012", "overnight");
  const p = assertProblem(res, 422, "validation_failed");
  assert.equal(p.errors[0].code, "unknown_shipping_method");
  assert.match(p.errors[0].detail, /standard/);
});

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
  await app.db.prepare("UPDATE inventory SET on_hand = 100, reserved = 0 WHERE sku = 'ZIPHOODIE-S-GREY'").run();
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

test("a checkout without a shipping method charges exactly the cart's choice", async () => {
  const place = (cartId, country, postal_code, extra = {}) =>
    app.post(
      `/v1/carts/${cartId}/checkout`,
      {
        email: "chosen@example.com",
        shipping_address: { name: "S", line1: "1 Road", city: "Town", postal_code, country },
        payment_provider: "test",
        ...extra,
      },
      { headers: { "Idempotency-Key": randomUUID() } },
    );
  const cartId = await cartWith("EUR", [["CLASSICTEE-L-WHITE", 1]]);
  let p = assertProblem(await place(cartId, "NL", "1012AB"), 422, "validation_failed");
  assert.equal(p.errors[0].code, "shipping_method_required");

  const shown = (await choose(cartId, { country: "NL", postal_code: "1012AB", method: "express" })).body;
  assert.deepEqual(amounts(shown), ["12.00", "31.99"]);
  p = assertProblem(await place(cartId, "NL", "1012AB", { shipping_method: "standard" }), 422, "validation_failed");
  assert.deepEqual([p.errors[0].code, p.chosen], ["shipping_method_not_chosen", "express"]);
  // An address in another zone (rest of Europe) is priced otherwise: refused, nothing held.
  p = assertProblem(await place(cartId, "CH", "8001"), 409, "shipping_changed");
  assert.deepEqual([p.cart_shipping.amount, p.address_shipping.amount], ["12.00", "22.00"]);
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");

  // Another address of the same zone: the price the cart showed.
  const res = await place(cartId, "DE", "10115");
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.order.shipping_method, "express");
  assert.deepEqual(res.body.order.totals.shipping, shown.totals.shipping);
  assert.deepEqual(res.body.order.totals.grand_total, shown.totals.grand_total);
  assert.equal(res.body.payment.amount_minor, minor(shown.totals.grand_total));
});
