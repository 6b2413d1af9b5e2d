-- Logistics partners' tracking callbacks. Every callback accepted from a partner is recorded
-- once: the primary key is the claim, a plain INSERT leading the batch of its effects, so a second
-- delivery aborts it and changes nothing. Every checkpoint is kept (once: partners resend whole
-- histories) as the shipment's timeline; the shipment's status only moves forward in the normal
-- flow (`progress`, the furthest normal status reached), and an exception replaces it only when
-- newer than the status it replaces (`status_at`, the partner's time), never after delivery.
ALTER TABLE shipments ADD COLUMN progress INTEGER NOT NULL DEFAULT 1 CHECK (progress BETWEEN 1 AND 5);
ALTER TABLE shipments ADD COLUMN status_at INTEGER;
CREATE INDEX shipments_by_tracking_number ON shipments (tracking_number);

CREATE TABLE shipment_checkpoints (
  shipment_id TEXT NOT NULL REFERENCES shipments (id),
  occurred_at INTEGER NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('pre_transit', 'in_transit', 'out_for_delivery',
                'available_for_pickup', 'delivered', 'return_to_sender', 'failure', 'cancelled',
                'unknown')),
  message     TEXT NOT NULL,
  location    TEXT,
  partner     TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (shipment_id, occurred_at, status, message)
) STRICT;

CREATE TABLE logistics_events (
  partner         TEXT NOT NULL,
  event_id        TEXT NOT NULL,
  -- NULL when no shipment has the tracking number (kept for investigation).
  shipment_id     TEXT,
  tracking_number TEXT NOT NULL,
  -- The status the partner reported (normalised); malformed for a signed body that is not a
  -- callback (event_id is then the body's SHA-256).
  status          TEXT NOT NULL,
  outcome         TEXT NOT NULL,
  received_at     INTEGER NOT NULL,
  payload         TEXT NOT NULL,
  PRIMARY KEY (partner, event_id)
) STRICT;
