-- Tickets are linked to a customer explicitly (issue 19), as orders are: a ticket submitted with
-- the customer's access token is theirs. Erasure touches the tickets linked to the account, and
-- those filed under its address only when the account proved it owns the address (verified):
-- registering someone else's address can no longer erase their guest tickets.
ALTER TABLE tickets ADD COLUMN customer_id TEXT REFERENCES customers (id);
CREATE INDEX tickets_customer ON tickets (customer_id) WHERE customer_id IS NOT NULL;

-- An access token issued before an erasure lives a few more minutes: it files no ticket for
-- the tombstone.
CREATE TRIGGER tickets_not_for_erased BEFORE INSERT ON tickets
WHEN NEW.customer_id IS NOT NULL
  AND (SELECT erased_at FROM customers WHERE id = NEW.customer_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'customer erased');
END;
