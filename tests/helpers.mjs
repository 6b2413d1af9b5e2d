// The end-to-end harness: the real compiled workers in workerd (Miniflare's API) with fresh
// local D1 state migrated by wrangler, driven over HTTP like a storefront would.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { migrateFromTemplate, seedDemoCatalog, startBackend } from "../scripts/lib/backend.mjs";

export { adminToken } from "../scripts/lib/token.mjs";

/** Limits that suites placing many orders from one client use; `rateLimits: {}` keeps the
 * workers' configured limits (the rate-limit tests do). */
export const GENEROUS_LIMITS = { CHECKOUT_BY_CLIENT: 100000, CHECKOUT_BY_EMAIL: 100000, TICKETS_BY_CLIENT: 100000, TICKETS_BY_EMAIL: 100000, AUTH_BY_CLIENT: 100000, AUTH_BY_EMAIL: 100000, PASSWORD_CHECKS_BY_CUSTOMER: 100000, TICKET_REPLIES_BY_TICKET: 100000, TICKET_REPLIES_BY_CLIENT: 100000 };

/** Start a fresh backend (own D1 state, demo catalog seeded) for one test file. */
export async function spawnApp({ vars = {}, rateLimits = GENEROUS_LIMITS, queueRetries = {} } = {}) {
  const persistDir = mkdtempSync(path.join(tmpdir(), "shop-e2e-"));
  await migrateFromTemplate(persistDir);
  const logs = [];
  const { mf, url } = await startBackend({
    persistDir,
    port: 0,
    onLogLine: (line) => logs.push(line),
    rateLimits,
    queueRetries,
    // Tests never reach past this machine, whatever URL a test (or a fuzzer) configures.
    loopbackOnly: true,
    // Catalog reads are not cached in tests unless a test asks for it.
    vars: { CATALOG_CACHE_TTL_SECONDS: "0", PAYMENT_PROVIDERS: "test,stripe", ...vars },
  });
  await seedDemoCatalog(mf);
  const db = await mf.getD1Database("DB", "shop-catalog");

  async function request(method, pathname, { body, json, headers = {} } = {}) {
    const init = { method, headers: { ...headers } };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] ??= "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    const res = await fetch(url + pathname, init);
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  return {
    url,
    mf,
    db,
    /** Lines the workers logged (JSON where they are ours). */
    logs,
    request,
    get: (p, o) => request("GET", p, o),
    post: (p, json, o = {}) => request("POST", p, { json, ...o }),
    put: (p, json, o = {}) => request("PUT", p, { json, ...o }),
    patch: (p, json, o = {}) => request("PATCH", p, { json, ...o }),
    del: (p, o) => request("DELETE", p, o),
    async count(table) {
      const row = await db.prepare(`SELECT count(*) AS n FROM ${table}`).first();
      return row.n;
    },
    async close() {
      await mf.dispose();
      rmSync(persistDir, { recursive: true, force: true });
    },
  };
}

/** Assert an RFC 9457 problem answer with this status and code, carrying the request id. */
export function assertProblem(res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal(res.body.status, status);
  assert.equal(res.body.code, code);
  assert.ok(res.body.type.endsWith(`/problems/${code}`));
  assert.ok(res.body.title);
  assert.ok(res.body.detail);
  assert.equal(res.body.request_id, res.headers.get("x-request-id"));
  return res.body;
}

/** Sum of minor units of money values, by the currency's digits. */
export function minor(money) {
  const [whole, frac = ""] = money.amount.replace("-", "").split(".");
  const sign = money.amount.startsWith("-") ? -1 : 1;
  return sign * Number(whole + frac);
}

export async function newCart(app, currency = "EUR", headers = {}) {
  const res = await app.post("/v1/carts", { currency }, { headers });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** A SKU with at least `min` available and a price in `currency`. */
export async function skuWithStock(app, currency, min = 5) {
  const row = await app.db
    .prepare(
      `SELECT i.sku, i.available, p.amount_minor FROM inventory i JOIN prices p ON p.sku = i.sku
       WHERE p.currency = ?1 AND i.available >= ?2 ORDER BY i.sku LIMIT 1`,
    )
    .bind(currency, min)
    .first();
  assert.ok(row, `no SKU with ${min} in stock in ${currency}`);
  return row;
}

/**
 * Start early in a rate limiter's window. The local limiter (Miniflare's) counts in fixed windows
 * of the binding's period and forgets every count at each boundary, so a test that counts
 * requests up to a limit waits, when less than `needSeconds` are left, for the next window:
 * the boundary then cannot fall between its requests (two files run at once, so they are slower).
 */
export async function freshLimiterWindow(periodSeconds = 60, needSeconds = 10) {
  const period = periodSeconds * 1000;
  const left = period - (Date.now() % period);
  if (left < needSeconds * 1000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

/** Wait until `probe` returns something truthy (queue consumers run asynchronously). */
export async function eventually(probe, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const CUSTOMER_PASSWORD = "correct horse battery staple";

/** A newly registered customer, logged in: `{email, id, token, auth}` (`auth`: the header). */
export async function signedInCustomer(app, name) {
  const email = `buyer-${randomUUID().slice(0, 8)}@example.com`;
  const key = () => ({ headers: { "Idempotency-Key": randomUUID() } });
  const registered = await app.post("/v1/auth/register", { email, password: CUSTOMER_PASSWORD, ...(name ? { name } : {}) }, key());
  assert.equal(registered.status, 202, registered.text);
  const login = await app.post("/v1/auth/login", { email, password: CUSTOMER_PASSWORD }, key());
  assert.equal(login.status, 200, login.text);
  const token = login.body.access_token;
  return { email, id: login.body.customer_id, token, auth: { Authorization: `Bearer ${token}` } };
}

/** The merchant's account mail endpoint, as a merchant would run it: every message verified
 * with the official standardwebhooks library before it is kept. `vars` configure the backend
 * to send there; `link(type, email, count)` waits for a type's messages to an address and answers the newest. */
export async function startMailbox() {
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const messages = [];
  const refused = [];
  let answer = 204;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      try {
        messages.push({ id: req.headers["webhook-id"], ...new Webhook(secret).verify(body, req.headers) });
      } catch (e) {
        refused.push(String(e));
        return res.writeHead(400).end();
      }
      res.writeHead(answer).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/account-mail`;
  return {
    messages,
    refused,
    /** The status the endpoint answers from now on. */
    answer: (status) => (answer = status),
    vars: { ACCOUNT_MAIL_URL: url, ACCOUNT_MAIL_SECRET: secret, WEBHOOKS_ALLOW_INSECURE_URLS: "true" },
    /** The newest `type` message to `email`, once at least `count` of them arrived. */
    async link(type, email, count = 1) {
      const mine = () => messages.filter((m) => m.type === type && m.data.email === email);
      await eventually(() => mine().length >= count, `${count} × ${type} to ${email}`);
      return mine().at(-1);
    },
    close: () => server.close(),
  };
}
