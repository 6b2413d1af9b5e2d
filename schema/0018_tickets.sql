-- Customer-service tickets (issue 11). A ticket's number is for humans (T-2026-000123, from a
-- per-year counter); its id (tkt_<32 hex>) and the ticket token that names it are what grant
-- access. Messages are plain text, numbered from 1 (the submission) per ticket.
CREATE TABLE ticket_counters (
  year  INTEGER PRIMARY KEY,
  value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;

CREATE TABLE tickets (
  id                TEXT PRIMARY KEY CHECK (id GLOB 'tkt_*'),
  number            TEXT NOT NULL UNIQUE,
  email             TEXT NOT NULL,
  name              TEXT,
  subject           TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  category          TEXT NOT NULL CHECK (category IN ('order_issue', 'shipping', 'payment', 'return', 'product_question', 'other')),
  priority          TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
  status            TEXT NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
  order_id          TEXT REFERENCES orders (id),
  version           INTEGER NOT NULL CHECK (version >= 1),
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  -- The first agent message; the last resolution (cleared when the ticket is reopened).
  first_response_at INTEGER,
  resolved_at       INTEGER,
  rating            INTEGER CHECK (rating BETWEEN 1 AND 5)
) STRICT;
CREATE INDEX tickets_email ON tickets (lower(email), created_at);
CREATE INDEX tickets_created_at ON tickets (created_at);
CREATE INDEX tickets_order ON tickets (order_id) WHERE order_id IS NOT NULL;

-- A saved version is always exactly one more than the stored one: a change decided on a stale
-- read aborts its whole batch (message and event included) instead of matching nothing.
CREATE TRIGGER tickets_version_guard BEFORE UPDATE OF version ON tickets
WHEN NEW.version <> OLD.version + 1
BEGIN
  SELECT RAISE(ABORT, 'stale ticket version');
END;

CREATE TABLE ticket_messages (
  ticket_id  TEXT NOT NULL REFERENCES tickets (id),
  seq        INTEGER NOT NULL CHECK (seq >= 1),
  author     TEXT NOT NULL CHECK (author IN ('customer', 'agent')),
  -- The admin token's subject for an agent's message.
  agent      TEXT,
  body       TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (ticket_id, seq)
) STRICT;
