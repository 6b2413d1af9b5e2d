// Product search as a shopper's search box uses it: words ranked with the title first, the word
// being typed as a prefix, case and accents folded, the title's substrings when no word matches,
// a did-you-mean when nothing does, any text safe; facets over the whole match in the same round
// trip; filters, sorts and a cursor that holds while products are added; and only what is on
// sale is ever found, from the moment its change commits.
// operationIds: searchProducts, suggestSearch
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { adminToken, assertProblem, spawnApp } from "./helpers.mjs";
import { restock } from "./fixtures.mjs";

let app, admin;
before(async () => {
  app = await spawnApp();
  admin = { Authorization: `Bearer ${await adminToken(["catalog:write", "catalog:read"])}` };
});
after(async () => app?.close());

const search = (query) => app.get(`/v1/search?${query}`);
const ids = (res) => res.body.data.map((h) => h.id);
/** An active product with one priced variant (and `stock` units of it). */
async function product(title, { description = "", tags = [], category_id = "cat_posters", stock = 0, status = "active" } = {}) {
  const res = await app.post("/v1/admin/products", { title, description, tags, category_id, status }, { headers: admin });
  assert.equal(res.status, 201, res.text);
  const sku = `S-${res.body.id.slice(5, 17).toUpperCase()}`;
  const added = await app.post(`/v1/admin/products/${res.body.id}/variants`, { sku, prices: [{ amount: "12.00", currency: "EUR" }] }, { headers: admin });
  assert.equal(added.status, 201, added.text);
  if (stock) await restock(app, sku, { onHand: stock });
  return res.body.id;
}

test("the title weighs most; the last word is a prefix; case and accents do not matter", async () => {
  const inTitle = await product("Zephyrine Lamp");
  const inText = await product("Desk Lamp", { description: "A lamp in the zephyrine style, for desks and tables." });
  let res = await search("q=zephyrine");
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(ids(res), [inTitle, inText], "the title match ranks first");
  assert.equal(res.body.matched_by, "words");
  assert.deepEqual(res.body.data[0].title, [{ text: "Zephyrine", match: true }, { text: " Lamp", match: false }]);
  assert.ok(res.body.data[1].snippet.some((s) => s.match && s.text.toLowerCase() === "zephyrine"));
  res = await search("q=zephy");
  assert.deepEqual(new Set(ids(res)), new Set([inTitle, inText]), "the word being typed is a prefix");
  const brulee = await product("Crème Brûlée Torch");
  for (const q of ["creme brulee", "CRÈME BRÛLÉE", "Creme Bru"]) {
    assert.deepEqual(ids(await search(`q=${encodeURIComponent(q)}`)), [brulee], q);
  }
});

test("no word matches: the title's substrings; nothing matches: did you mean", async () => {
  let res = await search("q=oodie");
  assert.equal(res.body.matched_by, "substring");
  assert.equal(res.body.facets.total, 5, "the five demo hoodies");
  assert.ok(res.body.data.every((h) => h.name.endsWith("Hoodie")));
  res = await search("q=hoddie");
  assert.deepEqual([res.body.data.length, res.body.matched_by, res.body.did_you_mean], [0, "none", "hoodie"]);
  res = await search("q=qwxzv");
  assert.deepEqual([res.body.data.length, res.body.did_you_mean], [0, null]);
});

test("any text is searched for, never run as FTS5 syntax", async () => {
  for (const q of ["tee-shirt", "c++", '"', "AND", "OR NOT", "*", "(", "NEAR(a b)", "col:mug", "'; DROP TABLE products; --", "🙂", "a\"b", "^tee"]) {
    const res = await search(`q=${encodeURIComponent(q)}`);
    assert.equal(res.status, 200, `${q}: ${res.text}`);
  }
  assert.equal((await search("q=t-shirts")).body.facets.total, 8, "a hyphenated word is a phrase: the eight demo T-shirts");
  for (const query of ["q=", "q=%20%20", `q=${"x".repeat(101)}`, "", "q=mug&sort=price", "q=mug&in_stock=yes", "q=mug&colour=red"]) {
    assertProblem(await search(query), 422, "validation_failed");
  }
});

test("drafts and archived products are never found; a change is findable the moment it commits", async () => {
  const draft = await product("Quillfeather Pen", { status: "draft" });
  assert.equal((await search("q=quillfeather")).body.facets.total, 0);
  await app.patch(`/v1/admin/products/${draft}`, { status: "active" }, { headers: admin });
  assert.deepEqual(ids(await search("q=quillfeather")), [draft]);
  await app.patch(`/v1/admin/products/${draft}`, { title: "Inkwell Pen" }, { headers: admin });
  assert.deepEqual(ids(await search("q=quillfeather")), []);
  assert.deepEqual(ids(await search("q=inkwell")), [draft]);
  await app.patch(`/v1/admin/products/${draft}`, { status: "archived" }, { headers: admin });
  assert.deepEqual(ids(await search("q=inkwell")), []);
});

test("facets count the whole match, filters narrow it, sorts and the cursor hold while products are added", async () => {
  // Hand-made fixture: six "Orbitron" products, four posters (two in stock) and two mugs (one).
  const made = [];
  for (const [i, [category_id, stock]] of [["cat_posters", 3], ["cat_posters", 0], ["cat_posters", 5], ["cat_posters", 0], ["cat_mugs", 2], ["cat_mugs", 0]].entries()) {
    made.push(await product(`Orbitron ${i}`, { category_id, stock }));
  }
  let res = await search("q=orbitron&limit=2");
  assert.equal(res.body.data.length, 2);
  assert.equal(res.body.facets.total, 6);
  assert.deepEqual(res.body.facets.categories.map((c) => [c.handle, c.count]).sort(), [["mugs", 2], ["posters", 4]]);
  assert.equal(res.body.facets.in_stock, 3);
  res = await search("q=orbitron&category=posters&in_stock=true");
  assert.deepEqual(new Set(ids(res)), new Set([made[0], made[2]]));
  assert.deepEqual([res.body.facets.total, res.body.facets.in_stock], [2, 2]);

  // Newest first, page by page, while more are added: no product twice, none that existed skipped.
  const seen = [];
  let cursor = "";
  for (let page = 0; page < 10; page++) {
    res = await search(`q=orbitron&sort=newest&limit=2${cursor}`);
    seen.push(...ids(res));
    if (page === 0) await product("Orbitron late");
    if (!res.body.has_more) break;
    cursor = `&cursor=${res.body.next_cursor}`;
  }
  assert.deepEqual(seen, [...made].reverse(), "newest first, each once, the late one after the cursor's start");
  // Relevance too walks every match once.
  const walked = [];
  cursor = "";
  do {
    res = await search(`q=orbitron&limit=3${cursor}`);
    walked.push(...ids(res));
    cursor = `&cursor=${res.body.next_cursor}`;
  } while (res.body.has_more);
  assert.equal(new Set(walked).size, walked.length);
  assert.equal(walked.length, 7);
});

test("prices in a currency: filters, sorts and bands by each product's lowest price; options and ratings narrow and count", async () => {
  const make = async (title, variants, rating) => {
    const res = await app.post("/v1/admin/products", { title, status: "active", options: ["size"], category_id: "cat_caps" }, { headers: admin });
    assert.equal(res.status, 201, res.text);
    for (const [size, amount, currency] of variants) {
      const sku = `NEB-${res.body.id.slice(5, 13).toUpperCase()}-${size}`;
      const added = await app.post(`/v1/admin/products/${res.body.id}/variants`, { sku, options: { size }, prices: [{ amount, currency }] }, { headers: admin });
      assert.equal(added.status, 201, added.text);
    }
    if (rating) await app.db.prepare("UPDATE products SET rating_count = ?2, rating_sum = ?3 WHERE id = ?1").bind(res.body.id, ...rating).run();
    return res.body.id;
  };
  const a = await make("Nebulite Alpha", [["S", "8.00", "EUR"], ["M", "30.00", "EUR"]], [2, 9]);
  const b = await make("Nebulite Beta", [["M", "60.00", "EUR"], ["L", "120.00", "EUR"]], [1, 3]);
  const c = await make("Nebulite Gamma", [["S", "15.00", "USD"]]);

  let res = await search("q=nebulite&currency=EUR");
  assert.deepEqual(new Set(ids(res)), new Set([a, b]), "only what is sold in EUR");
  assert.deepEqual(
    res.body.facets.price_bands.map((band) => [band.min.amount, band.max?.amount ?? null, band.count]),
    [["0.00", "10.00", 1], ["10.00", "25.00", 0], ["25.00", "50.00", 0], ["50.00", "100.00", 1], ["100.00", "250.00", 0], ["250.00", null, 0]],
  );
  assert.deepEqual(ids(await search("q=nebulite&currency=EUR&price_min=10")), [b]);
  assert.deepEqual(ids(await search("q=nebulite&currency=EUR&price_max=50.00")), [a]);
  assert.deepEqual(ids(await search("q=nebulite&currency=EUR&sort=price_asc")), [a, b]);
  assert.deepEqual(ids(await search("q=nebulite&currency=EUR&sort=price_desc")), [b, a]);
  assertProblem(await search("q=nebulite&sort=price_asc"), 422, "validation_failed");
  assertProblem(await search("q=nebulite&price_min=10"), 422, "validation_failed");

  res = await search("q=nebulite");
  assert.deepEqual(res.body.facets.price_bands, [], "no currency, no bands");
  assert.deepEqual(res.body.facets.options.map((o) => [o.name, o.value, o.count]), [["size", "M", 2], ["size", "S", 2], ["size", "L", 1]]);
  assert.deepEqual(ids(await search("q=nebulite&option.size=L")), [b]);
  assert.deepEqual(new Set(ids(await search("q=nebulite&option.size=S&option.size=L"))), new Set([a, b, c]), "OR within an option");
  assert.deepEqual(ids(await search("q=nebulite&option.size=S&option.size=L&currency=USD")), [c], "AND across filters");
  assertProblem(await search("q=nebulite&option.Size=L"), 422, "validation_failed");

  assert.deepEqual(ids(await search("q=nebulite&rating_min=4")), [a]);
  assert.deepEqual(ids(await search("q=nebulite&sort=rating")), [a, b, c], "best rated first, unrated last");
  assertProblem(await search("q=nebulite&rating_min=6"), 422, "validation_failed");
});

test("a search box's completions: categories whose name starts with the text, then the best product titles, eight at most", async () => {
  let res = await app.get("/v1/search/suggest?q=ho");
  assert.equal(res.status, 200, res.text);
  assert.ok(res.headers.get("cache-control").startsWith("public, max-age="));
  const kinds = res.body.data.map((s) => s.kind);
  assert.deepEqual(res.body.data[0], { kind: "category", text: "Hoodies", id: "cat_hoodies", handle: "hoodies" });
  assert.ok(kinds.lastIndexOf("category") < kinds.indexOf("product"), "categories first");
  assert.ok(res.body.data.filter((s) => s.kind === "product").every((s) => /\bho/i.test(s.text)));
  assert.ok(res.body.data.length <= 8);
  res = await app.get("/v1/search/suggest?q=t");
  assert.equal(res.body.data.length, 8, "never more than eight");
  assert.ok(res.body.data.filter((s) => s.kind === "category").length <= 4);
  assert.deepEqual((await app.get(`/v1/search/suggest?q=${encodeURIComponent('"')}`)).body.data, []);
  assert.deepEqual((await app.get("/v1/search/suggest?q=qqqzzz")).body.data, []);
  assertProblem(await app.get("/v1/search/suggest"), 422, "validation_failed");
  assertProblem(await app.get("/v1/search/suggest?q=ho&limit=3"), 422, "validation_failed");
});
