-- A customer's saved addresses (issue 12), each a shop_domain::checkout::Address as JSON; at
-- most one default shipping address per customer (a partial UNIQUE index) and at most 20
-- addresses (a trigger): constraints, never a read-then-write.
CREATE TABLE customer_addresses (
  id          TEXT PRIMARY KEY CHECK (id GLOB 'adr_*'),
  customer_id TEXT NOT NULL REFERENCES customers (id),
  address     TEXT NOT NULL CHECK (json_valid(address) AND json_type(address) = 'object'),
  is_default  INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX customer_addresses_one_default ON customer_addresses (customer_id) WHERE is_default = 1;
CREATE INDEX customer_addresses_customer ON customer_addresses (customer_id, created_at);

CREATE TRIGGER customer_addresses_at_most_20 BEFORE INSERT ON customer_addresses
WHEN (SELECT count(*) FROM customer_addresses WHERE customer_id = NEW.customer_id) >= 20
BEGIN
  SELECT RAISE(ABORT, 'too many addresses');
END;
