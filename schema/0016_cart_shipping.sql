-- The shipping a cart's shopper chose (issue 10): `{"destination": {"country", "postal_code"},
-- "method"}` (shop_domain::cart::ShippingChoice), or NULL. Priced again on every read of the
-- cart, so the totals follow its weight and subtotal.
ALTER TABLE carts ADD COLUMN shipping TEXT
  CHECK (shipping IS NULL OR (json_valid(shipping) AND json_type(shipping) = 'object'));
