-- Refunds. A refund's amount is committed on the order when it is requested and confirmed (or
-- released) when the provider says so; the constraints below are what keeps money from leaving
-- twice or beyond what was captured, whatever runs concurrently (ARCHITECTURE.md, "guards are
-- constraints"): two refunds that together exceed what is left cannot both commit.

-- Requested, not yet confirmed: refunded plus pending never exceeds captured.
ALTER TABLE orders ADD COLUMN refund_pending_minor INTEGER NOT NULL DEFAULT 0
  CHECK (refund_pending_minor >= 0 AND refunded_minor + refund_pending_minor <= captured_minor);
-- The part of refunds (not failed) that is shipping: never more than the shipping charged.
ALTER TABLE orders ADD COLUMN shipping_refunded_minor INTEGER NOT NULL DEFAULT 0
  CHECK (shipping_refunded_minor BETWEEN 0 AND shipping_minor);

-- Per line, what refunds that have not failed take of it: never more units than it has, never
-- more than its total; units restocked (when a refund is confirmed) never more than refunded.
ALTER TABLE order_lines ADD COLUMN refunded_quantity INTEGER NOT NULL DEFAULT 0
  CHECK (refunded_quantity BETWEEN 0 AND quantity);
ALTER TABLE order_lines ADD COLUMN refunded_minor INTEGER NOT NULL DEFAULT 0
  CHECK (refunded_minor BETWEEN 0 AND total_minor);
ALTER TABLE order_lines ADD COLUMN restocked_quantity INTEGER NOT NULL DEFAULT 0
  CHECK (restocked_quantity BETWEEN 0 AND refunded_quantity);

-- One row per refund. Its id derives from the order, the caller and the request's
-- Idempotency-Key (shop_domain::refunds::refund_id), so a retry continues the same refund.
-- status: requested (committed; the provider's answer not known) → pending (the provider has it)
-- → succeeded (confirmed by the provider's webhook); requested or pending → failed (released).
CREATE TABLE refunds (
  id                 TEXT PRIMARY KEY CHECK (id GLOB 'rfd_*'),
  order_id           TEXT NOT NULL REFERENCES orders (id),
  status             TEXT NOT NULL CHECK (status IN ('requested', 'pending', 'succeeded', 'failed')),
  currency           TEXT NOT NULL,
  amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
  shipping_minor     INTEGER NOT NULL CHECK (shipping_minor BETWEEN 0 AND amount_minor),
  reason             TEXT NOT NULL,
  -- [{position, sku, quantity, amount, restock}] as allocated (the lines sum with shipping to
  -- the amount exactly).
  lines              TEXT NOT NULL CHECK (json_valid(lines) AND json_type(lines) = 'array'),
  provider           TEXT NOT NULL,
  provider_refund_id TEXT,
  requested_by       TEXT NOT NULL,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  UNIQUE (provider, provider_refund_id)
) STRICT;
CREATE INDEX refunds_by_order ON refunds (order_id, created_at);
