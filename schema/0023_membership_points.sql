-- Membership points (issue 12). Every change of a customer's points is an entry of the ledger
-- (append-only); the balance is their sum, kept by a trigger in the entry's own statement, and
-- can never go below zero (CHECK): a batch that would overdraw aborts whole. An order earns once
-- (a partial UNIQUE index); each entry names the event that made it, once (UNIQUE).
CREATE TABLE points_ledger (
  id          INTEGER PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  order_id    TEXT REFERENCES orders (id),
  kind        TEXT NOT NULL CHECK (kind IN ('earned', 'refunded', 'adjusted', 'spent')),
  points      INTEGER NOT NULL CHECK (points <> 0),
  event_id    TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX points_earned_once ON points_ledger (order_id) WHERE kind = 'earned';
CREATE INDEX points_ledger_customer ON points_ledger (customer_id, created_at, id);
CREATE INDEX points_ledger_order ON points_ledger (order_id, kind) WHERE order_id IS NOT NULL;

CREATE TABLE customer_points (
  customer_id TEXT PRIMARY KEY REFERENCES customers (id),
  balance     INTEGER NOT NULL CHECK (balance >= 0)
) STRICT;

-- (An upsert of NEW.points would check the CHECK on the proposed row, before the conflict: a
-- row at zero first, then the change.)
CREATE TRIGGER points_ledger_balance AFTER INSERT ON points_ledger
BEGIN
  INSERT INTO customer_points (customer_id, balance) VALUES (NEW.customer_id, 0)
  ON CONFLICT (customer_id) DO NOTHING;
  UPDATE customer_points SET balance = balance + NEW.points WHERE customer_id = NEW.customer_id;
END;

CREATE TRIGGER points_ledger_append_only BEFORE UPDATE ON points_ledger
BEGIN
  SELECT RAISE(ABORT, 'the points ledger is append-only');
END;

CREATE TRIGGER points_ledger_no_delete BEFORE DELETE ON points_ledger
BEGIN
  SELECT RAISE(ABORT, 'the points ledger is append-only');
END;
