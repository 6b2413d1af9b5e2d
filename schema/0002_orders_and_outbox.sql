-- Orders, their lines, stock reservations and the transactional outbox.
-- Placement is one D1 batch (see shared/edge/src/orders.rs); every guard that must abort it is
-- a constraint or a trigger: UNIQUE (cart_id) for one order per cart, CHECK (available >= 0)
-- on inventory, the cart version trigger, foreign keys for SKUs without stock rows.

CREATE TABLE order_counters (
  year  INTEGER PRIMARY KEY,
  value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;

CREATE TABLE orders (
  id               TEXT PRIMARY KEY CHECK (id GLOB 'ord_*'),
  number           TEXT NOT NULL UNIQUE,
  cart_id          TEXT NOT NULL UNIQUE REFERENCES carts (id),
  status           TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'partially_fulfilled',
                     'fulfilled', 'delivered', 'completed', 'cancelled', 'expired')),
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
CREATE INDEX orders_created ON orders (created_at, id);
CREATE INDEX orders_status_created ON orders (status, created_at, id);
CREATE INDEX orders_email_created ON orders (email, created_at, id);

CREATE TABLE order_lines (
  order_id       TEXT NOT NULL REFERENCES orders (id),
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

-- Stock held for an unpaid order, per SKU, until expires_at.
CREATE TABLE reservations (
  order_id   TEXT NOT NULL REFERENCES orders (id),
  sku        TEXT NOT NULL REFERENCES inventory (sku),
  quantity   INTEGER NOT NULL CHECK (quantity > 0),
  expires_at INTEGER NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('held', 'released', 'sold')),
  PRIMARY KEY (order_id, sku)
) STRICT;
CREATE INDEX reservations_held_expiry ON reservations (status, expires_at);

-- Events written in the same batch as the change they announce; sent to the ORDER_EVENTS
-- queue afterwards and marked sent; a cron trigger re-sends rows left unsent.
CREATE TABLE outbox (
  id         TEXT PRIMARY KEY CHECK (id GLOB 'evt_*'),
  type       TEXT NOT NULL,
  payload    TEXT NOT NULL CHECK (json_valid(payload)),
  created_at INTEGER NOT NULL,
  sent_at    INTEGER,
  attempts   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX outbox_unsent ON outbox (sent_at, created_at) WHERE sent_at IS NULL;
