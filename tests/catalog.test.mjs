// The catalog: GET /v1/products (paged, by category) and GET /v1/products/{id} (variants,
// prices per currency, stock status), cached in the isolate when configured.
// operationIds: listProducts, getProduct
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { assertProblem, spawnApp } from "./helpers.mjs";
import { restock } from "./fixtures.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

async function walk(query) {
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const qs = new URLSearchParams(query);
    if (cursor) qs.set("cursor", cursor);
    const res = await app.get(`/v1/products?${qs}`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.data.length <= Number(query.limit ?? 20));
    assert.equal(res.body.has_more, res.body.next_cursor !== null);
    seen.push(...res.body.data);
    cursor = res.body.next_cursor;
    pages += 1;
    assert.ok(pages < 100, "pagination does not end");
  } while (cursor);
  return { seen, pages };
}

test("pagination walks every product exactly once, in order", async () => {
  const total = await app.count("products");
  assert.ok(total >= 40);
  const { seen, pages } = await walk({ limit: "7" });
  assert.equal(pages, Math.ceil(total / 7));
  const ids = seen.map((p) => p.id);
  assert.equal(new Set(ids).size, total, "every product once");
  assert.deepEqual(ids, [...ids].sort());
});

test("category filter returns exactly that category", async () => {
  const { n } = await app.db.prepare("SELECT count(*) AS n FROM products WHERE category_id = 'cat_mugs' AND status = 'active'").first();
  assert.ok(n > 0);
  const { seen } = await walk({ limit: "4", category: "mugs" });
  assert.equal(seen.length, n);
  assert.ok(seen.every((p) => p.category === "mugs"));
  const none = await app.get("/v1/products?category=no-such-category");
  assert.deepEqual(none.body, { data: [], next_cursor: null, has_more: false });
});

test("a product page has variants with options, prices per currency and a stock status", async () => {
  const res = await app.get("/v1/products/prod_classic-tee");
  assert.equal(res.status, 200);
  const p = res.body;
  assert.equal(p.id, "prod_classic-tee");
  assert.ok(p.variants.length >= 2);
  for (const v of p.variants) {
    assert.match(v.sku, /^[A-Z0-9-]+$/);
    assert.equal(typeof v.options.size, "string");
    assert.ok(["in_stock", "low", "out_of_stock"].includes(v.stock));
    const byCurrency = Object.fromEntries(v.prices.map((m) => [m.currency, m.amount]));
    assert.match(byCurrency.EUR, /^\d+\.\d{2}$/);
    assert.match(byCurrency.JPY, /^\d+$/, "JPY has no minor digits");
  }
  assert.match(res.headers.get("cache-control"), /public, max-age=0/);
});

test("stock status follows inventory: in stock, low, out", async () => {
  const sku = "CLASSICTEE-S-BLACK";
  const status = async () =>
    (await app.get("/v1/products/prod_classic-tee")).body.variants.find((v) => v.sku === sku).stock;
  await restock(app, sku, { onHand: 50, lowThreshold: 5 });
  assert.equal(await status(), "in_stock");
  await restock(app, sku, { onHand: 5, lowThreshold: 5 });
  assert.equal(await status(), "low");
  await restock(app, sku, { onHand: 0, lowThreshold: 5 });
  assert.equal(await status(), "out_of_stock");
});

test("bad list parameters and unknown products are problems", async () => {
  for (const qs of ["limit=0", "limit=101", "limit=abc", "cursor=%%%", "cursor=", "category=Mugs", "colour=red"]) {
    assertProblem(await app.get(`/v1/products?${qs}`), 422, "validation_failed");
  }
  assertProblem(await app.get("/v1/products/prod_nope"), 404, "product_not_found");
  assertProblem(await app.get("/v1/products/not-an-id"), 404, "product_not_found");
});

test("catalog reads are cached in the isolate for the configured time", async (t) => {
  const cached = await spawnApp({ vars: { CATALOG_CACHE_TTL_SECONDS: "60" } });
  t.after(() => cached.close());
  const first = await cached.get("/v1/products/prod_beanie");
  assert.match(first.headers.get("cache-control"), /max-age=60/);
  await cached.db.prepare("UPDATE products SET name = 'Renamed' WHERE id = 'prod_beanie'").run();
  const second = await cached.get("/v1/products/prod_beanie");
  assert.equal(second.body.name, first.body.name, "served from the isolate cache");
  // A strong ETag of the body: a client revalidates for a bodiless 304.
  const etag = first.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  assert.equal(second.headers.get("etag"), etag);
  const revalidated = await cached.get("/v1/products/prod_beanie", { headers: { "If-None-Match": etag } });
  assert.equal(revalidated.status, 304);
  assert.equal(revalidated.text, "");
  assert.equal(revalidated.headers.get("etag"), etag);
  assert.equal((await cached.get("/v1/products/prod_beanie", { headers: { "If-None-Match": '"other"' } })).status, 200);
  // A cache hit answers exactly what a miss would: unknown parameters are still refused.
  assert.equal((await cached.get("/v1/products?limit=2")).status, 200);
  assert.equal((await cached.get("/v1/products")).status, 200);
  assertProblem(await cached.get("/v1/products?limit=2&colour=red"), 422, "validation_failed");
  assertProblem(await cached.get("/v1/products/prod_beanie?expand=all"), 422, "validation_failed");
  assertProblem(await cached.get("/v1/products?category="), 422, "validation_failed");
});
