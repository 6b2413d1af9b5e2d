// Verified-buyer reviews: refused without a paid order containing the product, accepted with
// one, once per customer and product; the product's rating is exact through hide and unhide;
// listings newest or most helpful first; helpful votes; moderation by an admin; bad input
// changes nothing.
// operationIds: listReviews, createReview, markReviewHelpful, listReviewsForModeration, moderateReview
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { adminToken, assertProblem, signedInCustomer, spawnApp } from "./helpers.mjs";
import { capture, placeOrder, restock, stripeChargeRefunded } from "./fixtures.mjs";

const STRIPE_SECRET = "whsec_reviews_0123456789";
let app;
before(async () => (app = await spawnApp({ vars: { STRIPE_WEBHOOK_SECRETS: STRIPE_SECRET } })));
after(async () => app?.close());

const key = () => ({ "Idempotency-Key": randomUUID() });

/** A product of its own for this test, sold in EUR with stock (its SKU from the demo catalog). */
async function product() {
  const row = await app.db
    .prepare(
      `SELECT v.sku, v.product_id FROM variants v JOIN prices p ON p.sku = v.sku AND p.currency = 'EUR'
       WHERE v.product_id NOT IN (SELECT product_id FROM reviews) ORDER BY v.product_id LIMIT 1`,
    )
    .first();
  await restock(app, row.sku, { onHand: 1000 });
  return row;
}

/** The customer orders one of `sku` signed in; `pay`: the merchant then captures the payment. */
async function order(buyer, sku, pay) {
  const { order: placed } = await placeOrder(app, [{ sku, quantity: 1 }], { customer: buyer });
  if (pay) await capture(app, placed, `Bearer ${await adminToken(["orders:write"])}`);
  return placed.id;
}

const review = (buyer, productId, body) => app.post(`/v1/products/${productId}/reviews`, body, { headers: { ...buyer.auth, ...key() } });
const rating = async (productId) => (await app.get(`/v1/products/${productId}/reviews`)).body.rating;

test("only a buyer with a paid order reviews, once; the rating is exact through hide and unhide", async () => {
  const { sku, product_id } = await product();
  const [ada, bob, cy, dee] = [await signedInCustomer(app, "Ada"), await signedInCustomer(app), await signedInCustomer(app), await signedInCustomer(app)];
  const good = { rating: 5, title: "Lovely", body: "Holds tea.\nKeeps it warm." };

  // No order; an unpaid order: refused, nothing written.
  assertProblem(await review(ada, product_id, good), 403, "not_a_verified_buyer");
  await order(ada, sku, false);
  assertProblem(await review(ada, product_id, good), 403, "not_a_verified_buyer");
  assert.equal(await app.count("reviews"), 0);

  await order(ada, sku, true);
  const written = await review(ada, product_id, good);
  assert.equal(written.status, 201, written.text);
  assert.deepEqual([written.body.author, written.body.rating, written.body.title, written.body.body, written.body.verified_buyer], ["Ada", 5, "Lovely", good.body, true]);
  assertProblem(await review(ada, product_id, { ...good, rating: 1 }), 409, "already_reviewed");

  for (const [buyer, stars] of [[bob, 4], [cy, 4], [dee, 2]]) {
    await order(buyer, sku, true);
    assert.equal((await review(buyer, product_id, { rating: stars, title: "Fine", body: "It is a product." })).status, 201);
  }
  assert.deepEqual(await rating(product_id), { average: "3.75", count: 4 }, "(5 + 4 + 4 + 2) / 4");

  // Moderation: a hidden review leaves the average; shown again, it is back.
  const admin = { Authorization: `Bearer ${await adminToken(["reviews:write"])}` };
  const moderate = (id, body, headers = admin) => app.patch(`/v1/admin/reviews/${id}`, body, { headers: { ...headers, ...key() } });
  assertProblem(await moderate(written.body.id, { hidden: true }), 422, "validation_failed");
  assertProblem(await moderate(written.body.id, { hidden: true, reason: "spam" }, ada.auth), 401, "invalid_token");
  const hidden = await moderate(written.body.id, { hidden: true, reason: "Mentions a competitor" });
  assert.equal(hidden.status, 200, hidden.text);
  assert.deepEqual([hidden.body.hidden, hidden.body.hidden_reason], [true, "Mentions a competitor"]);
  assert.deepEqual(await rating(product_id), { average: "3.33", count: 3 }, "(4 + 4 + 2) / 3");
  assert.equal((await moderate(written.body.id, { hidden: true, reason: "again" })).status, 200, "hiding twice counts once");
  assert.deepEqual(await rating(product_id), { average: "3.33", count: 3 });
  const listed = (await app.get(`/v1/products/${product_id}/reviews`)).body.data.map((r) => r.id);
  assert.ok(!listed.includes(written.body.id), "a hidden review is not listed");
  // Moderators find it among the hidden ones (a reader's scope is enough; a writer's alone is not).
  const reader = { Authorization: `Bearer ${await adminToken(["reviews:read"])}` };
  const hiddenOnes = await app.get(`/v1/admin/reviews?hidden=true&product_id=${product_id}`, { headers: reader });
  assert.equal(hiddenOnes.status, 200, hiddenOnes.text);
  assert.deepEqual(hiddenOnes.body.data.map((r) => [r.id, r.hidden_reason]), [[written.body.id, "again"]], "the latest reason");
  assert.equal((await app.get(`/v1/admin/reviews?hidden=false&product_id=${product_id}`, { headers: reader })).body.data.length, 3);
  assertProblem(await app.get("/v1/admin/reviews", { headers: admin }), 403, "insufficient_scope");
  assert.equal((await moderate(written.body.id, { hidden: false })).status, 200);
  assert.deepEqual(await rating(product_id), { average: "3.75", count: 4 });
  const stored = await app.db.prepare("SELECT rating_count, rating_sum FROM products WHERE id = ?1").bind(product_id).first();
  assert.deepEqual(stored, { rating_count: 4, rating_sum: 15 });
  // The product read carries the rating too.
  assert.deepEqual((await app.get(`/v1/products/${product_id}`)).body.rating, { average: "3.75", count: 4 });
});

test("reviews list newest or most helpful first, one vote per customer, never one's own", async () => {
  const { sku, product_id } = await product();
  const buyers = [await signedInCustomer(app), await signedInCustomer(app), await signedInCustomer(app)];
  const ids = [];
  for (const [i, buyer] of buyers.entries()) {
    await order(buyer, sku, true);
    const res = await review(buyer, product_id, { rating: 3 + i, title: `Review ${i}`, body: "Text." });
    ids.push(res.body.id);
  }
  // Distinct times, oldest first, so the order does not depend on the clock's resolution.
  for (const [i, id] of ids.entries()) await app.db.prepare("UPDATE reviews SET created_at = ?2 WHERE id = ?1").bind(id, 1_800_000_000_000 + i).run();

  const vote = (buyer, id) => app.post(`/v1/products/${product_id}/reviews/${id}/helpful`, undefined, { headers: { ...buyer.auth, ...key() } });
  assert.equal((await vote(buyers[1], ids[0])).body.helpful, 1);
  assert.equal((await vote(buyers[1], ids[0])).body.helpful, 1, "a second vote is not counted");
  assert.equal((await vote(buyers[2], ids[0])).body.helpful, 2);
  assert.equal((await vote(buyers[0], ids[1])).body.helpful, 1);
  assertProblem(await vote(buyers[0], ids[0]), 422, "own_review");
  assertProblem(await vote(buyers[0], `rev_${"0".repeat(32)}`), 404, "review_not_found");

  const newest = (await app.get(`/v1/products/${product_id}/reviews`)).body.data.map((r) => r.id);
  assert.deepEqual(newest, [ids[2], ids[1], ids[0]]);
  const page1 = (await app.get(`/v1/products/${product_id}/reviews?sort=helpful&limit=2`)).body;
  assert.deepEqual(page1.data.map((r) => r.id), [ids[0], ids[1]]);
  const page2 = (await app.get(`/v1/products/${product_id}/reviews?sort=helpful&limit=2&cursor=${encodeURIComponent(page1.next_cursor)}`)).body;
  assert.deepEqual([page2.data.map((r) => r.id), page2.has_more], [[ids[2]], false]);
  assertProblem(await app.get(`/v1/products/${product_id}/reviews?sort=stars`), 422, "validation_failed");
  assertProblem(await app.get(`/v1/products/prod_no-such-thing/reviews`), 404, "product_not_found");
});

test("bad reviews are 422 and change nothing; tokens other than a customer's are refused", async () => {
  const { sku, product_id } = await product();
  const buyer = await signedInCustomer(app);
  await order(buyer, sku, true);
  const before = await app.count("reviews");
  for (const [body, pointer, code] of [
    [{ rating: 6, title: "t", body: "b" }, "/rating", "invalid_rating"],
    [{ rating: 0, title: "t", body: "b" }, "/rating", "invalid_rating"],
    [{ rating: 4, title: "", body: "b" }, "/title", "invalid_length"],
    [{ rating: 4, title: "t".repeat(121), body: "b" }, "/title", "invalid_length"],
    [{ rating: 4, title: "t", body: "b".repeat(5001) }, "/body", "invalid_length"],
    [{ rating: 4, title: "t\u0000", body: "b" }, "/title", "invalid_characters"],
    [{ rating: 4, title: "t", body: "b\u202e" }, "/body", "invalid_characters"],
    [{ rating: 4, title: "t", body: "b", stars: 5 }, "/stars", "unknown_field"],
  ]) {
    const p = assertProblem(await review(buyer, product_id, body), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], [pointer, code], JSON.stringify(body).slice(0, 60));
  }
  assert.equal(await app.count("reviews"), before);
  const admin = await adminToken(["reviews:write", "orders:read"]);
  const asAdmin = await app.post(`/v1/products/${product_id}/reviews`, { rating: 4, title: "t", body: "b" }, { headers: { Authorization: `Bearer ${admin}`, ...key() } });
  assertProblem(asAdmin, 401, "invalid_token");
  assertProblem(await app.post(`/v1/products/${product_id}/reviews`, { rating: 4, title: "t", body: "b" }, { headers: key() }), 401, "unauthenticated");
  assert.equal((await review(buyer, product_id, { rating: 4, title: "Plain <b>text</b>", body: "Stored as written." })).body.title, "Plain <b>text</b>", "plain text, returned as written");
});

test("a customer whose order was refunded in full is not a verified buyer any more", async () => {
  const buyer = await signedInCustomer(app);
  const { sku, product_id } = await product();
  const admin = `Bearer ${await adminToken(["orders:write", "orders:read"])}`;
  const refundAll = async (placed) => {
    const res = await app.post(`/v1/admin/orders/${placed.id}/refunds`, { reason: "returned" }, { headers: { Authorization: admin, ...key() } });
    assert.equal(res.status, 202, res.text);
    const confirmed = await stripeChargeRefunded(app, STRIPE_SECRET, placed, Number(placed.totals.grand_total.amount.replace(".", "")));
    assert.equal(confirmed.body.outcome, "refunded", confirmed.text);
  };
  const id = await order(buyer, sku, true);
  const placed = (await app.get(`/v1/orders/${id}`, { headers: { Authorization: admin } })).body;
  await refundAll(placed);
  assertProblem(await review(buyer, product_id, { rating: 5, title: "Free hat", body: "Refunded, but reviewing" }), 403, "not_a_verified_buyer");
  // Another order of the product that they kept makes them one again.
  await order(buyer, sku, true);
  assert.equal((await review(buyer, product_id, { rating: 4, title: "Kept this one", body: "Fits well" })).status, 201);
});
