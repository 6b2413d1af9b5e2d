// Every kind of bad input gets a problem+json answer and changes nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { assertProblem, newCart, skuWithStock, spawnApp } from "./helpers.mjs";

let app, cart, sku, line;
before(async () => {
  app = await spawnApp();
  cart = await newCart(app);
  sku = (await skuWithStock(app, "EUR", 5)).sku;
  const res = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity: 1 });
  line = res.body.lines[0].id;
});
after(async () => app?.close());

/** Run `fn` and check the cart and the number of carts are exactly as before. */
async function changesNothing(fn) {
  const before = await app.db.prepare("SELECT version, lines FROM carts WHERE id = ?1").bind(cart.id).first();
  const carts = await app.count("carts");
  const keys = await app.count("idempotency_keys");
  await fn();
  const after = await app.db.prepare("SELECT version, lines FROM carts WHERE id = ?1").bind(cart.id).first();
  assert.deepEqual(after, before, "the cart did not change");
  assert.equal(await app.count("carts"), carts, "no cart was created");
  assert.equal(await app.count("idempotency_keys"), keys, "no idempotency key was kept");
}

const items = () => `/v1/carts/${cart.id}/items`;

test("malformed JSON is 400", async () => {
  await changesNothing(async () => {
    for (const body of ["{", '{"sku": "A",}', "", "[1, 2", '{"sku":"A","quantity":1} {}']) {
      const res = await app.request("POST", items(), { body, headers: { "Content-Type": "application/json" } });
      assertProblem(res, 400, "malformed_json");
    }
  });
});

test("unknown fields, wrong types and missing fields are 422 with a pointer", async () => {
  await changesNothing(async () => {
    const cases = [
      [{ sku, quantity: 1, price: "0.01" }, "/price", "unknown_field"],
      [{ sku, quantity: "2" }, "/quantity", "invalid_value"],
      [{ sku, quantity: 1.5 }, "/quantity", "invalid_value"],
      [{ sku: 42, quantity: 1 }, "/sku", "invalid_value"],
      [{ quantity: 1 }, "/sku", "missing_field"],
      [[sku, 1], "", "invalid_value"],
    ];
    for (const [json, pointer, code] of cases) {
      const p = assertProblem(await app.post(items(), json), 422, "validation_failed");
      assert.equal(p.errors[0].pointer, pointer, JSON.stringify(json));
      assert.equal(p.errors[0].code, code, JSON.stringify(json));
    }
    const p = assertProblem(await app.post("/v1/carts", { currency: "EUR", owner: "me" }), 422, "validation_failed");
    assert.equal(p.errors[0].pointer, "/owner");
  });
});

test("a member named twice is 422 duplicate_key, never silently the last one", async () => {
  await changesNothing(async () => {
    const body = `{"sku":"${sku}","quantity":1,"quantity":50}`;
    const p = assertProblem(await app.request("POST", items(), { body, headers: { "Content-Type": "application/json" } }), 422, "validation_failed");
    assert.deepEqual([p.errors[0].pointer, p.errors[0].code], ["/quantity", "duplicate_key"]);
  });
});

test("zero, negative and huge quantities are 422", async () => {
  await changesNothing(async () => {
    for (const quantity of [0, -1, 100000, 2 ** 40, 1e300]) {
      const p = assertProblem(await app.post(items(), { sku, quantity }), 422, "validation_failed");
      assert.equal(p.errors[0].pointer, "/quantity");
    }
    for (const quantity of [-1, 100000]) {
      assertProblem(await app.patch(`${items()}/${line}`, { quantity }), 422, "validation_failed");
    }
  });
});

test("unknown or malformed SKUs are 422", async () => {
  await changesNothing(async () => {
    let p = assertProblem(await app.post(items(), { sku: "NO-SUCH-SKU", quantity: 1 }), 422, "validation_failed");
    assert.deepEqual(p.errors[0], { pointer: "/sku", code: "unknown_sku", detail: p.errors[0].detail });
    p = assertProblem(await app.post(items(), { sku: "lower case", quantity: 1 }), 422, "validation_failed");
    assert.equal(p.errors[0].code, "invalid_sku");
  });
});

test("wrong currencies are 422", async () => {
  await changesNothing(async () => {
    for (const currency of ["XXX", "eur", "", "BTC"]) {
      const p = assertProblem(await app.post("/v1/carts", { currency }), 422, "validation_failed");
      assert.equal(p.errors[0].pointer, "/currency");
      assert.equal(p.errors[0].code, "unsupported_currency");
    }
  });
  // A SKU without a price in the cart's currency cannot be added to it.
  const kwdCart = await newCart(app, "KWD");
  const row = await app.db.prepare(
    "SELECT v.sku FROM variants v WHERE NOT EXISTS (SELECT 1 FROM prices p WHERE p.sku = v.sku AND p.currency = 'KWD') LIMIT 1",
  ).first();
  const p = assertProblem(await app.post(`/v1/carts/${kwdCart.id}/items`, { sku: row.sku, quantity: 1 }), 422, "validation_failed");
  assert.equal(p.errors[0].code, "sku_not_sold_in_currency");
});

test("a body over the limit is 413, with or without Content-Length", async () => {
  await changesNothing(async () => {
    const big = JSON.stringify({ sku, quantity: 1, pad: "x".repeat(20000) });
    assertProblem(await app.request("POST", items(), { body: big, headers: { "Content-Type": "application/json" } }), 413, "body_too_large");
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const res = await fetch(app.url + items(), {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { "Content-Type": "application/json" },
    });
    const text = await res.text();
    assertProblem({ status: res.status, headers: res.headers, body: JSON.parse(text), text }, 413, "body_too_large");
  });
});

test("a chunked upload far over the limit is refused at the limit, not read whole", async () => {
  await changesNothing(async () => {
    // node:http, not fetch: it reads an answer that arrives while the upload is still going.
    // The upload is paced (64 KiB every 10 ms, 8 MiB at most) so the answer is read before the
    // server drops the connection it no longer reads from.
    const chunk = Buffer.alloc(16 << 10, 0x20);
    const limit = 8 << 20;
    let sent = 0;
    const res = await new Promise((resolve, reject) => {
      const req = http.request(app.url + items(), { method: "POST", headers: { "Content-Type": "application/json" } });
      let answer;
      // The server may reset the connection once it has answered (it stops reading): a reset
      // after the answer's head arrived is expected; one before it fails the test.
      const ended = (e) => (answer ? resolve(answer) : reject(e));
      req.on("response", (r) => {
        answer = { status: r.statusCode, headers: new Headers(r.headers), text: "" };
        r.setEncoding("utf8");
        r.on("data", (d) => (answer.text += d));
        r.on("end", () => resolve(answer));
        r.on("error", ended);
        r.on("aborted", ended);
      });
      req.on("error", ended);
      // After the answer the socket may be released from the request; its late reset is the
      // same expected reset, not an uncaught error.
      req.on("socket", (socket) => socket.on("error", ended));
      const pump = () => {
        if (answer || sent >= limit) return req.end();
        sent += chunk.length;
        req.write(chunk);
        setTimeout(pump, 10);
      };
      pump();
    });
    assert.equal(res.status, 413, res.text);
    if (res.text) assertProblem({ ...res, body: JSON.parse(res.text) }, 413, "body_too_large");
    assert.ok(sent <= 1 << 20, `the server answered at the limit, not after reading it all (${sent >> 10} KiB sent)`);
  });
});

test("a body that is not JSON is 415", async () => {
  await changesNothing(async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
      const headers = type ? { "Content-Type": type } : {};
      const res = await app.request("POST", items(), { body: `{"sku":"${sku}","quantity":1}`, headers });
      assertProblem(res, 415, "unsupported_media_type");
    }
  });
});

test("unknown routes are 404 and wrong methods 405 with Allow", async () => {
  await changesNothing(async () => {
    for (const path of ["/", "/v2/products", "/v1/nothing", "/v1/carts/x/y/z/w", "/v1/productsx"]) {
      assertProblem(await app.get(path), 404, "route_not_found");
    }
    let res = await app.request("PUT", items());
    assertProblem(res, 405, "method_not_allowed");
    assert.equal(res.headers.get("allow"), "POST, DELETE, OPTIONS");
    res = await app.request("DELETE", "/v1/products");
    assertProblem(res, 405, "method_not_allowed");
    assert.equal(res.headers.get("allow"), "GET, OPTIONS");
    res = await app.request("POST", `/v1/carts/${cart.id}`, { json: {} });
    assertProblem(res, 405, "method_not_allowed");
  });
});

test("a bad Idempotency-Key header is 400", async () => {
  await changesNothing(async () => {
    const res = await app.post(items(), { sku, quantity: 1 }, { headers: { "Idempotency-Key": "x".repeat(300) } });
    assertProblem(res, 400, "invalid_idempotency_key");
  });
});
