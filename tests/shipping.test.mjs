// Shipping, once a parcel is on its way: logistics partners' callbacks (POST
// /v1/webhooks/logistics/{partner}, in the EasyPost-style and the AfterShip-style formats, signed
// as each partner signs: HMAC-SHA256 of the raw body) move shipments along; a customer finds
// their parcels by order number and email (GET /v1/tracking) or by the order's tracking token
// (GET /v1/tracking/{token}). (Shipping rates: shipping-rates.test.mjs; shipping an order:
// shipments.test.mjs.)
// operationIds: logisticsCallback, lookUpTracking, trackingByToken
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { adminToken, assertProblem, GENEROUS_LIMITS, spawnApp, freshLimiterWindow } from "./helpers.mjs";
import { LONDON, paidOrder as pay, restock, ship as shipLines } from "./fixtures.mjs";

const SECRETS = { easypost: ["ep_old_secret", "ep_new_secret"], aftership: ["as_secret"] };

let app, admin;
before(async () => {
  app = await spawnApp({
    rateLimits: { ...GENEROUS_LIMITS, TRACKING_BY_CLIENT: 6 },
    vars: {
      LOGISTICS_PARTNERS: "easypost:easypost,aftership:aftership,nosecret:easypost",
      LOGISTICS_SECRETS_EASYPOST: SECRETS.easypost.join(","),
      LOGISTICS_SECRETS_AFTERSHIP: SECRETS.aftership.join(","),
    },
  });
  admin = `Bearer ${await adminToken(["orders:write"])}`;
});
after(async () => app?.close());

const SKUS = ["BUCKETHAT-SAND", "BUCKETHAT-BLACK"];

/** A paid order of one of each SKU: the order (`full`: the checkout's answer, its tokens too). */
async function paidOrder(full = false) {
  await restock(app, SKUS);
  const placed = await pay(app, SKUS.map((sku) => ({ sku, quantity: 1 })), admin, { address: LONDON });
  return full ? placed : placed.order;
}

/** One unit of each of `skus` shipped with `carrier`: the shipment. */
const ship = (order, carrier, skus) => shipLines(app, order, skus.map((sku) => ({ sku, quantity: 1 })), admin, { carrier });

const hmac = (secret, body) => createHmac("sha256", secret).update(body);

/** An EasyPost tracker event: the tracker's status now, and its details so far. */
function easypost(shipment, status, details, { id = `evt_${randomUUID().replaceAll("-", "")}` } = {}) {
  return JSON.stringify({
    id,
    object: "Event",
    description: "tracker.updated",
    created_at: new Date().toISOString(),
    result: {
      id: `trk_${randomUUID().slice(0, 8)}`,
      object: "Tracker",
      tracking_code: shipment.tracking_number,
      carrier: shipment.carrier.toUpperCase(),
      status,
      tracking_details: details.map(([status, datetime, message]) => ({ status, datetime, message, tracking_location: { city: "Leeds", country: "GB" } })),
    },
  });
}

/** An AfterShip tracking webhook. */
function aftership(shipment, tag, checkpoints, { id = randomUUID() } = {}) {
  return JSON.stringify({
    event: "tracking_update",
    event_id: id,
    is_tracking_first_tag: false,
    ts: Math.floor(Date.now() / 1000),
    msg: {
      id: randomUUID(),
      tracking_number: shipment.tracking_number,
      slug: shipment.carrier,
      tag,
      checkpoints: checkpoints.map(([tag, checkpoint_time, message]) => ({ tag, checkpoint_time, message, city: "Utrecht", country_name: "Netherlands" })),
    },
  });
}

function deliver(partner, body, header) {
  const headers = { "Content-Type": "application/json" };
  const name = partner === "aftership" ? "aftership-hmac-sha256" : "X-Hmac-Signature";
  if (header === undefined) {
    const secret = SECRETS[partner]?.[0] ?? "none";
    header = partner === "aftership" ? hmac(secret, body).digest("base64") : `hmac-sha256-hex=${hmac(secret, body).digest("hex")}`;
  }
  if (header !== null) headers[name] = header;
  return app.request("POST", `/v1/webhooks/logistics/${partner}`, { body, headers });
}

const shipmentRow = (id) => app.db.prepare("SELECT status, progress FROM shipments WHERE id = ?1").bind(id).first();
const orderStatus = (id) => app.db.prepare("SELECT status FROM orders WHERE id = ?1").bind(id).first("status");
const timeline = (id) =>
  app.db.prepare("SELECT status, message, location FROM shipment_checkpoints WHERE shipment_id = ?1 ORDER BY occurred_at").bind(id).all().then((r) => r.results);
const outbox = (type, field, id) =>
  app.db
    .prepare(`SELECT payload FROM outbox WHERE type = ?1 AND json_extract(payload, '$.${field}') = ?2 ORDER BY created_at`)
    .bind(type, id)
    .all()
    .then((r) => r.results.map((row) => JSON.parse(row.payload)));
const t = (minutes) => new Date(Date.UTC(2027, 0, 15, 8, minutes)).toISOString();

test("EasyPost-style callbacks move a shipment forward exactly once; late and duplicate ones are kept in the timeline only", async () => {
  const order = await paidOrder();
  const shipment = await ship(order, "usps", SKUS);
  assert.equal(await orderStatus(order.id), "fulfilled");
  const moving = easypost(shipment, "in_transit", [["pre_transit", t(0), "Label created"], ["in_transit", t(10), "Departed"]]);
  const answers = await Promise.all([deliver("easypost", moving), deliver("easypost", moving)]);
  assert.deepEqual(answers.map((r) => r.body.outcome).sort(), ["duplicate", "updated"]);
  assert.deepEqual({ ...(await shipmentRow(shipment.id)) }, { status: "in_transit", progress: 2 });
  assert.deepEqual((await timeline(shipment.id)).map((c) => [c.status, c.message, c.location]), [
    ["pre_transit", "Label created", "Leeds, GB"],
    ["in_transit", "Departed", "Leeds, GB"],
  ]);
  // A late pre_transit (another event) is kept, but the status does not go back.
  const late = await deliver("easypost", easypost(shipment, "pre_transit", [["pre_transit", t(0), "Label created"], ["pre_transit", t(5), "Picked up"]]));
  assert.equal(late.body.outcome, "updated");
  assert.equal((await shipmentRow(shipment.id)).status, "in_transit");
  assert.equal((await timeline(shipment.id)).length, 3, "each checkpoint once");
  assert.deepEqual((await outbox("shipment.updated", "shipment_id", shipment.id)).map((e) => e.status), ["in_transit"]);

  const done = await deliver("easypost", easypost(shipment, "delivered", [["delivered", t(60), "Delivered"]]));
  assert.equal(done.body.outcome, "updated");
  assert.equal((await shipmentRow(shipment.id)).status, "delivered");
  assert.equal(await orderStatus(order.id), "delivered");
  assert.deepEqual((await outbox("order.delivered", "order_id", order.id)).length, 1);
  // After delivery nothing moves it, an exception included.
  await deliver("easypost", easypost(shipment, "failure", [["failure", t(90), "Damaged"]]));
  assert.equal((await shipmentRow(shipment.id)).status, "delivered");
  assert.deepEqual((await outbox("shipment.updated", "shipment_id", shipment.id)).map((e) => e.status), ["in_transit", "delivered"]);
});

test("AfterShip-style callbacks: partial shipments, then full delivery; exceptions are surfaced and a newer attempt resumes", async () => {
  const order = await paidOrder();
  const first = await ship(order, "dhl", [SKUS[0]]);
  assert.equal(await orderStatus(order.id), "partially_fulfilled");
  assert.equal((await deliver("aftership", aftership(first, "AttemptFail", [["AttemptFail", t(10), "No one home"]]))).body.outcome, "updated");
  assert.equal((await shipmentRow(first.id)).status, "failure");
  const [failure] = await outbox("shipment.updated", "shipment_id", first.id);
  assert.deepEqual([failure.status, failure.exception], ["failure", true]);
  // An older out-for-delivery arrives late: the newer failure stands; a newer attempt resumes.
  await deliver("aftership", aftership(first, "OutForDelivery", [["OutForDelivery", t(5), "Out"]]));
  assert.equal((await shipmentRow(first.id)).status, "failure");
  await deliver("aftership", aftership(first, "OutForDelivery", [["OutForDelivery", t(15), "Out again"]]));
  assert.equal((await shipmentRow(first.id)).status, "out_for_delivery");
  await deliver("aftership", aftership(first, "Exception", [["Exception", t(7), "Address unclear"]]));
  assert.equal((await shipmentRow(first.id)).status, "out_for_delivery", "an exception older than the status it would replace is kept only");
  assert.equal((await timeline(first.id)).length, 4, "every checkpoint is in the timeline");
  assert.equal((await deliver("aftership", aftership(first, "Delivered", [["Delivered", t(30), "Signed"]]))).body.outcome, "updated");
  assert.equal(await orderStatus(order.id), "partially_fulfilled", "one unit has not shipped yet");

  const second = await ship(order, "dhl", [SKUS[1]]);
  assert.equal(await orderStatus(order.id), "fulfilled");
  await deliver("aftership", aftership(second, "Delivered", [["InTransit", t(40), "Hub"], ["Delivered", t(50), "Mailbox"]]));
  assert.equal(await orderStatus(order.id), "delivered");
  assert.equal((await outbox("order.delivered", "order_id", order.id)).length, 1);
});

test("forged, tampered, unsigned and misformatted callbacks are 400 and write nothing; rotation; unconfigured partners are 404", async () => {
  const order = await paidOrder();
  const shipment = await ship(order, "usps", SKUS);
  const body = easypost(shipment, "in_transit", [["in_transit", t(10), "Departed"]]);
  const before = await app.count("logistics_events");
  const attempts = {
    "wrong secret": deliver("easypost", body, `hmac-sha256-hex=${hmac("someone_else", body).digest("hex")}`),
    tampered: deliver("easypost", body.replace("Departed", "Arrived"), `hmac-sha256-hex=${hmac(SECRETS.easypost[0], body).digest("hex")}`),
    "no header": deliver("easypost", body, null),
    "other scheme": deliver("easypost", body, `sha256=${hmac(SECRETS.easypost[0], body).digest("hex")}`),
    "another partner's format": deliver("aftership", body, `hmac-sha256-hex=${hmac(SECRETS.aftership[0], body).digest("hex")}`),
  };
  for (const [name, pending] of Object.entries(attempts)) {
    const res = await pending;
    assertProblem(res, 400, "signature_invalid");
    assert.ok(!res.text.includes(shipment.tracking_number), `${name}: nothing of the body is echoed`);
  }
  assert.equal(await app.count("logistics_events"), before, "nothing recorded");
  assert.equal((await shipmentRow(shipment.id)).status, "pre_transit");
  // Both secrets verify during a rotation.
  const rotated = await deliver("easypost", body, `hmac-sha256-hex=${hmac(SECRETS.easypost[1], body).digest("hex")}`);
  assert.equal(rotated.body.outcome, "updated");
  for (const partner of ["nosecret", "unknown", "EasyPost"]) assertProblem(await deliver(partner, body, "x"), 404, "unknown_partner");
  // Signed, but no shipment has the number: recorded for investigation. Signed, but not a callback: 400, kept.
  const stranger = await deliver("easypost", easypost({ tracking_number: "NOSUCHPARCEL1", carrier: "usps" }, "in_transit", []));
  assert.equal(stranger.body.outcome, "unknown_shipment");
  const garbage = JSON.stringify({ hello: randomUUID() });
  assertProblem(await deliver("aftership", garbage), 400, "invalid_callback");
  const kept = await app.db.prepare("SELECT partner, outcome FROM logistics_events WHERE payload = ?1").bind(garbage).first();
  assert.deepEqual({ ...kept }, { partner: "aftership", outcome: "malformed" });
});

test("a customer finds their parcels by order number and email or by the tracking token; wrong ones get the same 404; a script is throttled", async () => {
  await freshLimiterWindow();
  const placed = await paidOrder(true);
  const order = placed.order;
  const shipment = await ship(order, "usps", SKUS);
  await deliver("easypost", easypost(shipment, "in_transit", [["pre_transit", t(0), "Label created"], ["in_transit", t(10), "Departed"]]));
  const client = (ip) => ({ "CF-Connecting-IP": ip });
  const lookUp = (number, email, ip = "203.0.113.10") =>
    app.get(`/v1/tracking?order_number=${encodeURIComponent(number)}&email=${encodeURIComponent(email)}`, { headers: client(ip) });

  const found = await lookUp(order.number, "ADA@Example.com");
  assert.equal(found.status, 200, found.text);
  assert.equal(found.headers.get("cache-control"), "private, max-age=60");
  assert.equal(found.body.order_number, order.number);
  assert.deepEqual(found.body.ship_to, { city: "London", country: "GB" });
  assert.deepEqual(found.body.shipments.map((s) => [s.carrier, s.tracking_number, s.status]), [["usps", shipment.tracking_number, "in_transit"]]);
  assert.deepEqual(found.body.shipments[0].timeline.map((c) => [c.status, c.message, c.location]), [
    ["pre_transit", "Label created", "Leeds, GB"],
    ["in_transit", "Departed", "Leeds, GB"],
  ]);
  for (const personal of ["ada@example.com", "St James", "SW1Y", "Ada Lovelace"]) assert.ok(!found.text.includes(personal), `no ${personal} in the answer`);

  const byToken = await app.get(`/v1/tracking/${placed.tracking_token}`, { headers: client("203.0.113.10") });
  assert.equal(byToken.status, 200, byToken.text);
  assert.deepEqual(byToken.body, found.body);

  // Wrong email, wrong number, a token for something else: one answer, word for word.
  const misses = [
    await lookUp(order.number, "someone@example.com"),
    await lookUp("SO-2026-999999", "ada@example.com"),
    await app.get(`/v1/tracking/${placed.order_token}`, { headers: client("203.0.113.10") }),
  ];
  const strip = (r) => JSON.stringify({ ...r.body, request_id: undefined });
  for (const miss of misses) assertProblem(miss, 404, "tracking_not_found");
  assert.equal(new Set(misses.map(strip)).size, 1, "the same body whatever was wrong");
  assertProblem(await lookUp(order.number, ""), 422, "validation_failed");

  // The limiter: six lookups a minute from one client, then 429 with Retry-After; others are not affected.
  const script = "198.51.100.7";
  const answers = [];
  for (let i = 0; i < 8; i++) answers.push((await lookUp(`SO-2026-${String(i).padStart(6, "0")}`, "x@example.com", script)).status);
  assert.deepEqual(answers, [404, 404, 404, 404, 404, 404, 429, 429]);
  const limited = await lookUp(order.number, "ada@example.com", script);
  assertProblem(limited, 429, "rate_limited");
  assert.ok(Number(limited.headers.get("retry-after")) > 0);
  assert.equal((await lookUp(order.number, "ada@example.com", "192.0.2.99")).status, 200);
});
