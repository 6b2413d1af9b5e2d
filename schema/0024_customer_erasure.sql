-- Erasure of a customer's personal data (issue 12, DELETE /v1/me). The row stays as a tombstone
-- (orders, reviews and the points ledger keep pointing at it): its email becomes
-- erased-<id>@erased.invalid, its name and password go, and erased_at is set; nothing finds it
-- by email, and no token opens it again.
ALTER TABLE customers ADD COLUMN erased_at INTEGER;

-- An access token issued before the erasure stays valid for its last minutes: nothing it asks
-- for may bring personal data back to the tombstone.
CREATE TRIGGER orders_not_for_erased BEFORE INSERT ON orders
WHEN NEW.customer_id IS NOT NULL
  AND (SELECT erased_at FROM customers WHERE id = NEW.customer_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'customer erased');
END;

CREATE TRIGGER carts_not_for_erased BEFORE INSERT ON carts
WHEN NEW.customer_id IS NOT NULL
  AND (SELECT erased_at FROM customers WHERE id = NEW.customer_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'customer erased');
END;

CREATE TRIGGER carts_not_adopted_by_erased BEFORE UPDATE OF customer_id ON carts
WHEN NEW.customer_id IS NOT NULL
  AND (SELECT erased_at FROM customers WHERE id = NEW.customer_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'customer erased');
END;

CREATE TRIGGER customer_addresses_not_for_erased BEFORE INSERT ON customer_addresses
WHEN (SELECT erased_at FROM customers WHERE id = NEW.customer_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'customer erased');
END;

CREATE TRIGGER reviews_not_by_erased BEFORE INSERT ON reviews
WHEN (SELECT erased_at FROM customers WHERE id = NEW.customer_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'customer erased');
END;
