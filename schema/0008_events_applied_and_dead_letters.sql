-- An outbox row is done when the consumer has APPLIED it (applied_at, set in the consumer's
-- effect batch), not when the queue accepted it. Until then the cron re-sends it, with backoff
-- (next_send_at), however long that takes: no event is lost to an outage of any length.
ALTER TABLE outbox ADD COLUMN applied_at INTEGER;
ALTER TABLE outbox ADD COLUMN next_send_at INTEGER;
UPDATE outbox SET applied_at = (SELECT processed_at FROM processed_events p WHERE p.event_id = outbox.id)
WHERE id IN (SELECT event_id FROM processed_events);
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unapplied ON outbox (created_at) WHERE applied_at IS NULL;

-- Messages that could not be applied: undecodable ones at once, the rest when the queue gave
-- up retrying them (the dead-letter queue's consumer records them). Listed and redriven by an
-- admin; the outbox row of a recorded event keeps being re-sent by the cron regardless.
CREATE TABLE dead_events (
  id          TEXT PRIMARY KEY CHECK (id GLOB 'dead_*'),
  message_id  TEXT NOT NULL UNIQUE,
  event_id    TEXT,
  type        TEXT,
  body        TEXT NOT NULL,
  reason      TEXT NOT NULL CHECK (reason IN ('undecodable', 'retries_exhausted')),
  last_error  TEXT,
  created_at  INTEGER NOT NULL,
  redriven_at INTEGER
) STRICT;
CREATE INDEX dead_events_created ON dead_events (created_at, id);
