-- A verified buyer is one who kept what they bought (issue 19): an order whose payment was
-- refunded in full, or whose line of the product was refunded unit for unit, no longer makes
-- its customer a verified buyer of the product for a new review.
DROP TRIGGER reviews_verified_buyer;
CREATE TRIGGER reviews_verified_buyer BEFORE INSERT ON reviews
BEGIN
  SELECT RAISE(ABORT, 'unknown product')
  WHERE NOT EXISTS (SELECT 1 FROM products WHERE id = NEW.product_id);
  SELECT RAISE(ABORT, 'not a verified buyer')
  WHERE NOT EXISTS (
    SELECT 1 FROM orders o JOIN order_lines l ON l.order_id = o.id
    WHERE o.customer_id = NEW.customer_id AND l.product_id = NEW.product_id
      AND o.status IN ('paid', 'partially_fulfilled', 'fulfilled', 'delivered', 'completed')
      AND o.refunded_minor < o.captured_minor
      AND l.refunded_quantity < l.quantity);
END;
