// Catalog management as a merchant's tools drive it: products (create, read, change under
// If-Match, archive), their variants (options, SKUs, barcodes, archive) and the category tree
// (create, rename, move; cycles and sibling handles refused by the database). Every refusal is a
// problem+json that changes nothing; every change writes its event; the storefront shows only
// active products and variants.
// operationIds: listManagedProducts, createProduct, getManagedProduct, updateProduct, addVariant, updateVariant, listCategories, createCategory, updateCategory
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
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
  for (const table of ["products", "variants", "prices", "inventory", "categories", "category_paths", "outbox"]) counts[table] = await app.count(table);
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
