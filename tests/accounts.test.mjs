// Customer accounts: register → login → refresh → a rotated token used again revokes the family
// → logout; email verification, password reset and change; the signed-in customer's profile,
// addresses, orders and points ledger; erasure; bad input; the same answers for unknown and known
// addresses; tokens of one audience refused where another is expected.
// operationIds: register, login, refreshSession, logout, verifyEmail, requestPasswordReset, confirmPasswordReset, me, updateMe, changePassword, eraseMe, listAddresses, createAddress, updateAddress, deleteAddress, myOrders, myPoints
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, CUSTOMER_PASSWORD, eventually, GENEROUS_LIMITS, signedInCustomer, spawnApp, startMailbox, freshLimiterWindow } from "./helpers.mjs";
import { LONDON, paidOrder, placeOrder, restock } from "./fixtures.mjs";

let app, mailbox;
before(async () => {
  mailbox = await startMailbox();
  app = await spawnApp({ vars: mailbox.vars, rateLimits: { ...GENEROUS_LIMITS, AUTH_BY_EMAIL: 8, PASSWORD_CHECKS_BY_CUSTOMER: 3 } });
});
after(async () => {
  await app?.close();
  mailbox?.close();
});

const fresh = () => `shopper-${randomUUID().slice(0, 8)}@example.com`;
const PASSWORD = CUSTOMER_PASSWORD;
const post = (p, body, headers = {}) => app.post(p, body, { headers: { "Idempotency-Key": randomUUID(), ...headers } });
const bearer = (token) => ({ Authorization: `Bearer ${token}` });
const key = () => ({ "Idempotency-Key": randomUUID() });
const SKU = "BUCKETHAT-SAND";

test("register answers 202 for a new and a known address alike; the verification link goes to the account mail endpoint only", async () => {
  const email = fresh();
  const first = await post("/v1/auth/register", { email, password: PASSWORD, name: "Ada" });
  assert.equal(first.status, 202, first.text);
  const again = await post("/v1/auth/register", { email: email.toUpperCase(), password: "another good password" });
  assert.equal(again.status, 202);
  assert.deepEqual(again.body, first.body, "a script cannot tell that the address has an account");
  const rows = await app.db.prepare("SELECT password_hash FROM customers WHERE email_key = ?1").bind(email).all();
  assert.equal(rows.results.length, 1);
  assert.match(rows.results[0].password_hash, /^pbkdf2-sha256\$100000\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  const events = (await app.db.prepare("SELECT payload FROM outbox WHERE type = 'customer.registered'").all()).results.map((r) => JSON.parse(r.payload));
  const mine = events.filter((e) => e.email === email);
  assert.equal(mine.length, 1);
  assert.deepEqual(Object.keys(mine[0]).sort(), ["customer_id", "email", "name"], "the event carries no link");
  const message = await mailbox.link("account.email_verification", email);
  assert.match(message.data.token, /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual([message.data.customer_id, message.data.name], [mine[0].customer_id, "Ada"]);
  const stored = await app.db.prepare("SELECT token_hash FROM customer_tokens WHERE customer_id = ?1").bind(mine[0].customer_id).first("token_hash");
  assert.notEqual(stored, message.data.token, "only the token's digest is stored");
  // Handed over: nothing in D1 holds the link any more.
  await eventually(
    async () => (await app.db.prepare("SELECT status FROM account_messages WHERE id = ?1").bind(message.id).first("status")) === "delivered",
    "the message marked delivered",
  );
  const dump = JSON.stringify([
    (await app.db.prepare("SELECT * FROM account_messages").all()).results,
    (await app.db.prepare("SELECT payload FROM outbox").all()).results,
  ]);
  assert.ok(!dump.includes(message.data.token), "no plaintext link stays in D1");
});

test("an email address is one account whatever its case, in every alphabet", async () => {
  const local = `émile-${randomUUID().slice(0, 8)}`;
  const email = `${local.toUpperCase()}@example.com`;
  assert.equal((await post("/v1/auth/register", { email, password: PASSWORD })).status, 202);
  assert.equal((await post("/v1/auth/register", { email: `${local}@example.com`, password: PASSWORD })).status, 202);
  const rows = await app.db.prepare("SELECT email, email_key FROM customers WHERE email_key = ?1").bind(`${local}@example.com`).all();
  assert.deepEqual(rows.results, [{ email, email_key: `${local}@example.com` }], "one account, keyed by its Unicode lowercase");
  const login = await post("/v1/auth/login", { email: `${local}@EXAMPLE.com`, password: PASSWORD });
  assert.equal(login.status, 200, login.text);
});

test("bad input is 422 and registers nothing", async () => {
  const before = await app.count("customers");
  const email = fresh();
  for (const [body, pointer, code] of [
    [{ email, password: "short" }, "/password", "weak_password"],
    [{ email, password: "x".repeat(257) }, "/password", "weak_password"],
    [{ email, password: email }, "/password", "weak_password"],
    [{ email: "not-an-email", password: PASSWORD }, "/email", "invalid_email"],
    [{ email, password: PASSWORD, name: "A\u0000da" }, "/name", "invalid_name"],
    [{ email, password: PASSWORD, admin: true }, "/admin", "unknown_field"],
    [{ email }, "/password", "missing_field"],
  ]) {
    const p = assertProblem(await post("/v1/auth/register", body), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(body).slice(0, 60));
  }
  assert.equal(await app.count("customers"), before);
});

test("login, refresh, reuse of a rotated token revokes the family, logout", async () => {
  const email = fresh();
  assert.equal((await post("/v1/auth/register", { email, password: PASSWORD })).status, 202);
  const unknown = await post("/v1/auth/login", { email: fresh(), password: PASSWORD });
  const wrong = await post("/v1/auth/login", { email, password: "not the password at all" });
  assertProblem(unknown, 401, "invalid_credentials");
  assertProblem(wrong, 401, "invalid_credentials");
  assert.equal(unknown.body.detail, wrong.body.detail, "the same answer for an unknown address and a wrong password");

  const login = await post("/v1/auth/login", { email: email.toUpperCase(), password: PASSWORD });
  assert.equal(login.status, 200, login.text);
  assert.equal(login.headers.get("cache-control"), "no-store");
  const { access_token, refresh_token, expires_in, token_type } = login.body;
  assert.deepEqual([token_type, expires_in], ["Bearer", 900]);
  const me = await app.get("/v1/me", { headers: bearer(access_token) });
  assert.equal(me.status, 200, me.text);
  assert.deepEqual([me.body.email, me.body.email_verified], [email, false]);

  const refreshed = await post("/v1/auth/refresh", { refresh_token });
  assert.equal(refreshed.status, 200, refreshed.text);
  assert.notEqual(refreshed.body.refresh_token, refresh_token, "rotated");
  assert.equal((await app.get("/v1/me", { headers: bearer(refreshed.body.access_token) })).status, 200);
  // The first token again: replayed or stolen. The whole family goes, the newest token too.
  assertProblem(await post("/v1/auth/refresh", { refresh_token }), 401, "invalid_refresh_token");
  assertProblem(await post("/v1/auth/refresh", { refresh_token: refreshed.body.refresh_token }), 401, "invalid_refresh_token");

  // Another login is another family: logout ends it, twice is harmless.
  const second = await post("/v1/auth/login", { email, password: PASSWORD });
  assert.equal((await post("/v1/auth/logout", { refresh_token: second.body.refresh_token })).status, 204);
  assert.equal((await post("/v1/auth/logout", { refresh_token: second.body.refresh_token })).status, 204);
  assertProblem(await post("/v1/auth/refresh", { refresh_token: second.body.refresh_token }), 401, "invalid_refresh_token");
  assertProblem(await post("/v1/auth/refresh", { refresh_token: "not a token" }), 401, "invalid_refresh_token");

  // A login's tokens are shown once: a replay of the same key does not show them again.
  const key = randomUUID();
  assert.equal((await post("/v1/auth/login", { email, password: PASSWORD }, { "Idempotency-Key": key })).status, 200);
  assertProblem(await post("/v1/auth/login", { email, password: PASSWORD }, { "Idempotency-Key": key }), 409, "credentials_shown_once");
});

test("a customer token opens /v1/me only; other audiences are refused there", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const { access_token } = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  assertProblem(await app.get("/v1/me"), 401, "unauthenticated");
  const admin = await adminToken(["orders:read", "orders:write", "tickets:read"]);
  assertProblem(await app.get("/v1/me", { headers: bearer(admin) }), 401, "invalid_token");
  assertProblem(await app.get("/v1/admin/orders", { headers: bearer(access_token) }), 401, "invalid_token");
  assertProblem(await app.get(`/v1/tickets/tkt_${"0".repeat(32)}`, { headers: bearer(access_token) }), 401, "invalid_token");
});

test("logins are throttled per email with the platform's limiter", async () => {
  await freshLimiterWindow();
  const email = fresh();
  let res;
  for (let i = 0; i < 9; i++) res = await post("/v1/auth/login", { email, password: "not the password at all" });
  assertProblem(res, 429, "rate_limited");
  assert.ok(Number(res.headers.get("retry-after")) > 0);
});

test("the verification link works once", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const { token } = (await mailbox.link("account.email_verification", email)).data;
  const first = await post("/v1/auth/verify-email", { token });
  assert.equal(first.status, 200, first.text);
  assertProblem(await post("/v1/auth/verify-email", { token }), 422, "validation_failed");
  assertProblem(await post("/v1/auth/verify-email", { token: "x".repeat(43) }), 422, "validation_failed");
  const { access_token } = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  assert.equal((await app.get("/v1/me", { headers: bearer(access_token) })).body.email_verified, true);
});

/** The log line of the request that answered `res`. */
const logLine = (res) =>
  app.logs.map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((l) => l.request_id === res.headers.get("x-request-id") && l.level === "info");

test("a password reset answers every address alike, after the same work; works once, only the newest link, and revokes every session", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const session = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  const known = await post("/v1/auth/password-reset", { email });
  const unknown = await post("/v1/auth/password-reset", { email: fresh() });
  assert.equal(known.status, 202);
  assert.deepEqual(unknown.body, known.body);
  // Before the answer, both did the same D1 work; the link's batch runs after it.
  const [k, u] = [await eventually(() => logLine(known), "log"), await eventually(() => logLine(unknown), "log")];
  assert.deepEqual([k.d1_round_trips, k.d1_statements], [u.d1_round_trips, u.d1_statements]);
  const first = await mailbox.link("account.password_reset", email);
  assert.equal(first.data.customer_id, session.customer_id);
  const event = (await app.db.prepare("SELECT payload FROM outbox WHERE type = 'customer.password_reset_requested' AND json_extract(payload, '$.customer_id') = ?1").bind(session.customer_id).first("payload"));
  assert.ok(!event.includes(first.data.token), "the event carries no link");
  // A newer reset makes the earlier link unusable.
  assert.equal((await post("/v1/auth/password-reset", { email })).status, 202);
  const { token } = (await mailbox.link("account.password_reset", email, 2)).data;
  assert.notEqual(token, first.data.token);
  assertProblem(await post("/v1/auth/password-reset/confirm", { token: first.data.token, password: "a brand new passphrase" }), 422, "validation_failed");
  // A weak password changes nothing and leaves the link usable.
  const weak = assertProblem(await post("/v1/auth/password-reset/confirm", { token, password: "short" }), 422, "validation_failed");
  assert.equal(weak.errors[0].code, "weak_password");
  const NEW = "a brand new passphrase";
  assert.equal((await post("/v1/auth/password-reset/confirm", { token, password: NEW })).status, 204);
  assertProblem(await post("/v1/auth/password-reset/confirm", { token, password: "yet another passphrase" }), 422, "validation_failed");
  assertProblem(await post("/v1/auth/refresh", { refresh_token: session.refresh_token }), 401, "invalid_refresh_token");
  assertProblem(await post("/v1/auth/login", { email, password: PASSWORD }), 401, "invalid_credentials");
  assert.equal((await post("/v1/auth/login", { email, password: NEW })).status, 200);
});

test("a password change makes every outstanding reset link unusable", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  assert.equal((await post("/v1/auth/password-reset", { email })).status, 202);
  const { token } = (await mailbox.link("account.password_reset", email)).data;
  const { access_token } = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  const NEW = "a brand new passphrase";
  assert.equal((await post("/v1/me/password", { current_password: PASSWORD, new_password: NEW }, bearer(access_token))).status, 204);
  assertProblem(await post("/v1/auth/password-reset/confirm", { token, password: "an attacker's passphrase" }), 422, "validation_failed");
  assert.equal((await post("/v1/auth/login", { email, password: NEW })).status, 200);
});

test("changing the password needs the current one and revokes every session", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const one = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  const two = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  const change = (body, token = one.access_token) => post("/v1/me/password", body, bearer(token));
  const wrong = assertProblem(await change({ current_password: "not it at all", new_password: "a brand new passphrase" }), 422, "validation_failed");
  assert.equal(wrong.errors[0].code, "wrong_password");
  const weak = assertProblem(await change({ current_password: PASSWORD, new_password: email }), 422, "validation_failed");
  assert.equal(weak.errors[0].code, "weak_password");
  assertProblem(await post("/v1/me/password", { current_password: PASSWORD, new_password: "a brand new passphrase" }), 401, "unauthenticated");
  assert.equal((await change({ current_password: PASSWORD, new_password: "a brand new passphrase" })).status, 204);
  for (const session of [one, two]) assertProblem(await post("/v1/auth/refresh", { refresh_token: session.refresh_token }), 401, "invalid_refresh_token");
  assert.equal((await post("/v1/auth/login", { email, password: "a brand new passphrase" })).status, 200);
});

test("a customer keeps addresses with one default, and only their own", async () => {
  const login = async () => {
    const email = fresh();
    await post("/v1/auth/register", { email, password: PASSWORD });
    return bearer((await post("/v1/auth/login", { email, password: PASSWORD })).body.access_token);
  };
  const [ada, bob] = [await login(), await login()];
  const home = LONDON;
  const first = await post("/v1/me/addresses", home, ada);
  assert.equal(first.status, 201, first.text);
  assert.equal(first.body.default, true, "the first address is the default");
  const work = await post("/v1/me/addresses", { ...home, line1: "1 Analytical Way", postal_code: "N1 7AA" }, ada);
  assert.equal(work.body.default, false);
  const moved = await app.patch(`/v1/me/addresses/${work.body.id}`, { default: true, phone: "+44 20 7946 0000" }, { headers: ada });
  assert.equal(moved.status, 200, moved.text);
  assert.deepEqual([moved.body.default, moved.body.phone, moved.body.line1], [true, "+44 20 7946 0000", "1 Analytical Way"]);
  let list = (await app.get("/v1/me/addresses", { headers: ada })).body.data;
  assert.deepEqual(list.map((a) => [a.id, a.default]), [[work.body.id, true], [first.body.id, false]], "one default, listed first");

  // Bad fields are 422 and change nothing; another customer's address is 404 to them.
  const bad = assertProblem(await app.patch(`/v1/me/addresses/${work.body.id}`, { country: "Britain", city: "" }, { headers: ada }), 422, "validation_failed");
  assert.deepEqual(bad.errors.map((e) => e.pointer).sort(), ["/city", "/country"]);
  assertProblem(await app.patch(`/v1/me/addresses/${work.body.id}`, { city: "Paris" }, { headers: bob }), 404, "address_not_found");
  assertProblem(await app.del(`/v1/me/addresses/${work.body.id}`, { headers: bob }), 404, "address_not_found");
  assert.deepEqual((await app.get("/v1/me/addresses", { headers: bob })).body.data, []);
  assertProblem(await app.get("/v1/me/addresses", { headers: bearer(await adminToken(["orders:read"])) }), 401, "invalid_token");

  // Deleting the default makes the oldest remaining one the default.
  assert.equal((await app.del(`/v1/me/addresses/${work.body.id}`, { headers: ada })).status, 204);
  list = (await app.get("/v1/me/addresses", { headers: ada })).body.data;
  assert.deepEqual(list.map((a) => [a.id, a.default]), [[first.body.id, true]]);

  const renamed = await app.patch("/v1/me", { name: "  Ada King  " }, { headers: ada });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal(renamed.body.name, "Ada King");
  assertProblem(await app.patch("/v1/me", { name: "A\u0007" }, { headers: ada }), 422, "validation_failed");
  // A PATCH changes what it names: an empty one keeps the name, `null` clears it.
  const untouched = await app.patch("/v1/me", {}, { headers: ada });
  assert.equal(untouched.status, 200, untouched.text);
  assert.equal(untouched.body.name, "Ada King");
  assert.equal((await app.patch("/v1/me", { name: null }, { headers: ada })).body.name, null);
});

test("a checkout with the token links the order; the customer lists and reads only their own orders", async () => {
  const [ada, bob] = [await signedInCustomer(app), await signedInCustomer(app)];
  await restock(app, SKU, { onHand: 20 });
  const placed = [];
  for (let i = 0; i < 3; i++) {
    const { order } = await placeOrder(app, [{ sku: SKU, quantity: 1 }], { customer: ada });
    assert.equal(order.customer_id, ada.id);
    placed.push(order.id);
  }
  // A guest's order is nobody's.
  const guestOrder = await placeOrder(app, [{ sku: SKU, quantity: 1 }], { email: ada.email });
  assert.equal(guestOrder.order.customer_id, null);

  const page1 = await app.get("/v1/me/orders?limit=2", { headers: ada.auth });
  assert.equal(page1.status, 200, page1.text);
  assert.equal(page1.body.has_more, true);
  const page2 = await app.get(`/v1/me/orders?limit=2&cursor=${encodeURIComponent(page1.body.next_cursor)}`, { headers: ada.auth });
  const listed = [...page1.body.data, ...page2.body.data].map((o) => o.id);
  assert.deepEqual(listed, [...placed].reverse(), "newest first, the guest order absent");
  assert.equal(page2.body.has_more, false);
  assert.deepEqual((await app.get("/v1/me/orders", { headers: bob.auth })).body.data, []);
  assertProblem(await app.get("/v1/me/orders?status=paid", { headers: ada.auth }), 422, "validation_failed");
  assertProblem(await app.get("/v1/me/orders", { headers: bearer(await adminToken(["orders:read"])) }), 401, "invalid_token");

  const read = await app.get(`/v1/orders/${placed[0]}`, { headers: ada.auth });
  assert.equal(read.status, 200, read.text);
  assert.equal((await app.get(`/v1/orders/${placed[0]}/payment`, { headers: ada.auth })).status, 200);
  assertProblem(await app.get(`/v1/orders/${placed[0]}`, { headers: bob.auth }), 403, "forbidden");
  assertProblem(await app.get(`/v1/orders/${placed[0]}/payment`, { headers: bob.auth }), 403, "forbidden");
  assertProblem(await app.get(`/v1/orders/${guestOrder.order.id}`, { headers: ada.auth }), 403, "forbidden");
});

test("a customer's points ledger lists their own entries, newest first, a page at a time", async () => {
  const [ada, bob] = [await signedInCustomer(app), await signedInCustomer(app)];
  const admin = `Bearer ${await adminToken(["orders:write"])}`;
  await restock(app, SKU, { onHand: 20 });
  const ledger = (query = "", headers = ada.auth) => app.get(`/v1/me/points${query}`, { headers });
  // Each paid order earns its points once order.paid is applied (the rules: membership.test.mjs).
  const first = (await paidOrder(app, [{ sku: SKU, quantity: 1 }], admin, { customer: ada })).order;
  await eventually(async () => (await ledger()).body.data.length === 1, "the first order's points");
  const second = (await paidOrder(app, [{ sku: SKU, quantity: 2 }], admin, { customer: ada })).order;
  await eventually(async () => (await ledger()).body.data.length === 2, "the second order's points");

  const page = await ledger("?limit=1");
  assert.equal(page.status, 200, page.text);
  assert.deepEqual([page.body.data.map((e) => [e.kind, e.order_id]), page.body.has_more], [[["earned", second.id]], true], "newest first");
  const next = await ledger(`?limit=1&cursor=${encodeURIComponent(page.body.next_cursor)}`);
  assert.equal(next.status, 200, next.text);
  assert.deepEqual([next.body.data.map((e) => [e.kind, e.order_id]), next.body.has_more, next.body.next_cursor], [[["earned", first.id]], false, null]);
  const entries = [...page.body.data, ...next.body.data];
  assert.ok(entries.every((e) => e.points > 0));
  const balance = (await app.get("/v1/me", { headers: ada.auth })).body.membership.points;
  assert.equal(balance, entries.reduce((sum, e) => sum + e.points, 0), "the balance is the ledger's sum");
  assert.deepEqual((await ledger("", bob.auth)).body.data, [], "nobody else's entries");
  assertProblem(await app.get("/v1/me/points"), 401, "unauthenticated");
  assertProblem(await ledger("", bearer(await adminToken(["orders:read"]))), 401, "invalid_token");
  assertProblem(await ledger("?limit=0"), 422, "validation_failed");
});

test("DELETE /v1/me erases the customer's personal data; their orders stay, anonymised", async () => {
  const ada = await signedInCustomer(app);
  await restock(app, SKU, { onHand: 20 });
  const placed = await placeOrder(app, [{ sku: SKU, quantity: 1 }], { customer: ada });
  assert.equal((await app.post("/v1/me/addresses", LONDON, { headers: { ...ada.auth, ...key() } })).status, 201);
  const erase = (password, headers = ada.auth) => app.request("DELETE", "/v1/me", { json: { password }, headers: { ...headers, ...key() } });

  assert.equal(assertProblem(await erase("not the password"), 422, "validation_failed").errors[0].code, "wrong_password");
  // The order is still on its way: nothing is erased.
  assertProblem(await erase(PASSWORD), 409, "orders_in_progress");
  assert.equal((await app.get("/v1/me", { headers: ada.auth })).body.email, ada.email);

  const admin = { Authorization: `Bearer ${await adminToken(["orders:write", "orders:read"])}` };
  assert.equal((await app.post(`/v1/admin/orders/${placed.order.id}/cancel`, {}, { headers: admin })).status, 200);
  const refresh = await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD }, { headers: key() });
  assert.equal((await erase(PASSWORD)).status, 204);

  // Gone: the profile, the login, the sessions, the addresses; the order stays without her.
  assertProblem(await app.get("/v1/me", { headers: ada.auth }), 401, "invalid_token");
  assertProblem(await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD }, { headers: key() }), 401, "invalid_credentials");
  assertProblem(await app.post("/v1/auth/refresh", { refresh_token: refresh.body.refresh_token }, { headers: key() }), 401, "invalid_refresh_token");
  assert.equal(await app.db.prepare("SELECT count(*) AS n FROM customer_addresses WHERE customer_id = ?1").bind(ada.id).first("n"), 0);
  assert.equal(await app.db.prepare("SELECT count(*) AS n FROM account_messages WHERE customer_id = ?1").bind(ada.id).first("n"), 0, "her links went too");
  const order = (await app.get(`/v1/orders/${placed.order.id}`, { headers: admin })).body;
  assert.equal(order.status, "cancelled");
  assert.match(order.email, /^erased-[0-9a-f]{32}@erased\.invalid$/);
  assert.deepEqual(order.shipping_address, { name: "erased", line1: "erased", city: "erased", postal_code: "erased", country: "GB" });
  const stored = JSON.stringify(await app.db.prepare("SELECT * FROM customers WHERE id = ?1").bind(ada.id).first());
  assert.ok(!stored.includes(ada.email.split("@")[0]), "the address is gone from the account");
  const erased = await app.db.prepare("SELECT payload FROM outbox WHERE type = 'customer.erased' AND json_extract(payload, '$.customer_id') = ?1").bind(ada.id).first("payload");
  assert.ok(erased, "customer.erased tells the merchant's other systems");
  // The access token issued before lives a few more minutes: nothing it asks for brings personal data back.
  assertProblem(await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } }), 401, "invalid_token");
  assertProblem(await app.post("/v1/me/addresses", LONDON, { headers: { ...ada.auth, ...key() } }), 401, "invalid_token");
  assertProblem(await app.patch("/v1/me", { name: "Ada again" }, { headers: { ...ada.auth, ...key() } }), 401, "invalid_token");
  assert.equal(await app.db.prepare("SELECT name FROM customers WHERE id = ?1").bind(ada.id).first("name"), null);
  // The address can register again, as a new customer.
  assert.equal((await app.post("/v1/auth/register", { email: ada.email, password: PASSWORD }, { headers: key() })).status, 202);
  const again = await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD }, { headers: key() });
  assert.notEqual(again.body.customer_id, ada.id);
});

test("account mail the endpoint refuses for now is retried by the cron, then kept nowhere", async () => {
  mailbox.answer(503);
  const email = fresh();
  assert.equal((await post("/v1/auth/register", { email, password: PASSWORD })).status, 202);
  const pending = () =>
    app.db.prepare("SELECT m.id, m.status, m.attempts, m.body IS NOT NULL AS kept FROM account_messages m JOIN customers c ON c.id = m.customer_id WHERE c.email_key = ?1").bind(email).first();
  const first = await eventually(async () => ((await pending())?.attempts === 1 ? pending() : null), "the first attempt");
  assert.deepEqual([first.status, first.kept], ["pending", 1]);
  mailbox.answer(204);
  // Due now: the accounts worker's cron sends it.
  await app.db.prepare("UPDATE account_messages SET next_attempt_at = 0 WHERE id = ?1").bind(first.id).run();
  await (await app.mf.getWorker("shop-accounts")).scheduled({ cron: "* * * * *" });
  const message = await mailbox.link("account.email_verification", email);
  assert.equal(message.id, first.id, "webhook-id is the message's id");
  const done = await pending();
  assert.deepEqual([done.status, done.attempts, done.kept], ["delivered", 2, 0]);
  // The database keeps no body outside pending, whatever the statement.
  await assert.rejects(app.db.prepare("UPDATE account_messages SET body = 'x' WHERE id = ?1").bind(first.id).run(), /CHECK constraint failed/);
  assert.equal(mailbox.refused.length, 0, "every message verified with the official library");
});

test("guesses of the current password are throttled per customer, before any hash", async () => {
  await freshLimiterWindow();
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const { access_token } = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  const guess = (i) => post("/v1/me/password", { current_password: `guess number ${i}`, new_password: "a brand new passphrase" }, bearer(access_token));
  for (let i = 0; i < 3; i++) assert.equal(assertProblem(await guess(i), 422, "validation_failed").errors[0].code, "wrong_password");
  const limited = assertProblem(await guess(3), 429, "rate_limited");
  assert.ok(limited);
  // Erasure asks for the password too: the same limit.
  assertProblem(await app.request("DELETE", "/v1/me", { json: { password: PASSWORD }, headers: { ...bearer(access_token), "Idempotency-Key": randomUUID() } }), 429, "rate_limited");
  assert.equal((await app.get("/v1/me", { headers: bearer(access_token) })).status, 200, "nothing was erased");
});
