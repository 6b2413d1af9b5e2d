-- Customer accounts (issue 12). One account per email address (email_key = lower(email),
-- UNIQUE: a constraint, never a read-then-write). The password hash carries its scheme and
-- parameters (pbkdf2-sha256$<iterations>$<salt>$<hash>), so they can be raised later (rehash on
-- login). Refresh tokens and single-use tokens are stored as SHA-256 digests only.
CREATE TABLE customers (
  id                  TEXT PRIMARY KEY CHECK (id GLOB 'cus_*'),
  email               TEXT NOT NULL,
  email_key           TEXT NOT NULL UNIQUE CHECK (email_key = lower(email_key)),
  name                TEXT,
  password_hash       TEXT NOT NULL CHECK (password_hash GLOB 'pbkdf2-sha256$*'),
  email_verified_at   INTEGER,
  password_changed_at INTEGER NOT NULL,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
) STRICT;

-- A refresh token is used once: using it rotates it (status 'rotated') and issues a child; a
-- token is the parent of at most one child (UNIQUE), so of two concurrent uses one fails. A
-- rotated token presented again revokes its whole family.
CREATE TABLE refresh_tokens (
  token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
  family_id   TEXT NOT NULL,
  customer_id TEXT NOT NULL REFERENCES customers (id),
  parent_hash TEXT UNIQUE,
  status      TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked')),
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- A child only of a token this batch has just rotated: a revoked (or unknown) parent aborts it.
CREATE TRIGGER refresh_tokens_parent_rotated BEFORE INSERT ON refresh_tokens
WHEN NEW.parent_hash IS NOT NULL
  AND coalesce((SELECT status FROM refresh_tokens WHERE token_hash = NEW.parent_hash), '') <> 'rotated'
BEGIN
  SELECT RAISE(ABORT, 'refresh token not active');
END;
CREATE INDEX refresh_tokens_customer ON refresh_tokens (customer_id);

-- Single-use, expiring tokens delivered by the merchant's email system (customer.registered,
-- customer.password_reset_requested): used once (used_at), never after expires_at.
CREATE TABLE customer_tokens (
  token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
  customer_id TEXT NOT NULL REFERENCES customers (id),
  purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
) STRICT;
CREATE INDEX customer_tokens_customer ON customer_tokens (customer_id);

-- Used once: a second use aborts the batch it is in (and so everything it would have done).
CREATE TRIGGER customer_tokens_single_use BEFORE UPDATE OF used_at ON customer_tokens
WHEN OLD.used_at IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'token used');
END;
