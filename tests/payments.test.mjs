// Payment webhooks, as each kind of provider signs them: Stripe's events, signed by the official
// `stripe` library and posted to POST /v1/webhooks/payments/stripe; and the events of providers
// that sign with Standard Webhooks (the documented vocabulary, signed by the official
// `standardwebhooks` library), posted to POST /v1/webhooks/payments/{provider}. Verified before
// anything is read; recorded once; only the exact total pays a pending order; nothing un-pays
// one; a provider without secrets does not exist. (Refunds the providers confirm:
// refunds.test.mjs; what the Stripe adapter asks of Stripe: stripe.test.mjs.)
// operationIds: stripeWebhook, standardPaymentWebhook
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { adminToken, assertProblem, minor, spawnApp } from "./helpers.mjs";
import { ARLINGTON, LONDON, placeOrder as place, restock, standardEvent, standardSignature, stripePaymentIntentEvent, stripeSignature } from "./fixtures.mjs";

// Stripe's secrets, and the Standard Webhooks providers acme's (during a rotation) and otherpay's.
const OLD = "whsec_old_0123456789abcdef";
const NEW = "whsec_new_fedcba9876543210";
const whsec = () => `whsec_${randomBytes(32).toString("base64")}`;
const ACME_OLD = whsec();
const ACME_NEW = whsec();
const OTHER = whsec();

/** Every delivery of `attempts` is refused before anything of it is read: 400
 * `signature_invalid`, none echoing `bodyPart`, nothing recorded, the order still unpaid. */
async function assertNoneVerified(attempts, bodyPart, orderId, recordedBefore) {
  for (const [name, pending] of Object.entries(attempts)) {
    const res = await pending;
    assertProblem(res, 400, "signature_invalid");
    assert.ok(!res.text.includes(bodyPart), `${name}: nothing of the body is echoed`);
  }
  assert.equal(await app.count("payment_events"), recordedBefore, "nothing recorded");
  const status = await app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(orderId).first("status");
  assert.equal(status, "pending_payment", "nothing paid");
}

let app;
before(
  async () =>
    (app = await spawnApp({
      vars: { STRIPE_WEBHOOK_SECRETS: `${OLD},${NEW}`, PAYMENT_WEBHOOK_SECRETS_ACME: `${ACME_OLD},${ACME_NEW}`, PAYMENT_WEBHOOK_SECRETS_OTHERPAY: OTHER },
    })),
);
after(async () => app?.close());

describe("Stripe", () => {
  /** An order of one `sku`, restocked to 50 first unless `restock` is false. */
  async function placeOrder(sku = "BUCKETHAT-SAND", { restock: refill = true } = {}) {
    if (refill) await restock(app, sku, { onHand: 50 });
    return (await place(app, [{ sku, quantity: 1 }], { email: "gh@example.com", address: ARLINGTON })).order;
  }

  /** A Stripe event about `order`'s PaymentIntent, as Stripe would send it. */
  const event = stripePaymentIntentEvent;
  const sign = (payload, { secret = NEW, timestamp } = {}) => stripeSignature(payload, secret, { timestamp });

  function deliver(payload, header = sign(payload)) {
    const headers = { "Content-Type": "application/json" };
    if (header !== null) headers["Stripe-Signature"] = header;
    return app.request("POST", "/v1/webhooks/payments/stripe", { body: payload, headers });
  }

  const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
  const recorded = (id) => app.db.prepare("SELECT event_id, type, outcome FROM payment_events WHERE order_id = ?1 ORDER BY received_at").bind(id).all().then((r) => r.results);
  const paidEvents = (id) =>
    app.db.prepare("SELECT count(*) AS n FROM outbox WHERE type = 'order.paid' AND json_extract(payload, '$.order_id') = ?1").bind(id).first("n");

  test("a signed payment_intent.succeeded pays its order exactly once, however often it arrives", async () => {
    const order = await placeOrder();
    assert.equal(await status(order.id), "pending_payment");
    const payload = event(order);
    const header = sign(payload);
    const concurrent = await Promise.all([1, 2, 3].map(() => deliver(payload, header)));
    const sequential = [await deliver(payload, header), await deliver(payload, header)];
    const outcomes = [...concurrent, ...sequential].map((r) => {
      assert.equal(r.status, 200, r.text);
      return r.body.outcome;
    });
    assert.deepEqual(outcomes.filter((o) => o === "paid"), ["paid"], outcomes.join(","));
    assert.ok(outcomes.every((o) => o === "paid" || o === "duplicate"), outcomes.join(","));
    assert.equal(await status(order.id), "paid");
    assert.equal((await recorded(order.id)).length, 1, "the event is recorded once");
    assert.equal(await paidEvents(order.id), 1, "order.paid is written once");
    const stock = await app.db.prepare("SELECT on_hand, reserved FROM inventory WHERE sku = 'BUCKETHAT-SAND'").first();
    assert.deepEqual({ ...stock }, { on_hand: 49, reserved: 0 }, "the reservation became a sale");
  });

  test("forged, stale, future, tampered and unsigned deliveries are 400 and write nothing", async () => {
    const order = await placeOrder();
    const payload = event(order);
    const now = Math.floor(Date.now() / 1000);
    const before = await app.count("payment_events");
    const attempts = {
      "wrong secret": deliver(payload, sign(payload, { secret: "whsec_someone_else" })),
      stale: deliver(payload, sign(payload, { timestamp: now - 310 })),
      future: deliver(payload, sign(payload, { timestamp: now + 310 })),
      tampered: deliver(payload.replace(order.payment_id, "pi_someone_else"), sign(payload)),
      "no header": deliver(payload, null),
      "malformed header": deliver(payload, "v1=deadbeef"),
    };
    await assertNoneVerified(attempts, order.id, order.id, before);
  });

  test("during a rotation both the old and the new secret verify", async () => {
    for (const secret of [OLD, NEW]) {
      const order = await placeOrder();
      const payload = event(order);
      const res = await deliver(payload, sign(payload, { secret }));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.outcome, "paid");
      assert.equal(await status(order.id), "paid");
    }
  });

  const reviews = (id) =>
    app.db
      .prepare("SELECT payload FROM outbox WHERE type = 'order.payment_review' AND json_extract(payload, '$.order_id') = ?1 ORDER BY created_at")
      .bind(id)
      .all()
      .then((r) => r.results.map((row) => JSON.parse(row.payload)));
  const available = (sku = "BUCKETHAT-SAND") => app.db.prepare("SELECT on_hand - reserved AS n FROM inventory WHERE sku = ?1").bind(sku).first("n");

  test("a success that is not the order's total puts the order to review, releases its stock and tells the merchant", async () => {
    const order = await placeOrder();
    assert.equal(await available(), 49);
    const short = event(order, { amount: minor(order.totals.grand_total) - 1 });
    const res = await deliver(short);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, "amount_mismatch");
    assert.equal(await status(order.id), "payment_review");
    assert.equal(await available(), 50, "nothing pays for the stock: released");
    // Another currency, then the right amount: the order is in review already, so neither pays.
    assert.equal((await deliver(event(order, { currency: "usd" }))).body.outcome, "amount_mismatch");
    assert.equal((await deliver(event(order))).body.outcome, "not_payable");
    assert.equal(await status(order.id), "payment_review");
    assert.deepEqual((await recorded(order.id)).map((r) => r.outcome), ["amount_mismatch", "amount_mismatch", "not_payable"]);
    assert.equal(await paidEvents(order.id), 0);
    const told = await reviews(order.id);
    assert.deepEqual(
      told.map((e) => [e.from, e.status, e.reason]),
      [["pending_payment", "payment_review", "amount_mismatch"], ["payment_review", "payment_review", "amount_mismatch"], ["payment_review", "payment_review", "already_in_review"]],
    );
    assert.deepEqual(
      { provider: told[0].provider, payment_id: told[0].payment_id, provider_event_id: told[0].provider_event_id, amount: told[0].amount },
      { provider: "stripe", payment_id: order.payment_id, provider_event_id: JSON.parse(short).id, amount: { amount: ((minor(order.totals.grand_total) - 1) / 100).toFixed(2), currency: "EUR" } },
    );
    // The merchant resolves it by cancelling: a refund is required.
    const admin = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
    const cancelled = await app.post(`/v1/admin/orders/${order.id}/cancel`, {}, { headers: { ...admin, "Idempotency-Key": randomUUID() } });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.status, "cancelled");
    assert.equal(await available(), 50, "nothing given back twice");
    const closed = await app.db
      .prepare("SELECT payload FROM outbox WHERE type = 'order.cancelled' AND json_extract(payload, '$.order_id') = ?1")
      .bind(order.id)
      .first("payload");
    assert.deepEqual(JSON.parse(closed), { order_id: order.id, from: "payment_review", status: "cancelled", refund_required: true });
  });

  test("a payment that succeeds after its order expired or was cancelled is not lost: review, and the merchant is told", async () => {
    const expired = await placeOrder();
    await app.db.prepare("UPDATE orders SET reservation_expires_at = 0 WHERE id = ?1").bind(expired.id).run();
    await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
    assert.equal(await status(expired.id), "expired");
    const cancelled = await placeOrder();
    const admin = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
    const res = await app.post(`/v1/admin/orders/${cancelled.id}/cancel`, {}, { headers: { ...admin, "Idempotency-Key": randomUUID() } });
    assert.equal(res.status, 200, res.text);
    const stock = await available();

    for (const [order, reason] of [[expired, "order_expired"], [cancelled, "order_cancelled"]]) {
      const payload = event(order);
      const answers = await Promise.all([deliver(payload), deliver(payload)]);
      assert.deepEqual(answers.map((r) => r.body.outcome).sort(), ["duplicate", "not_payable"]);
      assert.equal(await status(order.id), "payment_review", reason);
      const told = await reviews(order.id);
      assert.deepEqual(told.map((e) => [e.from, e.status, e.reason]), [[reason.replace("order_", ""), "payment_review", reason]]);
    }
    assert.equal(await available(), stock, "a review takes no stock");
  });

  test("late and out-of-order events never un-pay an order; other types are recorded or ignored", async () => {
    const order = await placeOrder();
    const early = Math.floor(Date.now() / 1000) - 60;
    const paid = await deliver(event(order, { created: early + 30 }));
    assert.equal(paid.body.outcome, "paid");
    // The failure of an earlier attempt arrives after the success.
    const failed = await deliver(event(order, { type: "payment_intent.payment_failed", created: early }));
    assert.equal(failed.status, 200, failed.text);
    assert.equal(failed.body.outcome, "recorded");
    // A second success for the same order (another PaymentIntent, say) does not pay it twice.
    const again = await deliver(event(order));
    assert.equal(again.body.outcome, "not_payable");
    assert.equal(await status(order.id), "paid");
    assert.equal(await paidEvents(order.id), 1);
    // A second payment of a paid order: the order stays paid, the merchant is told.
    assert.deepEqual((await reviews(order.id)).map((e) => [e.from, e.status, e.reason]), [["paid", "paid", "already_paid"]]);
    assert.deepEqual((await recorded(order.id)).map((r) => r.type), ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.succeeded"]);

    const ignored = await deliver(event(order, { type: "customer.created" }));
    assert.equal(ignored.body.outcome, "ignored");
    assert.equal((await recorded(order.id)).length, 3, "an ignored type writes nothing");
  });

  test("an event for a payment no order has is recorded for investigation; a signed body that is not an event is 400", async () => {
    const ghost = { id: `ord_${"0".repeat(31)}f`, number: "SO-0000-000000", payment_id: "pi_nobody", totals: { grand_total: { amount: "1.00", currency: "EUR" } } };
    const payload = event(ghost);
    const res = await deliver(payload);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, "unknown_order");
    const row = await app.db.prepare("SELECT order_id, outcome, payment_id FROM payment_events WHERE event_id = ?1").bind(JSON.parse(payload).id).first();
    assert.deepEqual({ ...row }, { order_id: null, outcome: "unknown_order", payment_id: "pi_nobody" });

    // Signed by Stripe but not an event: 400, and kept (once per distinct body) for investigation.
    const garbage = JSON.stringify({ hello: randomUUID() });
    assertProblem(await deliver(garbage), 400, "invalid_event");
    assertProblem(await deliver(garbage), 400, "invalid_event");
    const kept = (await app.db.prepare("SELECT type, outcome, payload FROM payment_events WHERE payload = ?1").bind(garbage).all()).results;
    assert.deepEqual(kept.map((r) => [r.type, r.outcome]), [["malformed", "malformed"]]);
    // Unsigned garbage is refused before it is even read: nothing kept.
    const unsigned = JSON.stringify({ hello: randomUUID() });
    assertProblem(await deliver(unsigned, "t=1,v1=00"), 400, "signature_invalid");
    assert.equal(await app.db.prepare("SELECT count(*) AS n FROM payment_events WHERE payload = ?1").bind(unsigned).first("n"), 0);
  });

  test("a shuffled stream of events for 20 orders, each delivered twice at once, ends as if delivered in order", async () => {
    await restock(app, "BUCKETHAT-BLACK");
    const orders = [];
    for (let i = 0; i < 20; i++) orders.push(await placeOrder("BUCKETHAT-BLACK", { restock: false }));
    const t = Math.floor(Date.now() / 1000) - 120;
    const stream = [];
    for (const order of orders) {
      stream.push(event(order, { type: "payment_intent.payment_failed", created: t }));
      stream.push(event(order, { created: t + 10 }));
      stream.push(event(order, { type: "payment_intent.canceled", created: t + 5 }));
    }
    // Fisher-Yates with a fixed seed, so a failure replays.
    let seed = 20261128;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = stream.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [stream[i], stream[j]] = [stream[j], stream[i]];
    }
    for (let i = 0; i < stream.length; i += 6) {
      const batch = stream.slice(i, i + 6);
      const answers = await Promise.all(batch.flatMap((payload) => [deliver(payload), deliver(payload)]));
      for (const res of answers) assert.equal(res.status, 200, res.text);
    }
    for (const order of orders) {
      assert.equal(await status(order.id), "paid", order.id);
      assert.equal(await paidEvents(order.id), 1, `one order.paid for ${order.id}`);
      const ledger = await recorded(order.id);
      assert.equal(ledger.length, 3, "each event recorded exactly once");
      assert.deepEqual(ledger.filter((r) => r.outcome === "paid").length, 1);
    }
    const stock = await app.db.prepare("SELECT on_hand, reserved FROM inventory WHERE sku = 'BUCKETHAT-BLACK'").first();
    assert.deepEqual({ ...stock }, { on_hand: 80, reserved: 0 }, "twenty sales, nothing left held");
  });

  test("an event whose PaymentIntent id is not on record finds its order by the cart in its metadata", async () => {
    const order = await placeOrder();
    // As the Stripe adapter creates it: metadata[cart_id] (stable across retries of a checkout).
    const res = await deliver(event({ ...order, payment_id: `pi_${randomUUID().replaceAll("-", "")}` }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.outcome, "paid");
    assert.equal(await status(order.id), "paid");
  });
});

describe("Standard Webhooks providers", () => {
  async function placeOrder() {
    await restock(app, "BUCKETHAT-SAND", { onHand: 50 });
    return (await place(app, [{ sku: "BUCKETHAT-SAND", quantity: 1 }], { address: LONDON })).order;
  }

  /** An event of the vocabulary about `order`'s payment, and its webhook-id. */
  const event = (order, { type = "payment.succeeded", amount = minor(order.totals.grand_total), currency = "EUR", at } = {}) =>
    standardEvent(type, { payment_id: order.payment_id, amount_minor: amount, currency }, { at });

  /** The three headers, as the official library signs them. */
  const signed = (message, { with: key = ACME_NEW, at } = {}) => standardSignature(message, key, { at });

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
    await assertNoneVerified(attempts, order.payment_id, order.id, before);
  });

  test("during a rotation both the old and the new secret verify, and several signatures in one header", async () => {
    for (const key of [ACME_OLD, ACME_NEW]) {
      const order = await placeOrder();
      const message = event(order);
      const res = await deliver(message, signed(message, { with: key }));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.outcome, "paid");
    }
    const order = await placeOrder();
    const message = event(order);
    const theirs = signed(message, { with: OTHER });
    const ours = signed(message, { with: ACME_OLD });
    const both = { ...ours, "webhook-signature": `${theirs["webhook-signature"]} ${ours["webhook-signature"]}` };
    assert.equal((await deliver(message, both)).body.outcome, "paid");
  });

  test("a provider with no secrets configured does not exist; one provider's secret is not another's", async () => {
    const order = await placeOrder();
    const message = event(order);
    for (const provider of ["unknown", "ACME", "acme-pay", "x".repeat(40)]) {
      assertProblem(await deliver(message, signed(message), provider), 404, "unknown_provider");
    }
    assertProblem(await deliver(message, signed(message, { with: ACME_NEW }), "otherpay"), 400, "signature_invalid");
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
});
