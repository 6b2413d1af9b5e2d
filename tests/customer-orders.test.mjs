// Carts and orders of signed-in customers: a cart created with an access token is the
// customer's and answers only to their token; a guest cart joins the customer's cart on login
// (quantities capped); a checkout with the token links the order, which the customer lists and
// reads, and no other customer can.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { adminToken, assertProblem, CUSTOMER_PASSWORD as PASSWORD, minor, newCart, signedInCustomer, spawnApp, standardPaymentSucceeded } from "./helpers.mjs";

const ACME_SECRET = `whsec_${randomBytes(32).toString("base64")}`;
let app;
before(async () => (app = await spawnApp({ vars: { PAYMENT_WEBHOOK_SECRETS_ACME: ACME_SECRET } })));
after(async () => app?.close());

const key = () => ({ "Idempotency-Key": randomUUID() });
const bearer = (token) => ({ Authorization: `Bearer ${token}` });
const address = { name: "Ada Lovelace", line1: "1 Analytical Way", city: "London", postal_code: "N1 7AA", country: "GB" };

const customer = () => signedInCustomer(app);

async function stockedSku(onHand) {
  const sku = await app.db
    .prepare("SELECT i.sku FROM inventory i JOIN prices p ON p.sku = i.sku AND p.currency = 'EUR' ORDER BY i.sku LIMIT 1 OFFSET ?1")
    .bind(Math.floor(Math.random() * 5))
    .first("sku");
  await app.db.prepare("UPDATE inventory SET on_hand = ?2, reserved = 0 WHERE sku = ?1").bind(sku, onHand).run();
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

test("a checkout with the token links the order; the customer lists and reads only their own orders", async () => {
  const [ada, bob] = [await customer(), await customer()];
  const sku = await stockedSku(20);
  const placed = [];
  for (let i = 0; i < 3; i++) {
    const cart = (await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } })).body.id;
    assert.equal((await add(cart, sku, 1, ada.auth)).status, 200);
    const res = await app.post(`/v1/carts/${cart}/checkout`, { email: ada.email, shipping_address: address, shipping_method: "standard", payment_provider: "test" }, { headers: { ...ada.auth, ...key() } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.order.customer_id, ada.id);
    placed.push(res.body.order.id);
  }
  // A guest's order is nobody's.
  const guestCart = await newCart(app);
  await add(guestCart.id, sku, 1);
  const guestOrder = await app.post(`/v1/carts/${guestCart.id}/checkout`, { email: ada.email, shipping_address: address, shipping_method: "standard", payment_provider: "test" }, { headers: key() });
  assert.equal(guestOrder.body.order.customer_id, null);

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
  assertProblem(await app.get(`/v1/orders/${guestOrder.body.order.id}`, { headers: ada.auth }), 403, "forbidden");
});

test("DELETE /v1/me erases the customer's personal data; their orders stay, anonymised", async () => {
  const ada = await customer();
  const sku = await stockedSku(20);
  const cart = (await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } })).body.id;
  await add(cart, sku, 1, ada.auth);
  const placed = await app.post(`/v1/carts/${cart}/checkout`, { email: ada.email, shipping_address: address, shipping_method: "standard", payment_provider: "test" }, { headers: { ...ada.auth, ...key() } });
  assert.equal(placed.status, 201, placed.text);
  assert.equal((await app.post("/v1/me/addresses", address, { headers: { ...ada.auth, ...key() } })).status, 201);
  const erase = (password, headers = ada.auth) => app.request("DELETE", "/v1/me", { json: { password }, headers: { ...headers, ...key() } });

  assert.equal(assertProblem(await erase("not the password"), 422, "validation_failed").errors[0].code, "wrong_password");
  // The order is still on its way: nothing is erased.
  assertProblem(await erase(PASSWORD), 409, "orders_in_progress");
  assert.equal((await app.get("/v1/me", { headers: ada.auth })).body.email, ada.email);

  const admin = { Authorization: `Bearer ${await adminToken(["orders:write", "orders:read"])}` };
  assert.equal((await app.post(`/v1/admin/orders/${placed.body.order.id}/cancel`, {}, { headers: admin })).status, 200);
  const refresh = await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD }, { headers: key() });
  assert.equal((await erase(PASSWORD)).status, 204);

  // Gone: the profile, the login, the sessions, the addresses; the order stays without her.
  assertProblem(await app.get("/v1/me", { headers: ada.auth }), 401, "invalid_token");
  assertProblem(await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD }, { headers: key() }), 401, "invalid_credentials");
  assertProblem(await app.post("/v1/auth/refresh", { refresh_token: refresh.body.refresh_token }, { headers: key() }), 401, "invalid_refresh_token");
  assert.equal(await app.db.prepare("SELECT count(*) AS n FROM customer_addresses WHERE customer_id = ?1").bind(ada.id).first("n"), 0);
  assert.equal(await app.db.prepare("SELECT count(*) AS n FROM account_messages WHERE customer_id = ?1").bind(ada.id).first("n"), 0, "her links went too");
  const order = (await app.get(`/v1/orders/${placed.body.order.id}`, { headers: admin })).body;
  assert.equal(order.status, "cancelled");
  assert.match(order.email, /^erased-[0-9a-f]{32}@erased\.invalid$/);
  assert.deepEqual(order.shipping_address, { name: "erased", line1: "erased", city: "erased", postal_code: "erased", country: "GB" });
  const stored = JSON.stringify(await app.db.prepare("SELECT * FROM customers WHERE id = ?1").bind(ada.id).first());
  assert.ok(!stored.includes(ada.email.split("@")[0]), "the address is gone from the account");
  const erased = await app.db.prepare("SELECT payload FROM outbox WHERE type = 'customer.erased' AND json_extract(payload, '$.customer_id') = ?1").bind(ada.id).first("payload");
  assert.ok(erased, "customer.erased tells the merchant's other systems");
  // The access token issued before lives a few more minutes: nothing it asks for brings personal data back.
  assertProblem(await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } }), 401, "invalid_token");
  assertProblem(await app.post("/v1/me/addresses", address, { headers: { ...ada.auth, ...key() } }), 401, "invalid_token");
  assertProblem(await app.patch("/v1/me", { name: "Ada again" }, { headers: { ...ada.auth, ...key() } }), 401, "invalid_token");
  assert.equal(await app.db.prepare("SELECT name FROM customers WHERE id = ?1").bind(ada.id).first("name"), null);
  // The address can register again, as a new customer.
  assert.equal((await app.post("/v1/auth/register", { email: ada.email, password: PASSWORD }, { headers: key() })).status, 202);
  const again = await app.post("/v1/auth/login", { email: ada.email, password: PASSWORD }, { headers: key() });
  assert.notEqual(again.body.customer_id, ada.id);
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
  const cart = (await app.post("/v1/carts", { currency: "EUR" }, { headers: { ...ada.auth, ...key() } })).body.id;
  await add(cart, sku, 1, ada.auth);
  const placed = (await app.post(`/v1/carts/${cart}/checkout`, { email: ada.email, shipping_address: address, shipping_method: "standard", payment_provider: "test" }, { headers: { ...ada.auth, ...key() } })).body.order;
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
