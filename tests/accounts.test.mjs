// Customer accounts: register → login → refresh → a rotated token used again revokes the family
// → logout; bad input; the same answers for unknown and known addresses; tokens of one audience
// refused where another is expected.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, GENEROUS_LIMITS, spawnApp } from "./helpers.mjs";

let app;
before(async () => (app = await spawnApp({ rateLimits: { ...GENEROUS_LIMITS, AUTH_BY_EMAIL: 8 } })));
after(async () => app?.close());

const fresh = () => `shopper-${randomUUID().slice(0, 8)}@example.com`;
const PASSWORD = "correct horse battery staple";
const post = (p, body, headers = {}) => app.post(p, body, { headers: { "Idempotency-Key": randomUUID(), ...headers } });
const bearer = (token) => ({ Authorization: `Bearer ${token}` });

test("register answers 202 for a new and a known address alike; customer.registered carries a verification token", async () => {
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
  assert.match(mine[0].verification_token, /^[A-Za-z0-9_-]{43}$/);
  const stored = await app.db.prepare("SELECT token_hash FROM customer_tokens WHERE customer_id = ?1").bind(mine[0].customer_id).first("token_hash");
  assert.notEqual(stored, mine[0].verification_token, "only the token's digest is stored");
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
  const email = fresh();
  let res;
  for (let i = 0; i < 9; i++) res = await post("/v1/auth/login", { email, password: "not the password at all" });
  assertProblem(res, 429, "rate_limited");
  assert.ok(Number(res.headers.get("retry-after")) > 0);
});

const outboxEvent = async (type, email) => {
  const rows = (await app.db.prepare("SELECT payload FROM outbox WHERE type = ?1").bind(type).all()).results.map((r) => JSON.parse(r.payload));
  return rows.filter((e) => e.email === email).at(-1);
};

test("the verification link works once", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const { verification_token } = await outboxEvent("customer.registered", email);
  const first = await post("/v1/auth/verify-email", { token: verification_token });
  assert.equal(first.status, 200, first.text);
  assertProblem(await post("/v1/auth/verify-email", { token: verification_token }), 422, "validation_failed");
  assertProblem(await post("/v1/auth/verify-email", { token: "x".repeat(43) }), 422, "validation_failed");
  const { access_token } = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  assert.equal((await app.get("/v1/me", { headers: bearer(access_token) })).body.email_verified, true);
});

test("a password reset answers every address alike, works once and revokes every session", async () => {
  const email = fresh();
  await post("/v1/auth/register", { email, password: PASSWORD });
  const session = (await post("/v1/auth/login", { email, password: PASSWORD })).body;
  const known = await post("/v1/auth/password-reset", { email });
  const unknown = await post("/v1/auth/password-reset", { email: fresh() });
  assert.equal(known.status, 202);
  assert.deepEqual(unknown.body, known.body);
  const { reset_token, customer_id } = await outboxEvent("customer.password_reset_requested", email);
  assert.equal(customer_id, session.customer_id);
  // A weak password changes nothing and leaves the link usable.
  const weak = assertProblem(await post("/v1/auth/password-reset/confirm", { token: reset_token, password: "short" }), 422, "validation_failed");
  assert.equal(weak.errors[0].code, "weak_password");
  const NEW = "a brand new passphrase";
  assert.equal((await post("/v1/auth/password-reset/confirm", { token: reset_token, password: NEW })).status, 204);
  assertProblem(await post("/v1/auth/password-reset/confirm", { token: reset_token, password: "yet another passphrase" }), 422, "validation_failed");
  assertProblem(await post("/v1/auth/refresh", { refresh_token: session.refresh_token }), 401, "invalid_refresh_token");
  assertProblem(await post("/v1/auth/login", { email, password: PASSWORD }), 401, "invalid_credentials");
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
  const home = { name: "Ada Lovelace", line1: "12 St James's Square", city: "London", postal_code: "SW1Y 4JH", country: "GB" };
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
});
