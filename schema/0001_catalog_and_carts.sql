-- Catalog, stock, carts and idempotency keys.
-- Money is stored as integer minor units (cents, yen, fils) with its currency; the currency's
-- exponent (EUR 2, JPY 0, KWD 3) comes from the domain crate, never from SQL.
-- Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE products (
  id          TEXT PRIMARY KEY CHECK (id GLOB 'prod_*'),
  name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description TEXT NOT NULL DEFAULT '',
  category    TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX products_category_id ON products (category, id);

CREATE TABLE variants (
  sku        TEXT PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products (id),
  options    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options)),
  position   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX variants_product ON variants (product_id, position);

CREATE TABLE prices (
  sku          TEXT NOT NULL REFERENCES variants (sku),
  currency     TEXT NOT NULL CHECK (currency IN ('EUR', 'USD', 'GBP', 'JPY', 'KWD')),
  amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
  PRIMARY KEY (sku, currency)
) STRICT;

-- available = on_hand - reserved can never go below zero: the CHECK aborts any batch that
-- would oversell (see ARCHITECTURE.md, "guards are constraints").
CREATE TABLE inventory (
  sku           TEXT PRIMARY KEY REFERENCES variants (sku),
  on_hand       INTEGER NOT NULL CHECK (on_hand >= 0),
  reserved      INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  available     INTEGER GENERATED ALWAYS AS (on_hand - reserved) VIRTUAL CHECK (available >= 0),
  low_threshold INTEGER NOT NULL DEFAULT 5 CHECK (low_threshold >= 0)
) STRICT;

-- A cart is one row; its lines are a JSON array (the aggregate is read and written whole).
CREATE TABLE carts (
  id         TEXT PRIMARY KEY CHECK (id GLOB 'cart_*'),
  currency   TEXT NOT NULL CHECK (currency IN ('EUR', 'USD', 'GBP', 'JPY', 'KWD')),
  status     TEXT NOT NULL CHECK (status IN ('active', 'checked_out')),
  version    INTEGER NOT NULL CHECK (version >= 1),
  lines      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(lines) AND json_type(lines) = 'array'),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX carts_expires_at ON carts (expires_at);

-- A saved cart version is always exactly one more than the stored one: a lost update aborts
-- the statement (and the whole batch it is in) instead of silently matching nothing.
CREATE TRIGGER carts_version_guard BEFORE UPDATE OF version ON carts
WHEN NEW.version <> OLD.version + 1
BEGIN
  SELECT RAISE(ABORT, 'stale cart version');
END;

-- Idempotency-Key records, kept 24 hours (expires_at).
CREATE TABLE idempotency_keys (
  key              TEXT PRIMARY KEY,
  fingerprint      TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  expires_at       INTEGER NOT NULL,
  completed        INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
  response_status  INTEGER,
  response_headers TEXT,
  response_body    TEXT
) STRICT;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
