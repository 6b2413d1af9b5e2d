// Membership points: earned once when a signed-in customer's order is paid (whatever the
// queue redelivers), taken back in proportion by a partial refund, with the tier by the last
// 12 months' spend and what the next tier needs on GET /v1/me.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { adminToken, eventually, minor, signedInCustomer, spawnApp } from "./helpers.mjs";
import { ARLINGTON, capture, paidOrder as pay, placeOrder, restock, standardRefundSucceeded, stripeChargeRefunded } from "./fixtures.mjs";

const STRIPE_SECRET = "whsec_membership_0123456789";
const ACME_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

let app, admin;
before(async () => {
  app = await spawnApp({
    vars: { STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET, PAYMENT_WEBHOOK_SECRETS_ACME: ACME_SECRET, MEMBERSHIP_POINTS_RATES: "EUR:2", MEMBERSHIP_TIERS: "silver=EUR 50;gold=EUR 100000" },
  });
  admin = `Bearer ${await adminToken(["orders:write", "orders:read"])}`;
});
after(async () => app?.close());

const key = () => ({ "Idempotency-Key": randomUUID() });
const SKU = "BUCKETHAT-SAND";

/** A paid order of `quantity` × SKU, placed by the customer `buyer` signed in. */
async function paidOrder(buyer, quantity) {
  await restock(app, SKU);
  return (await pay(app, [{ sku: SKU, quantity }], admin, { customer: buyer, address: ARLINGTON })).order;
}

const me = async (buyer) => (await app.get("/v1/me", { headers: buyer.auth })).body.membership;
const ledger = async (buyer) => (await app.get("/v1/me/points", { headers: buyer.auth })).body.data;
const paidEvent = (orderId) =>
  app.db.prepare("SELECT id, type, payload, created_at FROM outbox WHERE type = 'order.paid' AND json_extract(payload, '$.order_id') = ?1").bind(orderId).first();

const chargeRefunded = (placed, amountRefunded) => stripeChargeRefunded(app, STRIPE_SECRET, placed, amountRefunded);

test("points are earned once per paid order, whatever is redelivered, and a partial refund takes back its share", async () => {
  const buyer = await signedInCustomer(app);
  const fresh = await me(buyer);
  assert.deepEqual(fresh, { points: 0, spend_last_12_months: [], tier: null, next_tier: { name: "silver", needs: [{ amount: "50.00", currency: "EUR" }] } });

  const placed = await paidOrder(buyer, 3);
  const total = minor(placed.totals.grand_total);
  const earned = Math.floor((total * 2) / 100); // EUR:2 points per euro, rounded down
  await eventually(async () => (await me(buyer)).points === earned, `${earned} points earned`);

  // The same order.paid delivered twice more, and once under another event id: still once.
  const event = await paidEvent(placed.id);
  const producer = await app.mf.getQueueProducer("ORDER_EVENTS", "shop-checkout");
  const envelope = (id) => JSON.stringify({ id, type: event.type, created_at: new Date(event.created_at).toISOString(), data: JSON.parse(event.payload) });
  await producer.send(envelope(event.id));
  await producer.send(envelope(event.id));
  const other = `evt_${randomUUID().replaceAll("-", "")}`;
  await producer.send(envelope(other));
  await eventually(() => app.logs.filter((l) => l.includes(event.id) && l.includes('"duplicate"')).length >= 2, "both redeliveries seen");
  await eventually(() => app.logs.some((l) => l.includes(other) && l.includes('"applied"')), "the other envelope applied");
  assert.equal((await me(buyer)).points, earned, "earned once");
  assert.deepEqual((await ledger(buyer)).map((e) => [e.kind, e.points, e.order_id]), [["earned", earned, placed.id]]);

  // A partial refund of a quarter (rounded to the cent), confirmed by the provider.
  const refundMinor = Math.floor(total / 4);
  const amount = { amount: (refundMinor / 100).toFixed(2), currency: "EUR" };
  const refund = await app.post(`/v1/admin/orders/${placed.id}/refunds`, { amount, reason: "one hat was torn" }, { headers: { Authorization: admin, ...key() } });
  assert.equal(refund.status, 202, refund.text);
  assert.equal((await chargeRefunded(placed, refundMinor)).status, 200);
  const back = Math.floor((earned * refundMinor) / total);
  await eventually(async () => (await me(buyer)).points === earned - back, `${back} points taken back`);
  assert.deepEqual((await ledger(buyer)).map((e) => [e.kind, e.points]), [["refunded", -back], ["earned", earned]]);

  const standing = await me(buyer);
  const spent = total - refundMinor;
  assert.deepEqual(standing.spend_last_12_months, [{ amount: (spent / 100).toFixed(2), currency: "EUR" }]);
  assert.equal(standing.tier, spent >= 5000 ? "silver" : null);
  const next = standing.tier ? 10_000_000 - spent : 5000 - spent;
  assert.deepEqual(standing.next_tier.needs, [{ amount: (next / 100).toFixed(2), currency: "EUR" }]);
  const stored = await app.db.prepare("SELECT balance FROM customer_points WHERE customer_id = ?1").bind(buyer.id).first("balance");
  const sum = await app.db.prepare("SELECT sum(points) AS s FROM points_ledger WHERE customer_id = ?1").bind(buyer.id).first("s");
  assert.equal(stored, sum, "the balance is the sum of the ledger");
});

test("a guest's order earns nothing, and the ledger refuses to go below zero or to change", async () => {
  const buyer = await signedInCustomer(app);
  // The database itself refuses an overdraft and any rewrite of history.
  await assert.rejects(
    app.db.prepare("INSERT INTO points_ledger (customer_id, kind, points, event_id, created_at) VALUES (?1, 'spent', -1, ?2, 0)").bind(buyer.id, randomUUID()).run(),
    /CHECK constraint failed/,
  );
  await app.db.prepare("INSERT INTO points_ledger (customer_id, kind, points, event_id, created_at) VALUES (?1, 'adjusted', 5, ?2, 0)").bind(buyer.id, randomUUID()).run();
  await assert.rejects(app.db.prepare("UPDATE points_ledger SET points = 500 WHERE customer_id = ?1").bind(buyer.id).run(), /append-only/);
  assert.equal((await me(buyer)).points, 5);

  const before = await app.count("points_ledger");
  // Placed as a guest, with the customer's email.
  await restock(app, SKU);
  const { order } = await placeOrder(app, [{ sku: SKU, quantity: 1 }], { email: buyer.email, address: ARLINGTON });
  await capture(app, order, admin);
  const event = await eventually(() => paidEvent(order.id), "order.paid written");
  await eventually(async () => (await app.db.prepare("SELECT count(*) AS n FROM processed_events WHERE event_id = ?1").bind(event.id).first("n")) === 1, "order.paid applied");
  assert.equal(await app.count("points_ledger"), before, "a guest's order earns no one anything");
});

const refundSucceeded = (placed, providerRefundId, amount) =>
  standardRefundSucceeded(app, { provider: "acme", secret: ACME_SECRET }, placed, providerRefundId, amount);

test("two refunds confirmed at once: the second order.refunded carries the whole amount, and a full refund takes back every point", async () => {
  const buyer = await signedInCustomer(app);
  const placed = await paidOrder(buyer, 4);
  const total = minor(placed.totals.grand_total);
  const earned = Math.floor((total * 2) / 100);
  await eventually(async () => (await me(buyer)).points === earned, `${earned} points earned`);
  const half = Math.floor(total / 2);
  const eur = (m) => ({ amount: (m / 100).toFixed(2), currency: "EUR" });
  const asked = [];
  for (const amount of [half, total - half]) {
    const res = await app.post(`/v1/admin/orders/${placed.id}/refunds`, { amount: eur(amount), reason: "returned" }, { headers: { Authorization: admin, ...key() } });
    assert.equal(res.status, 202, res.text);
    asked.push(res.body);
  }
  const confirmed = await Promise.all(asked.map((r) => refundSucceeded(placed, r.provider_refund_id, minor(r.amount))));
  assert.deepEqual(confirmed.map((r) => [r.status, r.body.outcome]), [[200, "refunded"], [200, "refunded"]]);
  const events = (
    await app.db
      .prepare("SELECT payload FROM outbox WHERE type = 'order.refunded' AND json_extract(payload, '$.order_id') = ?1")
      .bind(placed.id)
      .all()
  ).results.map((row) => JSON.parse(row.payload));
  // Each cumulative is what the order had refunded when its own confirmation committed.
  const cumulative = events.map((e) => e.refunded_minor).sort((a, b) => a - b);
  const first = events.find((e) => e.refunded_minor < total);
  assert.deepEqual(cumulative, [minor(first.amount), total], JSON.stringify(events));
  await eventually(async () => (await me(buyer)).points === 0, "every point taken back");
  // Whichever take-back ran first saw the order's whole refund (the larger of its event's and
  // the order's): what is taken back adds up to what was earned.
  const entries = await ledger(buyer);
  assert.equal(entries.filter((e) => e.kind === "refunded").reduce((sum, e) => sum - e.points, 0), earned);
});
