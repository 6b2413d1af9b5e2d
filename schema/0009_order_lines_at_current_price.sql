-- An order line is placed at the catalog's current price. Checkout compares the cart's price
-- snapshots with the current prices when it reads the cart, but the payment session is created
-- and the placement batch runs after that read: a price changed in between aborts the batch
-- here, and the shopper is answered 409 price_changed (see ARCHITECTURE.md, "guards are
-- constraints"). A WHERE clause would not do: a statement that matches nothing does not abort
-- a D1 batch.
CREATE TRIGGER order_lines_at_current_price BEFORE INSERT ON order_lines
WHEN NEW.unit_minor IS NOT (
  SELECT p.amount_minor FROM prices p JOIN orders o ON o.id = NEW.order_id
  WHERE p.sku = NEW.sku AND p.currency = o.currency)
BEGIN
  SELECT RAISE(ABORT, 'price changed');
END;
