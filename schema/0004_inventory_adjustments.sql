-- One audit row per stock adjustment, written in the same batch as the change.
CREATE TABLE inventory_adjustments (
  id            TEXT PRIMARY KEY,
  sku           TEXT NOT NULL REFERENCES inventory (sku),
  delta         INTEGER NOT NULL CHECK (delta <> 0),
  reason        TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
  actor         TEXT NOT NULL,
  on_hand_after INTEGER NOT NULL,
  created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX inventory_adjustments_sku ON inventory_adjustments (sku, created_at);
