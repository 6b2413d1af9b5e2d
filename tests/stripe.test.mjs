// The Stripe adapter against a local stand-in of Stripe's API.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { assertProblem, newCart, spawnApp } from "./helpers.mjs";

let app, server, seen = [], answer = 200;
before(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, form: new URLSearchParams(raw) });
      res.writeHead(answer, { "Content-Type": "application/json" });
      const id = `pi_${seen.length}`;
      res.end(answer === 200 ? JSON.stringify({ id, client_secret: `${id}_secret_x`, object: "payment_intent" }) : '{"error":{"message":"down"}}');
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  app = await spawnApp({
    vars: { STRIPE_API_BASE: `http://127.0.0.1:${server.address().port}`, STRIPE_SECRET_KEY: "sk_test_standin" },
  });
});
after(async () => {
  await app?.close();
  server?.close();
});

async function cart(currency = "EUR") {
  const c = await newCart(app, currency);
  const sku = currency === "JPY" ? "ENAMELMUG-BLACK" : "CLASSICTEE-L-WHITE";
  await app.db.prepare("UPDATE inventory SET on_hand = 50, reserved = 0 WHERE sku = ?1").bind(sku).run();
  const res = await app.post(`/v1/carts/${c.id}/items`, { sku, quantity: 2 });
  assert.equal(res.status, 200, res.text);
  return c.id;
}

const body = {
  email: "grace@example.com",
  shipping_address: { name: "Grace Hopper", line1: "1 Navy Yard", city: "Arlington", postal_code: "22202", country: "US" },
  shipping_method: "express",
  payment_provider: "stripe",
};

test("checkout with stripe creates a PaymentIntent, form-encoded, with the key forwarded", async () => {
  answer = 200;
  const cartId = await cart("JPY");
  const key = randomUUID();
  const res = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": key } });
  assert.equal(res.status, 201, res.text);
  const call = seen.at(-1);
  assert.equal(call.method, "POST");
  assert.equal(call.url, "/v1/payment_intents");
  assert.equal(call.headers.authorization, "Bearer sk_test_standin");
  assert.equal(call.headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(call.headers["idempotency-key"], `checkout-${cartId}-${key}`);
  assert.equal(call.form.get("currency"), "jpy");
  assert.equal(Number(call.form.get("amount")), res.body.payment.amount_minor);
  assert.equal(res.body.order.totals.grand_total.amount, call.form.get("amount"), "JPY minor units are yen");
  assert.equal(call.form.get("metadata[cart_id]"), cartId);
  assert.equal(res.body.order.payment_id, `pi_${seen.length}`);
  assert.equal(res.body.payment.client_secret, `pi_${seen.length}_secret_x`);
});

test("a failing provider is a 502 and nothing is written", async () => {
  answer = 500;
  const cartId = await cart();
  const orders = await app.count("orders");
  const res = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": randomUUID() } });
  assertProblem(res, 502, "payment_provider_unavailable");
  assert.ok(!res.text.includes("down"), "the provider's answer is logged, not echoed");
  assert.equal(await app.count("orders"), orders);
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");
  const { reserved } = await app.db.prepare("SELECT reserved FROM inventory WHERE sku = 'CLASSICTEE-L-WHITE'").first();
  assert.equal(reserved, 0);
});
