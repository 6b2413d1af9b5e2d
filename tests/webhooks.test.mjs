// Outbound webhooks: Standard Webhooks signatures, retries on 5xx and 429 only, the delivery log,
// deliveries sent again on request. (The admin routes' refusals and paging: admin.test.mjs.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { adminToken, assertProblem, eventually, spawnApp } from "./helpers.mjs";
import { placeOrder, restock } from "./fixtures.mjs";

let app, server, base, auth;
const secrets = {};
const received = { flaky: [], broken: [], limited: [], redirect: [], target: [], slow: [], stall: [] };
let flakyFailuresLeft = 1;
let brokenMended = false;
let limitedLeft = 1;

/** What a merchant would do: verify the signature on the raw body before trusting it. */
function verify(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`).digest();
  return headers["webhook-signature"].split(" ").some((sig) => {
    const [version, value] = sig.split(",");
    const got = Buffer.from(value ?? "", "base64");
    return version === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const name = req.url.slice(1);
      const verified = secrets[name] ? verify(secrets[name], req.headers, body) : false;
      received[name].push({ headers: req.headers, body: JSON.parse(body), verified });
      if (name === "redirect") return res.writeHead(307, { Location: `${base}/target` }).end();
      if (name === "slow") return setTimeout(() => res.writeHead(200).end(), 300);
      if (name === "stall") return setTimeout(() => res.writeHead(200).end(), 4000);
      let status = 200;
      if (name === "broken") status = brokenMended ? 200 : 400;
      if (name === "limited" && limitedLeft > 0) {
        limitedLeft -= 1;
        status = 429;
      }
      if (name === "flaky" && flakyFailuresLeft > 0) {
        flakyFailuresLeft -= 1;
        status = 500;
      }
      res.writeHead(status).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  // Local receivers are plain http on loopback: a development allowance, off by default.
  // Every outbound call has a timeout; 1 s here, so a test can pass it.
  app = await spawnApp({ vars: { WEBHOOKS_ALLOW_INSECURE_URLS: "true", OUTBOUND_TIMEOUT_MS: "1000" } });
  auth = { Authorization: `Bearer ${await adminToken(["webhooks:write", "webhooks:read"])}` };
});
after(async () => {
  await app?.close();
  server?.close();
});


test("endpoints are validated and get a whsec_ secret once", async () => {
  for (const [name, types] of [["flaky", ["order.created"]], ["broken", ["*"]], ["limited", ["order.created", "order.paid"]]]) {
    const res = await app.post("/v1/admin/webhook-endpoints", { url: `${base}/${name}`, event_types: types }, { headers: auth });
    assert.equal(res.status, 201, res.text);
    assert.match(res.body.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
    secrets[name] = res.body.secret;
  }
  const bad = (json) => app.post("/v1/admin/webhook-endpoints", json, { headers: auth });
  assertProblem(await bad({ url: "ftp://merchant.example/x", event_types: ["*"] }), 422, "validation_failed");
  assertProblem(await bad({ url: `${base}/x`, event_types: [] }), 422, "validation_failed");
  const p = assertProblem(await bad({ url: `${base}/x`, event_types: ["order.created", "order.shipped"] }), 422, "validation_failed");
  assert.equal(p.errors[0].pointer, "/event_types/1");
  const readOnly = { Authorization: `Bearer ${await adminToken(["webhooks:read"])}` };
  assertProblem(await app.post("/v1/admin/webhook-endpoints", { url: `${base}/x`, event_types: ["*"] }, { headers: readOnly }), 403, "insufficient_scope");
});

test("events are delivered signed; a 500 or 429 is retried, a 400 is not", async () => {
  const sku = "ZIPHOODIE-S-GREY";
  await restock(app, sku, { onHand: 10 });
  const orderId = (await placeOrder(app, [{ sku, quantity: 1 }], { email: "m@example.com" })).order.id;

  await eventually(() => received.flaky.length >= 1 && received.broken.length >= 1 && received.limited.length >= 1, "the first deliveries");
  for (const r of [...received.flaky, ...received.broken, ...received.limited]) {
    assert.ok(r.verified, "signature verifies with the endpoint's secret");
    assert.equal(r.headers["webhook-id"], r.body.id, "webhook-id is the event id");
    assert.ok(Math.abs(Number(r.headers["webhook-timestamp"]) - Date.now() / 1000) < 300);
    assert.equal(r.body.type, "order.created");
    assert.equal(r.body.data.order_id, orderId);
    assert.ok(r.body.created_at);
  }
  const rows = async () =>
    Object.fromEntries(
      (await app.db.prepare("SELECT e.url, d.status, d.attempts, d.last_status_code FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id").all())
        .results.map((r) => [r.url.split("/").pop(), r]),
    );
  await eventually(async () => (await rows()).flaky?.attempts === 1, "the failed attempt to be recorded");
  let state = await rows();
  assert.deepEqual([state.flaky.status, state.flaky.last_status_code], ["pending", 500]);
  await eventually(async () => (await rows()).limited?.attempts === 1, "the rate-limited attempt to be recorded");
  state = await rows();
  assert.deepEqual([state.limited.status, state.limited.last_status_code], ["pending", 429]);
  assert.deepEqual([state.broken.status, state.broken.attempts, state.broken.last_status_code], ["failed", 1, 400]);

  // The retry comes from the cron once due.
  await app.db.prepare("UPDATE webhook_deliveries SET next_attempt_at = 0").run();
  const result = await (await app.mf.getWorker("shop-order-events")).scheduled({ cron: "* * * * *" });
  assert.equal(result.outcome, "ok", app.logs.slice(-20).join("\n"));
  state = await rows();
  assert.deepEqual([state.flaky.status, state.flaky.attempts, state.flaky.last_status_code], ["succeeded", 2, 200]);
  assert.deepEqual([state.limited.status, state.limited.attempts], ["succeeded", 2]);
  assert.equal(received.flaky.length, 2, "retried once");
  assert.equal(received.limited.length, 2, "a 429 is retried");
  assert.equal(received.broken.length, 1, "a 400 is final");
  assert.equal(received.flaky[0].headers["webhook-id"], received.flaky[1].headers["webhook-id"], "a retry keeps its id");

  const log = await app.get("/v1/admin/webhook-deliveries?limit=10", { headers: auth });
  assert.equal(log.status, 200, log.text);
  assert.equal(log.body.data.length, 3);
  assert.deepEqual(new Set(log.body.data.map((d) => d.status)), new Set(["succeeded", "failed"]));
  const failed = await app.get("/v1/admin/webhook-deliveries?status=failed", { headers: auth });
  assert.equal(failed.body.data.length, 1);
  assert.match(failed.body.data[0].last_error, /not retried/);
});

test("a failed delivery is sent again on request, once; so is every failed one of an endpoint since a time", async () => {
  const broken = () => app.get("/v1/admin/webhook-deliveries?status=failed", { headers: auth }).then((r) => r.body.data);
  const [failed] = await broken();
  assert.equal(failed.status, "failed");
  brokenMended = true;
  const sent = received.broken.length;
  const redeliver = (id) => app.post(`/v1/admin/webhook-deliveries/${id}/redeliver`, undefined, { headers: auth });
  const again = await redeliver(failed.id);
  assert.equal(again.status, 202, again.text);
  assert.deepEqual([again.body.id, again.body.status, again.body.attempts], [failed.id, "pending", 0]);
  await eventually(() => received.broken.length === sent + 1, "the delivery sent again");
  assert.equal(received.broken.at(-1).headers["webhook-id"], failed.event_id, "the same event, signed anew");
  assert.ok(received.broken.at(-1).verified);
  const delivered = async (id) => (await app.db.prepare("SELECT status FROM webhook_deliveries WHERE id = ?1").bind(id).first("status")) === "succeeded";
  await eventually(() => delivered(failed.id), "recorded as delivered");
  // Asking again changes nothing and sends nothing.
  const twice = await redeliver(failed.id);
  assert.deepEqual([twice.status, twice.body.status], [200, "succeeded"]);

  // Every failed delivery of the endpoint since a time.
  brokenMended = false;
  const since = new Date(Date.now() - 1000).toISOString();
  const sku = "ZIPHOODIE-S-GREY";
  await restock(app, sku, { onHand: 10 });
  await placeOrder(app, [{ sku, quantity: 1 }], { email: "m@example.com" });
  await eventually(async () => (await broken()).length >= 1, "a new failed delivery");
  brokenMended = true;
  const before = received.broken.length;
  const all = await app.post(`/v1/admin/webhook-endpoints/${failed.endpoint_id}/redeliver`, { since }, { headers: auth });
  assert.equal(all.status, 202, all.text);
  assert.ok(all.body.redelivered >= 1);
  await eventually(() => received.broken.length >= before + all.body.redelivered, "all of them sent again");
  await eventually(async () => (await broken()).length === 0, "none failed any more");
  const none = await app.post(`/v1/admin/webhook-endpoints/${failed.endpoint_id}/redeliver`, { since }, { headers: auth });
  assert.deepEqual([none.status, none.body.redelivered], [202, 0]);
});

/** A pending delivery of a made-up event to the endpoint `name`, due now. */
async function plantDelivery(name, url = `${base}/${name}`) {
  const res = await app.post("/v1/admin/webhook-endpoints", { url, event_types: ["order.paid"] }, { headers: auth });
  assert.equal(res.status, 201, res.text);
  secrets[name] = res.body.secret;
  const id = `whd_${randomUUID().replaceAll("-", "")}`;
  const event = `evt_${randomUUID().replaceAll("-", "")}`;
  const payload = JSON.stringify({ id: event, type: "order.paid", created_at: new Date().toISOString(), data: { order_id: "ord_x" } });
  await app.db
    .prepare(
      "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, 'order.paid', ?4, 'pending', 0, 0, ?5, ?5)",
    )
    .bind(id, res.body.id, event, payload, Date.now())
    .run();
  return id;
}
const delivery = (id) => app.db.prepare("SELECT status, attempts, last_status_code, last_error FROM webhook_deliveries WHERE id = ?1").bind(id).first();
const cron = async () => (await app.mf.getWorker("shop-order-events")).scheduled({ cron: "* * * * *" });

test("a redirect is never followed: the delivery fails with the 3xx and the target is not called", async () => {
  const id = await plantDelivery("redirect");
  assert.equal((await cron()).outcome, "ok");
  assert.equal(received.redirect.length, 1);
  assert.equal(received.target.length, 0, "the redirect target was never called");
  const row = await delivery(id);
  assert.deepEqual([row.status, row.attempts, row.last_status_code], ["failed", 1, 307]);
  assert.match(row.last_error, /redirect not followed/);
});

test("a delivery is claimed before it is sent: two senders at once send it once", async () => {
  const id = await plantDelivery("slow");
  const results = await Promise.all([cron(), cron(), cron()]);
  assert.ok(results.every((r) => r.outcome === "ok"));
  assert.equal(received.slow.length, 1, "sent exactly once");
  const row = await delivery(id);
  assert.deepEqual([row.status, row.attempts], ["succeeded", 1]);
});

test("an endpoint that does not answer in time is a retried failure, and the run goes on", async () => {
  const id = await plantDelivery("stall");
  const started = Date.now();
  assert.equal((await cron()).outcome, "ok");
  assert.ok(Date.now() - started < 3500, "the sender did not wait for the endpoint");
  const row = await delivery(id);
  assert.deepEqual([row.status, row.attempts, row.last_status_code], ["pending", 1, null]);
  assert.match(row.last_error, /no answer within 1000 ms/);
});

test("the test harness lets no outbound call leave this machine", async () => {
  const id = await plantDelivery("elsewhere", "https://merchant.example/hooks");
  assert.equal((await cron()).outcome, "ok");
  const row = await delivery(id);
  assert.deepEqual([row.status, row.last_status_code], ["pending", 502], "answered by the harness, not the network");
});
