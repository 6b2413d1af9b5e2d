// Abuse limits: checkout is rate limited per client and per email by the platform's limiter
// (the limits configured in functions/checkout/wrangler.toml), and one order holds a bounded
// number of units of one SKU.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { parse as parseToml } from "smol-toml";
import { readFileSync } from "node:fs";
import { assertProblem, newCart, spawnApp, freshLimiterWindow } from "./helpers.mjs";
import { ARLINGTON as address, restock } from "./fixtures.mjs";

let app;
const sku = "CLASSICTEE-L-WHITE";
// The workers' own limits, not the generous ones other suites use.
before(async () => {
  app = await spawnApp({ rateLimits: {} });
  await restock(app, sku, { onHand: 1000 });
});
after(async () => app?.close());

const configured = Object.fromEntries(
  parseToml(readFileSync(new URL("../functions/checkout/wrangler.toml", import.meta.url), "utf8")).ratelimits.map((r) => [r.name, r.simple]),
);

async function cart(quantity = 1) {
  const c = await newCart(app);
  const res = await app.post(`/v1/carts/${c.id}/items`, { sku, quantity });
  assert.equal(res.status, 200, res.text);
  return c.id;
}
const checkout = (cartId, { ip, email }) =>
  app.post(
    `/v1/carts/${cartId}/checkout`,
    { email, shipping_address: address, shipping_method: "standard", payment_provider: "test" },
    { headers: { "Idempotency-Key": randomUUID(), "CF-Connecting-IP": ip } },
  );

test("checkouts per client are limited: 429 with Retry-After, and nothing is written", async () => {
  await freshLimiterWindow();
  const limit = configured.CHECKOUT_BY_CLIENT.limit;
  const ip = "192.0.2.10";
  for (let i = 0; i < limit; i++) {
    // A fresh email each time, so only the per-client limit is in play.
    const res = await checkout(await cart(), { ip, email: `shopper${i}@example.com` });
    assert.equal(res.status, 201, res.text);
  }
  const last = await cart();
  const orders = await app.count("orders");
  const reserved = await app.db.prepare("SELECT reserved FROM inventory WHERE sku = ?1").bind(sku).first("reserved");
  assertProblem(await checkout(last, { ip, email: "another@example.com" }), 429, "rate_limited");
  assert.equal(await app.count("orders"), orders, "no order");
  assert.equal(await app.db.prepare("SELECT reserved FROM inventory WHERE sku = ?1").bind(sku).first("reserved"), reserved, "no stock held");
  assert.equal((await app.get(`/v1/carts/${last}`)).body.status, "active");
  // Another client is not affected.
  assert.equal((await checkout(last, { ip: "192.0.2.11", email: "another@example.com" })).status, 201);
});

test("checkouts per email are limited, whichever client they come from", async () => {
  await freshLimiterWindow();
  const limit = configured.CHECKOUT_BY_EMAIL.limit;
  for (let i = 0; i < limit; i++) {
    const res = await checkout(await cart(), { ip: `198.18.0.${i + 1}`, email: "Hoarder@Example.com" });
    assert.equal(res.status, 201, res.text);
  }
  const res = await checkout(await cart(), { ip: "198.18.1.1", email: "hoarder@example.com" });
  assertProblem(res, 429, "rate_limited");
  assert.equal(res.headers.get("retry-after"), "60");
});

test("one order holds at most CHECKOUT_MAX_UNITS_PER_SKU units of one SKU", async () => {
  const max = Number(parseToml(readFileSync(new URL("../functions/checkout/wrangler.toml", import.meta.url), "utf8")).vars.CHECKOUT_MAX_UNITS_PER_SKU);
  const over = await cart(max + 1);
  const orders = await app.count("orders");
  const p = assertProblem(await checkout(over, { ip: "192.0.2.50", email: "bulk@example.com" }), 422, "sku_quantity_above_limit");
  assert.deepEqual([p.sku, p.requested, p.max], [sku, max + 1, max]);
  assert.equal(await app.count("orders"), orders);
  assert.equal((await checkout(await cart(max), { ip: "192.0.2.51", email: "bulk2@example.com" })).status, 201);
});

test("unpaid orders from any number of clients and emails together hold at most the configured share of a SKU", async () => {
  const share = Number(parseToml(readFileSync(new URL("../functions/checkout/wrangler.toml", import.meta.url), "utf8")).vars.CHECKOUT_UNPAID_HOLD_SHARE);
  const scarce = "BUCKETHAT-SAND";
  const onHand = 20;
  const cap = Math.ceil(onHand * share);
  await restock(app, scarce, { onHand });
  const carts = [];
  for (let i = 0; i < 10; i++) {
    const c = await newCart(app);
    assert.equal((await app.post(`/v1/carts/${c.id}/items`, { sku: scarce, quantity: 2 })).status, 200);
    carts.push(c.id);
  }
  // Ten rotating clients, ten emails, all at once: 20 units asked for, the cap is below that.
  const answers = await Promise.all(carts.map((id, i) => checkout(id, { ip: `203.0.113.${i + 1}`, email: `drop${i}@example.com` })));
  const placed = answers.filter((r) => r.status === 201);
  const refused = answers.filter((r) => r.status !== 201);
  assert.equal(placed.length, Math.floor(cap / 2), answers.map((r) => r.status).join());
  for (const r of refused) {
    const p = assertProblem(r, 409, "unpaid_hold_limit");
    assert.deepEqual(p.skus, [scarce]);
  }
  const stock = await app.db.prepare("SELECT on_hand, reserved FROM inventory WHERE sku = ?1").bind(scarce).first();
  assert.deepEqual(stock, { on_hand: onHand, reserved: placed.length * 2 });
  assert.ok(stock.reserved <= cap, "never beyond the cap");
  assert.equal(await app.count("unpaid_hold_guard"), 0, "the guard table is always empty between batches");
});
