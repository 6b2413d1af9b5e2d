// Shipments: POST /v1/admin/orders/{id}/shipments ships units of a paid order under a carrier's
// tracking number; partial fulfilment, then fulfilled; shipment.created through the outbox; two
// at once never ship a unit twice. (What the route refuses: admin.test.mjs.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { adminToken, assertProblem, spawnApp } from "./helpers.mjs";
import { LONDON, paidOrder, placeOrder, restock, trackingNumber as tracking } from "./fixtures.mjs";

let app, admin;
before(async () => {
  app = await spawnApp();
  admin = `Bearer ${await adminToken(["orders:write", "orders:read"])}`;
});
after(async () => app?.close());

const SKUS = ["BUCKETHAT-SAND", "BUCKETHAT-BLACK"];

/** An order of 3 × BUCKETHAT-SAND and 1 × BUCKETHAT-BLACK, paid unless `paid` is false. */
async function order({ paid = true } = {}) {
  await restock(app, SKUS);
  const items = [{ sku: SKUS[0], quantity: 3 }, { sku: SKUS[1], quantity: 1 }];
  const options = { email: "ada@example.com", address: LONDON };
  const placed = paid ? await paidOrder(app, items, admin, options) : await placeOrder(app, items, options);
  // Order lines keep the ids they had in the cart.
  assert.deepEqual(placed.order.lines.map((l) => l.id), placed.cartLines);
  return placed.order;
}

const ship = (orderId, body, headers = {}) =>
  app.post(`/v1/admin/orders/${orderId}/shipments`, body, { headers: { Authorization: admin, ...headers } });
const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");

test("partial shipments, then the last units: partially_fulfilled, then fulfilled; shipment.created each time", async () => {
  const placed = await order();
  const [sand, black] = placed.lines.map((l) => l.id);
  const first = await ship(placed.id, { carrier: "UPS", tracking_number: tracking().toLowerCase(), lines: [{ line_id: sand, quantity: 2 }] });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.body.carrier, "ups");
  assert.match(first.body.tracking_number, /^1Z[0-9A-F]{16}$/, "kept uppercase");
  assert.equal(first.body.status, "pre_transit");
  assert.deepEqual(first.body.lines.map((l) => [l.line_id, l.sku, l.quantity]), [[sand, SKUS[0], 2]]);
  assert.equal(await status(placed.id), "partially_fulfilled");
  // A line may also be named by its SKU (an order has one line per SKU).
  const last = await ship(placed.id, { carrier: "dhl", tracking_number: tracking(), lines: [{ line_id: black, quantity: 1 }, { sku: SKUS[0], quantity: 1 }] });
  assert.equal(last.status, 201, last.text);
  assert.equal(await status(placed.id), "fulfilled");
  const events = (
    await app.db
      .prepare("SELECT payload FROM outbox WHERE type = 'shipment.created' AND json_extract(payload, '$.order_id') = ?1 ORDER BY created_at")
      .bind(placed.id)
      .all()
  ).results.map((r) => JSON.parse(r.payload));
  assert.deepEqual(events.map((e) => [e.shipment_id, e.order_status]), [[first.body.id, "partially_fulfilled"], [last.body.id, "fulfilled"]]);
  assert.deepEqual(events[1].lines.map((l) => [l.line_id, l.quantity]), [[black, 1], [sand, 1]]);
  // Nothing is left to ship.
  assertProblem(await ship(placed.id, { carrier: "dhl", tracking_number: tracking(), lines: [{ sku: SKUS[1], quantity: 1 }] }), 409, "illegal_transition");
});

test("concurrent shipments of the same units: one ships, the other is refused", async () => {
  const placed = await order();
  const both = await Promise.all(
    [tracking(), tracking()].map((number) => ship(placed.id, { carrier: "ups", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 3 }, { sku: SKUS[1], quantity: 1 }] })),
  );
  assert.deepEqual(both.map((r) => r.status).sort(), [201, 409], both.map((r) => r.text).join("\n"));
  const shipped = await app.db.prepare("SELECT sum(shipped_quantity) AS n FROM order_lines WHERE order_id = ?1").bind(placed.id).first("n");
  assert.equal(shipped, 4);
  assert.equal(await status(placed.id), "fulfilled");
});

test("two shipments of different remaining lines at once: both ship, and the order is fulfilled", async () => {
  for (let round = 0; round < 5; round++) {
    const placed = await order();
    assert.equal((await ship(placed.id, { carrier: "ups", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] })).status, 201);
    assert.equal(await status(placed.id), "partially_fulfilled");
    // All three read the order partially fulfilled with the others' units unshipped.
    const all = await Promise.all([
      ship(placed.id, { carrier: "ups", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] }),
      ship(placed.id, { carrier: "dhl", tracking_number: tracking(), lines: [{ sku: SKUS[1], quantity: 1 }] }),
      ship(placed.id, { carrier: "fedex", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] }),
    ]);
    assert.deepEqual(all.map((r) => r.status), [201, 201, 201], all.map((r) => r.text).join("\n"));
    assert.equal(await status(placed.id), "fulfilled", `round ${round}: every unit shipped`);
    const events = (
      await app.db
        .prepare("SELECT payload FROM outbox WHERE type = 'shipment.created' AND json_extract(payload, '$.order_id') = ?1")
        .bind(placed.id)
        .all()
    ).results.map((r) => JSON.parse(r.payload).order_status);
    assert.deepEqual(events.sort(), ["fulfilled", "partially_fulfilled", "partially_fulfilled", "partially_fulfilled"]);
    // The database refuses a fulfilment that differs from the lines, whatever the statement.
    await assert.rejects(
      app.db.prepare("UPDATE orders SET status = 'partially_fulfilled' WHERE id = ?1").bind(placed.id).run(),
      /fulfilment differs from the lines|illegal order transition/,
    );
  }
  const fresh = await order();
  await app.db.prepare("UPDATE order_lines SET shipped_quantity = quantity WHERE order_id = ?1").bind(fresh.id).run();
  await assert.rejects(
    app.db.prepare("UPDATE orders SET status = 'partially_fulfilled' WHERE id = ?1").bind(fresh.id).run(),
    /fulfilment differs from the lines/,
  );
});
