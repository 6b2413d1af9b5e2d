-- Merchant-configured outbound webhooks (Standard Webhooks) and their delivery log.
CREATE TABLE webhook_endpoints (
  id          TEXT PRIMARY KEY CHECK (id GLOB 'whe_*'),
  url         TEXT NOT NULL CHECK (url GLOB 'http*://*'),
  -- JSON array of event types; ["*"] means every type.
  event_types TEXT NOT NULL CHECK (json_valid(event_types) AND json_type(event_types) = 'array'),
  secret      TEXT NOT NULL CHECK (secret GLOB 'whsec_*'),
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
  id               TEXT PRIMARY KEY CHECK (id GLOB 'whd_*'),
  endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
  event_id         TEXT NOT NULL,
  event_type       TEXT NOT NULL,
  payload          TEXT NOT NULL CHECK (json_valid(payload)),
  status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  last_status_code INTEGER,
  last_error       TEXT,
  next_attempt_at  INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (endpoint_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at, id);
