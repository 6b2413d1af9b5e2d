// Shipping rates: GET /v1/carts/{id}/shipping-options prices every method of the destination's
// zone (configured in D1, seeded by the demo catalog) for the cart's weight and subtotal, and the
// checkout charges what was quoted, or the cart's chosen shipping (which cart.test.mjs follows
// through the cart's changes).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { assertProblem, minor, spawnApp } from "./helpers.mjs";
import { cartWith as fixtureCart, LONDON, shippingOptions } from "./fixtures.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());


const cartWith = (currency, items) => fixtureCart(app, currency, items);
const options = (cartId, country, postal) => shippingOptions(app, cartId, country, postal);
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
        shipping_address: { ...LONDON, postal_code, country },
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

test("a checkout without a shipping method charges exactly the cart's choice", async () => {
  const place = (cartId, country, postal_code, extra = {}) =>
    app.post(
      `/v1/carts/${cartId}/checkout`,
      {
        email: "chosen@example.com",
        shipping_address: { ...LONDON, postal_code, country },
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
