// Catalog management as a merchant's tools drive it: products (create, read, change under
// If-Match, archive), their variants (options, SKUs, barcodes, archive) and the category tree
// (create, rename, move; cycles and sibling handles refused by the database) and their images
// (uploaded by their bytes into R2, served with ETag, 304 and 206). Every refusal is a
// problem+json that changes nothing; every change writes its event; the storefront shows only
// active products and variants.
// operationIds: listManagedProducts, createProduct, getManagedProduct, updateProduct, addVariant, updateVariant, uploadProductImage, getImage, listCategories, createCategory, updateCategory, listCollections, createCollection, setCollectionProducts
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { adminToken, assertProblem, newCart, spawnApp } from "./helpers.mjs";
import { LONDON, cartWith, placeOrder, restock } from "./fixtures.mjs";

let app, write, read;
before(async () => {
  app = await spawnApp();
  write = { Authorization: `Bearer ${await adminToken(["catalog:write", "catalog:read"])}` };
  read = { Authorization: `Bearer ${await adminToken(["catalog:read"])}` };
});
after(async () => app?.close());

const PRODUCTS = "/v1/admin/products";
const CATEGORIES = "/v1/admin/categories";
const create = (json, headers = write) => app.post("/v1/admin/products", json, { headers });
const readProduct = (id) => app.get(`/v1/admin/products/${id}`, { headers: read });
const change = (id, json, headers = {}) => app.patch(`/v1/admin/products/${id}`, json, { headers: { ...write, ...headers } });
const addVariant = (id, json, headers = {}) => app.post(`/v1/admin/products/${id}/variants`, json, { headers: { ...write, ...headers } });
const changeVariant = (id, sku, json, headers = {}) =>
  app.patch(`/v1/admin/products/${id}/variants/${sku}`, json, { headers: { ...write, ...headers } });
const createCategory = (json) => app.post("/v1/admin/categories", json, { headers: write });
const changeCategory = (id, json) => app.patch(`/v1/admin/categories/${id}`, json, { headers: write });
const events = async (type, field, value) =>
  (await app.db.prepare(`SELECT payload FROM outbox WHERE type = ?1 AND json_extract(payload, '$.${field}') = ?2`).bind(type, value).all()).results.map((r) => JSON.parse(r.payload));

/** What a refused request must leave as it was. */
async function snapshot() {
  const counts = {};
  for (const table of ["products", "variants", "prices", "inventory", "categories", "category_paths", "images", "product_images", "collections", "collection_products", "outbox"]) counts[table] = await app.count(table);
  const versions = (await app.db.prepare("SELECT group_concat(id || ':' || version || ':' || status || ':' || handle) AS v FROM products").first()).v;
  return { counts, versions };
}
async function changesNothing(fn) {
  const before = await snapshot();
  await fn();
  assert.deepEqual(await snapshot(), before, "a refused change writes nothing");
}

let seq = 0;
const unique = (text) => `${text} ${++seq}`;

test("a product is created from a title alone: a draft, its handle derived, its ETag and product.created", async () => {
  const res = await create({ title: unique("Crème Brûlée Größe Tee") });
  assert.equal(res.status, 201, res.text);
  const product = res.body;
  assert.match(product.id, /^prod_[0-9a-f]{32}$/);
  assert.equal(product.handle, `creme-brulee-grosse-tee-${seq}`);
  assert.equal(product.status, "draft");
  assert.equal(product.version, 1);
  assert.deepEqual(product.variants, []);
  assert.equal(res.headers.get("location"), `${PRODUCTS}/${product.id}`);
  assert.equal(res.headers.get("etag"), `"${product.id}.v1"`);
  const [event] = await events("product.created", "product_id", product.id);
  assert.deepEqual(event, { product_id: product.id, handle: product.handle, status: "draft", version: 1 });

  // A draft is not shown to shoppers; the admin reads it.
  assertProblem(await app.get(`/v1/products/${product.id}`), 404, "product_not_found");
  const got = await readProduct(product.id);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, product);
  assert.equal(got.headers.get("etag"), `"${product.id}.v1"`);
});

test("every field of a product is written and read back; the storefront shows it once active", async () => {
  const category = (await createCategory({ name: unique("Linen") })).body;
  const res = await create({
    title: "  Linen Shirt  ",
    handle: `linen-shirt-${seq}`,
    description: "Breezy.\nMade in Portugal.",
    status: "active",
    category_id: category.id,
    tags: ["summer", "Linen", "linen"],
    attributes: { material: "linen", brand: "Acme" },
    options: ["size"],
    seo_title: "Linen shirt",
    seo_description: "A breezy linen shirt",
  });
  assert.equal(res.status, 201, res.text);
  const p = res.body;
  assert.equal(p.title, "Linen Shirt");
  assert.deepEqual(p.tags, ["summer", "Linen"], "tags are kept once, compared without case");
  assert.deepEqual(p.attributes, { brand: "Acme", material: "linen" });
  assert.equal(p.description, "Breezy.\nMade in Portugal.");
  assert.equal(p.category_id, category.id);
  const added = await addVariant(p.id, { sku: `LINEN-${seq}-M`, options: { size: "M" }, prices: [{ amount: "49.00", currency: "EUR" }], weight_grams: 300, barcode: "4006381333931" });
  assert.equal(added.status, 201, added.text);
  const shown = await app.get(`/v1/products/${p.id}`);
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.body.handle, p.handle);
  assert.equal(shown.body.category, category.handle);
  assert.deepEqual(shown.body.variants.map((v) => v.sku), [`LINEN-${seq}-M`]);
  const listed = await app.get(`/v1/products?category=${category.handle}`);
  assert.deepEqual(listed.body.data.map((s) => s.id), [p.id]);
});

test("invalid products are 422 with a pointer and write nothing", async () => {
  await changesNothing(async () => {
    const cases = [
      [{}, "/title", "missing_field"],
      [{ title: "" }, "/title", "invalid_title"],
      [{ title: "x".repeat(201) }, "/title", "invalid_title"],
      [{ title: "???" }, "/handle", "handle_required"],
      [{ title: "Tee", handle: "Not A Handle" }, "/handle", "invalid_handle"],
      [{ title: "Tee", handle: "double--hyphen" }, "/handle", "invalid_handle"],
      [{ title: "Tee", status: "published" }, "/status", "invalid_status"],
      [{ title: "Tee", description: "<b>bold</b>\u0007" }, "/description", "invalid_description"],
      [{ title: "Tee", tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, "/tags", "too_many_tags"],
      [{ title: "Tee", tags: ["ok", ""] }, "/tags/1", "invalid_tag"],
      [{ title: "Tee", attributes: { "Bad Key": "x" } }, "/attributes/Bad Key", "invalid_attribute"],
      [{ title: "Tee", options: ["size", "size"] }, "/options", "invalid_options"],
      [{ title: "Tee", options: ["a", "b", "c", "d"] }, "/options", "invalid_options"],
      [{ title: "Tee", category_id: "apparel" }, "/category_id", "invalid_category_id"],
      [{ title: "Tee", category_id: "cat_nope" }, "/category_id", "unknown_category"],
      [{ title: "Tee", seo_title: "x".repeat(121) }, "/seo_title", "invalid_seo_text"],
      [{ title: "Tee", price: "1.00" }, "/price", "unknown_field"],
    ];
    for (const [json, pointer, code] of cases) {
      const p = assertProblem(await create(json), 422, "validation_failed");
      assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(json));
    }
  });
});

test("a handle is unique: a second product with it is 409 handle_taken", async () => {
  const handle = `unique-handle-${++seq}`;
  assert.equal((await create({ title: "One", handle })).status, 201);
  await changesNothing(async () => {
    const p = assertProblem(await create({ title: "Two", handle }), 409, "handle_taken");
    assert.equal(p.errors[0].pointer, "/handle");
    // The demo catalog's handles are taken too.
    assertProblem(await create({ title: "Classic Tee" }), 409, "handle_taken");
  });
});

test("changes are made under If-Match: a stale ETag is 412 with the current one, and only one of two racing changes wins", async () => {
  const p = (await create({ title: unique("Racing Tee") })).body;
  const v1 = `"${p.id}.v1"`;
  let res = await change(p.id, { title: "Racing Tee, renamed" }, { "If-Match": v1 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.version, 2);
  assert.equal(res.body.handle, p.handle, "the handle changes only when it is given");
  assert.equal(res.headers.get("etag"), `"${p.id}.v2"`);
  await changesNothing(async () => {
    res = await change(p.id, { title: "Lost update" }, { "If-Match": v1 });
    assertProblem(res, 412, "precondition_failed");
    assert.equal(res.headers.get("etag"), `"${p.id}.v2"`);
  });
  const v2 = `"${p.id}.v2"`;
  const racing = await Promise.all(
    Array.from({ length: 5 }, (_, i) => change(p.id, { description: `writer ${i}` }, { "If-Match": v2 })),
  );
  const statuses = racing.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 412, 412, 412, 412], racing.map((r) => r.text).join("\n"));
  const now = (await readProduct(p.id)).body;
  assert.equal(now.version, 3);
  assert.equal(now.description, racing.find((r) => r.status === 200).body.description);
  // Without If-Match every racing change is applied, one after the other.
  const unconditional = await Promise.all(Array.from({ length: 3 }, (_, i) => change(p.id, { tags: [`t${i}`] })));
  assert.deepEqual(unconditional.map((r) => r.status), [200, 200, 200], unconditional.map((r) => r.text).join("\n"));
  assert.equal((await readProduct(p.id)).body.version, 6);
  // A change that changes nothing writes nothing and keeps the version.
  await changesNothing(async () => {
    res = await change(p.id, { title: "Racing Tee, renamed" });
    assert.equal(res.status, 200);
    assert.equal(res.body.version, 6);
  });
  assert.equal((await events("product.updated", "product_id", p.id)).length, 5);
});

test("variants: one value per option, unique SKUs and combinations, GTINs checked, options fixed while variants are active", async () => {
  const p = (await create({ title: unique("Options Tee"), options: ["size", "color"], status: "active" })).body;
  const sku = `OPT-${seq}`;
  let res = await addVariant(p.id, { sku: `${sku}-S-BLACK`, options: { size: "S", color: "black" }, prices: [{ amount: "20.00", currency: "EUR" }, { amount: "2500", currency: "JPY" }] });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.version, 2, "a variant change is a change of its product");
  const variant = res.body.variants[0];
  assert.deepEqual(variant.options, { color: "black", size: "S" });
  assert.deepEqual(variant.prices.map((m) => m.currency), ["EUR", "JPY"]);
  assert.equal(variant.status, "active");
  const stock = await app.db.prepare("SELECT on_hand FROM inventory WHERE sku = ?1").bind(variant.sku).first();
  assert.equal(stock.on_hand, 0, "a new variant has a stock record, empty");
  assert.equal((await events("variant.created", "sku", variant.sku)).length, 1);

  await changesNothing(async () => {
    assertProblem(await addVariant(p.id, { sku: `${sku}-OTHER`, options: { color: "black", size: "S" } }), 409, "combination_taken");
    assertProblem(await addVariant(p.id, { sku: variant.sku, options: { size: "M", color: "black" } }), 409, "sku_taken");
    assertProblem(await addVariant(p.id, { sku: "BEANIE-BLACK", options: { size: "M", color: "black" } }), 409, "sku_taken");
    const cases = [
      [{ sku: `${sku}-X`, options: { size: "M" } }, "/options", "options_mismatch"],
      [{ sku: `${sku}-X`, options: { size: "M", colour: "red" } }, "/options", "options_mismatch"],
      [{ sku: `${sku}-X`, options: { size: "M", color: "" } }, "/options/color", "invalid_option_value"],
      [{ sku: "lower-case", options: { size: "M", color: "red" } }, "/sku", "invalid_sku"],
      [{ sku: `${sku}-X`, options: { size: "M", color: "red" }, barcode: "4006381333932" }, "/barcode", "invalid_barcode"],
      [{ sku: `${sku}-X`, options: { size: "M", color: "red" }, weight_grams: -1 }, "/weight_grams", "invalid_weight"],
      [{ sku: `${sku}-X`, options: { size: "M", color: "red" }, prices: [{ amount: "-1.00", currency: "EUR" }] }, "/prices/0/amount", "invalid_amount"],
      [{ sku: `${sku}-X`, options: { size: "M", color: "red" }, prices: [{ amount: "1.00", currency: "EUR" }, { amount: "2.00", currency: "EUR" }] }, "/prices/1/currency", "duplicate_currency"],
    ];
    for (const [json, pointer, code] of cases) {
      const problem = assertProblem(await addVariant(p.id, json), 422, "validation_failed");
      assert.deepEqual([problem.errors[0].pointer, problem.errors[0].code], [pointer, code], JSON.stringify(json));
    }
    assertProblem(await change(p.id, { options: ["size"] }), 409, "options_in_use");
    assertProblem(await changeVariant(p.id, "NO-SUCH-SKU", { position: 1 }), 404, "variant_not_found");
    assertProblem(await addVariant("prod_nope", { sku: `${sku}-X` }), 404, "product_not_found");
    // A SKU never changes.
    const problem = assertProblem(await changeVariant(p.id, variant.sku, { sku: "RENAMED" }), 422, "validation_failed");
    assert.equal(problem.errors[0].pointer, "/sku");
  });

  res = await changeVariant(p.id, variant.sku, { barcode: "4006381333931", weight_grams: 180, position: 2 });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual([res.body.variants[0].barcode, res.body.variants[0].weight_grams], ["4006381333931", 180]);
  res = await changeVariant(p.id, variant.sku, { barcode: null });
  assert.equal(res.body.variants[0].barcode, null);
  assert.equal((await events("variant.updated", "sku", variant.sku)).length, 2);
});

test("archiving a variant hides it from shoppers and carts, and frees its combination", async () => {
  const p = (await create({ title: unique("Archive Variant Tee"), options: ["size"], status: "active" })).body;
  const sku = `ARCV-${seq}`;
  await addVariant(p.id, { sku: `${sku}-M`, options: { size: "M" }, prices: [{ amount: "10.00", currency: "EUR" }] });
  await addVariant(p.id, { sku: `${sku}-L`, options: { size: "L" }, prices: [{ amount: "10.00", currency: "EUR" }] });
  let res = await changeVariant(p.id, `${sku}-M`, { status: "archived" });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual((await events("variant.archived", "sku", `${sku}-M`)).map((e) => e.status), ["archived"]);
  const shown = await app.get(`/v1/products/${p.id}`);
  assert.deepEqual(shown.body.variants.map((v) => v.sku), [`${sku}-L`]);
  const cart = await newCart(app);
  const refused = assertProblem(await app.post(`/v1/carts/${cart.id}/items`, { sku: `${sku}-M`, quantity: 1 }), 422, "validation_failed");
  assert.equal(refused.errors[0].code, "unknown_sku");
  // The combination is free again for a new SKU.
  res = await addVariant(p.id, { sku: `${sku}-M2`, options: { size: "M" } });
  assert.equal(res.status, 201, res.text);
  // Bringing the old one back would make two active variants with the same values.
  assertProblem(await changeVariant(p.id, `${sku}-M`, { status: "active" }), 409, "combination_taken");

  // A variant archived while it sits in a cart is not sold: the checkout says it is gone.
  const held = await cartWith(app, "EUR", [[`${sku}-L`, 1]]);
  assert.equal((await changeVariant(p.id, `${sku}-L`, { status: "archived" })).status, 200);
  const orders = await app.count("orders");
  const checkout = await app.post(
    `/v1/carts/${held}/checkout`,
    { email: "ada@example.com", shipping_address: LONDON, shipping_method: "standard", payment_provider: "test" },
    { headers: { "Idempotency-Key": `archived-${sku}` } },
  );
  const gone = assertProblem(checkout, 409, "price_changed");
  assert.deepEqual(gone.changes.map((c) => [c.sku, c.new_unit_price]), [[`${sku}-L`, null]]);
  assert.equal(await app.count("orders"), orders, "no order is placed");
});

test("archiving a product: product.archived, gone from the storefront, no new variants; never deleted once ordered", async () => {
  const p = (await create({ title: unique("Archived Tee"), status: "active" })).body;
  await addVariant(p.id, { sku: `ARCP-${seq}`, prices: [{ amount: "5.00", currency: "EUR" }] });
  assert.equal((await app.get(`/v1/products/${p.id}`)).status, 200);
  const res = await change(p.id, { status: "archived" });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual((await events("product.archived", "product_id", p.id)).map((e) => e.status), ["archived"]);
  assertProblem(await app.get(`/v1/products/${p.id}`), 404, "product_not_found");
  const listed = await app.get("/v1/products?limit=100");
  assert.ok(!listed.body.data.some((s) => s.id === p.id));
  await changesNothing(async () => {
    assertProblem(await addVariant(p.id, { sku: `ARCP-${seq}-2` }), 409, "product_archived");
  });
  // The admin still lists it, by status.
  const archived = await app.get("/v1/admin/products?status=archived&limit=100", { headers: read });
  assert.ok(archived.body.data.some((a) => a.id === p.id));
  assert.ok(archived.body.data.every((a) => a.status === "archived"));

  // The database refuses to delete what an order line names, whatever its status.
  const sku = "POCKETNOTE-PLAIN";
  await restock(app, sku);
  await placeOrder(app, [{ sku, quantity: 1 }]);
  const { product_id } = await app.db.prepare("SELECT product_id FROM variants WHERE sku = ?1").bind(sku).first();
  await assert.rejects(app.db.prepare("DELETE FROM products WHERE id = ?1").bind(product_id).run(), /product ordered/);
  await assert.rejects(app.db.prepare("DELETE FROM variants WHERE sku = ?1").bind(sku).run(), /variant ordered/);
});

test("admin routes need a token with the catalog scopes", async () => {
  await changesNothing(async () => {
    assertProblem(await app.post(PRODUCTS, { title: "No token" }), 401, "unauthenticated");
    assertProblem(await create({ title: "Read only" }, read), 403, "insufficient_scope");
    assertProblem(await app.get(PRODUCTS), 401, "unauthenticated");
    assertProblem(await app.post(CATEGORIES, { name: "Read only" }, { headers: read }), 403, "insufficient_scope");
  });
  const page = await app.get(`${PRODUCTS}?limit=2`, { headers: read });
  assert.equal(page.status, 200);
  assert.equal(page.body.data.length, 2);
  assert.ok(page.body.has_more && page.body.next_cursor);
  assertProblem(await app.get(`${PRODUCTS}?state=draft`, { headers: read }), 422, "validation_failed");
});

test("categories: a tree with handles unique among siblings, moved and renamed, never into a cycle; filters reach the products below", async () => {
  const post = createCategory;
  const patch = changeCategory;
  const root = (await post({ name: unique("Outdoor Gear") })).body;
  assert.match(root.id, /^cat_[0-9a-f]{32}$/);
  assert.equal(root.handle, `outdoor-gear-${seq}`);
  assert.equal(root.parent_id, null);
  const tents = await post({ name: "Tents", parent_id: root.id, position: 1 });
  assert.equal(tents.status, 201, tents.text);
  assert.equal(tents.headers.get("location"), `${CATEGORIES}/${tents.body.id}`);
  const small = (await post({ name: "Small tents", handle: "small", parent_id: tents.body.id })).body;
  assert.equal((await events("category.created", "category_id", small.id)).length, 1);

  await changesNothing(async () => {
    assertProblem(await post({ name: "Tents again", handle: "tents", parent_id: root.id }), 409, "handle_taken");
    let p = assertProblem(await patch(root.id, { parent_id: small.id }), 409, "category_cycle");
    p = assertProblem(await patch(root.id, { parent_id: root.id }), 422, "validation_failed");
    assert.equal(p.errors[0].code, "category_cycle");
    p = assertProblem(await post({ name: "Orphan", parent_id: "cat_nope" }), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], ["/parent_id", "unknown_category"]);
    p = assertProblem(await post({ name: "" }), 422, "validation_failed");
    assert.equal(p.errors[0].pointer, "/name");
    assertProblem(await patch("cat_nope", { name: "x" }), 404, "category_not_found");
  });
  // The same handle under another parent is fine.
  assert.equal((await post({ name: "Tents", parent_id: small.id })).status, 201);

  // A product in the smallest category answers its ancestors' filters.
  const p = (await create({ title: unique("Hiking Tent"), status: "active", category_id: small.id })).body;
  await addVariant(p.id, { sku: `TENT-${seq}`, prices: [{ amount: "199.00", currency: "EUR" }] });
  for (const handle of [root.handle, "tents", "small"]) {
    const listed = await app.get(`/v1/products?category=${handle}&limit=100`);
    assert.ok(listed.body.data.some((s) => s.id === p.id), `category=${handle}`);
  }
  // Moved to the root, the small tents leave the tents filter; renamed, the event says so.
  let res = await patch(small.id, { parent_id: null, name: "Tiny tents", handle: "tiny-tents" });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.parent_id, null);
  assert.deepEqual((await events("category.updated", "category_id", small.id)).map((e) => [e.parent_id, e.handle]), [[null, "tiny-tents"]]);
  const tentsNow = await app.get(`/v1/products?category=tents&limit=100`);
  assert.ok(!tentsNow.body.data.some((s) => s.id === p.id));
  // Now the old root can go under the small tents: no cycle any more.
  res = await patch(root.id, { parent_id: small.id });
  assert.equal(res.status, 200, res.text);
  const tree = (await app.get("/v1/admin/categories", { headers: read })).body.data;
  const index = (id) => tree.findIndex((c) => c.id === id);
  assert.ok(index(small.id) < index(root.id) && index(root.id) < index(tents.body.id), "parents come before children");
});

// The smallest files of each accepted type whose headers say w × h (the type is read from these
// bytes, the size from the header), each with `tail` appended so that every upload is new bytes.
const be32 = (n) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const le = (n, bytes) => Array.from({ length: bytes }, (_, i) => (n >>> (8 * i)) & 255);
const ascii = (s) => [...Buffer.from(s, "latin1")];
const IMAGES = {
  "image/png": (w, h) => [0x89, ...ascii("PNG\r\n\x1a\n"), ...be32(13), ...ascii("IHDR"), ...be32(w), ...be32(h), 8, 2, 0, 0, 0, 0, 0, 0, 0],
  "image/gif": (w, h) => [...ascii("GIF89a"), ...le(w, 2), ...le(h, 2), 0, 0, 0, 0x3b],
  "image/jpeg": (w, h) => [0xff, 0xd8, 0xff, 0xe0, 0, 16, ...ascii("JFIF\0"), 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xc0, 0, 17, 8, (h >> 8) & 255, h & 255, (w >> 8) & 255, w & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9],
  "image/webp": (w, h) => [...ascii("RIFF"), ...le(22, 4), ...ascii("WEBPVP8X"), ...le(10, 4), 0, 0, 0, 0, ...le(w - 1, 3), ...le(h - 1, 3)],
  "image/avif": (w, h) => [
    ...be32(20), ...ascii("ftypavif"), 0, 0, 0, 0, ...ascii("avif"),
    ...be32(48), ...ascii("meta"), 0, 0, 0, 0, ...be32(36), ...ascii("iprp"), ...be32(28), ...ascii("ipco"),
    ...be32(20), ...ascii("ispe"), 0, 0, 0, 0, ...be32(w), ...be32(h),
  ],
};
const image = (type, w, h, tail = "") => Buffer.concat([Buffer.from(IMAGES[type](w, h)), Buffer.from(tail)]);
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const upload = (id, bytes, { query = "", contentType = "application/octet-stream", headers = {} } = {}) =>
  app.request("PUT", `/v1/admin/products/${id}/images${query}`, { body: bytes, headers: { ...write, "Content-Type": contentType, ...headers } });
const objects = async () => (await (await app.mf.getR2Bucket("IMAGES", "shop-catalog-admin")).list()).objects.length;
const fetchImage = (hash, headers = {}) => fetch(`${app.url}/v1/images/${hash}`, { headers });

test("images: each accepted type is taken by its bytes and sized from its header, stored once per content, shown in order", async () => {
  const p = (await create({ title: unique("Pictured Tee"), status: "active", options: ["size"] })).body;
  const [mine, theirs] = [`PIC-${seq}-M`, `PIC-${seq}-OTHER`];
  await addVariant(p.id, { sku: mine, options: { size: "M" }, prices: [{ amount: "10.00", currency: "EUR" }] });
  const other = (await create({ title: unique("Other Tee"), options: ["size"] })).body;
  await addVariant(other.id, { sku: theirs, options: { size: "M" } });
  const before = await objects();
  let position = 0;
  for (const [type, [w, h]] of Object.entries({ "image/jpeg": [800, 600], "image/png": [64, 32], "image/webp": [1200, 900], "image/avif": [300, 200], "image/gif": [16, 16] })) {
    const bytes = image(type, w, h, `${p.id}${type}`);
    // The Content-Type is not what decides: the bytes are.
    const res = await upload(p.id, bytes, { query: `?alt=${encodeURIComponent(`A ${type}`)}&position=${++position}` });
    assert.equal(res.status, 201, `${type}: ${res.text}`);
    const shown = res.body.images.find((i) => i.hash === sha256(bytes));
    assert.deepEqual([shown.content_type, shown.width, shown.height, shown.alt, shown.url], [type, w, h, `A ${type}`, `/v1/images/${sha256(bytes)}`], type);
  }
  assert.equal(await objects(), before + 5);
  assert.equal((await events("product.updated", "product_id", p.id)).length, 5, "every image is a change of its product");

  // The same bytes again, for the variant this time: one more place, the same one object.
  const again = image("image/png", 64, 32, `${p.id}image/png`);
  let res = await upload(p.id, again, { query: `?position=0&sku=${mine}`, contentType: "image/png" });
  assert.equal(res.status, 201, res.text);
  assert.equal(await objects(), before + 5, "the same picture twice is one object");
  assert.equal(res.body.images[0].sku, mine);
  const { n } = await app.db.prepare("SELECT count(*) AS n FROM images WHERE hash = ?1").bind(sha256(again)).first();
  assert.equal(n, 1);

  // An image of exactly 10 MiB is taken (one byte more is 413: the body limit, tested in
  // bad-input.test.mjs, and the domain's own check in its unit tests).
  const big = image("image/gif", 4000, 3000, "big");
  res = await upload(p.id, Buffer.concat([big, Buffer.alloc(10 * 1024 * 1024 - big.length)]), { query: "?position=9" });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.images.at(-1).width, 4000);

  // Shoppers see them in order, with their sizes.
  const page = await app.get(`/v1/products/${p.id}`);
  assert.deepEqual(page.body.images.map((i) => [i.width, i.height]), [[64, 32], [800, 600], [64, 32], [1200, 900], [300, 200], [16, 16], [4000, 3000]]);
  assert.deepEqual(page.body.images[0], { url: `/v1/images/${sha256(again)}`, width: 64, height: 32, alt: "", sku: mine });

  await changesNothing(async () => {
    const stored = await objects();
    // A program renamed to look like a picture.
    const exe = Buffer.concat([Buffer.from("MZ\x90\x00\x03\x00\x00\x00\x04\x00", "latin1"), Buffer.from("This program cannot be run in DOS mode")]);
    assertProblem(await upload(p.id, exe, { contentType: "image/png" }), 415, "unsupported_image_type");
    assertProblem(await upload(p.id, Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>"), { contentType: "image/svg+xml" }), 415, "unsupported_image_type");
    assertProblem(await upload(p.id, image("image/png", 1, 1).subarray(0, 14)), 422, "unreadable_image");
    let problem = assertProblem(await upload(p.id, image("image/gif", 2, 2, "x"), { query: `?sku=${theirs}` }), 422, "validation_failed");
    assert.deepEqual([problem.errors[0].pointer, problem.errors[0].code], ["/query/sku", "unknown_variant"]);
    problem = assertProblem(await upload(p.id, image("image/gif", 2, 2, "y"), { query: "?position=-1" }), 422, "validation_failed");
    assert.equal(problem.errors[0].pointer, "/query/position");
    assertProblem(await upload("prod_nope", image("image/gif", 2, 2, "z")), 404, "product_not_found");
    assertProblem(await upload(p.id, image("image/gif", 2, 2, "w"), { headers: { "If-Match": `"${p.id}.v1"` } }), 412, "precondition_failed");
    assertProblem(await app.request("PUT", `/v1/admin/products/${p.id}/images`, { body: image("image/gif", 2, 2), headers: { "Content-Type": "image/gif" } }), 401, "unauthenticated");
    assert.equal(await objects(), stored, "nothing refused reaches the bucket");
  });
});

test("images are served from R2 with their type, a strong ETag and a year of immutable caching; 304 and 206 as asked", async () => {
  const p = (await create({ title: unique("Served Tee"), status: "active" })).body;
  const bytes = image("image/png", 20, 10, "served".repeat(50));
  assert.equal((await upload(p.id, bytes)).status, 201);
  const hash = sha256(bytes);
  let res = await fetchImage(hash);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "image/png");
  assert.equal(res.headers.get("etag"), `"${hash}"`);
  assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), "byte for byte");

  res = await fetchImage(hash, { "If-None-Match": `"${hash}"` });
  assert.equal(res.status, 304);
  assert.equal((await res.arrayBuffer()).byteLength, 0);
  assert.equal(res.headers.get("etag"), `"${hash}"`);

  res = await fetchImage(hash, { Range: "bytes=0-7" });
  assert.equal(res.status, 206);
  assert.equal(res.headers.get("content-range"), `bytes 0-7/${bytes.length}`);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(0, 8)));
  res = await fetchImage(hash, { Range: "bytes=-10" });
  assert.equal(res.status, 206);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(bytes.length - 10)));
  res = await fetchImage(hash, { Range: `bytes=${bytes.length + 10}-` });
  assert.equal(res.status, 416);
  assert.equal(res.headers.get("content-range"), `bytes */${bytes.length}`);
  // Not one range: ignored, the whole image.
  res = await fetchImage(hash, { Range: "bytes=0-1,4-5" });
  assert.equal(res.status, 200);

  assertProblem(await app.get(`/v1/images/${"0".repeat(64)}`), 404, "image_not_found");
  assertProblem(await app.get("/v1/images/not-a-hash"), 404, "image_not_found");
});

test("a catalog change is on every storefront read path within CATALOG_CACHE_TTL_SECONDS (5 s), and the ETag moves with it", async (t) => {
  const cached = await spawnApp({ vars: { CATALOG_CACHE_TTL_SECONDS: "5" } });
  t.after(() => cached.close());
  const admin = { ...write };
  const p = (await cached.post("/v1/admin/products", { title: "Cached Tee", status: "active", category_id: "cat_t-shirts" }, { headers: admin })).body;
  await cached.post(`/v1/admin/products/${p.id}/variants`, { sku: "CACHED-TEE", prices: [{ amount: "9.00", currency: "EUR" }] }, { headers: admin });
  const paths = [`/v1/products/${p.id}`, "/v1/products?category=t-shirts&limit=100"];
  const name = async (path) => {
    const res = await cached.get(path);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get("cache-control"), "public, max-age=5");
    const body = res.body.data ? res.body.data.find((s) => s.id === p.id) : res.body;
    return { name: body.name, etag: res.headers.get("etag") };
  };
  const before = await Promise.all(paths.map(name));
  assert.deepEqual(before.map((b) => b.name), ["Cached Tee", "Cached Tee"]);
  const changedAt = Date.now();
  assert.equal((await cached.patch(`/v1/admin/products/${p.id}`, { title: "Renamed Tee" }, { headers: admin })).status, 200);
  for (const [i, path] of paths.entries()) {
    let now = await name(path);
    while (now.name !== "Renamed Tee") {
      assert.ok(Date.now() - changedAt < 5000 + 1000, `${path} still says ${now.name} after the bound`);
      await new Promise((r) => setTimeout(r, 200));
      now = await name(path);
    }
    assert.notEqual(now.etag, before[i].etag, "a new body, a new ETag");
    // A client holding the old tag gets the new body, not a 304.
    assert.equal((await cached.get(path, { headers: { "If-None-Match": before[i].etag } })).status, 200);
  }
});

test("collections: a manual, ordered list of products that the storefront lists in its order", async () => {
  const made = await app.post("/v1/admin/collections", { title: "Summer Sale" }, { headers: write });
  assert.equal(made.status, 201, made.text);
  assert.deepEqual([made.body.handle, made.body.product_ids], ["summer-sale", []]);
  const id = made.body.id;
  const draft = (await create({ title: unique("Unlisted Draft") })).body.id;
  const order = ["prod_wave-poster", "prod_classic-tee", draft, "prod_enamel-mug"];
  let res = await app.put(`/v1/admin/collections/${id}/products`, { product_ids: order }, { headers: write });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.product_ids, order);
  // Shoppers see its active products in its order, a page at a time.
  let page = await app.get("/v1/products?collection=summer-sale&limit=2");
  assert.deepEqual(page.body.data.map((p) => p.id), ["prod_wave-poster", "prod_classic-tee"]);
  page = await app.get(`/v1/products?collection=summer-sale&limit=2&cursor=${page.body.next_cursor}`);
  assert.deepEqual(page.body.data.map((p) => p.id), ["prod_enamel-mug"], "the draft is not shown");
  assert.equal(page.body.has_more, false);
  assert.deepEqual((await app.get("/v1/products?collection=no-such-collection")).body.data, []);

  await changesNothing(async () => {
    let problem = assertProblem(await app.put(`/v1/admin/collections/${id}/products`, { product_ids: ["prod_classic-tee", "prod_nope"] }, { headers: write }), 422, "validation_failed");
    assert.deepEqual([problem.errors[0].pointer, problem.errors[0].code], ["/product_ids", "unknown_product"]);
    problem = assertProblem(await app.put(`/v1/admin/collections/${id}/products`, { product_ids: ["prod_classic-tee", "prod_classic-tee"] }, { headers: write }), 422, "validation_failed");
    assert.equal(problem.errors[0].code, "duplicate_product");
    assertProblem(await app.put("/v1/admin/collections/col_nope/products", { product_ids: [] }, { headers: write }), 404, "collection_not_found");
    assertProblem(await app.post("/v1/admin/collections", { title: "Summer Sale" }, { headers: write }), 409, "handle_taken");
    assertProblem(await app.post("/v1/admin/collections", { title: "Read only" }, { headers: read }), 403, "insufficient_scope");
  });
  const listed = await app.get("/v1/admin/collections", { headers: read });
  assert.deepEqual(listed.body.data.find((c) => c.id === id).product_ids, order);
});
