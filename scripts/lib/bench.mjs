// scripts/bench: load each route with wrk beside a no-op worker, in one run, on one machine.
// Workers are served directly by workerd through Miniflare's API (not `wrangler dev`, whose
// proxy caps throughput). Prints req/s, p50/p99, the ratio to the no-op, workerd CPU per
// request, D1 round trips and statements per request (read from the workers' own log lines:
// each request's line counts its D1 calls), and each worker's wasm size.
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import Stripe from "stripe";
import { ROOT, WORKERS, migrate, seedDemoCatalog, startBackend } from "./backend.mjs";

const DURATION = process.env.BENCH_SECONDS ?? "8";
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? "16";
const work = mkdtempSync(path.join(tmpdir(), "shop-bench-"));

const noop = {
  name: "noop",
  modules: true,
  script: "export default { fetch() { return new Response('ok'); } };",
  routes: ["*/noop"],
};

await migrate(work);
// The checkout load comes from one client: lift its abuse limits (not what is measured).
const rateLimits = { CHECKOUT_BY_CLIENT: 1e9, CHECKOUT_BY_EMAIL: 1e9, AUTH_BY_CLIENT: 1e9, AUTH_BY_EMAIL: 1e9 };
// Every request's log line carries `d1_round_trips` and `d1_statements` (see shared/edge/src/http/runtime.rs):
// summed here per route template, reset before each load.
let d1 = new Map();
function onLogLine(line) {
  const start = line.indexOf("{");
  if (start < 0) return;
  let entry;
  try {
    entry = JSON.parse(line.slice(start));
  } catch {
    return;
  }
  if (typeof entry.route !== "string" || typeof entry.d1_round_trips !== "number") return;
  const sum = d1.get(entry.route) ?? { requests: 0, roundTrips: 0, statements: 0 };
  sum.requests += 1;
  sum.roundTrips += entry.d1_round_trips;
  sum.statements += entry.d1_statements;
  d1.set(entry.route, sum);
}
const WEBHOOK_SECRET = "whsec_bench_0123456789";
const { mf, url } = await startBackend({
  persistDir: work,
  port: 0,
  rateLimits,
  extraWorkers: [noop],
  onLogLine,
  vars: { STRIPE_WEBHOOK_SECRETS: WEBHOOK_SECRET },
});
await seedDemoCatalog(mf);
const db = await mf.getD1Database("DB", "shop-catalog");

const SKU = "CLASSICTEE-M-BLACK";
await db.prepare("UPDATE inventory SET on_hand = 100000000, reserved = 0 WHERE sku = ?1").bind(SKU).run();

async function post(p, body) {
  const res = await fetch(url + p, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return res.json();
}
async function put(p, body) {
  const res = await fetch(url + p, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return res.json();
}
const readCart = await post("/v1/carts", { currency: "EUR" });
await post(`/v1/carts/${readCart.id}/items`, { sku: SKU, quantity: 2 });
await post(`/v1/carts/${readCart.id}/items`, { sku: "BEANIE-BLACK", quantity: 1 });
// A cart whose shipping is chosen: every read prices it (the configuration is kept per isolate).
const shippedCart = await post("/v1/carts", { currency: "EUR" });
await post(`/v1/carts/${shippedCart.id}/items`, { sku: SKU, quantity: 2 });
await put(`/v1/carts/${shippedCart.id}/shipping`, { country: "NL", postal_code: "1012 AB", method: "standard" });
// A ticket read by its customer, with the ticket token.
const ticket = await post("/v1/tickets", { email: "bench@example.com", subject: "Bench", message: "Where is my parcel?", category: "shipping" });
const ticketScript = path.join(work, "ticket.lua");
writeFileSync(ticketScript, `wrk.headers["Authorization"] = "Bearer ${ticket.ticket_token}"\n`);
// A customer who logs in again and again: each login derives the password (PBKDF2, 100,000
// iterations, WebCrypto) and starts a session.
const ACCOUNT = { email: "bench-shopper@example.com", password: "correct horse battery staple" };
{
  const res = await fetch(url + "/v1/auth/register", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(ACCOUNT) });
  if (res.status !== 202) throw new Error(`register: ${res.status} ${await res.text()}`);
}
// Their access token (15 minutes: the whole bench), for the customer's own reads.
const { access_token: customerToken } = await (
  await fetch(url + "/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(ACCOUNT) })
).json();
const meScript = path.join(work, "me.lua");
writeFileSync(meScript, `wrk.headers["Authorization"] = "Bearer ${customerToken}"\n`);
const loginScript = path.join(work, "login.lua");
writeFileSync(
  loginScript,
  `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '${JSON.stringify(ACCOUNT)}'
`,
);
// Writes rotate over many carts so a line never reaches its quantity cap during the run.
const writeCarts = [];
for (let i = 0; i < 400; i++) writeCarts.push((await post("/v1/carts", { currency: "EUR" })).id);
const cartsFile = path.join(work, "carts.txt");
writeFileSync(cartsFile, writeCarts.join("\n") + "\n");
const addScript = path.join(work, "add.lua");
writeFileSync(
  addScript,
  `local carts, i = {}, 0
for line in io.lines("${cartsFile}") do carts[#carts + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"sku":"${SKU}","quantity":1}'
request = function()
  i = i + 1
  wrk.headers["Idempotency-Key"] = "bench-add-" .. i
  return wrk.format(nil, "/v1/carts/" .. carts[(i % #carts) + 1] .. "/items")
end
`,
);

// Checkout needs a fresh cart per request: insert carts straight into D1 (one line each, the
// same JSON the cart worker writes), then let wrk walk through them with unique keys.
const CHECKOUT_CARTS = Number(process.env.BENCH_CHECKOUT_CARTS ?? 6000);
const offer = await db.prepare("SELECT p.amount_minor, v.product_id FROM prices p JOIN variants v ON v.sku = p.sku WHERE p.sku = ?1 AND p.currency = 'EUR'").bind(SKU).first();
const checkoutCarts = [];
const now = Date.now();
for (let i = 0; i < CHECKOUT_CARTS; i++) checkoutCarts.push(`cart_${(0xb000000 + i).toString(16).padStart(32, "0")}`);
const line = (i) =>
  JSON.stringify([{ id: `line_${(0xc000000 + i).toString(16).padStart(32, "0")}`, sku: SKU, product_id: offer.product_id, name: "Classic Tee (black, M)",
    quantity: 1, unit_price: { amount: (offer.amount_minor / 100).toFixed(2), currency: "EUR" }, added_at: new Date(now).toISOString() }]);
for (let start = 0; start < CHECKOUT_CARTS; start += 500) {
  const chunk = checkoutCarts.slice(start, start + 500).map((id, k) => [id, line(start + k)]);
  await db
    .prepare(
      `INSERT INTO carts (id, currency, status, version, lines, created_at, updated_at, expires_at)
       SELECT json_extract(value, '$[0]'), 'EUR', 'active', 2, json_extract(value, '$[1]'), ?1, ?1, ?2 FROM json_each(?3)`,
    )
    .bind(now, now + 86400000, JSON.stringify(chunk))
    .run();
}
const checkoutCartsFile = path.join(work, "checkout-carts.txt");
writeFileSync(checkoutCartsFile, checkoutCarts.join("\n") + "\n");
const checkoutScript = path.join(work, "checkout.lua");
writeFileSync(
  checkoutScript,
  `local carts, i = {}, 0
for line in io.lines("${checkoutCartsFile}") do carts[#carts + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","shipping_address":{"name":"B","line1":"1 Bench St","city":"Berlin","postal_code":"10115","country":"DE"},"shipping_method":"standard","payment_provider":"test"}'
request = function()
  i = i + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. i
  return wrk.format(nil, "/v1/carts/" .. carts[((i - 1) % #carts) + 1] .. "/checkout")
end
`,
);

// Payment webhooks: Stripe events signed by the official library, read by wrk from a file of
// `<Stripe-Signature>\t<body>` lines. Fresh: a distinct event each (a payment no order has, so
// each is verified, looked up and recorded); duplicates: one event over and over (verified,
// looked up, refused by the claim).
const stripe = new Stripe("sk_test_unused");
function webhookScript(name, count) {
  const t = Math.floor(Date.now() / 1000);
  const lines = [];
  for (let i = 0; i < count; i++) {
    const payload = JSON.stringify({
      id: `evt_bench_${name}_${i}`,
      object: "event",
      type: "payment_intent.payment_failed",
      created: t,
      data: { object: { id: `pi_bench_${i}`, object: "payment_intent", amount: 1000, currency: "eur", metadata: {} } },
    });
    lines.push(`${stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET, timestamp: t })}\t${payload}`);
  }
  const file = path.join(work, `webhook-${name}.txt`);
  writeFileSync(file, lines.join("\n") + "\n");
  const script = path.join(work, `webhook-${name}.lua`);
  writeFileSync(
    script,
    `local events, i = {}, 0
for line in io.lines("${file}") do
  local tab = line:find("\t", 1, true)
  events[#events + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local e = events[((i - 1) % #events) + 1]
  wrk.headers["Stripe-Signature"] = e[1]
  return wrk.format(nil, "/v1/webhooks/payments/stripe", nil, e[2])
end
`,
  );
  return script;
}
// Signed just before their load runs (a signature is only good for 300 s).
const freshWebhooks = () => webhookScript("fresh", Number(process.env.BENCH_WEBHOOK_EVENTS ?? 20000));
const duplicateWebhooks = () => webhookScript("duplicate", 1);

const workerdChildren = () =>
  execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes("workerd"))
    .map((l) => l.trim().split(/\s+/)[0]);
let workerdPids = workerdChildren();
const ticks = () =>
  workerdPids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return sum + Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
  }, 0);
const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

function toMs(text) {
  const m = text?.match(/([\d.]+)(us|ms|s|m)$/);
  return m ? Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60000 }[m[2]] : NaN;
}

// wrk runs asynchronously: this process must keep draining workerd's log pipe meanwhile, or
// workerd blocks writing its log lines and the numbers measure a full pipe.
const run = promisify(execFile);

// The measured D1 use of the requests just served: mean round trips and statements per request
// of the route template that served most of them.
function measuredD1() {
  const [route, sum] = [...d1.entries()].sort((a, b) => b[1].requests - a[1].requests)[0] ?? [];
  if (!sum) return "-";
  const mean = (n) => String(Number((n / sum.requests).toFixed(2)));
  return { route, text: `${mean(sum.roundTrips)} (${mean(sum.statements)} statements)` };
}

async function load(name, route, script, base = url) {
  if (typeof script === "function") script = script();
  const args = ["-t1", `-c${CONNECTIONS}`, `-d${DURATION}s`, "--latency"];
  if (script) args.push("-s", script);
  const before = ticks();
  // Let the previous load's last log lines arrive before counting starts.
  await new Promise((resolve) => setTimeout(resolve, 200));
  d1 = new Map();
  const { stdout: out } = await run("wrk", [...args, base + route], { encoding: "utf8" });
  const cpuMs = (ticks() - before) * TICK_MS;
  await new Promise((resolve) => setTimeout(resolve, 200));
  const measured = measuredD1();
  if (process.env.BENCH_VERBOSE) console.error(out);
  const requests = Number(out.match(/(\d+) requests in/)[1]);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return {
    name,
    rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]),
    p50: toMs(out.match(/^\s+50%\s+(\S+)/m)?.[1]),
    p99: toMs(out.match(/^\s+99%\s+(\S+)/m)?.[1]),
    cpu: cpuMs / requests,
    d1: measured === "-" ? "-" : measured.text,
    errors: non2xx,
  };
}

const results = [];
for (const args of [
  ["no-op JS worker (ceiling)", "/noop"],
  ["GET /v1/products/{id} (isolate cache)", "/v1/products/prod_classic-tee"],
  ["GET /v1/products?limit=20 (isolate cache)", "/v1/products?limit=20"],
  ["GET /v1/carts/{id}", `/v1/carts/${readCart.id}`],
  ["GET /v1/carts/{id} (shipping chosen)", `/v1/carts/${shippedCart.id}`],
  ["GET /v1/tickets/{id} (ticket token)", `/v1/tickets/${ticket.ticket.id}`, ticketScript],
  ["GET /v1/products/{id}/reviews (rating and a page, no cache)", "/v1/products/prod_classic-tee/reviews"],
  ["GET /v1/me (customer token: profile, points, tier)", "/v1/me", meScript],
  ["POST /v1/auth/login (PBKDF2-SHA256, 100,000 iterations)", "/v1/auth/login", loginScript],
  ["POST /v1/carts/{id}/items (Idempotency-Key)", "/", addScript],
  ["POST /v1/carts/{id}/checkout (fresh cart each)", "/", checkoutScript],
  ["POST /v1/webhooks/payments/stripe (distinct signed events)", "/", freshWebhooks],
  ["POST /v1/webhooks/payments/stripe (one event, duplicates)", "/", duplicateWebhooks],
]) {
  results.push(await load(...args));
}
const placed = await db.prepare("SELECT count(*) AS n FROM orders").first("n");
await mf.dispose();
rmSync(work, { recursive: true, force: true });

// Search over a generated catalog of 10,000 more products (the demo's 46 besides), on a backend
// of its own without the isolate cache, so every request runs its FTS5 queries: a common word
// (about one product in seven), a rare one (3 products), a prefix, and two filters with their
// facets. Loaded here, never by scripts/dev.
const searchWork = mkdtempSync(path.join(tmpdir(), "shop-bench-search-"));
await migrate(searchWork);
const searching = await startBackend({ persistDir: searchWork, port: 0, extraWorkers: [noop], onLogLine, vars: { CATALOG_CACHE_TTL_SECONDS: "0" } });
workerdPids = workerdChildren();
await seedDemoCatalog(searching.mf);
const searchDb = await searching.mf.getD1Database("DB", "shop-catalog");
const GENERATED = 10000;
const loadStarted = Date.now();
await searchDb.prepare(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${GENERATED})
INSERT INTO products (id, handle, name, description, status, category_id, options, created_at, updated_at)
SELECT 'prod_gen-' || i, 'gen-' || i,
  (CASE i % 5 WHEN 0 THEN 'Linen' WHEN 1 THEN 'Wool' WHEN 2 THEN 'Cotton' WHEN 3 THEN 'Oak' ELSE 'Steel' END) || ' ' ||
  (CASE i % 7 WHEN 0 THEN 'Lamp' WHEN 1 THEN 'Chair' WHEN 2 THEN 'Table' WHEN 3 THEN 'Shelf' WHEN 4 THEN 'Rug' WHEN 5 THEN 'Vase' ELSE 'Stool' END) || ' ' || i,
  'Generated product ' || i || ', made to be found.' || CASE WHEN i % 3333 = 0 THEN ' Zephyrine finish.' ELSE '' END,
  'active', 'cat_' || (CASE i % 4 WHEN 0 THEN 'posters' WHEN 1 THEN 'mugs' WHEN 2 THEN 'caps' ELSE 'socks' END), '["size"]',
  1800000000000 + i, 1800000000000 + i FROM n`).run();
await searchDb.prepare(`INSERT INTO variants (sku, product_id, options, position, weight_grams, status)
SELECT 'GEN-' || substr(id, 10), id, json_object('size', CASE rowid % 3 WHEN 0 THEN 'S' WHEN 1 THEN 'M' ELSE 'L' END), 0, 300, 'active'
FROM products WHERE id GLOB 'prod_gen-*'`).run();
await searchDb.prepare(`INSERT INTO prices (sku, currency, amount_minor) SELECT sku, 'EUR', 500 + (rowid % 100) * 100 FROM variants WHERE sku GLOB 'GEN-*'`).run();
await searchDb.prepare(`INSERT INTO inventory (sku, on_hand, reserved) SELECT sku, rowid % 5, 0 FROM variants WHERE sku GLOB 'GEN-*'`).run();
const loadSeconds = (Date.now() - loadStarted) / 1000;
const searchResults = [];
for (const args of [
  ["no-op JS worker (ceiling)", "/noop"],
  ["GET /v1/products?limit=20 (no cache, 10,046 products)", "/v1/products?limit=20"],
  ["GET /v1/search?q=lamp (common word, about 1,430 matches)", "/v1/search?q=lamp"],
  ["GET /v1/search?q=zephyrine (rare word, 3 matches)", "/v1/search?q=zephyrine"],
  ["GET /v1/search?q=lam (prefix)", "/v1/search?q=lam"],
  ["GET /v1/search?q=lamp&category=posters&option.size=M (two filters, facets)", "/v1/search?q=lamp&category=posters&option.size=M"],
  ["GET /v1/search?q=oak%20lamp&currency=EUR&sort=price_asc (price sort and bands)", "/v1/search?q=oak%20lamp&currency=EUR&sort=price_asc"],
]) {
  searchResults.push(await load(args[0], args[1], undefined, searching.url));
}
await searching.mf.dispose();
rmSync(searchWork, { recursive: true, force: true });

const ceiling = results[0].rps;
console.log(`\nwrk -t1 -c${CONNECTIONS} -d${DURATION}s on ${url}, workerd ${workerdPids.length} process(es), ${new Date().toISOString()}\n`);
console.log("| route | req/s | ratio to no-op | p50 ms | p99 ms | workerd CPU ms/req | D1 round trips/req (measured) | non-2xx |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of results) {
  console.log(
    `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / ceiling).toFixed(2)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpu.toFixed(3)} | ${r.d1} | ${r.errors} |`,
  );
}
console.log(`\norders placed during the checkout run: ${placed}`);
console.log(`\nSearch: ${GENERATED} generated products loaded in ${loadSeconds.toFixed(1)} s (4 statements; FTS5 kept by the products' triggers), no isolate cache; ratios to this backend's no-op.\n`);
console.log("| route | req/s | ratio to no-op | p50 ms | p99 ms | workerd CPU ms/req | D1 round trips/req (measured) | non-2xx |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of searchResults) {
  console.log(
    `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / searchResults[0].rps).toFixed(2)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpu.toFixed(3)} | ${r.d1} | ${r.errors} |`,
  );
}
console.log("D1 round trips: calls to D1 made for the request (a statement alone or a whole batch is one), the mean over every request of the load, counted by the worker and read from its log line; statements inside batches in parentheses.");
console.log("\n| worker | wasm raw KiB | wasm gzip KiB |");
console.log("| --- | ---: | ---: |");
for (const w of WORKERS) {
  const file = path.join(ROOT, "functions", w, "build", "index_bg.wasm");
  const raw = statSync(file).size;
  const gz = gzipSync(readFileSync(file), { level: 9 }).length;
  console.log(`| ${w} | ${(raw / 1024).toFixed(1)} | ${(gz / 1024).toFixed(1)} |`);
}
