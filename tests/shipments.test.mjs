// Shipments: POST /v1/admin/orders/{id}/shipments ships units of a paid order under a carrier's
// tracking number; partial fulfilment, then fulfilled; shipment.created through the outbox.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, newCart, spawnApp } from "./helpers.mjs";
import { capture, LONDON, placeOrder as place, restock } from "./fixtures.mjs";

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
  const placed = await place(app, [{ sku: SKUS[0], quantity: 3 }, { sku: SKUS[1], quantity: 1 }], { email: "ada@example.com", address: LONDON });
  // Order lines keep the ids they had in the cart.
  assert.deepEqual(placed.order.lines.map((l) => l.id), placed.cartLines);
  if (paid) await capture(app, placed.order, admin);
  return placed.order;
}

const ship = (orderId, body, headers = {}) =>
  app.post(`/v1/admin/orders/${orderId}/shipments`, body, { headers: { Authorization: admin, ...headers } });
const status = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
const tracking = () => `1Z${randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase()}`;

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

test("a line never ships more units than it has; a tracking number is one carrier's once; an unpaid order does not ship", async () => {
  const placed = await order();
  const invalid = async (body, pointer, code) => {
    const p = assertProblem(await ship(placed.id, body), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(body));
  };
  const number = tracking();
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 4 }] }, "/lines/0/quantity", "too_many_units");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ sku: "NOT-IN-ORDER", quantity: 1 }] }, "/lines/0/sku", "unknown_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: `line_${"0".repeat(32)}`, quantity: 1 }] }, "/lines/0/line_id", "unknown_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: "L1", quantity: 1 }] }, "/lines/0/line_id", "invalid_line_id");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ quantity: 1 }] }, "/lines/0/line_id", "invalid_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: placed.lines[0].id, sku: SKUS[0], quantity: 1 }] }, "/lines/0/line_id", "invalid_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [{ line_id: placed.lines[0].id, quantity: 1 }, { sku: SKUS[0], quantity: 1 }] }, "/lines/1/sku", "unknown_line");
  await invalid({ carrier: "ups", tracking_number: number, lines: [] }, "/lines", "invalid_lines");
  await invalid({ carrier: "u p s", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 1 }] }, "/carrier", "invalid_carrier");
  await invalid({ carrier: "ups", tracking_number: "1Z 1", lines: [{ sku: SKUS[0], quantity: 1 }] }, "/tracking_number", "invalid_tracking_number");
  assert.equal(await status(placed.id), "paid", "nothing changed");

  assert.equal((await ship(placed.id, { carrier: "ups", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 1 }] })).status, 201);
  const other = await order();
  assertProblem(await ship(other.id, { carrier: "UPS", tracking_number: number.toLowerCase(), lines: [{ sku: SKUS[0], quantity: 1 }] }), 409, "tracking_number_taken");
  assert.equal(await status(other.id), "paid", "nothing changed");
  assert.equal((await ship(other.id, { carrier: "fedex", tracking_number: number, lines: [{ sku: SKUS[0], quantity: 1 }] })).status, 201, "another carrier's number");

  const unpaid = await order({ paid: false });
  assertProblem(await ship(unpaid.id, { carrier: "ups", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] }), 409, "illegal_transition");
  assertProblem(await ship(`ord_${"0".repeat(31)}8`, { carrier: "ups", tracking_number: tracking(), lines: [{ sku: SKUS[0], quantity: 1 }] }), 404, "order_not_found");
  // The database refuses more units than a line has, whatever the statement.
  await assert.rejects(
    app.db.prepare("UPDATE order_lines SET shipped_quantity = quantity + 1 WHERE order_id = ?1").bind(placed.id).run(),
    /CHECK constraint failed/,
  );
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
