// Carts and orders of signed-in customers: a cart created with an access token is the
// customer's and answers only to their token; a guest cart joins the customer's cart on login
// (quantities capped); erasure reaches the customer's tickets and payments, never another
// person's; account mail waits while no endpoint is configured. (A customer's orders and points
// as they list them, and erasure itself: accounts.test.mjs.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { adminToken, assertProblem, CUSTOMER_PASSWORD as PASSWORD, newCart, signedInCustomer, spawnApp } from "./helpers.mjs";
import { LONDON as address, placeOrder, restock, standardPaymentSucceeded } from "./fixtures.mjs";

const ACME_SECRET = `whsec_${randomBytes(32).toString("base64")}`;
let app;
before(async () => (app = await spawnApp({ vars: { PAYMENT_WEBHOOK_SECRETS_ACME: ACME_SECRET } })));
after(async () => app?.close());

const key = () => ({ "Idempotency-Key": randomUUID() });
const bearer = (token) => ({ Authorization: `Bearer ${token}` });

const customer = () => signedInCustomer(app);

async function stockedSku(onHand) {
  const sku = await app.db
    .prepare("SELECT i.sku FROM inventory i JOIN prices p ON p.sku = i.sku AND p.currency = 'EUR' ORDER BY i.sku LIMIT 1 OFFSET ?1")
    .bind(Math.floor(Math.random() * 5))
    .first("sku");
  await restock(app, sku, { onHand });
  return sku;
}

const add = (cartId, sku, quantity, headers = {}) => app.post(`/v1/carts/${cartId}/items`, { sku, quantity }, { headers });

test("a customer's cart answers only to their token", async () => {
  const [ada, bob] = [await customer(), await customer()];
  const created = await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } });
  assert.equal(created.status, 201, created.text);
  const id = created.body.id;
  assert.equal(await app.db.prepare("SELECT customer_id FROM carts WHERE id = ?1").bind(id).first("customer_id"), ada.id);
  const sku = await stockedSku(50);
  assert.equal((await add(id, sku, 2, ada.auth)).status, 200);

  const admin = await adminToken(["orders:read"]);
  for (const headers of [{}, bob.auth, bearer(admin)]) {
    assertProblem(await app.get(`/v1/carts/${id}`, { headers }), 404, "cart_not_found");
    assertProblem(await add(id, sku, 1, headers), 404, "cart_not_found");
    assertProblem(await app.post(`/v1/carts/${id}/checkout`, { email: "x@example.com", shipping_address: address, shipping_method: "standard", payment_provider: "test" }, { headers: { ...headers, ...key() } }), 404, "cart_not_found");
  }
  // A forged or garbled customer token is refused, never taken for a guest.
  assertProblem(await app.get(`/v1/carts/${id}`, { headers: bearer(ada.token.slice(0, -4) + "AAAA") }), 401, "invalid_token");
  assertProblem(await app.post("/v1/carts", { currency: "EUR" }, { headers: bearer("not.a.jwt") }), 401, "invalid_token");
  const mine = await app.get(`/v1/carts/${id}`, { headers: ada.auth });
  assert.equal(mine.status, 200, mine.text);
  assert.equal(mine.body.item_count, 2);

  // A replayed key answers only its own caller: another customer's same key is a new request.
  const k = key();
  const first = await add(id, sku, 1, { ...ada.auth, ...k });
  assert.equal(first.status, 200);
  assertProblem(await add(id, sku, 1, { ...bob.auth, ...k }), 404, "cart_not_found");
});

test("a guest cart joins the customer's cart on login, quantities capped by stock", async () => {
  const ada = await customer();
  const sku = await stockedSku(10);
  const theirs = (await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } })).body.id;
  assert.equal((await add(theirs, sku, 6, ada.auth)).status, 200);

  const guest = await newCart(app);
  assert.equal((await add(guest.id, sku, 7)).status, 200);
  const login = await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD, cart_id: guest.id }, { headers: key() });
  assert.equal(login.status, 200, login.text);
  assert.equal(login.body.cart_id, theirs, "merged into the customer's cart");
  const merged = await app.get(`/v1/carts/${theirs}`, { headers: bearer(login.body.access_token) });
  assert.deepEqual(merged.body.lines.map((l) => [l.sku, l.quantity]), [[sku, 10]], "6 + 7, capped at the 10 in stock");
  assertProblem(await app.get(`/v1/carts/${guest.id}`), 404, "cart_not_found");

  // A customer without a cart: the guest cart becomes theirs, and no longer opens without the token.
  const bob = await customer();
  const other = await newCart(app);
  assert.equal((await add(other.id, sku, 1)).status, 200);
  const bobLogin = await app.post("/v1/auth/login", { email: bob.email, password: PASSWORD, cart_id: other.id }, { headers: key() });
  assert.equal(bobLogin.body.cart_id, other.id);
  assertProblem(await app.get(`/v1/carts/${other.id}`), 404, "cart_not_found");
  assert.equal((await app.get(`/v1/carts/${other.id}`, { headers: bearer(bobLogin.body.access_token) })).status, 200);
  // Ada's cart cannot be taken over by signing in with its id.
  const steal = await app.post("/v1/auth/login", { email: bob.email, password: PASSWORD, cart_id: theirs }, { headers: key() });
  assert.equal(steal.body.cart_id, other.id, "Bob keeps his own cart");
  assert.equal(await app.db.prepare("SELECT customer_id FROM carts WHERE id = ?1").bind(theirs).first("customer_id"), ada.id);
  // A malformed cart id is refused before anything.
  const bad = await app.post("/v1/auth/login", { email: bob.email, password: PASSWORD, cart_id: "cart_nope" }, { headers: key() });
  assert.equal(assertProblem(bad, 422, "validation_failed").errors[0].code, "invalid_cart_id");
});

test("with no account mail endpoint configured, links are sent nowhere: they wait, unreadable to events, and the cron says why", async () => {
  const ada = await customer();
  const message = await app.db.prepare("SELECT status, attempts, body FROM account_messages WHERE customer_id = ?1").bind(ada.id).first();
  assert.equal(message.status, "pending");
  assert.equal(message.attempts, 0, "nothing was attempted anywhere");
  const accounts = await app.mf.getWorker("shop-accounts");
  await accounts.scheduled({ cron: "* * * * *" });
  assert.ok(app.logs.some((l) => l.includes("ACCOUNT_MAIL_URL or ACCOUNT_MAIL_SECRET is not set")), "the cron logs why");
  assert.equal(await app.db.prepare("SELECT attempts FROM account_messages WHERE customer_id = ?1").bind(ada.id).first("attempts"), 0);
});

const paymentSucceeded = (placed) =>
  standardPaymentSucceeded(app, { provider: "acme", secret: ACME_SECRET }, placed, { extra: { billing_details: { name: "Ada Lovelace", email: "ada.billing@example.com" } } });

test("erasure reaches the customer's own tickets and payment payloads, never another person's guest tickets", async () => {
  const ticket = (body, headers = {}) => app.post("/v1/tickets", { subject: "Where is it?", message: "Hello", category: "other", ...body }, { headers: { ...headers, ...key() } });
  const row = (id) => app.db.prepare("SELECT email, name, customer_id FROM tickets WHERE id = ?1").bind(id).first();

  // A guest's ticket; then someone registers the guest's address without proving it is theirs
  // and erases "their" account: the guest's ticket is untouched.
  const victim = `victim-${randomUUID().slice(0, 8)}@example.com`;
  const guest = await ticket({ email: victim, name: "Vic Tim" });
  assert.equal(guest.status, 201, guest.text);
  assert.equal((await app.post("/v1/auth/register", { email: victim, password: PASSWORD }, { headers: key() })).status, 202);
  const squatter = (await app.post("/v1/auth/login", { email: victim, password: PASSWORD }, { headers: key() })).body;
  assert.equal((await app.request("DELETE", "/v1/me", { json: { password: PASSWORD }, headers: { ...bearer(squatter.access_token), ...key() } })).status, 204);
  assert.deepEqual(await row(guest.body.ticket.id), { email: victim, name: "Vic Tim", customer_id: null });

  // A customer whose address is verified: a guest ticket under it, and one filed signed in under
  // another address (linked to the account), are both theirs.
  const ada = await customer();
  await app.db.prepare("UPDATE customers SET email_verified_at = 1 WHERE id = ?1").bind(ada.id).run();
  const before = await ticket({ email: ada.email, name: "Ada" });
  const signed = await ticket({ email: "ada.other@example.com", name: "Ada" }, ada.auth);
  assert.equal(signed.status, 201, signed.text);
  assert.equal((await row(signed.body.ticket.id)).customer_id, ada.id, "a ticket filed signed in is linked to the customer");
  // A paid order of hers, whose provider payload carries billing details, then cancelled.
  const sku = await stockedSku(20);
  const { order: placed } = await placeOrder(app, [{ sku, quantity: 1 }], { customer: ada });
  assert.equal((await paymentSucceeded(placed)).body.outcome, "paid");
  const admin = { Authorization: `Bearer ${await adminToken(["orders:write"])}` };
  assert.equal((await app.post(`/v1/admin/orders/${placed.id}/cancel`, {}, { headers: admin })).status, 200);
  assert.match(await app.db.prepare("SELECT payload FROM payment_events WHERE order_id = ?1").bind(placed.id).first("payload"), /ada\.billing/);

  assert.equal((await app.request("DELETE", "/v1/me", { json: { password: PASSWORD }, headers: { ...ada.auth, ...key() } })).status, 204);
  for (const id of [before.body.ticket.id, signed.body.ticket.id]) {
    const erased = await row(id);
    assert.match(erased.email, /^erased-[0-9a-f]{32}@erased\.invalid$/);
    assert.equal(erased.name, null);
  }
  const announced = (await app.db.prepare("SELECT payload FROM outbox WHERE type = 'ticket.created'").all()).results.map((r) => r.payload).join("\n");
  assert.ok(!announced.includes(ada.email) && !announced.includes("ada.other@example.com"), "ticket.created keeps no address of hers");
  assert.ok(announced.includes(victim), "the guest's announcement is untouched");
  const payloads = (await app.db.prepare("SELECT payload FROM payment_events WHERE order_id = ?1").bind(placed.id).all()).results;
  assert.deepEqual(payloads.map((p) => JSON.parse(p.payload)), [{ erased: 1 }], "the provider's payload is gone, the ledger's facts stay");
  assertProblem(await ticket({ email: "ada.again@example.com" }, ada.auth), 401, "invalid_token");
});
