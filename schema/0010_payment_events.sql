-- Payment provider webhooks. Every event accepted from a provider is recorded once: the primary
-- key is the claim, inserted by a plain INSERT in the same D1 batch as the event's effects, so a
-- second delivery of the same event violates it, aborts its batch and changes nothing (see
-- ARCHITECTURE.md, "guards are constraints"). The rows of one order, ordered by the provider's
-- own `occurred_at`, are its payment ledger.
CREATE TABLE payment_events (
  provider     TEXT NOT NULL,
  event_id     TEXT NOT NULL,
  type         TEXT NOT NULL,
  -- NULL when no order matches (kept for investigation).
  order_id     TEXT,
  payment_id   TEXT NOT NULL,
  amount_minor INTEGER,
  currency     TEXT,
  occurred_at  INTEGER NOT NULL,
  -- What this system did with it: paid, amount_mismatch, unknown_order, not_payable, recorded,
  -- malformed (signed, but not an event: event_id is the body's SHA-256, type is malformed).
  outcome      TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  payload      TEXT NOT NULL,
  PRIMARY KEY (provider, event_id)
) STRICT;
CREATE INDEX payment_events_by_order ON payment_events (order_id, occurred_at);
CREATE INDEX orders_by_payment ON orders (payment_id);
