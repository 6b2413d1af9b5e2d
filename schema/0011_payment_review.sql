-- A new order status, payment_review: a provider reported a payment that could not pay its order
-- as it stood (another amount, or the order had expired or was cancelled). The order is not paid
-- and holds no stock; the merchant resolves it by cancelling (a refund is due). See
-- shop_domain::order::OrderStatus and ARCHITECTURE.md.
--
-- SQLite cannot change a CHECK constraint in place, so `orders` is rebuilt. D1 keeps foreign keys
-- on inside a migration, so the tables that reference orders (order_lines, reservations) are
-- rebuilt with it: the new children reference the new parent, the old children are dropped before
-- the old parent (nothing then references it, so nothing is violated), and renaming the new
-- parent to `orders` rewrites the children's references to it. Then the children take their
-- names back, and indexes and triggers are created again.
PRAGMA defer_foreign_keys = true;

CREATE TABLE orders_new (
  id               TEXT PRIMARY KEY CHECK (id GLOB 'ord_*'),
  number           TEXT NOT NULL UNIQUE,
  cart_id          TEXT NOT NULL UNIQUE REFERENCES carts (id),
  status           TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'partially_fulfilled',
                     'fulfilled', 'delivered', 'completed', 'cancelled', 'expired', 'payment_review')),
  currency         TEXT NOT NULL CHECK (currency IN ('EUR', 'USD', 'GBP', 'JPY', 'KWD')),
  email            TEXT NOT NULL,
  subtotal_minor   INTEGER NOT NULL,
  discount_minor   INTEGER NOT NULL,
  shipping_minor   INTEGER NOT NULL,
  tax_minor        INTEGER NOT NULL,
  total_minor      INTEGER NOT NULL CHECK (total_minor >= 0),
  captured_minor   INTEGER NOT NULL DEFAULT 0 CHECK (captured_minor BETWEEN 0 AND total_minor),
  refunded_minor   INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor BETWEEN 0 AND captured_minor),
  shipping_method  TEXT NOT NULL,
  shipping_address TEXT NOT NULL CHECK (json_valid(shipping_address)),
  billing_address  TEXT NOT NULL CHECK (json_valid(billing_address)),
  payment_provider TEXT NOT NULL,
  payment_id       TEXT NOT NULL,
  reservation_expires_at INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;

INSERT INTO orders_new (id, number, cart_id, status, currency, email, subtotal_minor, discount_minor,
  shipping_minor, tax_minor, total_minor, captured_minor, refunded_minor, shipping_method,
  shipping_address, billing_address, payment_provider, payment_id, reservation_expires_at,
  created_at, updated_at)
SELECT id, number, cart_id, status, currency, email, subtotal_minor, discount_minor,
  shipping_minor, tax_minor, total_minor, captured_minor, refunded_minor, shipping_method,
  shipping_address, billing_address, payment_provider, payment_id, reservation_expires_at,
  created_at, updated_at
FROM orders;

CREATE TABLE order_lines_new (
  order_id       TEXT NOT NULL REFERENCES orders_new (id),
  position       INTEGER NOT NULL,
  sku            TEXT NOT NULL,
  product_id     TEXT NOT NULL,
  name           TEXT NOT NULL,
  quantity       INTEGER NOT NULL CHECK (quantity > 0),
  unit_minor     INTEGER NOT NULL,
  subtotal_minor INTEGER NOT NULL,
  discount_minor INTEGER NOT NULL,
  tax_minor      INTEGER NOT NULL,
  total_minor    INTEGER NOT NULL,
  PRIMARY KEY (order_id, position)
) STRICT;
INSERT INTO order_lines_new SELECT order_id, position, sku, product_id, name, quantity, unit_minor,
  subtotal_minor, discount_minor, tax_minor, total_minor FROM order_lines;

CREATE TABLE reservations_new (
  order_id   TEXT NOT NULL REFERENCES orders_new (id),
  sku        TEXT NOT NULL REFERENCES inventory (sku),
  quantity   INTEGER NOT NULL CHECK (quantity > 0),
  expires_at INTEGER NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('held', 'released', 'sold')),
  PRIMARY KEY (order_id, sku)
) STRICT;
INSERT INTO reservations_new SELECT order_id, sku, quantity, expires_at, status FROM reservations;

DROP TABLE order_lines;
DROP TABLE reservations;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
ALTER TABLE order_lines_new RENAME TO order_lines;
ALTER TABLE reservations_new RENAME TO reservations;

CREATE INDEX orders_created ON orders (created_at, id);
CREATE INDEX orders_status_created ON orders (status, created_at, id);
CREATE INDEX orders_email_created ON orders (email, created_at, id);
CREATE INDEX orders_by_payment ON orders (payment_id);
CREATE INDEX reservations_held_expiry ON reservations (status, expires_at);

CREATE TRIGGER orders_status_guard BEFORE UPDATE OF status ON orders
WHEN NEW.status <> OLD.status
  AND NOT EXISTS (SELECT 1 FROM order_transitions WHERE from_status = OLD.status AND to_status = NEW.status)
BEGIN
  SELECT RAISE(ABORT, 'illegal order transition');
END;

CREATE TRIGGER order_lines_at_current_price BEFORE INSERT ON order_lines
WHEN NEW.unit_minor IS NOT (
  SELECT p.amount_minor FROM prices p JOIN orders o ON o.id = NEW.order_id
  WHERE p.sku = NEW.sku AND p.currency = o.currency)
BEGIN
  SELECT RAISE(ABORT, 'price changed');
END;

-- The moves into and out of review (shop_domain::order::OrderStatus::apply).
INSERT INTO order_transitions (from_status, to_status) VALUES
  ('pending_payment', 'payment_review'), ('expired', 'payment_review'),
  ('cancelled', 'payment_review'), ('payment_review', 'cancelled');
