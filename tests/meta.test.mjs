// Cross-cutting behaviour: CORS, request ids, logs, the configuration checked at startup, the
// OpenAPI document (GET /v1/openapi.json) served and every operation in it routed. (Admin
// tokens are verified in admin.test.mjs.)
// operationIds: getOpenApi
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, spawnApp } from "./helpers.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

const PRICE = "/v1/admin/variants/BEANIE-BLACK/prices/EUR";
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

test("CORS: preflight for allowed storefront origins only", async () => {
  const origin = "http://localhost:3000";
  let res = await app.request("OPTIONS", "/v1/carts", {
    headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, idempotency-key" },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), origin);
  assert.match(res.headers.get("access-control-allow-methods"), /POST/);
  assert.match(res.headers.get("access-control-allow-headers"), /Idempotency-Key/);
  assert.match(res.headers.get("access-control-allow-headers"), /If-Match/);
  assert.equal(res.headers.get("vary"), "Origin");

  res = await app.request("OPTIONS", "/v1/carts", { headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "POST" } });
  assertProblem(res, 403, "cors_origin_not_allowed");
  assert.equal(res.headers.get("access-control-allow-origin"), null);

  res = await app.get("/v1/products?limit=1", { headers: { Origin: origin } });
  assert.equal(res.headers.get("access-control-allow-origin"), origin);
  assert.match(res.headers.get("access-control-expose-headers"), /ETag/);
  res = await app.get("/v1/products?limit=1", { headers: { Origin: "https://evil.example" } });
  assert.equal(res.headers.get("access-control-allow-origin"), null);
});

test("every answer carries a request id; one structured log line per request", async () => {
  const res = await app.get("/v1/products/prod_beanie");
  const id = res.headers.get("x-request-id");
  assert.match(id, /^req_[0-9a-f]{32}$/);
  const mine = await app.get("/v1/products/prod_beanie", { headers: { "X-Request-Id": "storefront-trace-1234" } });
  assert.equal(mine.headers.get("x-request-id"), "storefront-trace-1234");
  await new Promise((r) => setTimeout(r, 200));
  const lines = app.logs.filter((l) => l.includes(id)).map((l) => JSON.parse(l));
  assert.equal(lines.length, 1, app.logs.slice(-5).join("\n"));
  assert.deepEqual(
    { ...lines[0], duration_ms: 0 },
    // The D1 use is measured, not estimated: this read is one statement (the cache is off here).
    { level: "info", request_id: id, method: "GET", route: "/v1/products/{product_id}", status: 200, duration_ms: 0, d1_round_trips: 1, d1_statements: 1 },
  );
});

test("the OpenAPI document is served, and every documented operation is routed", async () => {
  const res = await app.get("/v1/openapi.json");
  assert.equal(res.status, 200);
  assert.match(res.body.openapi, /^3\.1\./);
  const samples = { product_id: "prod_beanie", cart_id: "cart_00000000000000000000000000000000", line_id: "line_00000000000000000000000000000000", sku: "BEANIE-BLACK", currency: "EUR" };
  let operations = 0;
  for (const [template, item] of Object.entries(res.body.paths)) {
    const path = template.replace(/\{(\w+)\}/g, (_, name) => samples[name]);
    for (const method of Object.keys(item)) {
      operations += 1;
      const r = await app.request(method.toUpperCase(), path, { json: method === "get" ? undefined : {} });
      assert.ok(
        !["route_not_found", "method_not_allowed"].includes(r.body?.code),
        `${method.toUpperCase()} ${template} is documented but not routed: ${r.text}`,
      );
    }
  }
  assert.ok(operations >= 10);
});

test("the example JWT secret is refused outside development", async () => {
  const EXAMPLE = "change-me-to-at-least-32-random-bytes-of-secret";
  const prod = await spawnApp({ vars: { JWT_SECRET: EXAMPLE, ENVIRONMENT: "production" } });
  try {
    const token = await adminToken(["catalog:write"], { secret: EXAMPLE });
    const res = await prod.request("PUT", PRICE, { json: { amount: "30.00" }, headers: bearer(token) });
    assertProblem(res, 500, "internal_error");
    assert.ok(prod.logs.some((l) => l.includes("JWT_SECRET")), "the cause is logged");
  } finally {
    await prod.close();
  }
  const dev = await spawnApp({ vars: { JWT_SECRET: EXAMPLE, ENVIRONMENT: "development" } });
  try {
    const token = await adminToken(["catalog:write"], { secret: EXAMPLE });
    const res = await dev.request("PUT", PRICE, { json: { amount: "30.00" }, headers: bearer(token) });
    assert.equal(res.status, 200, res.text);
  } finally {
    await dev.close();
  }
});

test("a storage failure is an opaque 500; its cause is logged once, with the request id", async () => {
  await app.db.prepare("ALTER TABLE products RENAME TO products_offline").run();
  try {
    const id = `req-${randomUUID()}`;
    const res = await app.get("/v1/products/prod_beanie", { headers: { "X-Request-Id": id } });
    assertProblem(res, 500, "internal_error");
    assert.ok(!res.text.includes("products"), `opaque: ${res.text}`);
    assert.equal(res.body.request_id, id);
    await new Promise((r) => setTimeout(r, 200));
    const errors = app.logs
      .filter((l) => l.includes(id))
      .map((l) => JSON.parse(l.slice(l.indexOf("{"))))
      .filter((l) => l.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0].error, /^get product: [\s\S]*no such table: products/, "the cause says what was being done and why");
  } finally {
    await app.db.prepare("ALTER TABLE products_offline RENAME TO products").run();
  }
});
