-- Review defects (issue 19), stock and fulfilment.
--
-- A unit goes back on the shelf at most once. Each order line counts the units that left the
-- shelf for it (sold_quantity, set when the order is paid) and the units given back
-- (returned_quantity), never more than were sold: a CHECK, so no statement, whatever its WHERE,
-- can return a unit twice. The shelf (inventory.on_hand) follows the counter by a trigger, so a
-- cancel and a refund's restock, in any order and concurrently, put back each unit once: both
-- raise returned_quantity towards sold_quantity, and only the rise reaches the shelf.
ALTER TABLE order_lines ADD COLUMN sold_quantity INTEGER NOT NULL DEFAULT 0
  CHECK (sold_quantity BETWEEN 0 AND quantity);
ALTER TABLE order_lines ADD COLUMN returned_quantity INTEGER NOT NULL DEFAULT 0
  CHECK (returned_quantity BETWEEN 0 AND sold_quantity);

-- What has landed: lines whose reservation is sold were sold, and what refunds restocked was
-- returned; a paid order that was cancelled had everything sold returned by its cancel.
UPDATE order_lines SET sold_quantity = quantity
WHERE EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = order_lines.order_id
              AND r.sku = order_lines.sku AND r.status = 'sold');
UPDATE order_lines SET sold_quantity = quantity, returned_quantity = quantity
WHERE order_id IN (SELECT id FROM orders WHERE status = 'cancelled' AND captured_minor > 0);
UPDATE order_lines SET returned_quantity = min(sold_quantity, restocked_quantity)
WHERE sold_quantity > returned_quantity AND restocked_quantity > 0;

CREATE TRIGGER order_lines_returned_to_shelf AFTER UPDATE OF returned_quantity ON order_lines
WHEN NEW.returned_quantity <> OLD.returned_quantity
BEGIN
  UPDATE inventory SET on_hand = on_hand + NEW.returned_quantity - OLD.returned_quantity
  WHERE sku = NEW.sku;
END;

-- An order's fulfilment follows its lines: partially_fulfilled only while a unit is left to
-- ship, fulfilled only when none is. Two shipments planned on the same read cannot both keep
-- the order partially fulfilled with everything shipped: the second batch aborts and is planned
-- again on what the first wrote.
CREATE TRIGGER orders_fulfilment_follows_lines BEFORE UPDATE OF status ON orders
WHEN (NEW.status = 'partially_fulfilled'
      AND NOT EXISTS (SELECT 1 FROM order_lines WHERE order_id = NEW.id AND shipped_quantity < quantity))
  OR (NEW.status = 'fulfilled'
      AND EXISTS (SELECT 1 FROM order_lines WHERE order_id = NEW.id AND shipped_quantity < quantity))
BEGIN
  SELECT RAISE(ABORT, 'fulfilment differs from the lines');
END;
