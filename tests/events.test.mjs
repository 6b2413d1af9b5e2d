// Order events: outbox -> queue -> consumer, exactly-once effects, retries, cron re-send, the
// dead-letter queue. (Dead events as an operator lists and redrives them: admin.test.mjs.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, eventually, minor, spawnApp } from "./helpers.mjs";
import { LONDON, placeOrder as place, restock } from "./fixtures.mjs";

let app;
// One retry (2 s later) before the dead-letter queue, so an outage outlasts every retry quickly.
before(async () => (app = await spawnApp({ queueRetries: { "shop-order-events": 1 } })));
after(async () => app?.close());

async function placeOrder(sku, quantity = 1, { lowThreshold = 0, onHand = 100 } = {}) {
  await restock(app, sku, { onHand, lowThreshold });
  return (await place(app, [{ sku, quantity }], { email: "alan@example.com", address: LONDON })).order;
}

async function eventOf(orderId, type = "order.created") {
  return app.db
    .prepare("SELECT id, type, payload, created_at, sent_at FROM outbox WHERE type = ?2 AND json_extract(payload, '$.order_id') = ?1")
    .bind(orderId, type)
    .first();
}


const processed = (id) => app.db.prepare("SELECT count(*) AS n FROM processed_events WHERE event_id = ?1").bind(id).first("n");
const sales = (day, currency) => app.db.prepare("SELECT orders, units, revenue_minor FROM daily_sales WHERE day = ?1 AND currency = ?2").bind(day, currency).first();
const placed = (day, currency) => app.db.prepare("SELECT orders, units, value_minor FROM orders_placed WHERE day = ?1 AND currency = ?2").bind(day, currency).first();
const productSales = (day, productId) =>
  app.db.prepare("SELECT units, revenue_minor FROM product_sales WHERE day = ?1 AND product_id = ?2 AND currency = 'EUR'").bind(day, productId).first();

test("checkout's order.created is sent, marked sent, and applied once with its payload", async () => {
  const order = await placeOrder("TALLLATTEM-WHITE", 2);
  const event = await eventOf(order.id);
  assert.ok(event);
  const day = order.created_at.slice(0, 10);
  const before = await placed(day, "EUR");
  await eventually(async () => (await processed(event.id)) === 1, "order.created to be applied");
  assert.ok((await eventOf(order.id)).sent_at, "marked sent");
  const after = await placed(day, "EUR");
  assert.equal(after.orders, (before?.orders ?? 0) + 1);
  assert.equal(after.units, (before?.units ?? 0) + 2, "the consumer read the event's lines: the payload survived the queue");
  assert.equal(after.value_minor, (before?.value_minor ?? 0) + minor(order.totals.grand_total));
});

test("sales rollups count paid orders only; placed orders are counted apart", async () => {
  const write = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
  // Three variants of one product (placeOrder resets its SKU's stock, so one SKU each).
  const paid = await placeOrder("ESPRESSOCU-BLACK", 2);
  const unpaid = await placeOrder("ESPRESSOCU-WHITE", 3);
  const cancelled = await placeOrder("ESPRESSOCU-SAGE", 1);
  assert.equal(new Set([paid, unpaid, cancelled].map((o) => o.lines[0].product_id)).size, 1);
  const day = paid.created_at.slice(0, 10);
  const productId = paid.lines[0].product_id;
  for (const o of [paid, unpaid, cancelled]) {
    const e = await eventOf(o.id);
    await eventually(async () => (await processed(e.id)) === 1, "order.created to be applied");
  }
  const salesBefore = await sales(day, "EUR");
  const productBefore = await productSales(day, productId);
  // One is paid, one expires, one is cancelled unpaid.
  assert.equal((await app.post(`/v1/admin/orders/${paid.id}/capture`, undefined, { headers: write })).status, 200);
  assert.equal((await app.post(`/v1/admin/orders/${cancelled.id}/cancel`, undefined, { headers: write })).status, 200);
  await app.db.prepare("UPDATE orders SET reservation_expires_at = 1 WHERE id = ?1").bind(unpaid.id).run();
  assert.equal((await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" })).outcome, "ok");
  for (const [o, type] of [[paid, "order.paid"], [cancelled, "order.cancelled"], [unpaid, "order.expired"]]) {
    const e = await eventOf(o.id, type);
    assert.ok(e, type);
    await eventually(async () => (await processed(e.id)) === 1, `${type} to be applied`);
  }
  // Sales count on the day of payment (the order.paid event's day).
  const paidDay = new Date((await eventOf(paid.id, "order.paid")).created_at).toISOString().slice(0, 10);
  assert.equal(paidDay, day, "the test ran across midnight UTC; run it again");
  const salesAfter = await sales(day, "EUR");
  assert.equal(salesAfter.orders, (salesBefore?.orders ?? 0) + 1, "only the paid order is a sale");
  assert.equal(salesAfter.units, (salesBefore?.units ?? 0) + 2);
  assert.equal(salesAfter.revenue_minor, (salesBefore?.revenue_minor ?? 0) + minor(paid.totals.grand_total));
  const productAfter = await productSales(day, productId);
  assert.equal(productAfter.units, (productBefore?.units ?? 0) + 2);
  assert.equal(productAfter.revenue_minor, (productBefore?.revenue_minor ?? 0) + minor(paid.lines[0].total));
});

test("a redelivered event changes nothing", async () => {
  const order = await placeOrder("TRAVELMUG-BLACK", 1);
  const event = await eventOf(order.id);
  await eventually(async () => (await processed(event.id)) === 1, "first delivery");
  const day = order.created_at.slice(0, 10);
  const before = await placed(day, "EUR");
  const producer = await app.mf.getQueueProducer("ORDER_EVENTS", "shop-checkout");
  const envelope = JSON.stringify({ id: event.id, type: event.type, created_at: new Date(event.created_at).toISOString(), data: JSON.parse(event.payload) });
  await producer.send(envelope);
  await producer.send(envelope);
  await eventually(
    () => app.logs.filter((l) => l.includes(event.id) && l.includes('"duplicate"')).length >= 2,
    "both redeliveries to be seen",
  );
  assert.equal(await processed(event.id), 1);
  assert.deepEqual(await placed(day, "EUR"), before, "rollups unchanged");
});

test("a consumer failure is retried with backoff until the event applies, once", async () => {
  await app.db.prepare("ALTER TABLE orders_placed RENAME TO orders_placed_offline").run();
  let order;
  try {
    order = await placeOrder("ESPRESSOCU-SAGE", 1);
    const event = await eventOf(order.id);
    await eventually(
      () => app.db.prepare("SELECT attempts FROM event_failures WHERE event_id = ?1").bind(event.id).first("attempts"),
      "the first attempt to fail",
    );
    assert.equal(await processed(event.id), 0, "the failed attempt wrote nothing");
    const day = order.created_at.slice(0, 10);
    await app.db.prepare("ALTER TABLE orders_placed_offline RENAME TO orders_placed").run();
    const mid = await placed(day, "EUR");
    await eventually(async () => (await processed(event.id)) === 1, "the retry to apply the event");
    const after = await placed(day, "EUR");
    assert.equal(after.orders, (mid?.orders ?? 0) + 1, "counted exactly once");
  } finally {
    await app.db.prepare("ALTER TABLE orders_placed_offline RENAME TO orders_placed").run().catch(() => {});
  }
});

test("an outbox row whose send failed is re-sent by the cron", async () => {
  const id = `evt_${randomUUID().replaceAll("-", "")}`;
  const low = JSON.stringify({ sku: "BEANIE-BLACK", available: 2, low_threshold: 3 });
  await app.db
    .prepare("INSERT INTO outbox (id, type, payload, created_at) VALUES (?1, 'inventory.low', ?3, ?2)")
    .bind(id, Date.now() - 5 * 60 * 1000, low)
    .run();
  const fresh = `evt_${randomUUID().replaceAll("-", "")}`;
  await app.db.prepare("INSERT INTO outbox (id, type, payload, created_at) VALUES (?1, 'inventory.low', ?3, ?2)").bind(fresh, Date.now(), low).run();
  const worker = await app.mf.getWorker("shop-operations");
  const result = await worker.scheduled({ cron: "* * * * *" });
  assert.equal(result.outcome, "ok");
  const row = await app.db.prepare("SELECT sent_at, attempts FROM outbox WHERE id = ?1").bind(id).first();
  assert.ok(row.sent_at, "sent by the cron");
  assert.equal(row.attempts, 1);
  await eventually(async () => (await processed(id)) === 1, "the re-sent event to be consumed");
  const young = await app.db.prepare("SELECT sent_at FROM outbox WHERE id = ?1").bind(fresh).first();
  assert.equal(young.sent_at, null, "a row younger than the re-send delay is left to its own send");
});

test("a checkout that takes a SKU to its low-stock threshold emits inventory.low", async () => {
  const sku = "CAMPMUG-WHITE";
  const order = await placeOrder(sku, 3, { onHand: 8, lowThreshold: 5 });
  const low = await eventOf(order.id, "inventory.low");
  assert.ok(low, "inventory.low in the outbox, in the checkout's batch");
  assert.deepEqual(JSON.parse(low.payload), { sku, available: 5, low_threshold: 5, order_id: order.id });
  await eventually(
    () => app.db.prepare("SELECT sku FROM stock_alerts WHERE event_id = ?1").bind(low.id).first("sku"),
    "the stock alert",
  );
  const again = await placeOrder(sku, 1, { onHand: 5, lowThreshold: 5 });
  assert.equal(await eventOf(again.id, "inventory.low"), null, "already below: no second crossing");
});

test("an outage longer than every retry loses nothing: dead-lettered, re-sent by the cron, applied once", async () => {
  const read = { Authorization: `Bearer ${await adminToken(["events:read", "events:write"])}` };
  await app.db.prepare("ALTER TABLE orders_placed RENAME TO orders_placed_offline").run();
  let order, event, dead;
  try {
    order = await placeOrder("ESPRESSOCU-WHITE", 1);
    event = await eventOf(order.id);
    // Both attempts fail; the queue gives up and the dead-letter consumer records it.
    dead = await eventually(
      () => app.db.prepare("SELECT id, reason, last_error FROM dead_events WHERE event_id = ?1").bind(event.id).first(),
      "the dead-letter record",
      20000,
    );
  } finally {
    await app.db.prepare("ALTER TABLE orders_placed_offline RENAME TO orders_placed").run().catch(() => {});
  }
  assert.equal(dead.reason, "retries_exhausted");
  assert.match(dead.last_error, /orders_placed/);
  assert.equal(await processed(event.id), 0);
  assert.equal((await app.db.prepare("SELECT applied_at FROM outbox WHERE id = ?1").bind(event.id).first()).applied_at, null, "not done");
  const list = await app.get("/v1/admin/dead-events", { headers: read });
  assert.equal(list.status, 200, list.text);
  const listed = list.body.data.find((d) => d.id === dead.id);
  assert.deepEqual([listed.event_id, listed.type, listed.applied], [event.id, "order.created", false]);

  // Storage is back: the cron re-sends the unapplied row when due, and it is applied once.
  const day = order.created_at.slice(0, 10);
  const before = await placed(day, "EUR");
  await app.db.prepare("UPDATE outbox SET next_send_at = 0 WHERE id = ?1").bind(event.id).run();
  assert.equal((await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" })).outcome, "ok");
  await eventually(async () => (await processed(event.id)) === 1, "the re-sent event to be applied");
  assert.ok((await app.db.prepare("SELECT applied_at FROM outbox WHERE id = ?1").bind(event.id).first()).applied_at, "done end to end");
  const after = await placed(day, "EUR");
  assert.equal(after.orders, (before?.orders ?? 0) + 1, "applied exactly once");

  // An operator's redrive is harmless now: the event is a duplicate.
  const redriven = await app.post(`/v1/admin/dead-events/${dead.id}/redrive`, undefined, { headers: read });
  assert.equal(redriven.status, 200, redriven.text);
  assert.ok(redriven.body.redriven_at);
  assert.equal(redriven.body.applied, true);
  await eventually(() => app.logs.some((l) => l.includes(event.id) && l.includes('"duplicate"')), "the redriven copy to be seen");
  assert.equal(await processed(event.id), 1);
  assert.deepEqual(await placed(day, "EUR"), after, "nothing counted twice");
  // An applied row is not re-sent by later cron runs.
  const attempts = (await app.db.prepare("SELECT attempts FROM outbox WHERE id = ?1").bind(event.id).first()).attempts;
  await app.db.prepare("UPDATE outbox SET next_send_at = 0 WHERE id = ?1").bind(event.id).run();
  await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.equal((await app.db.prepare("SELECT attempts FROM outbox WHERE id = ?1").bind(event.id).first()).attempts, attempts);
});

test("an outbox row that is not an event this code wrote is logged and pushed back, and the cron moves on", async () => {
  const broken = `evt_${randomUUID().replaceAll("-", "")}`;
  const good = `evt_${randomUUID().replaceAll("-", "")}`;
  const old = Date.now() - 10 * 60 * 1000;
  await app.db.prepare("INSERT INTO outbox (id, type, payload, created_at) VALUES (?1, 'order.note', '{}', ?2)").bind(broken, old).run();
  await app.db
    .prepare("INSERT INTO outbox (id, type, payload, created_at) VALUES (?1, 'inventory.low', ?3, ?2)")
    .bind(good, old + 1, JSON.stringify({ sku: "BEANIE-BLACK", available: 1, low_threshold: 3 }))
    .run();
  const result = await (await app.mf.getWorker("shop-operations")).scheduled({ cron: "* * * * *" });
  assert.equal(result.outcome, "ok");
  const row = await app.db.prepare("SELECT sent_at, attempts, next_send_at, applied_at FROM outbox WHERE id = ?1").bind(broken).first();
  assert.deepEqual([row.sent_at, row.attempts, row.applied_at], [null, 1, null], "never sent, pushed back, left for an operator");
  assert.ok(row.next_send_at > Date.now(), "not due again at once");
  assert.ok(app.logs.some((l) => l.includes(broken) && l.includes("unreadable outbox row")), "logged");
  await eventually(async () => (await processed(good)) === 1, "the readable row beside it to be applied");
});

test("the queue and merchants get the event as one typed envelope", async () => {
  const order = await placeOrder("TRAVELMUG-BLACK", 1);
  const row = await eventOf(order.id);
  await eventually(async () => (await processed(row.id)) === 1, "order.created to be applied");
  // The webhook payload is the envelope the queue carried: id, type, created_at, data.
  const producer = await app.mf.getQueueProducer("ORDER_EVENTS", "shop-checkout");
  const envelope = { id: row.id, created_at: new Date(row.created_at).toISOString(), type: "order.created", data: JSON.parse(row.payload) };
  assert.deepEqual(Object.keys(envelope.data).sort(), ["cart_id", "currency", "lines", "order_id", "total"]);
  assert.deepEqual(envelope.data.lines.map((l) => [l.sku, l.quantity]), [["TRAVELMUG-BLACK", 1]]);
  // A message of a known type whose data is not that type's payload is not an event.
  const wrong = JSON.stringify({ ...envelope, id: `evt_${randomUUID().replaceAll("-", "")}`, type: "order.paid" });
  await producer.send(wrong);
  const dead = await eventually(
    () => app.db.prepare("SELECT reason, type FROM dead_events WHERE body = ?1").bind(wrong).first(),
    "the mistyped message to be recorded",
  );
  assert.deepEqual({ ...dead }, { reason: "undecodable", type: "order.paid" });
});
