// Serves every worker of the project on one origin with Miniflare's API (workerd), the way
// production routes them by path. Used by scripts/dev, the end-to-end tests and scripts/bench.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel, Response as MfResponse, fetch as mfFetch } from "miniflare";
import { parse as parseToml } from "smol-toml";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// Order matters: the first worker also receives requests no route matches (as "/*" does in
// production), and answers them with a problem+json 404.
export const WORKERS = ["catalog", "cart", "checkout", "order-events", "payment-webhook", "tracking", "tickets", "accounts", "customers", "admin", "operations", "orders", "catalog-admin", "collections"];

export function workerConfig(name) {
  return parseToml(readFileSync(path.join(ROOT, "functions", name, "wrangler.toml"), "utf8"));
}

export function rootConfig() {
  return parseToml(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"));
}

/** Secrets for local runs, from .dev.vars (KEY=VALUE lines). */
export function devVars() {
  const file = path.join(ROOT, ".dev.vars");
  if (!existsSync(file)) return {};
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/);
    if (m) vars[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

/** "api.example.com/v1/carts*" -> "*\/v1/carts*": any host, same path, on the local origin. */
function localRoute(pattern) {
  const slash = pattern.indexOf("/");
  return "*" + (slash === -1 ? "/*" : pattern.slice(slash));
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} failed (${code}):\n${out}`)),
    );
  });
}

/** Apply schema/ migrations to the local D1 state under `persistDir`, with wrangler. */
export async function migrate(persistDir) {
  const wrangler = path.join(ROOT, "node_modules", ".bin", "wrangler");
  await run(wrangler, ["d1", "migrations", "apply", "shop", "--local", "--persist-to", persistDir], {
    env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" },
  });
}

/**
 * Local D1 state under `persistDir` as `migrate` leaves it, copied from a template that wrangler
 * migrated once for these exact migrations (under target/, keyed by their content): wrangler
 * takes about 15 s a run, a copy a few milliseconds. Safe when several test files start at once.
 */
export async function migrateFromTemplate(persistDir) {
  const dir = path.join(ROOT, "schema");
  const digest = createHash("sha256");
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".sql")).sort()) {
    digest.update(name).update("\0").update(readFileSync(path.join(dir, name))).update("\0");
  }
  digest.update(readFileSync(path.join(ROOT, "wrangler.toml")));
  const templates = path.join(ROOT, "target", "d1-templates");
  const template = path.join(templates, digest.digest("hex").slice(0, 16));
  if (!existsSync(template)) {
    mkdirSync(templates, { recursive: true });
    const building = mkdtempSync(path.join(templates, "building-"));
    await migrate(building);
    try {
      renameSync(building, template);
    } catch (error) {
      // Another test file finished the same template first: use theirs.
      rmSync(building, { recursive: true, force: true });
      if (!existsSync(template)) throw error;
    }
  }
  cpSync(template, persistDir, { recursive: true });
}

/** Load the demo catalog once: only when the products table is empty. */
export async function seedDemoCatalog(mf) {
  const db = await mf.getD1Database("DB", "shop-catalog");
  const { n } = await db.prepare("SELECT count(*) AS n FROM products").first();
  if (n > 0) return false;
  const sql = readFileSync(path.join(ROOT, "schema", "seed", "demo_catalog.sql"), "utf8");
  const statements = sql
    .split(/;\s*\n/)
    .map((s) => s.replace(/^(--[^\n]*\n)+/g, "").trim())
    .filter((s) => s.length > 0);
  await db.batch(statements.map((s) => db.prepare(s)));
  return true;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** An outbound service that forwards to loopback only (and never follows a redirect itself). */
async function loopbackOutbound(request) {
  const host = new URL(request.url).hostname;
  if (LOOPBACK.has(host)) return mfFetch(request, { redirect: "manual" });
  return new MfResponse(`outbound calls to ${host} are blocked: tests reach loopback only`, { status: 502 });
}

/**
 * Start all workers on one origin. Options:
 *  persistDir  local state (D1/KV) root, shared with wrangler's --persist-to
 *  port, host  where to listen (port 0 picks a free one)
 *  vars        extra or overriding vars for every worker
 *  loopbackOnly  outbound calls of the workers reach this machine's loopback only; anything
 *              else is answered 502 here without a connection or a DNS lookup (tests)
 *  queueRetries  overriding max_retries per consumed queue ({ "shop-order-events": 1 })
 *  rateLimits  overriding limits per rate-limit binding ({ CHECKOUT_BY_CLIENT: 1000 }); the
 *              bindings and their periods always come from the workers' wrangler.toml
 *  extraWorkers  more Miniflare worker options (e.g. the benchmark's no-op worker)
 */
export async function startBackend({ persistDir, port = 8787, host = "127.0.0.1", vars = {}, rateLimits = {}, queueRetries = {}, loopbackOnly = false, extraWorkers = [], verbose = false, onLogLine }) {
  const secrets = devVars();
  const workers = WORKERS.map((name) => {
    const cfg = workerConfig(name);
    const build = path.join(ROOT, "functions", name, "build");
    if (!existsSync(path.join(build, "index.js"))) {
      throw new Error(`functions/${name} is not built: run scripts/dev or scripts/test`);
    }
    const queues = cfg.queues ?? {};
    return {
      // Production names, so service bindings resolve locally as they do when deployed.
      name: cfg.name,
      modules: true,
      modulesRoot: build,
      scriptPath: path.join(build, "index.js"),
      modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
      compatibilityDate: cfg.compatibility_date,
      routes: (cfg.routes ?? []).map((r) => localRoute(typeof r === "string" ? r : r.pattern)),
      d1Databases: Object.fromEntries((cfg.d1_databases ?? []).map((d) => [d.binding, d.database_id])),
      kvNamespaces: Object.fromEntries((cfg.kv_namespaces ?? []).map((k) => [k.binding, k.id])),
      r2Buckets: Object.fromEntries((cfg.r2_buckets ?? []).map((b) => [b.binding, b.bucket_name])),
      serviceBindings: Object.fromEntries((cfg.services ?? []).map((s) => [s.binding, s.service])),
      queueProducers: Object.fromEntries((queues.producers ?? []).map((q) => [q.binding, q.queue])),
      queueConsumers: Object.fromEntries(
        (queues.consumers ?? []).map((q) => [
          q.queue,
          {
            maxBatchSize: q.max_batch_size,
            maxBatchTimeout: q.max_batch_timeout,
            maxRetries: queueRetries[q.queue] ?? q.max_retries,
            retryDelay: q.retry_delay,
            deadLetterQueue: q.dead_letter_queue,
          },
        ]),
      ),
      ratelimits: Object.fromEntries(
        (cfg.ratelimits ?? []).map((r) => [
          r.name,
          { namespace_id: String(r.namespace_id), simple: { ...r.simple, limit: rateLimits[r.name] ?? r.simple.limit } },
        ]),
      ),
      bindings: { ...(cfg.vars ?? {}), ...secrets, ...vars },
      ...(loopbackOnly ? { outboundService: loopbackOutbound } : {}),
    };
  });
  const mf = new Miniflare({
    host,
    port,
    workers: [...workers, ...extraWorkers],
    d1Persist: path.join(persistDir, "v3", "d1"),
    kvPersist: path.join(persistDir, "v3", "kv"),
    r2Persist: path.join(persistDir, "v3", "r2"),
    log: new Log(verbose ? LogLevel.INFO : LogLevel.WARN),
    // A placeholder Request.cf: the real one would be fetched from the network.
    cf: { country: "DE", colo: "LOCAL" },
    // The workers' log lines: to the terminal, or to a callback (tests assert on them).
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        createInterface({ input: stream }).on("line", (line) =>
          onLogLine ? onLogLine(line) : process.stdout.write(line + "\n"),
        );
      }
    },
  });
  const url = await mf.ready;
  return { mf, url: url.toString().replace(/\/$/, "") };
}
