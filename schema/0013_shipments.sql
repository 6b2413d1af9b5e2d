-- Shipments: units of a paid order leave under a carrier's tracking number. A shipment's row, its
-- units counted on their lines and the order's move to partially_fulfilled or fulfilled are one
-- batch; the constraints keep it honest whatever runs concurrently (ARCHITECTURE.md, "guards are
-- constraints"): a tracking number is one carrier's once, a line never ships more units than it
-- has, and the order's status guard refuses a move from a state it has left.
ALTER TABLE order_lines ADD COLUMN shipped_quantity INTEGER NOT NULL DEFAULT 0
  CHECK (shipped_quantity BETWEEN 0 AND quantity);

CREATE TABLE shipments (
  id              TEXT PRIMARY KEY CHECK (id GLOB 'shp_*'),
  order_id        TEXT NOT NULL REFERENCES orders (id),
  carrier         TEXT NOT NULL,
  tracking_number TEXT NOT NULL,
  -- shop_domain::shipments::TrackingStatus
  status          TEXT NOT NULL CHECK (status IN ('pre_transit', 'in_transit', 'out_for_delivery',
                    'available_for_pickup', 'delivered', 'return_to_sender', 'failure', 'cancelled',
                    'unknown')),
  -- [{position, sku, quantity}]
  lines           TEXT NOT NULL CHECK (json_valid(lines) AND json_type(lines) = 'array'),
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  UNIQUE (carrier, tracking_number)
) STRICT;
CREATE INDEX shipments_by_order ON shipments (order_id, created_at);
