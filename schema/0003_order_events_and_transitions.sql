-- The order state machine as data, enforced by a trigger: any UPDATE of orders.status that is
-- not a legal move aborts the statement and the batch it is in. (The same table lives in
-- shop_domain::order::OrderStatus::apply; the domain decides, this guards.)
CREATE TABLE order_transitions (
  from_status TEXT NOT NULL,
  to_status   TEXT NOT NULL,
  PRIMARY KEY (from_status, to_status)
) STRICT;
INSERT INTO order_transitions (from_status, to_status) VALUES
  ('pending_payment', 'paid'), ('pending_payment', 'cancelled'), ('pending_payment', 'expired'),
  ('paid', 'partially_fulfilled'), ('paid', 'fulfilled'), ('paid', 'cancelled'),
  ('partially_fulfilled', 'partially_fulfilled'), ('partially_fulfilled', 'fulfilled'),
  ('fulfilled', 'delivered'), ('delivered', 'completed');

CREATE TRIGGER orders_status_guard BEFORE UPDATE OF status ON orders
WHEN NEW.status <> OLD.status
  AND NOT EXISTS (SELECT 1 FROM order_transitions WHERE from_status = OLD.status AND to_status = NEW.status)
BEGIN
  SELECT RAISE(ABORT, 'illegal order transition');
END;

-- Events the consumer has applied: a plain INSERT in the same batch as the effects, so a
-- redelivered event violates the key and changes nothing.
CREATE TABLE processed_events (
  event_id     TEXT PRIMARY KEY,
  type         TEXT NOT NULL,
  processed_at INTEGER NOT NULL
) STRICT;

-- Rollups for analytics, per UTC day.
CREATE TABLE daily_sales (
  day           TEXT NOT NULL,
  currency      TEXT NOT NULL,
  orders        INTEGER NOT NULL CHECK (orders >= 0),
  units         INTEGER NOT NULL CHECK (units >= 0),
  revenue_minor INTEGER NOT NULL,
  PRIMARY KEY (day, currency)
) STRICT;

CREATE TABLE product_sales (
  day           TEXT NOT NULL,
  product_id    TEXT NOT NULL,
  currency      TEXT NOT NULL,
  units         INTEGER NOT NULL CHECK (units >= 0),
  revenue_minor INTEGER NOT NULL,
  PRIMARY KEY (day, product_id, currency)
) STRICT;

-- Low-stock alerts for the merchant, one per inventory.low event.
CREATE TABLE stock_alerts (
  event_id        TEXT PRIMARY KEY,
  sku             TEXT NOT NULL,
  available       INTEGER NOT NULL,
  low_threshold   INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  acknowledged_at INTEGER
) STRICT;
CREATE INDEX stock_alerts_open ON stock_alerts (acknowledged_at, created_at);

-- Events whose application failed, with the attempt count (the consumer's backoff) and the
-- last error, for operators.
CREATE TABLE event_failures (
  event_id   TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  attempts   INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
