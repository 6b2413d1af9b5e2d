-- Product management (issue 21): products and variants gain what a merchant writes about them,
-- and the invariants the admin routes rely on are kept here, whatever runs concurrently:
-- - a product's handle is unique (index) and never missing (triggers);
-- - a product's `version` moves by exactly one per saved change (a stale If-Match aborts);
-- - the option names a product declares (`options`, a JSON array in the merchant's order) are
--   exactly the keys of each of its variants' `options`, and cannot change while it has active
--   variants;
-- - no two active variants of a product have the same option values (the variant's `options`
--   object is written with its keys sorted, and `json()` takes the spaces out, so equal
--   combinations are equal text);
-- - a SKU (and the product it belongs to) never changes; a product or variant that any order
--   line names is never deleted (it is archived).
-- Products move from the free-text `category` column to `category_id` in the category tree
-- (0031): each distinct old category becomes a root category, its handle the old text.

ALTER TABLE products ADD COLUMN handle TEXT;
ALTER TABLE products ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
  CHECK (status IN ('draft', 'active', 'archived'));
ALTER TABLE products ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(tags) AND json_type(tags) = 'array');
ALTER TABLE products ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}'
  CHECK (json_valid(attributes) AND json_type(attributes) = 'object');
ALTER TABLE products ADD COLUMN options TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(options) AND json_type(options) = 'array');
ALTER TABLE products ADD COLUMN seo_title TEXT;
ALTER TABLE products ADD COLUMN seo_description TEXT;
ALTER TABLE products ADD COLUMN category_id TEXT REFERENCES categories (id);
ALTER TABLE products ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1);

INSERT INTO categories (id, parent_id, handle, name, position, created_at, updated_at)
  SELECT 'cat_' || category, NULL, category, category, 0, min(created_at), min(created_at)
  FROM products GROUP BY category;

UPDATE products SET
  handle = substr(id, 6),
  category_id = 'cat_' || category,
  updated_at = created_at,
  options = coalesce((SELECT json_group_array(key) FROM (
      SELECT DISTINCT j.key AS key FROM variants v, json_each(v.options) j
      WHERE v.product_id = products.id ORDER BY j.key)), '[]');

DROP INDEX products_category_id;
ALTER TABLE products DROP COLUMN category;

CREATE UNIQUE INDEX products_handle ON products (handle);
CREATE INDEX products_category ON products (category_id, id);
CREATE INDEX products_status ON products (status, id);

CREATE TRIGGER products_handle_on_insert BEFORE INSERT ON products
WHEN NEW.handle IS NULL OR NEW.handle = ''
BEGIN
  SELECT RAISE(ABORT, 'product handle required');
END;

CREATE TRIGGER products_handle_on_update BEFORE UPDATE OF handle ON products
WHEN NEW.handle IS NULL OR NEW.handle = ''
BEGIN
  SELECT RAISE(ABORT, 'product handle required');
END;

CREATE TRIGGER products_version_guard BEFORE UPDATE OF version ON products
WHEN NEW.version <> OLD.version + 1
BEGIN
  SELECT RAISE(ABORT, 'stale product version');
END;

CREATE TRIGGER products_options_fixed BEFORE UPDATE OF options ON products
WHEN NEW.options IS NOT OLD.options
  AND EXISTS (SELECT 1 FROM variants WHERE product_id = NEW.id AND status = 'active')
BEGIN
  SELECT RAISE(ABORT, 'product options in use');
END;

CREATE TRIGGER products_never_deleted_once_ordered BEFORE DELETE ON products
WHEN EXISTS (SELECT 1 FROM order_lines WHERE product_id = OLD.id)
BEGIN
  SELECT RAISE(ABORT, 'product ordered');
END;

ALTER TABLE variants ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
  CHECK (status IN ('active', 'archived'));
ALTER TABLE variants ADD COLUMN barcode TEXT;

CREATE UNIQUE INDEX variants_one_per_combination ON variants (product_id, json(options))
  WHERE status = 'active';

CREATE TRIGGER variants_sku_immutable BEFORE UPDATE OF sku, product_id ON variants
WHEN NEW.sku IS NOT OLD.sku OR NEW.product_id IS NOT OLD.product_id
BEGIN
  SELECT RAISE(ABORT, 'sku immutable');
END;

-- A variant names one value for each of its product's options, and nothing else.
CREATE TRIGGER variants_options_declared_on_insert BEFORE INSERT ON variants
WHEN (SELECT count(*) FROM json_each(NEW.options))
       IS NOT (SELECT json_array_length(options) FROM products WHERE id = NEW.product_id)
  OR EXISTS (SELECT 1 FROM json_each(NEW.options) k
             WHERE k.key NOT IN (SELECT o.value FROM products p, json_each(p.options) o
                                 WHERE p.id = NEW.product_id))
BEGIN
  SELECT RAISE(ABORT, 'options not declared');
END;

CREATE TRIGGER variants_options_declared_on_update BEFORE UPDATE OF options ON variants
WHEN (SELECT count(*) FROM json_each(NEW.options))
       IS NOT (SELECT json_array_length(options) FROM products WHERE id = NEW.product_id)
  OR EXISTS (SELECT 1 FROM json_each(NEW.options) k
             WHERE k.key NOT IN (SELECT o.value FROM products p, json_each(p.options) o
                                 WHERE p.id = NEW.product_id))
BEGIN
  SELECT RAISE(ABORT, 'options not declared');
END;

CREATE TRIGGER variants_never_deleted_once_ordered BEFORE DELETE ON variants
WHEN EXISTS (SELECT 1 FROM order_lines WHERE sku = OLD.sku)
BEGIN
  SELECT RAISE(ABORT, 'variant ordered');
END;

-- What is no longer on sale (an archived variant, or a product not active) is not ordered: the
-- placement batch aborts as it does for a changed price, and the shopper is answered 409
-- price_changed with the line's new price null ("no longer sold").
CREATE TRIGGER order_lines_on_sale BEFORE INSERT ON order_lines
WHEN NOT EXISTS (SELECT 1 FROM variants v JOIN products p ON p.id = v.product_id
                 WHERE v.sku = NEW.sku AND v.status = 'active' AND p.status = 'active')
BEGIN
  SELECT RAISE(ABORT, 'price changed');
END;
