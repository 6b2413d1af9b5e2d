// What the end-to-end files need, written once: shipping addresses, stock, an order placed
// through the API as a storefront places it (a guest's or a signed-in customer's), paid and
// shipped as a merchant does it, and payment providers' webhook events signed by their official
// libraries (`stripe` for Stripe, `standardwebhooks` for Standard Webhooks providers).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import Stripe from "stripe";
import { Webhook } from "standardwebhooks";
import { minor, newCart } from "./helpers.mjs";

/** A shipping address in London (GB). */
export const LONDON = Object.freeze({ name: "Ada Lovelace", line1: "12 St James's Square", city: "London", postal_code: "SW1Y 4JH", country: "GB" });
/** A shipping address in Arlington (US). */
export const ARLINGTON = Object.freeze({ name: "Grace Hopper", line1: "1 Navy Way", city: "Arlington", postal_code: "22202", country: "US" });

const hex = () => randomUUID().replaceAll("-", "");

/**
 * Put `onHand` units of each of `skus` on the shelf, `reserved` of them held (none by default),
 * low-stock alerts at `lowThreshold` (off by default). The one place the suite sets stock directly.
 */
export async function restock(app, skus, { onHand = 100, reserved = 0, lowThreshold = 0 } = {}) {
  for (const sku of [skus].flat()) {
    await app.db
      .prepare("UPDATE inventory SET on_hand = ?2, reserved = ?3, low_threshold = ?4 WHERE sku = ?1")
      .bind(sku, onHand, reserved, lowThreshold)
      .run();
  }
}

/** A cart in `currency` of `items` (`[[sku, quantity]]`), each SKU restocked first: its id. */
export async function cartWith(app, currency, items) {
  const cart = await newCart(app, currency);
  for (const [sku, quantity] of items) {
    await restock(app, sku);
    const res = await app.post(`/v1/carts/${cart.id}/items`, { sku, quantity });
    assert.equal(res.status, 200, res.text);
  }
  return cart.id;
}

/** The cart's shipping options to `country` (and `postal`), answered 200. */
export async function shippingOptions(app, cartId, country, postal = "") {
  const res = await app.get(`/v1/carts/${cartId}/shipping-options?country=${country}&postal_code=${encodeURIComponent(postal)}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/**
 * Check out a new cart of `items` (`[{sku, quantity}]`) as a storefront does: the checkout's
 * answer (`{order, order_token, tracking_token, payment, …}`, and `cartLines`, the ids of the
 * cart's lines). `customer` (`signedInCustomer`'s answer): the cart and the order are theirs
 * (their token on every request, their email); `headers` join every request.
 */
export async function placeOrder(app, items, { customer, email = customer?.email ?? "ada@example.com", address = LONDON, shippingMethod = "standard", provider = "test", currency = "EUR", headers = {} } = {}) {
  if (customer) headers = { ...customer.auth, ...headers };
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
 * value with `orders:write`): the paid order. */
export async function capture(app, order, authorization) {
  const res = await app.post(`/v1/admin/orders/${order.id}/capture`, {}, { headers: { Authorization: authorization } });
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** `placeOrder`, then its payment recorded (`capture`): the checkout's answer. */
export async function paidOrder(app, items, authorization, options = {}) {
  const placed = await placeOrder(app, items, options);
  await capture(app, placed.order, authorization);
  return placed;
}

/** A fresh tracking number in UPS's style. */
export const trackingNumber = () => `1Z${hex().slice(0, 16).toUpperCase()}`;

/**
 * Ship units of a paid `order` as the merchant does: `lines` (`[{sku or line_id, quantity}]`)
 * under `carrier`'s `trackingNumber` (a fresh one by default); `authorization` as for `capture`.
 * The shipment.
 */
export async function ship(app, order, lines, authorization, { carrier = "ups", trackingNumber: number = trackingNumber() } = {}) {
  const res = await app.post(`/v1/admin/orders/${order.id}/shipments`, { carrier, tracking_number: number, lines }, { headers: { Authorization: authorization } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** `paidOrder`, then `shipLines` of it shipped (every unit by default): the checkout's answer
 * and the `shipment`. */
export async function shippedOrder(app, items, authorization, { shipLines = items, carrier, ...options } = {}) {
  const placed = await paidOrder(app, items, authorization, options);
  return { ...placed, shipment: await ship(app, placed.order, shipLines, authorization, { carrier }) };
}

// Stripe: events as Stripe sends them, signed by the official library.

const stripe = new Stripe("sk_test_unused");

/** A Stripe event (`evt_…`) of `type` about `object`: its raw JSON body, as Stripe sends it. */
export function stripeEvent(type, object, { created = Math.floor(Date.now() / 1000) } = {}) {
  return JSON.stringify({ id: `evt_${hex()}`, object: "event", type, created, livemode: false, data: { object } });
}

/** Stripe's event about the PaymentIntent of `order` (its `payment_id`, its `cart_id` in the
 * metadata as the Stripe adapter creates it): `payment_intent.succeeded` for its total by default. */
export function stripePaymentIntentEvent(
  order,
  { type = "payment_intent.succeeded", amount = minor(order.totals.grand_total), currency = order.totals.grand_total.currency.toLowerCase(), created, metadata = { cart_id: order.cart_id } } = {},
) {
  const object = { id: order.payment_id, object: "payment_intent", amount, amount_received: type === "payment_intent.succeeded" ? amount : 0, currency, metadata };
  return stripeEvent(type, object, created === undefined ? {} : { created });
}

/** The `Stripe-Signature` header of `payload` signed with `secret` (at `timestamp`, seconds,
 * now by default) by the official library. */
export const stripeSignature = (payload, secret, { timestamp } = {}) =>
  stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });

/** Post `payload` to the Stripe webhook route with `signature` as its Stripe-Signature header
 * (`null`: none). */
function postStripe(app, payload, signature) {
  const headers = { "Content-Type": "application/json" };
  if (signature !== null) headers["Stripe-Signature"] = signature;
  return app.request("POST", "/v1/webhooks/payments/stripe", { body: payload, headers });
}

/** Post `payload` signed with `secret`: the webhook's answer. */
export const sendStripe = (app, secret, payload) => postStripe(app, payload, stripeSignature(payload, secret));

/** Stripe's `charge.refunded` for the order `placed`, signed with `secret`: `amountRefunded` is
 * what has been refunded on its payment in all (minor units). */
export function stripeChargeRefunded(app, secret, placed, amountRefunded) {
  const charge = {
    id: `ch_${hex()}`,
    object: "charge",
    amount: minor(placed.totals.grand_total),
    amount_refunded: amountRefunded,
    currency: placed.currency.toLowerCase(),
    payment_intent: placed.payment_id,
    metadata: {},
  };
  return sendStripe(app, secret, stripeEvent("charge.refunded", charge));
}

// Standard Webhooks payment providers: events of the documented vocabulary, signed by the
// official library.

/** A Standard Webhooks message of `type` with `data`, its event time `at`: `{id, payload}`. */
export function standardEvent(type, data, { at = new Date() } = {}) {
  return { id: `msg_${hex()}`, payload: JSON.stringify({ type, timestamp: at.toISOString(), data }) };
}

/** The three headers of `message` signed with the `whsec_` secret `secret` at `at` (now by
 * default) by the official library. */
export function standardSignature({ id, payload }, secret, { at = new Date() } = {}) {
  return { "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": new Webhook(secret).sign(id, at, payload) };
}

/** Post `message` to payment provider `provider`'s webhook route with `headers`. */
function postStandard(app, provider, message, headers) {
  return app.request("POST", `/v1/webhooks/payments/${provider}`, { body: message.payload, headers: { "Content-Type": "application/json", ...headers } });
}

/** An event of payment provider `provider` (its secret `secret`), signed and posted. */
function sendStandard(app, { provider, secret }, type, data) {
  const message = standardEvent(type, data);
  return postStandard(app, provider, message, standardSignature(message, secret));
}

/** `payment.succeeded` for `placed`'s payment of `amount` minor units (its total by default);
 * `extra` joins the event's data (as providers add billing details). */
export function standardPaymentSucceeded(app, provider, placed, { amount = minor(placed.totals.grand_total), extra = {} } = {}) {
  return sendStandard(app, provider, "payment.succeeded", { payment_id: placed.payment_id, amount_minor: amount, currency: placed.currency, order_id: placed.id, ...extra });
}

/** `refund.succeeded` naming the provider's refund of `placed`'s payment. */
export function standardRefundSucceeded(app, provider, placed, providerRefundId, amount) {
  return sendStandard(app, provider, "refund.succeeded", { payment_id: placed.payment_id, refund_id: providerRefundId, amount_minor: amount, currency: placed.currency });
}
