// What many end-to-end files need, written once: a shipping address, stock, an order placed
// (and paid) through the API the way a storefront and a merchant do it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { newCart } from "./helpers.mjs";

/** A shipping address in London (GB). */
export const LONDON = Object.freeze({ name: "Ada Lovelace", line1: "12 St James's Square", city: "London", postal_code: "SW1Y 4JH", country: "GB" });
/** A shipping address in Arlington (US). */
export const ARLINGTON = Object.freeze({ name: "Grace Hopper", line1: "1 Navy Way", city: "Arlington", postal_code: "22202", country: "US" });

/**
 * Put `onHand` units of each of `skus` on the shelf, none reserved, low-stock alerts at
 * `lowThreshold` (off by default). The one place the suite sets stock directly.
 */
export async function restock(app, skus, { onHand = 100, lowThreshold = 0 } = {}) {
  for (const sku of [skus].flat()) {
    await app.db.prepare("UPDATE inventory SET on_hand = ?2, reserved = 0, low_threshold = ?3 WHERE sku = ?1").bind(sku, onHand, lowThreshold).run();
  }
}

/**
 * Check out a new cart of `items` (`[{sku, quantity}]`) as a storefront does: the checkout's
 * answer (`{order, order_token, …}`).
 */
export async function placeOrder(app, items, { email = "ada@example.com", address = LONDON, shippingMethod = "standard", provider = "test", currency = "EUR", headers = {} } = {}) {
  // A customer's cart when `headers` carry their token.
  const cart = await newCart(app, currency, headers);
  let added;
  for (const item of items) {
    added = await app.post(`/v1/carts/${cart.id}/items`, item, { headers });
    assert.equal(added.status, 200, added.text);
  }
  const res = await app.post(
    `/v1/carts/${cart.id}/checkout`,
    { email, shipping_address: address, shipping_method: shippingMethod, payment_provider: provider },
    { headers: { ...headers, "Idempotency-Key": randomUUID() } },
  );
  assert.equal(res.status, 201, res.text);
  return { ...res.body, cartLines: added?.body.lines.map((l) => l.id) ?? [] };
}

/** Record the payment of `order` as the merchant does (`authorization`: an admin bearer header
 * value with `orders:write`). */
export async function capture(app, order, authorization) {
  const res = await app.post(`/v1/admin/orders/${order.id}/capture`, {}, { headers: { Authorization: authorization } });
  assert.equal(res.status, 200, res.text);
  return res.body;
}
