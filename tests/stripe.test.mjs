// The Stripe adapter against a local stand-in of Stripe's API.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, eventually, newCart, spawnApp } from "./helpers.mjs";
import { ARLINGTON, paidOrder, placeOrder, restock, sendStripe, stripePaymentIntentEvent } from "./fixtures.mjs";

const STRIPE_SECRET = "whsec_stripe_adapter_0123456789";

// `hold`, when set, is a promise the stand-in waits for before answering (a slow Stripe);
// `arrived` resolves when a request reaches it.
// Follow-ups the order-events consumer sends (naming an order on its PaymentIntent, cancelling
// one) arrive on their own time: kept apart in `followups`, answered at once.
let app, server, seen = [], followups = [], answer = 200, hold = null, arrived = null;
before(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d) => (raw += d));
    req.on("end", async () => {
      const followup = req.method === "POST" && /^\/v1\/payment_intents\/[^/]+(\/cancel)?$/.test(req.url);
      if (followup) {
        followups.push({ url: req.url, headers: req.headers, form: new URLSearchParams(raw) });
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ id: req.url.split("/")[3], object: "payment_intent" }));
        return;
      }
      arrived?.();
      if (hold) await hold;
      seen.push({ method: req.method, url: req.url, headers: req.headers, form: new URLSearchParams(raw) });
      res.writeHead(answer, { "Content-Type": "application/json" });
      // GET /v1/payment_intents/{id} retrieves; POST /v1/payment_intents creates; POST
      // /v1/refunds refunds.
      if (req.url === "/v1/refunds") {
        res.end(answer === 200 ? JSON.stringify({ id: `re_${seen.length}`, object: "refund", status: "pending" }) : '{"error":{"message":"no"}}');
        return;
      }
      const id = req.method === "GET" ? req.url.split("/").at(-1) : `pi_${seen.length}`;
      res.end(answer === 200 ? JSON.stringify({ id, client_secret: `${id}_secret_x`, object: "payment_intent" }) : '{"error":{"message":"down"}}');
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  app = await spawnApp({
    vars: { STRIPE_API_BASE: `http://127.0.0.1:${server.address().port}`, STRIPE_SECRET_KEY: "sk_test_standin", STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET },
  });
});
after(async () => {
  await app?.close();
  server?.close();
});

/** A cart in `currency` of two units of a SKU priced in it, restocked to 50 first. */
async function cart(currency = "EUR") {
  const c = await newCart(app, currency);
  const sku = { JPY: "ENAMELMUG-BLACK", KWD: "ZIPHOODIE-S-GREY" }[currency] ?? "CLASSICTEE-L-WHITE";
  await restock(app, sku, { onHand: 50 });
  const res = await app.post(`/v1/carts/${c.id}/items`, { sku, quantity: 2 });
  assert.equal(res.status, 200, res.text);
  return c.id;
}

const body = {
  email: "grace@example.com",
  shipping_address: ARLINGTON,
  shipping_method: "express",
  payment_provider: "stripe",
};
/** The same checkout, as the fixtures place it: two CLASSICTEE-L-WHITE paid with Stripe. */
const ITEMS = [{ sku: "CLASSICTEE-L-WHITE", quantity: 2 }];
const CHECKOUT = { email: body.email, address: ARLINGTON, shippingMethod: "express", provider: "stripe" };

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
  assert.match(call.headers["idempotency-key"], /^checkout-[0-9a-f]{64}$/, "derived from the key, at most Stripe's 255 characters");
  assert.equal(call.form.get("currency"), "jpy");
  assert.equal(Number(call.form.get("amount")), res.body.payment.amount_minor);
  assert.equal(res.body.order.totals.grand_total.amount, call.form.get("amount"), "JPY minor units are yen");
  assert.equal(call.form.get("metadata[cart_id]"), cartId);
  assert.equal(call.form.get("metadata[order_id]"), res.body.order.id);
  assert.equal(res.body.order.payment_id, `pi_${seen.length}`);
  assert.equal(res.body.payment.client_secret, `pi_${seen.length}_secret_x`);

  // A replay creates nothing: it retrieves the PaymentIntent for its client secret (never
  // stored) and answers the same order and payment.
  const created = seen.length;
  const replay = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": key } });
  assert.equal(replay.status, 201, replay.text);
  assert.equal(replay.headers.get("idempotent-replayed"), "true");
  assert.deepEqual(seen.slice(created).map((c) => [c.method, c.url, c.headers.authorization]), [
    ["GET", `/v1/payment_intents/${res.body.payment.payment_id}`, "Bearer sk_test_standin"],
  ]);
  assert.deepEqual(replay.body.order, res.body.order);
  assert.deepEqual(replay.body.payment, res.body.payment);
});

test("a failing provider is a 502 and nothing is written", async () => {
  answer = 500;
  const cartId = await cart();
  const orders = await app.count("orders");
  const key = randomUUID();
  const res = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": key } });
  assertProblem(res, 502, "payment_provider_unavailable");
  assert.ok(!res.text.includes("down"), "the provider's answer is logged, not echoed");
  assert.equal(await app.count("orders"), orders);
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");
  const { reserved } = await app.db.prepare("SELECT reserved FROM inventory WHERE sku = 'CLASSICTEE-L-WHITE'").first();
  assert.equal(reserved, 0);

  // The retry of the same checkout sends Stripe the same key (it would find the same
  // PaymentIntent); once the cart changed, the key changes too (Stripe would otherwise refuse
  // the same key with other parameters).
  const failedKey = seen.at(-1).headers["idempotency-key"];
  answer = 200;
  const retry = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": key } });
  assert.equal(retry.status, 201, retry.text);
  assert.equal(seen.at(-1).headers["idempotency-key"], failedKey, "a retry: the same key");
  const changed = await cart();
  answer = 500;
  const second = randomUUID();
  assertProblem(await app.post(`/v1/carts/${changed}/checkout`, body, { headers: { "Idempotency-Key": second } }), 502, "payment_provider_unavailable");
  const before = seen.at(-1).headers["idempotency-key"];
  answer = 200;
  assert.equal((await app.post(`/v1/carts/${changed}/items`, { sku: "CLASSICTEE-L-WHITE", quantity: 1 })).status, 200);
  const after = await app.post(`/v1/carts/${changed}/checkout`, body, { headers: { "Idempotency-Key": second } });
  assert.equal(after.status, 201, after.text);
  assert.notEqual(seen.at(-1).headers["idempotency-key"], before, "the cart changed: another key");
});

test("a price changed while Stripe creates the PaymentIntent places nothing: 409 price_changed, then the new price after a refresh", async () => {
  answer = 200;
  const sku = "CLASSICTEE-L-WHITE";
  const token = await adminToken(["catalog:write"]);
  const setPrice = async (amount) => {
    const res = await app.request("PUT", `/v1/admin/variants/${sku}/prices/EUR`, {
      json: { amount },
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, res.text);
  };
  await setPrice("20.00");
  const cartId = await cart();
  const orders = await app.count("orders");

  // Stripe is slow: the checkout has read the cart (prices current) and waits on Stripe while
  // the admin raises the price.
  let release;
  hold = new Promise((r) => (release = r));
  const reached = new Promise((r) => (arrived = r));
  const pending = app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": randomUUID() } });
  await reached;
  await setPrice("35.00");
  release();
  const res = await pending;
  hold = null;
  arrived = null;

  const p = assertProblem(res, 409, "price_changed");
  assert.deepEqual(
    p.changes.map((c) => [c.sku, c.old_unit_price.amount, c.new_unit_price.amount]),
    [[sku, "20.00", "35.00"]],
  );
  assert.equal(await app.count("orders"), orders, "no order");
  const { reserved } = await app.db.prepare("SELECT reserved FROM inventory WHERE sku = ?1").bind(sku).first();
  assert.equal(reserved, 0, "nothing reserved");
  assert.equal((await app.get(`/v1/carts/${cartId}`)).body.status, "active");

  assert.equal((await app.post(`/v1/carts/${cartId}/refresh`, undefined)).status, 200);
  const placed = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": randomUUID() } });
  assert.equal(placed.status, 201, placed.text);
  assert.equal(placed.body.order.lines[0].unit_price.amount, "35.00");
  assert.equal(seen.at(-1).form.get("amount"), String(placed.body.payment.amount_minor));
});

test("a refund of a Stripe order: POST /v1/refunds, form-encoded, keyed by the refund; a decline releases it, an unknown outcome keeps it for a retry", async () => {
  answer = 200;
  const admin = { Authorization: `Bearer ${await adminToken(["orders:write", "orders:read"])}` };
  await restock(app, ITEMS[0].sku, { onHand: 50 });
  const { order } = await paidOrder(app, ITEMS, admin.Authorization, CHECKOUT);
  const refund = (key, amount) =>
    app.post(`/v1/admin/orders/${order.id}/refunds`, { reason: "late delivery", amount: { amount, currency: "EUR" } }, { headers: { ...admin, "Idempotency-Key": key } });
  const view = async () => (await app.get(`/v1/orders/${order.id}/payment`, { headers: admin })).body;

  // Stripe refuses (400): nothing stays committed.
  answer = 400;
  assertProblem(await refund(randomUUID(), "1.00"), 502, "refund_declined");
  let payment = await view();
  assert.deepEqual([payment.refund_pending.amount, payment.refunds.map((r) => r.status)], ["0.00", ["failed"]]);

  // Stripe does not answer (500): the outcome is unknown, so the refund stays committed…
  answer = 500;
  const key = randomUUID();
  assertProblem(await refund(key, "2.00"), 502, "payment_provider_unavailable");
  payment = await view();
  assert.deepEqual([payment.refund_pending.amount, payment.refunds[0].status], ["2.00", "requested"]);
  // …and a retry with the same key asks Stripe again with the same Idempotency-Key.
  answer = 200;
  const ok = await refund(key, "2.00");
  assert.equal(ok.status, 202, ok.text);
  assert.equal(ok.body.status, "pending");
  assert.equal(ok.body.provider_refund_id, `re_${seen.length}`);
  const calls = seen.filter((c) => c.url === "/v1/refunds");
  assert.equal(calls.length, 3);
  const [declined, unknown, retried] = calls;
  assert.notEqual(declined.headers["idempotency-key"], unknown.headers["idempotency-key"]);
  assert.equal(retried.headers["idempotency-key"], `refund-${ok.body.id}`);
  assert.equal(unknown.headers["idempotency-key"], retried.headers["idempotency-key"]);
  assert.equal(retried.headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(retried.headers.authorization, "Bearer sk_test_standin");
  assert.deepEqual(Object.fromEntries(retried.form), {
    payment_intent: order.payment_id,
    amount: "200",
    "metadata[order_id]": order.id,
    "metadata[refund_id]": ok.body.id,
  });
  payment = await view();
  assert.deepEqual([payment.refund_pending.amount, payment.refunds.length], ["2.00", 2], "committed once");
});

test("the consumer names a placed order on its PaymentIntent, and cancels the PaymentIntent of an order cancelled or expired unpaid", async () => {
  answer = 200;
  const admin = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
  const place = async () => {
    await restock(app, ITEMS[0].sku, { onHand: 50 });
    return (await placeOrder(app, ITEMS, CHECKOUT)).order;
  };
  const to = (url) => followups.filter((f) => f.url === url);
  const cancelled = await place();
  const annotate = await eventually(() => to(`/v1/payment_intents/${cancelled.payment_id}`)[0], "the order named on its PaymentIntent");
  assert.deepEqual(Object.fromEntries(annotate.form), { "metadata[order_id]": cancelled.id, "metadata[order_number]": cancelled.number });
  assert.equal(annotate.headers["idempotency-key"], `annotate-${cancelled.id}`);
  assert.equal(annotate.headers.authorization, "Bearer sk_test_standin");
  const res = await app.post(`/v1/admin/orders/${cancelled.id}/cancel`, {}, { headers: admin });
  assert.equal(res.status, 200, res.text);
  const cancel = await eventually(() => to(`/v1/payment_intents/${cancelled.payment_id}/cancel`)[0], "the PaymentIntent cancelled");
  assert.equal(cancel.headers["idempotency-key"], `cancel-${cancelled.payment_id}`);
  assert.equal(cancel.form.get("cancellation_reason"), "abandoned");

  const expired = await place();
  await app.db.prepare("UPDATE orders SET reservation_expires_at = 0 WHERE id = ?1").bind(expired.id).run();
  await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  await eventually(() => to(`/v1/payment_intents/${expired.payment_id}/cancel`)[0], "the expired order's PaymentIntent cancelled");

  // A paid order that is cancelled keeps its PaymentIntent: the money is refunded, not cancelled.
  const paid = await place();
  assert.equal((await app.post(`/v1/admin/orders/${paid.id}/capture`, {}, { headers: admin })).status, 200);
  assert.equal((await app.post(`/v1/admin/orders/${paid.id}/cancel`, {}, { headers: admin })).status, 200);
  // Follow-ups come before an event's effects: once order.cancelled is applied, none was sent.
  const applied = () =>
    app.db
      .prepare(
        "SELECT count(*) AS n FROM processed_events p JOIN outbox o ON o.id = p.event_id \
         WHERE o.type = 'order.cancelled' AND json_extract(o.payload, '$.order_id') = ?1",
      )
      .bind(paid.id)
      .first("n");
  await eventually(applied, "order.cancelled applied");
  assert.deepEqual(to(`/v1/payment_intents/${paid.payment_id}/cancel`), []);
});

test("a three-decimal currency is charged in multiples of 10 minor units, never above the total; captured is what was charged, and refunds stay within it", async () => {
  answer = 200;
  // A price that makes the total not a multiple of 10 fils.
  await app.db.prepare("UPDATE prices SET amount_minor = 6173 WHERE sku = 'ZIPHOODIE-S-GREY' AND currency = 'KWD'").run();
  const cartId = await cart("KWD");
  const res = await app.post(`/v1/carts/${cartId}/checkout`, body, { headers: { "Idempotency-Key": randomUUID() } });
  assert.equal(res.status, 201, res.text);
  const placed = res.body.order;
  const total = Math.round(Number(placed.totals.grand_total.amount) * 1000);
  const charged = Number(seen.at(-1).form.get("amount"));
  assert.equal(charged % 10, 0, `${charged}`);
  assert.equal(charged, total - (total % 10), "rounded down: the customer never pays more than the total");
  assert.notEqual(charged, total, "this total is not a multiple of 10 fils");
  assert.equal(res.body.payment.amount_minor, charged, "the client is told what is charged");

  // Stripe's success for the charged amount pays the order and records exactly that.
  const paid = await sendStripe(app, STRIPE_SECRET, stripePaymentIntentEvent(placed, { amount: charged, metadata: {} }));
  assert.equal(paid.body.outcome, "paid", paid.text);
  const admin = { Authorization: `Bearer ${await adminToken(["orders:write", "orders:read"])}` };
  const kwd = (m) => ({ amount: (m / 1000).toFixed(3), currency: "KWD" });
  const payment = async () => (await app.get(`/v1/orders/${placed.id}/payment`, { headers: admin })).body;
  assert.deepEqual((await payment()).captured, kwd(charged));

  // A refund amount Stripe cannot take is refused before anything is committed or sent.
  const refund = (b) => app.post(`/v1/admin/orders/${placed.id}/refunds`, b, { headers: { ...admin, "Idempotency-Key": randomUUID() } });
  const odd = assertProblem(await refund({ reason: "r", amount: kwd(1005) }), 422, "validation_failed");
  assert.equal(odd.errors[0].code, "invalid_amount");
  // The whole refund asks Stripe for exactly what it charged.
  const before = seen.length;
  const full = await refund({ reason: "returned" });
  assert.equal(full.status, 202, full.text);
  assert.deepEqual(full.body.amount, kwd(charged));
  const asked = seen.slice(before).find((r) => r.url === "/v1/refunds");
  assert.equal(Number(asked.form.get("amount")), charged);
  assertProblem(await refund({ reason: "more", amount: kwd(10) }), 422, "refund_exceeds_captured");
});
