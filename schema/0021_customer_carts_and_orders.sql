-- Carts and orders of a customer (issue 12). A cart created with a customer's access token
-- belongs to that customer and answers only to their token; a checkout with an access token
-- links the order, which the customer can then list (GET /v1/me/orders) and read.
ALTER TABLE carts ADD COLUMN customer_id TEXT REFERENCES customers (id);
CREATE INDEX carts_customer ON carts (customer_id, updated_at) WHERE customer_id IS NOT NULL;

ALTER TABLE orders ADD COLUMN customer_id TEXT REFERENCES customers (id);
CREATE INDEX orders_customer_created ON orders (customer_id, created_at, id)
  WHERE customer_id IS NOT NULL;
