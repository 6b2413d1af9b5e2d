// Refunds: POST /v1/admin/orders/{id}/refunds commits a refund (never beyond what was captured,
// whatever runs concurrently), asks the provider, and the provider's signed webhook confirms it.
// (What the route refuses: admin.test.mjs.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { adminToken, assertProblem, minor, spawnApp } from "./helpers.mjs";
import { ARLINGTON, paidOrder, placeOrder, restock, sendStripe, standardPaymentSucceeded, standardRefundSucceeded, stripeChargeRefunded, stripeEvent } from "./fixtures.mjs";

const STRIPE_SECRET = "whsec_refunds_0123456789";
const ACME_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

let app, admin;
before(async () => {
  app = await spawnApp({ vars: { STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET, PAYMENT_WEBHOOK_SECRETS_ACME: ACME_SECRET } });
  admin = `Bearer ${await adminToken(["orders:write", "orders:read"])}`;
});
after(async () => app?.close());

const SKUS = ["BUCKETHAT-SAND", "BUCKETHAT-BLACK"];

/** An order of 3 × BUCKETHAT-SAND and 1 × BUCKETHAT-BLACK, paid unless `paid` is false. */
async function order({ paid = true } = {}) {
  await restock(app, SKUS);
  const items = [{ sku: SKUS[0], quantity: 3 }, { sku: SKUS[1], quantity: 1 }];
  const options = { email: "gh@example.com", address: ARLINGTON };
  return (paid ? await paidOrder(app, items, admin, options) : await placeOrder(app, items, options)).order;
}

const refund = (orderId, body, key = randomUUID()) =>
  app.post(`/v1/admin/orders/${orderId}/refunds`, body, { headers: { Authorization: admin, "Idempotency-Key": key } });
const payment = async (orderId) => (await app.get(`/v1/orders/${orderId}/payment`, { headers: { Authorization: admin } })).body;
const eur = (minorUnits) => ({ amount: (minorUnits / 100).toFixed(2), currency: "EUR" });
const onHand = (sku) => app.db.prepare("SELECT on_hand FROM inventory WHERE sku = ?1").bind(sku).first("on_hand");
const refundedEvents = (orderId) =>
  app.db
    .prepare("SELECT payload FROM outbox WHERE type = 'order.refunded' AND json_extract(payload, '$.order_id') = ?1 ORDER BY created_at")
    .bind(orderId)
    .all()
    .then((r) => r.results.map((row) => JSON.parse(row.payload)));

const chargeRefunded = (placed, amountRefunded) => stripeChargeRefunded(app, STRIPE_SECRET, placed, amountRefunded);

const refundSucceeded = (placed, providerRefundId, amount) =>
  standardRefundSucceeded(app, { provider: "acme", secret: ACME_SECRET }, placed, providerRefundId, amount);

test("a full refund is committed, pending until Stripe's charge.refunded confirms it once", async () => {
  const placed = await order();
  const total = minor(placed.totals.grand_total);
  const key = randomUUID();
  const res = await refund(placed.id, { reason: "customer changed their mind" }, key);
  assert.equal(res.status, 202, res.text);
  assert.equal(res.body.status, "pending");
  assert.deepEqual(res.body.amount, placed.totals.grand_total);
  assert.match(res.body.provider_refund_id, /^re_test_[0-9a-f]{32}$/);
  const parts = res.body.lines.reduce((sum, l) => sum + minor(l.amount), minor(res.body.shipping));
  assert.equal(parts, total, "lines and shipping sum exactly to the amount");
  assert.deepEqual(res.body.shipping, placed.totals.shipping);

  let view = await payment(placed.id);
  assert.deepEqual([view.refunded, view.refund_pending], [eur(0), placed.totals.grand_total]);
  // A retry with the same key is the same refund (and commits nothing more).
  const again = await refund(placed.id, { reason: "customer changed their mind" }, key);
  assert.equal(again.status, 202, again.text);
  assert.equal(again.body.id, res.body.id);
  assert.deepEqual((await payment(placed.id)).refund_pending, placed.totals.grand_total);
  // Nothing is left to refund while it is pending.
  assertProblem(await refund(placed.id, { reason: "again", amount: eur(1) }), 422, "refund_exceeds_captured");

  const confirmed = await Promise.all([chargeRefunded(placed, total), chargeRefunded(placed, total)]);
  assert.deepEqual(confirmed.map((r) => r.body.outcome).sort(), ["recorded", "refunded"], "the second finds nothing open");
  view = await payment(placed.id);
  assert.deepEqual([view.refunded, view.refund_pending], [placed.totals.grand_total, eur(0)]);
  assert.equal(view.refunds[0].status, "succeeded");
  const events = await refundedEvents(placed.id);
  assert.equal(events.length, 1, "order.refunded once");
  assert.deepEqual([events[0].refund_id, events[0].amount, events[0].refunded_minor], [res.body.id, placed.totals.grand_total, total]);
});

test("refunding units allocates their value, restocks them when confirmed, and a later cancel does not restock them twice", async () => {
  const placed = await order();
  const sand = placed.lines.find((l) => l.sku === SKUS[0]);
  const before = await onHand(SKUS[0]);
  const res = await refund(placed.id, { reason: "one arrived damaged", lines: [{ sku: SKUS[0], quantity: 1, restock: true }] });
  assert.equal(res.status, 202, res.text);
  const oneUnit = Math.round(minor(sand.total) / 3);
  assert.deepEqual(res.body.amount, eur(oneUnit));
  assert.deepEqual(
    res.body.lines.map((l) => [l.sku, l.quantity, l.amount, l.restock]),
    [[SKUS[0], 1, eur(oneUnit), true]],
  );
  assert.equal(await onHand(SKUS[0]), before, "restocked only when confirmed");
  // Confirmed by a Standard Webhooks provider naming the refund.
  const ok = await refundSucceeded(placed, res.body.provider_refund_id, oneUnit);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.outcome, "refunded");
  assert.equal(await onHand(SKUS[0]), before + 1);
  // More units than are left of the line: 422; the remaining two: their exact remainder.
  assertProblem(await refund(placed.id, { reason: "r", lines: [{ sku: SKUS[0], quantity: 3 }] }), 422, "validation_failed");
  // By the line's id, as by its SKU.
  const rest = await refund(placed.id, { reason: "r", lines: [{ line_id: sand.id, quantity: 2 }] });
  assert.equal(rest.status, 202, rest.text);
  assert.equal(oneUnit + minor(rest.body.amount), minor(sand.total), "the last units take exactly what is left");
  // Cancelling the paid order restocks what was sold, less what a refund put back already.
  const cancelled = await app.post(`/v1/admin/orders/${placed.id}/cancel`, {}, { headers: { Authorization: admin } });
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.equal(await onHand(SKUS[0]), before + 3);
});

test("refunds never exceed what was captured: above it 422, two concurrent ones that together exceed it: one wins", async () => {
  const placed = await order();
  const total = minor(placed.totals.grand_total);
  const above = await refund(placed.id, { reason: "too much", amount: eur(total + 1) });
  assertProblem(above, 422, "refund_exceeds_captured");
  assert.deepEqual(above.body.refundable, placed.totals.grand_total);
  const share = total - 100;
  const both = await Promise.all([refund(placed.id, { reason: "a", amount: eur(share) }), refund(placed.id, { reason: "b", amount: eur(share) })]);
  assert.deepEqual(both.map((r) => r.status).sort(), [202, 422], both.map((r) => r.text).join("\n"));
  const view = await payment(placed.id);
  assert.deepEqual(view.refund_pending, eur(share), "one commitment");
  assert.equal(view.refunds.length, 1);
  // The guards are the database's own: no statement, whatever its WHERE, commits beyond them.
  for (const sql of [
    "UPDATE orders SET refund_pending_minor = captured_minor - refunded_minor + 1 WHERE id = ?1",
    "UPDATE orders SET shipping_refunded_minor = shipping_minor + 1 WHERE id = ?1",
    "UPDATE order_lines SET refunded_quantity = quantity + 1 WHERE order_id = ?1",
    "UPDATE order_lines SET refunded_minor = total_minor + 1 WHERE order_id = ?1",
    "UPDATE order_lines SET restocked_quantity = refunded_quantity + 1 WHERE order_id = ?1",
  ]) {
    await assert.rejects(app.db.prepare(sql).bind(placed.id).run(), /CHECK constraint failed/, sql);
  }
  // What is left is still refundable, exactly.
  const rest = await refund(placed.id, { reason: "the rest" });
  assert.equal(rest.status, 202, rest.text);
  assert.deepEqual(rest.body.amount, eur(100));
});

test("Stripe's refund.updated settles the refund it names: succeeded confirms it, failed makes its amount refundable again", async () => {
  const placed = await order();
  const a = await refund(placed.id, { reason: "a", amount: eur(300) });
  const b = await refund(placed.id, { reason: "b", amount: eur(200) });
  assert.deepEqual([a.status, b.status], [202, 202]);
  const refundUpdated = (named, status) =>
    sendStripe(
      app,
      STRIPE_SECRET,
      stripeEvent("refund.updated", { id: `re_${randomUUID().slice(0, 8)}`, object: "refund", amount: 0, currency: "eur", payment_intent: placed.payment_id, status, metadata: { refund_id: named } }),
    );
  assert.equal((await refundUpdated(b.body.id, "failed")).body.outcome, "refund_failed");
  assert.equal((await refundUpdated(a.body.id, "succeeded")).body.outcome, "refunded");
  assert.equal((await refundUpdated(a.body.id, "failed")).body.outcome, "recorded", "a confirmed refund does not fail later");
  const view = await payment(placed.id);
  assert.deepEqual([view.refunded, view.refund_pending], [eur(300), eur(0)]);
  assert.deepEqual(view.refunds.map((r) => [r.id, r.status]).sort(), [[a.body.id, "succeeded"], [b.body.id, "failed"]].sort());
  const events = await refundedEvents(placed.id);
  assert.deepEqual(events.map((e) => e.refund_id), [a.body.id]);
});

test("a sold unit goes back on the shelf once: cancel then refund, refund then cancel, and the database refuses a second return", async () => {
  const cancel = (id) => app.post(`/v1/admin/orders/${id}/cancel`, {}, { headers: { Authorization: admin } });

  // Cancelled first (its sold units restocked), then the three units refunded with restock.
  let placed = await order();
  const sold = await onHand(SKUS[0]);
  assert.equal(sold, 97);
  assert.equal((await cancel(placed.id)).status, 200);
  assert.equal(await onHand(SKUS[0]), 100, "the cancel puts the sold units back");
  let res = await refund(placed.id, { reason: "cancelled after payment", lines: [{ sku: SKUS[0], quantity: 3, restock: true }] });
  assert.equal(res.status, 202, res.text);
  let ok = await refundSucceeded(placed, res.body.provider_refund_id, minor(res.body.amount));
  assert.equal(ok.body.outcome, "refunded", ok.text);
  assert.equal(await onHand(SKUS[0]), 100, "the refund's restock finds them back already");

  // The cancel between the refund's request and its confirmation.
  placed = await order();
  res = await refund(placed.id, { reason: "r", lines: [{ sku: SKUS[0], quantity: 2, restock: true }] });
  assert.equal(res.status, 202, res.text);
  assert.equal((await cancel(placed.id)).status, 200);
  assert.equal(await onHand(SKUS[0]), 100);
  ok = await refundSucceeded(placed, res.body.provider_refund_id, minor(res.body.amount));
  assert.equal(ok.body.outcome, "refunded", ok.text);
  assert.equal(await onHand(SKUS[0]), 100, "restocked once");
  const line = await app.db.prepare("SELECT sold_quantity, returned_quantity, restocked_quantity FROM order_lines WHERE order_id = ?1 AND sku = ?2").bind(placed.id, SKUS[0]).first();
  assert.deepEqual(line, { sold_quantity: 3, returned_quantity: 3, restocked_quantity: 2 });

  // No statement, whatever its WHERE, returns a unit that was not sold or is back already.
  await assert.rejects(
    app.db.prepare("UPDATE order_lines SET returned_quantity = sold_quantity + 1 WHERE order_id = ?1").bind(placed.id).run(),
    /CHECK constraint failed/,
  );
  const unpaid = await order({ paid: false });
  await assert.rejects(
    app.db.prepare("UPDATE order_lines SET returned_quantity = 1 WHERE order_id = ?1").bind(unpaid.id).run(),
    /CHECK constraint failed/,
    "an unpaid order sold nothing",
  );
  assert.equal(await onHand(SKUS[0]), 100);
});

test("an order in payment review is refunded through the API, within what the provider took", async () => {
  // Placed, cancelled unpaid, then paid at the last second: the money was taken for an order
  // that no longer sells anything.
  const placed = await order({ paid: false });
  assert.equal((await app.post(`/v1/admin/orders/${placed.id}/cancel`, {}, { headers: { Authorization: admin } })).status, 200);
  const stock = await onHand(SKUS[0]);
  const late = await standardPaymentSucceeded(app, { provider: "acme", secret: ACME_SECRET }, placed);
  assert.equal(late.status, 200, late.text);
  let view = await payment(placed.id);
  assert.equal(view.status, "payment_review");
  assert.deepEqual(view.captured, placed.totals.grand_total, "what the provider reported as taken");
  // Never beyond it; the whole of it, refunded and confirmed.
  assertProblem(await refund(placed.id, { reason: "too much", amount: eur(minor(placed.totals.grand_total) + 1) }), 422, "refund_exceeds_captured");
  const res = await refund(placed.id, { reason: "paid after it was cancelled", lines: [{ sku: SKUS[0], quantity: 3, restock: true }, { sku: SKUS[1], quantity: 1 }] });
  assert.equal(res.status, 202, res.text);
  const ok = await refundSucceeded(placed, res.body.provider_refund_id, minor(res.body.amount));
  assert.equal(ok.body.outcome, "refunded", ok.text);
  view = await payment(placed.id);
  assert.deepEqual(view.refunded, res.body.amount);
  assert.equal(await onHand(SKUS[0]), stock, "nothing was sold, so nothing goes back on the shelf");
});
