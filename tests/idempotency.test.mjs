import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { adminToken, assertProblem, eventually, newCart, skuWithStock, spawnApp } from "./helpers.mjs";
import { LONDON, placeOrder } from "./fixtures.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

test("same key and body replays the stored response; nothing is done twice", async () => {
  const key = randomUUID();
  const headers = { "Idempotency-Key": key };
  const first = await app.post("/v1/carts", { currency: "USD" }, { headers });
  assert.equal(first.status, 201);
  const carts = await app.count("carts");
  const again = await app.post("/v1/carts", { currency: "USD" }, { headers });
  assert.equal(again.status, 201);
  assert.equal(again.text, first.text, "byte-identical body");
  assert.equal(again.headers.get("location"), first.headers.get("location"));
  assert.equal(again.headers.get("etag"), first.headers.get("etag"));
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal(await app.count("carts"), carts, "no second cart");

  const row = await app.db.prepare("SELECT created_at, expires_at, completed FROM idempotency_keys WHERE key = ?1").bind(key).first();
  assert.equal(row.completed, 1);
  assert.equal(row.expires_at - row.created_at, 24 * 3600 * 1000, "kept 24 hours");
});

test("same key with another body is 422 and changes nothing", async () => {
  const cart = await newCart(app);
  const { sku } = await skuWithStock(app, "EUR", 5);
  const headers = { "Idempotency-Key": randomUUID() };
  const first = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 }, { headers });
  assert.equal(first.status, 200);
  const other = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 2 }, { headers });
  assertProblem(other, 422, "idempotency_key_reused");
  const read = await app.get(`/v1/carts/${cart.id}`);
  assert.equal(read.body.lines[0].quantity, 1);
  // Replaying the original is still fine, and does not add again.
  const replay = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 }, { headers });
  assert.equal(replay.text, first.text);
  assert.equal((await app.get(`/v1/carts/${cart.id}`)).body.lines[0].quantity, 1);
});

test("concurrent duplicates: one runs, the others get 409 or the same answer", async () => {
  const cart = await newCart(app);
  const { sku } = await skuWithStock(app, "EUR", 10);
  const headers = { "Idempotency-Key": randomUUID() };
  const results = await Promise.all(
    Array.from({ length: 6 }, () => app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 }, { headers })),
  );
  const ok = results.filter((r) => r.status === 200);
  const busy = results.filter((r) => r.status === 409);
  assert.equal(ok.length + busy.length, results.length, results.map((r) => r.status).join(","));
  assert.ok(ok.length >= 1);
  for (const r of ok) assert.equal(r.text, ok[0].text, "every success is the same answer");
  for (const r of busy) {
    assertProblem(r, 409, "idempotency_key_in_use");
    assert.equal(r.headers.get("retry-after"), "1");
  }
  const read = await app.get(`/v1/carts/${cart.id}`);
  assert.equal(read.body.lines[0].quantity, 1, "applied exactly once");
});

test("a failed request releases its key so a corrected retry can run", async () => {
  const cart = await newCart(app);
  const headers = { "Idempotency-Key": randomUUID() };
  assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: "NO-SUCH", quantity: 1 }, { headers }), 422, "validation_failed");
  assert.equal(await app.db.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE key = ?1").bind(headers["Idempotency-Key"]).first("n"), 0);
  const { sku } = await skuWithStock(app, "EUR", 1);
  const retry = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 }, { headers });
  assert.equal(retry.status, 200);
});

test("an in-flight key is 409 until its lease ends, then a retry takes it over", async () => {
  const body = JSON.stringify({ currency: "EUR" });
  const fingerprint = createHash("sha256").update(`POST /v1/carts\n${body}`).digest("hex");
  const key = randomUUID();
  // Anonymous creation: the key belongs to the client's address.
  const client = "198.51.100.7";
  const plant = (startedMsAgo) =>
    app.db
      .prepare("INSERT OR REPLACE INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at, completed) VALUES (?1, ?2, ?3, ?4, ?5, 0)")
      .bind(`client:${client}`, key, fingerprint, Date.now() - startedMsAgo, Date.now() + 86_000_000)
      .run();
  const send = () =>
    app.request("POST", "/v1/carts", { body, headers: { "Content-Type": "application/json", "Idempotency-Key": key, "CF-Connecting-IP": client } });
  await plant(5_000); // still running
  assertProblem(await send(), 409, "idempotency_key_in_use");
  await plant(120_000); // its worker died two minutes ago
  const taken = await send();
  assert.equal(taken.status, 201, taken.text);
  const replay = await send();
  assert.equal(replay.text, taken.text);
});

test("an expired key can be used again for another request", async () => {
  const key = randomUUID();
  const client = "198.51.100.8";
  await app.db
    .prepare("INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at, completed, response_body) VALUES (?1, ?2, 'old', ?3, ?4, 1, '{}')")
    .bind(`client:${client}`, key, Date.now() - 90_000_000, Date.now() - 3_600_000)
    .run();
  const fresh = await app.post("/v1/carts", { currency: "EUR" }, { headers: { "Idempotency-Key": key, "CF-Connecting-IP": client } });
  assert.equal(fresh.status, 201, fresh.text);
});

test("PATCH and DELETE accept Idempotency-Key too", async () => {
  const cart = await newCart(app);
  const { sku } = await skuWithStock(app, "EUR", 5);
  const added = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 });
  const line = added.body.lines[0].id;
  const headers = { "Idempotency-Key": randomUUID() };
  const a = await app.patch(`/v1/carts/${cart.id}/items/${line}`, { quantity: 3 }, { headers });
  const b = await app.patch(`/v1/carts/${cart.id}/items/${line}`, { quantity: 3 }, { headers });
  assert.equal(b.text, a.text);
  assert.equal(b.headers.get("idempotent-replayed"), "true");
  const delHeaders = { "Idempotency-Key": randomUUID() };
  const d1 = await app.del(`/v1/carts/${cart.id}/items/${line}`, { headers: delHeaders });
  const d2 = await app.del(`/v1/carts/${cart.id}/items/${line}`, { headers: delHeaders });
  assert.equal(d1.status, 200);
  assert.equal(d2.status, 200, "a replayed delete does not 404");
  assert.equal(d2.text, d1.text);
});

test("authorization comes before a replay: a stored admin answer is never replayed without the token", async () => {
  const key = randomUUID();
  const json = { url: "https://merchant.example/hooks", event_types: ["order.paid"] };
  const as = async (token) => (token ? { "Idempotency-Key": key, Authorization: `Bearer ${token}` } : { "Idempotency-Key": key });
  const admin = await adminToken(["webhooks:write"], { sub: "alice" });
  const first = await app.post("/v1/admin/webhook-endpoints", json, { headers: await as(admin) });
  assert.equal(first.status, 201, first.text);
  assert.match(first.body.secret, /^whsec_/);

  // The same request without a token, or with a token lacking the scope, is refused.
  assertProblem(await app.post("/v1/admin/webhook-endpoints", json, { headers: await as(null) }), 401, "unauthenticated");
  const weak = await adminToken(["orders:read"], { sub: "alice" });
  assertProblem(await app.post("/v1/admin/webhook-endpoints", json, { headers: await as(weak) }), 403, "insufficient_scope");
  // An order access token is not an admin token, even with the scope in it.
  const orderAud = await adminToken(["webhooks:write"], { sub: "alice", aud: "shop-order" });
  assertProblem(await app.post("/v1/admin/webhook-endpoints", json, { headers: await as(orderAud) }), 401, "invalid_token");

  // The caller's own replay: same endpoint, and the secret is not shown again.
  const replay = await app.post("/v1/admin/webhook-endpoints", json, { headers: await as(admin) });
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get("idempotent-replayed"), "true");
  assert.equal(replay.body.id, first.body.id);
  assert.equal(replay.body.secret, undefined);
  assert.equal(replay.body.secret_already_issued, true);
  const stored = await app.db.prepare("SELECT response_body FROM idempotency_keys WHERE key = ?1").bind(key).all();
  assert.equal(stored.results.length, 1, "the creation's answer is stored");
  assert.ok(stored.results.every((r) => !r.response_body.includes("whsec_")), "no secret in a stored answer");

  // Another admin with the same key and body gets an answer of their own.
  const bob = await adminToken(["webhooks:write"], { sub: "bob" });
  const other = await app.post("/v1/admin/webhook-endpoints", json, { headers: await as(bob) });
  assert.equal(other.status, 201, other.text);
  assert.equal(other.headers.get("idempotent-replayed"), null);
  assert.notEqual(other.body.id, first.body.id);
  assert.match(other.body.secret, /^whsec_/);
});

test("an anonymous key is scoped to the client's address: two clients never share a cart", async () => {
  const key = randomUUID();
  const from = (ip) => app.post("/v1/carts", { currency: "EUR" }, { headers: { "Idempotency-Key": key, "CF-Connecting-IP": ip } });
  const a = await from("203.0.113.10");
  const b = await from("203.0.113.11");
  assert.equal(a.status, 201, a.text);
  assert.equal(b.status, 201, b.text);
  assert.notEqual(a.body.id, b.body.id, "another client's key never returns this client's cart");
  assert.equal(b.headers.get("idempotent-replayed"), null);
  const again = await from("203.0.113.10");
  assert.equal(again.body.id, a.body.id);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
});

test("a key on a capability route is scoped to its resource", async () => {
  const { sku } = await skuWithStock(app, "EUR", 5);
  const [one, two] = [await newCart(app), await newCart(app)];
  const headers = { "Idempotency-Key": randomUUID() };
  const a = await app.post(`/v1/carts/${one.id}/items`, { sku, quantity: 1 }, { headers });
  const b = await app.post(`/v1/carts/${two.id}/items`, { sku, quantity: 1 }, { headers });
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.equal(b.body.id, two.id);
  assert.equal(b.headers.get("idempotent-replayed"), null);
});

/** What the worker logged about the D1 use of the request sent with `X-Request-Id: id`. */
async function d1Use(id) {
  let entry;
  await eventually(async () => {
    entry = app.logs
      .map((line) => {
        try {
          return JSON.parse(line.slice(line.indexOf("{")));
        } catch {
          return undefined;
        }
      })
      .find((e) => e?.request_id === id && typeof e.d1_round_trips === "number");
    return entry !== undefined;
  }, `the log line of ${id}`);
  return entry.d1_round_trips;
}

test("a key costs no round trip of its own: the claim rides on the first, the answer on the change", async () => {
  const keyed = () => ({ "Idempotency-Key": randomUUID(), "X-Request-Id": `req-${randomUUID()}` });
  const stored = (h) => app.db.prepare("SELECT completed, response_status FROM idempotency_keys WHERE key = ?1").bind(h["Idempotency-Key"]).first();

  const createHeaders = keyed();
  const created = await app.post("/v1/carts", { currency: "EUR" }, { headers: createHeaders });
  assert.equal(created.status, 201, created.text);
  assert.equal(await d1Use(createHeaders["X-Request-Id"]), 1, "create: claim, insert and answer in one batch");
  assert.deepEqual({ ...(await stored(createHeaders)) }, { completed: 1, response_status: 201 });

  const { sku } = await skuWithStock(app, "EUR", 5);
  const addHeaders = keyed();
  const added = await app.post(`/v1/carts/${created.body.id}/items`, { sku, quantity: 1 }, { headers: addHeaders });
  assert.equal(added.status, 200, added.text);
  assert.equal(await d1Use(addHeaders["X-Request-Id"]), 2, "add: claim + cart + offer, then save + answer");
  assert.deepEqual({ ...(await stored(addHeaders)) }, { completed: 1, response_status: 200 });

  // The checkout reads the shipping configuration once a minute per isolate: a first checkout
  // warms it (and pays that one read), so the one measured below is at the hot path's minimum.
  await placeOrder(app, [{ sku, quantity: 1 }], { email: "rt@example.com" });

  const checkoutHeaders = keyed();
  const placed = await app.post(
    `/v1/carts/${created.body.id}/checkout`,
    { email: "rt@example.com", shipping_address: LONDON, shipping_method: "standard", payment_provider: "test" },
    { headers: checkoutHeaders },
  );
  assert.equal(placed.status, 201, placed.text);
  assert.equal(await d1Use(checkoutHeaders["X-Request-Id"]), 2, "checkout: claim + cart, then the placement batch with the answer");
  assert.deepEqual({ ...(await stored(checkoutHeaders)) }, { completed: 1, response_status: 201 });

  // The stored answer is complete: a replay gives the same order, its number included.
  const replay = await app.post(
    `/v1/carts/${created.body.id}/checkout`,
    { email: "rt@example.com", shipping_address: LONDON, shipping_method: "standard", payment_provider: "test" },
    { headers: { "Idempotency-Key": checkoutHeaders["Idempotency-Key"] } },
  );
  assert.equal(replay.status, 201, replay.text);
  assert.deepEqual(replay.body.order, placed.body.order);
  assert.match(replay.body.order.number, /^SO-\d{4}-\d{6}$/);
});

test("concurrent keyed adds to one cart all land once, and each key replays its own answer", async () => {
  const cart = await newCart(app);
  const { sku } = await skuWithStock(app, "EUR", 20);
  const keys = Array.from({ length: 6 }, () => randomUUID());
  const send = (key) => app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 }, { headers: { "Idempotency-Key": key } });
  const first = await Promise.all(keys.map(send));
  for (const r of first) assert.ok([200, 409].includes(r.status), r.text);
  const saved = first.filter((r) => r.status === 200);
  assert.ok(saved.length >= 1);
  assert.equal((await app.get(`/v1/carts/${cart.id}`)).body.lines[0].quantity, saved.length, "every 200 counted once");
  const tags = saved.map((r) => r.headers.get("etag"));
  assert.equal(new Set(tags).size, tags.length, "each saved change is its own version");
  const again = await Promise.all(keys.map((key, i) => (first[i].status === 200 ? send(key) : undefined)));
  for (const [i, r] of again.entries()) {
    if (!r) continue;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("idempotent-replayed"), "true");
    assert.equal(r.text, first[i].text, "the answer of the attempt that was saved");
    assert.equal(r.headers.get("etag"), first[i].headers.get("etag"));
  }
  assert.equal((await app.get(`/v1/carts/${cart.id}`)).body.lines[0].quantity, saved.length, "replays add nothing");
});
