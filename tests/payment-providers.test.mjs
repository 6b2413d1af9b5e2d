// Payment providers that sign with Standard Webhooks: events of the documented vocabulary, signed
// by the official `standardwebhooks` library, posted to POST /v1/webhooks/payments/{provider}.
// Verified before anything is read; recorded once per webhook-id; only the exact total pays a
// pending order; nothing un-pays one; an unconfigured provider does not exist.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { assertProblem, minor, newCart, spawnApp } from "./helpers.mjs";

const secret = () => `whsec_${randomBytes(32).toString("base64")}`;
const OLD = secret();
const NEW = secret();
const OTHER = secret();

let app;
before(
  async () =>
    (app = await spawnApp({
      vars: { PAYMENT_WEBHOOK_SECRETS_ACME: `${OLD},${NEW}`, PAYMENT_WEBHOOK_SECRETS_OTHERPAY: OTHER },
    })),
);
after(async () => app?.close());

const address = { name: "Ada Lovelace", line1: "12 St James's Square", city: "London", postal_code: "SW1Y 4JH", country: "GB" };

async function placeOrder() {
  await app.db.prepare("UPDATE inventory SET on_hand = 50, reserved = 0, low_threshold = 0 WHERE sku = 'BUCKETHAT-SAND'").run();
  const cart = await newCart(app);
  assert.equal((await app.post(`/v1/carts/${cart.id}/items`, { sku: "BUCKETHAT-SAND", quantity: 1 })).status, 200);
  const res = await app.post(
    `/v1/carts/${cart.id}/checkout`,
    { email: "ada@example.com", shipping_address: address, shipping_method: "standard", payment_provider: "test" },
    { headers: { "Idempotency-Key": randomUUID() } },
  );
  assert.equal(res.status, 201, res.text);
  return res.body.order;
}

/** An event of the vocabulary about `order`'s payment, and its webhook-id. */
function event(order, { type = "payment.succeeded", amount = minor(order.totals.grand_total), currency = "EUR", at = new Date() } = {}) {
  const payload = JSON.stringify({ type, timestamp: at.toISOString(), data: { payment_id: order.payment_id, amount_minor: amount, currency } });
  return { id: `msg_${randomUUID().replaceAll("-", "")}`, payload };
}

/** The three headers, as the official library signs them. */
function signed({ id, payload }, { with: key = NEW, at = new Date() } = {}) {
  return { "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": new Webhook(key).sign(id, at, payload) };
}

function deliver(message, headers = signed(message), provider = "acme") {
  return app.request("POST", `/v1/webhooks/payments/${provider}`, {
    body: message.payload,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
const recorded = (id) =>
  app.db.prepare("SELECT provider, event_id, type, outcome FROM payment_events WHERE order_id = ?1 ORDER BY occurred_at").bind(id).all().then((r) => r.results);
const paidEvents = (id) =>
  app.db.prepare("SELECT count(*) AS n FROM outbox WHERE type = 'order.paid' AND json_extract(payload, '$.order_id') = ?1").bind(id).first("n");

test("a payment.succeeded signed by the official library pays its order exactly once, however often it arrives", async () => {
  const order = await placeOrder();
  const message = event(order);
  const headers = signed(message);
  const concurrent = await Promise.all([1, 2, 3].map(() => deliver(message, headers)));
  const sequential = [await deliver(message, headers), await deliver(message, headers)];
  const outcomes = [...concurrent, ...sequential].map((r) => {
    assert.equal(r.status, 200, r.text);
    return r.body.outcome;
  });
  assert.deepEqual(outcomes.filter((o) => o === "paid"), ["paid"], outcomes.join(","));
  assert.ok(outcomes.every((o) => o === "paid" || o === "duplicate"), outcomes.join(","));
  assert.equal(await status(order.id), "paid");
  assert.deepEqual(await recorded(order.id), [{ provider: "acme", event_id: message.id, type: "payment.succeeded", outcome: "paid" }]);
  assert.equal(await paidEvents(order.id), 1);
});

test("forged, stale, future, tampered and unsigned deliveries are 400 and write nothing", async () => {
  const order = await placeOrder();
  const message = event(order);
  const now = Date.now();
  const before = await app.count("payment_events");
  const good = signed(message);
  const attempts = {
    "wrong secret": deliver(message, signed(message, { with: OTHER })),
    stale: deliver(message, signed(message, { at: new Date(now - 310_000) })),
    future: deliver(message, signed(message, { at: new Date(now + 310_000) })),
    tampered: deliver({ ...message, payload: message.payload.replace(order.payment_id, "pay_someone_else") }, good),
    "another id": deliver({ ...message, id: "msg_replayed" }, { ...good, "webhook-id": "msg_replayed" }),
    "no signature": deliver(message, { "webhook-id": good["webhook-id"], "webhook-timestamp": good["webhook-timestamp"] }),
    "no headers": deliver(message, {}),
    "not v1": deliver(message, { ...good, "webhook-signature": good["webhook-signature"].replace("v1,", "v2,") }),
  };
  for (const [name, pending] of Object.entries(attempts)) {
    const res = await pending;
    assertProblem(res, 400, "signature_invalid");
    assert.ok(!res.text.includes(order.payment_id), `${name}: nothing of the body is echoed`);
  }
  assert.equal(await app.count("payment_events"), before, "nothing recorded");
  assert.equal(await status(order.id), "pending_payment", "nothing paid");
});

test("during a rotation both the old and the new secret verify, and several signatures in one header", async () => {
  for (const key of [OLD, NEW]) {
    const order = await placeOrder();
    const message = event(order);
    const res = await deliver(message, signed(message, { with: key }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, "paid");
  }
  const order = await placeOrder();
  const message = event(order);
  const theirs = signed(message, { with: OTHER });
  const ours = signed(message, { with: OLD });
  const both = { ...ours, "webhook-signature": `${theirs["webhook-signature"]} ${ours["webhook-signature"]}` };
  assert.equal((await deliver(message, both)).body.outcome, "paid");
});

test("a provider with no secrets configured does not exist; one provider's secret is not another's", async () => {
  const order = await placeOrder();
  const message = event(order);
  for (const provider of ["unknown", "ACME", "acme-pay", "x".repeat(40)]) {
    assertProblem(await deliver(message, signed(message), provider), 404, "unknown_provider");
  }
  assertProblem(await deliver(message, signed(message, { with: NEW }), "otherpay"), 400, "signature_invalid");
  assert.equal(await status(order.id), "pending_payment");
  // Signed by otherpay with its own secret, the same order's payment is recorded under otherpay.
  const res = await deliver(message, signed(message, { with: OTHER }), "otherpay");
  assert.equal(res.body.outcome, "paid");
  assert.deepEqual((await recorded(order.id)).map((r) => r.provider), ["otherpay"]);
});

test("the amount must be the total; late failures never un-pay; unknown types are ignored; a signed non-event is 400 and kept", async () => {
  for (const wrong of [{ amount: 1 }, { currency: "USD" }]) {
    const other = await placeOrder();
    const res = await deliver(event(other, wrong));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, "amount_mismatch");
    assert.equal(await status(other.id), "payment_review");
  }
  const order = await placeOrder();
  const t = Date.now() - 60_000;
  assert.equal((await deliver(event(order, { at: new Date(t + 20_000) }))).body.outcome, "paid");
  // The failure of an earlier attempt arrives after the success.
  const failed = await deliver(event(order, { type: "payment.failed", at: new Date(t + 10_000) }));
  assert.equal(failed.body.outcome, "recorded");
  assert.equal(await status(order.id), "paid");
  assert.deepEqual(
    (await recorded(order.id)).map((r) => [r.type, r.outcome]),
    [["payment.failed", "recorded"], ["payment.succeeded", "paid"]],
    "the ledger follows the provider's own time",
  );
  const ignored = await deliver(event(order, { type: "customer.created" }));
  assert.equal(ignored.status, 200, ignored.text);
  assert.equal(ignored.body.outcome, "ignored");
  assert.equal((await recorded(order.id)).length, 2, "an ignored type writes nothing");

  const garbage = { id: `msg_${randomUUID()}`, payload: JSON.stringify({ type: "payment.succeeded", data: {} }) };
  assertProblem(await deliver(garbage), 400, "invalid_event");
  const kept = await app.db.prepare("SELECT provider, type, outcome FROM payment_events WHERE payload = ?1").bind(garbage.payload).first();
  assert.deepEqual({ ...kept }, { provider: "acme", type: "malformed", outcome: "malformed" });
});
