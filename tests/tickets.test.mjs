// Customer-service tickets: a customer submits from the storefront and follows the ticket with
// its token; agents answer with admin tokens; the merchant's help desk receives each step as a
// signed webhook; the stats route reports service times over known timestamps.
// operationIds: submitTicket, getTicket, listTicketMessages, replyToTicket, rateTicket, listTickets, updateTicket, ticketStats
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { adminToken, assertProblem, eventually, GENEROUS_LIMITS, spawnApp, freshLimiterWindow } from "./helpers.mjs";
import { LONDON, restock, shippedOrder } from "./fixtures.mjs";

let app, server, base, agent, reader, helpdeskSecret;
const helpdesk = [];

before(async () => {
  // The merchant's help desk: keeps what verifies with the official Standard Webhooks library.
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      try {
        helpdesk.push(new Webhook(helpdeskSecret).verify(body, req.headers));
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  app = await spawnApp({
    vars: { WEBHOOKS_ALLOW_INSECURE_URLS: "true" },
    rateLimits: { ...GENEROUS_LIMITS, TICKETS_BY_EMAIL: 3, TICKETS_BY_CLIENT: 1000, TICKET_REPLIES_BY_TICKET: 6 },
  });
  agent = { Authorization: `Bearer ${await adminToken(["tickets:read", "tickets:write"], { sub: "agent-ada" })}` };
  reader = { Authorization: `Bearer ${await adminToken(["tickets:read"])}` };
  const hook = await app.post(
    "/v1/admin/webhook-endpoints",
    { url: `${base}/helpdesk`, event_types: ["ticket.created", "ticket.replied", "ticket.resolved"] },
    { headers: { Authorization: `Bearer ${await adminToken(["webhooks:write"])}` } },
  );
  assert.equal(hook.status, 201, hook.text);
  helpdeskSecret = hook.body.secret;
});
after(async () => {
  await app?.close();
  server?.close();
});

let emails = 0;
const freshEmail = () => `customer${++emails}-${randomUUID().slice(0, 8)}@example.com`;

const submit = (body, headers = {}) => app.post("/v1/tickets", body, { headers: { "Idempotency-Key": randomUUID(), ...headers } });
const ticketOf = (res) => ({ id: res.body.ticket.id, auth: { Authorization: `Bearer ${res.body.ticket_token}` } });
const valid = (email = freshEmail()) => ({ email, subject: "Where is my parcel?", message: "Hello,\nit has not arrived.", category: "shipping" });

/** A paid order of two hoodies, one of them shipped (ups), placed with `email`. */
async function order(email) {
  const sku = "ZIPHOODIE-M-GREY";
  await restock(app, sku);
  const admin = `Bearer ${await adminToken(["orders:write"])}`;
  return (await shippedOrder(app, [{ sku, quantity: 2 }], admin, { email, address: LONDON, shipLines: [{ sku, quantity: 1 }], carrier: "ups" })).order;
}

test("a submission is checked field by field and changes nothing when it is bad", async () => {
  const before = await app.count("tickets");
  const p = assertProblem(
    await submit({ email: "nope", name: "A\u202Eda", subject: "s".repeat(201), message: "bell\u0007", category: "complaint", order_number: "x".repeat(40) }),
    422,
    "validation_failed",
  );
  assert.deepEqual(
    p.errors.map((e) => [e.pointer, e.code]),
    [["/email", "invalid_email"], ["/name", "invalid_characters"], ["/subject", "invalid_length"], ["/message", "invalid_characters"], ["/category", "invalid_category"], ["/order_number", "invalid_order_number"]],
  );
  for (const [body, pointer, code] of [
    [{ ...valid(), message: "m".repeat(10001) }, "/message", "invalid_length"],
    [{ ...valid(), subject: "  " }, "/subject", "invalid_length"],
    [{ ...valid(), subject: "Line\nbreak" }, "/subject", "invalid_characters"],
    [{ ...valid(), extra: 1 }, "/extra", "unknown_field"],
    [{ email: "a@example.com", subject: "s", category: "other" }, "/message", "missing_field"],
  ]) {
    const res = assertProblem(await submit(body), 422, "validation_failed");
    assert.deepEqual([res.errors[0].pointer, res.errors[0].code], [pointer, code], JSON.stringify(body).slice(0, 80));
  }
  assertProblem(await app.request("POST", "/v1/tickets", { body: "{", headers: { "Content-Type": "application/json" } }), 400, "malformed_json");
  assert.equal(await app.count("tickets"), before);
});

test("a ticket is numbered for humans, opened by its token only, and announced as ticket.created", async () => {
  const key = randomUUID();
  const email = freshEmail();
  const res = await submit({ ...valid(email), name: " Ada ", message: "Hello,\r\n<b>not HTML</b>" }, { "Idempotency-Key": key });
  assert.equal(res.status, 201, res.text);
  const t = res.body.ticket;
  assert.match(t.number, new RegExp(`^T-${new Date().getUTCFullYear()}-\\d{6}$`));
  assert.equal(res.headers.get("location"), `/v1/tickets/${t.id}`);
  assert.deepEqual([t.status, t.priority, t.category, t.name, t.order], ["open", "normal", "shipping", "Ada", null]);
  assert.deepEqual(t.messages.map((m) => [m.seq, m.author, m.body]), [[1, "customer", "Hello,\n<b>not HTML</b>"]], "kept as plain text");
  // A replay answers the same ticket with a fresh token; nothing is submitted twice.
  const count = await app.count("tickets");
  const replay = await submit({ ...valid(email), name: " Ada ", message: "Hello,\r\n<b>not HTML</b>" }, { "Idempotency-Key": key });
  assert.equal(replay.status, 201);
  assert.deepEqual(replay.body.ticket, t);
  assert.ok(replay.body.ticket_token);
  assert.equal(await app.count("tickets"), count);

  const { id, auth } = ticketOf(res);
  const read = await app.get(`/v1/tickets/${id}`, { headers: auth });
  assert.equal(read.status, 200, read.text);
  assert.deepEqual(read.body, t);
  // Another ticket's token, no token, an order's token, an admin token without the scope.
  const other = ticketOf(await submit(valid()));
  assertProblem(await app.get(`/v1/tickets/${id}`, { headers: other.auth }), 403, "wrong_resource");
  assertProblem(await app.get(`/v1/tickets/${id}`), 401, "unauthenticated");
  const orderToken = await adminToken(["order:read"], { aud: "shop-order", sub: "ord_x" });
  assertProblem(await app.get(`/v1/tickets/${id}`, { headers: { Authorization: `Bearer ${orderToken}` } }), 401, "invalid_token");
  const noScope = { Authorization: `Bearer ${await adminToken(["orders:read"])}` };
  assertProblem(await app.get(`/v1/tickets/${id}`, { headers: noScope }), 403, "insufficient_scope");
  assertProblem(await app.get(`/v1/tickets/tkt_${"0".repeat(32)}`, { headers: agent }), 404, "ticket_not_found");

  const created = await eventually(() => helpdesk.find((e) => e.type === "ticket.created" && e.data.ticket_id === id), "ticket.created at the help desk");
  assert.deepEqual([created.data.number, created.data.email, created.data.category, created.data.priority], [t.number, email, "shipping", "normal"]);
});

test("an order is linked only with the email it was placed with; a wrong email and an unknown number answer alike", async () => {
  const email = freshEmail();
  const placed = await order(email);
  const linked = await submit({ ...valid(email.toUpperCase()), category: "order_issue", order_number: placed.number });
  assert.equal(linked.status, 201, linked.text);
  assert.equal(linked.body.ticket.order.number, placed.number);
  assert.equal(linked.body.ticket.order.status, undefined, "the customer sees the order's number only");
  assert.equal(linked.body.ticket.priority, "high");
  // The agent sees the order's status and its latest tracking status.
  const seen = await app.get(`/v1/tickets/${linked.body.ticket.id}`, { headers: reader });
  assert.deepEqual([seen.body.order.status, seen.body.order.tracking_status], ["partially_fulfilled", "pre_transit"]);

  const wrongEmail = assertProblem(await submit({ ...valid(), order_number: placed.number }), 422, "validation_failed");
  const unknown = assertProblem(await submit({ ...valid(), order_number: "SO-2000-999999" }), 422, "validation_failed");
  assert.deepEqual(wrongEmail.errors, unknown.errors);
  assert.equal(wrongEmail.errors[0].code, "unknown_order");
  assert.equal(wrongEmail.detail, unknown.detail);
});

test("the conversation goes both ways and moves the status; illegal moves are 409", async () => {
  const res = await submit(valid());
  const { id, auth } = ticketOf(res);
  const say = (headers, message) => app.post(`/v1/tickets/${id}/messages`, { message }, { headers });
  const patch = (body) => app.patch(`/v1/admin/tickets/${id}`, body, { headers: agent });

  let t = await say(agent, "It left our warehouse yesterday.");
  assert.equal(t.status, 201, t.text);
  assert.equal(t.body.status, "pending", "waiting for the customer");
  assert.ok(t.body.first_response_at);
  assert.deepEqual(t.body.messages.map((m) => [m.seq, m.author, m.agent]), [[1, "customer", undefined], [2, "agent", "agent-ada"]]);
  t = await say(auth, "Thanks, still nothing.");
  assert.equal(t.body.status, "open", "a customer's message reopens a pending ticket");
  assert.equal(t.body.messages[1].agent, undefined, "the customer does not see who answered");
  assertProblem(await say(reader, "read-only agent"), 403, "insufficient_scope");
  assertProblem(await say(auth, "\u0000"), 422, "validation_failed");

  t = await patch({ status: "resolved", priority: "urgent" });
  assert.equal(t.status, 200, t.text);
  assert.deepEqual([t.body.status, t.body.priority], ["resolved", "urgent"]);
  assert.ok(t.body.resolved_at);
  t = await say(auth, "It came back to the depot.");
  assert.equal(t.body.status, "open", "reopened within 14 days");
  assert.equal(t.body.resolved_at, null);
  assertProblem(await patch({ status: "closed" }), 409, "illegal_transition");
  assertProblem(await app.post(`/v1/tickets/${id}/rating`, { rating: 5 }, { headers: auth }), 409, "not_ratable");
  assert.equal((await patch({ status: "resolved" })).body.status, "resolved");
  assertProblem(await app.post(`/v1/tickets/${id}/rating`, { rating: 6 }, { headers: auth }), 422, "validation_failed");
  assertProblem(await app.post(`/v1/tickets/${id}/rating`, { rating: 4 }, { headers: agent }), 403, "customers_only");
  const rated = await app.post(`/v1/tickets/${id}/rating`, { rating: 4 }, { headers: auth });
  assert.equal(rated.status, 200, rated.text);
  assert.equal(rated.body.rating, 4);
  assertProblem(await app.post(`/v1/tickets/${id}/rating`, { rating: 5 }, { headers: auth }), 409, "not_ratable");
  assert.equal((await patch({ status: "closed" })).body.status, "closed");
  assertProblem(await say(auth, "One more thing"), 409, "illegal_transition");
  assertProblem(await patch({ status: "open" }), 409, "illegal_transition");
  assertProblem(await patch({ priority: "asap" }), 422, "validation_failed");
  assertProblem(await patch({}), 422, "validation_failed");

  // A resolved ticket past the 14 days cannot be reopened.
  const late = ticketOf(await submit(valid()));
  await app.patch(`/v1/admin/tickets/${late.id}`, { status: "resolved" }, { headers: agent });
  await app.db.prepare("UPDATE tickets SET resolved_at = resolved_at - 15 * 86400000 WHERE id = ?1").bind(late.id).run();
  assertProblem(await app.post(`/v1/tickets/${late.id}/messages`, { message: "hello?" }, { headers: late.auth }), 409, "illegal_transition");

  // The help desk received each step, signed.
  const steps = await eventually(() => {
    const mine = helpdesk.filter((e) => e.data.ticket_id === id).map((e) => `${e.type}:${e.data.author ?? ""}`);
    return mine.length >= 6 && mine;
  }, "every step at the help desk");
  assert.deepEqual(steps.sort(), ["ticket.created:", "ticket.replied:agent", "ticket.replied:customer", "ticket.replied:customer", "ticket.resolved:", "ticket.resolved:"].sort());
});

test("the agents' list filters and pages", async () => {
  const email = freshEmail();
  for (const category of ["payment", "return"]) assert.equal((await submit({ ...valid(email), category })).status, 201);
  const page = await app.get(`/v1/admin/tickets?email=${encodeURIComponent(email)}&limit=1`, { headers: reader });
  assert.equal(page.status, 200, page.text);
  assert.deepEqual([page.body.data.length, page.body.has_more, page.body.data[0].category], [1, true, "return"]);
  const next = await app.get(`/v1/admin/tickets?email=${encodeURIComponent(email)}&limit=1&cursor=${encodeURIComponent(page.body.next_cursor)}`, { headers: reader });
  assert.deepEqual([next.body.data[0].category, next.body.has_more], ["payment", false]);
  const high = await app.get(`/v1/admin/tickets?email=${encodeURIComponent(email)}&priority=high`, { headers: reader });
  assert.deepEqual(high.body.data.map((t) => t.category), ["payment"]);
  assertProblem(await app.get("/v1/admin/tickets?status=lost", { headers: reader }), 422, "validation_failed");
  assertProblem(await app.get("/v1/admin/tickets", { headers: { Authorization: `Bearer ${await adminToken(["orders:read"])}` } }), 403, "insufficient_scope");
});

test("stats report first-response and resolution times over known timestamps", async () => {
  // Six tickets placed in a range of their own (March 2025), with known times in minutes.
  const t0 = Date.parse("2025-03-01T00:00:00Z");
  const min = (m) => t0 + m * 60_000;
  const rows = [
    [0, 10, 60, "resolved", 5],
    [0, 20, 120, "closed", 4],
    [0, 30, null, "pending", null],
    [0, 40, 240, "resolved", 4],
    [0, 2000, null, "pending", null],
    [0, null, null, "open", null],
  ];
  for (const [created, first, resolved, status, rating] of rows) {
    const { id } = ticketOf(await submit(valid()));
    await app.db
      .prepare("UPDATE tickets SET created_at = ?2, first_response_at = ?3, resolved_at = ?4, status = ?5, rating = ?6 WHERE id = ?1")
      .bind(id, min(created), first === null ? null : min(first), resolved === null ? null : min(resolved), status, rating)
      .run();
  }
  const range = "from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z";
  const res = await app.get(`/v1/admin/tickets/stats?${range}`, { headers: reader });
  assert.equal(res.status, 200, res.text);
  const s = res.body;
  assert.equal(s.tickets, 6);
  assert.deepEqual(s.by_status, { open: 1, pending: 2, resolved: 2, closed: 1 });
  assert.deepEqual(s.first_response, { count: 5, median_seconds: 30 * 60, p90_seconds: 2000 * 60 });
  assert.deepEqual(s.resolution, { count: 3, median_seconds: 120 * 60, p90_seconds: 240 * 60 });
  assert.deepEqual([s.sla_seconds, s.sla_breaches], [86400, 2], "the 2000-minute answer and the unanswered one");
  assert.deepEqual(s.rating, { count: 3, average: "4.33" });
  const tight = await app.get(`/v1/admin/tickets/stats?${range}&sla_seconds=1500`, { headers: reader });
  assert.equal(tight.body.sla_breaches, 4, "the three answers later than 25 minutes, and the unanswered one");
  assertProblem(await app.get("/v1/admin/tickets/stats?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", { headers: reader }), 422, "validation_failed");
  assertProblem(await app.get("/v1/admin/tickets/stats?from=2020-01-01T00:00:00Z&to=2031-01-01T00:00:00Z", { headers: reader }), 422, "validation_failed");
});

test("submissions are throttled per email with the platform's limiter", async () => {
  await freshLimiterWindow();
  const email = freshEmail();
  for (let i = 0; i < 3; i++) assert.equal((await submit(valid(email))).status, 201);
  const res = await submit(valid(email));
  assertProblem(res, 429, "rate_limited");
  assert.ok(Number(res.headers.get("retry-after")) > 0);
  assert.equal((await submit(valid())).status, 201, "another email from the same client");
});

test("a conversation holds at most 100 messages, and replies are throttled per ticket", async () => {
  await freshLimiterWindow();
  const created = await submit(valid());
  assert.equal(created.status, 201, created.text);
  const { id, auth } = ticketOf(created);
  const say = (headers, message) => app.post(`/v1/tickets/${id}/messages`, { message }, { headers: { ...headers, "Idempotency-Key": randomUUID() } });
  // Six replies go through (the suite's limit); the seventh within the minute is throttled,
  // before anything is read.
  for (let i = 0; i < 6; i++) assert.equal((await say(i % 2 ? agent : auth, `message ${i}`)).status, 201);
  const throttled = assertProblem(await say(auth, "and again"), 429, "rate_limited");
  assert.ok(throttled);
  const count = () => app.db.prepare("SELECT count(*) AS n FROM ticket_messages WHERE ticket_id = ?1").bind(id).first("n");
  assert.equal(await count(), 7);

  // A second ticket filled to 99 messages (a fixture), then answered to its last: the 101st is
  // refused, by the worker and by the database's trigger whatever the statement.
  const other = ticketOf(await submit(valid()));
  await app.db
    .prepare(
      "WITH RECURSIVE s(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM s WHERE n < 99) \
       INSERT INTO ticket_messages (ticket_id, seq, author, body, created_at) SELECT ?1, n, 'customer', 'filler', 0 FROM s",
    )
    .bind(other.id)
    .run();
  const last = await app.post(`/v1/tickets/${other.id}/messages`, { message: "the hundredth" }, { headers: agent });
  assert.equal(last.status, 201, last.text);
  assertProblem(await app.post(`/v1/tickets/${other.id}/messages`, { message: "one more" }, { headers: other.auth }), 409, "ticket_full");
  await assert.rejects(
    app.db.prepare("INSERT INTO ticket_messages (ticket_id, seq, author, body, created_at) VALUES (?1, 101, 'customer', 'x', 0)").bind(other.id).run(),
    /ticket message limit/,
  );
  // Still readable and closable.
  assert.equal((await app.get(`/v1/tickets/${other.id}`, { headers: other.auth })).body.messages.length, 100);
  assert.equal((await app.patch(`/v1/admin/tickets/${other.id}`, { status: "resolved" }, { headers: agent })).status, 200);
});

test("the conversation is read a page at a time, in order; the customer sees no agent names", async () => {
  const { id, auth } = ticketOf(await submit(valid()));
  for (const [headers, message] of [[agent, "first answer"], [auth, "thanks"], [agent, "second answer"]]) {
    assert.equal((await app.post(`/v1/tickets/${id}/messages`, { message }, { headers })).status, 201);
  }
  const page = (headers, query = "") => app.get(`/v1/tickets/${id}/messages?limit=2${query}`, { headers });
  const first = await page(agent);
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.body.data.map((m) => [m.seq, m.author]), [[1, "customer"], [2, "agent"]]);
  assert.equal(first.body.data[1].agent, "agent-ada");
  assert.equal(first.body.has_more, true);
  const second = await page(auth, `&cursor=${encodeURIComponent(first.body.next_cursor)}`);
  assert.deepEqual(second.body.data.map((m) => [m.seq, m.body]), [[3, "thanks"], [4, "second answer"]]);
  assert.ok(second.body.data.every((m) => !("agent" in m)), "the customer sees no agent names");
  assert.equal(second.body.has_more, false);
  const other = ticketOf(await submit(valid()));
  assertProblem(await app.get(`/v1/tickets/${id}/messages`, { headers: other.auth }), 403, "wrong_resource");
  assertProblem(await app.get(`/v1/tickets/tkt_${"0".repeat(32)}/messages`, { headers: agent }), 404, "ticket_not_found");
  assertProblem(await app.get(`/v1/tickets/${id}/messages?cursor=nonsense`, { headers: agent }), 422, "validation_failed");
});
