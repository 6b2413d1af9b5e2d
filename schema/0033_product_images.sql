-- Product images (issue 21). An image is stored once, in the IMAGES bucket under the SHA-256 of
-- its bytes (`images`, one row per object: its type from the magic bytes, its size from its
-- header); a product shows it in a place (`product_images`: position, alt text, optionally the
-- variant it shows, which must be one of the product's own).
CREATE TABLE images (
  hash         TEXT PRIMARY KEY CHECK (length(hash) = 64),
  content_type TEXT NOT NULL
    CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'image/avif', 'image/gif')),
  bytes        INTEGER NOT NULL CHECK (bytes > 0),
  width        INTEGER NOT NULL CHECK (width > 0),
  height       INTEGER NOT NULL CHECK (height > 0),
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE product_images (
  id         TEXT PRIMARY KEY CHECK (id GLOB 'img_*'),
  product_id TEXT NOT NULL REFERENCES products (id),
  hash       TEXT NOT NULL REFERENCES images (hash),
  alt        TEXT NOT NULL DEFAULT '' CHECK (length(alt) <= 250),
  position   INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0),
  sku        TEXT REFERENCES variants (sku),
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX product_images_in_order ON product_images (product_id, position, created_at, id);

CREATE TRIGGER product_images_own_variant BEFORE INSERT ON product_images
WHEN NEW.sku IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM variants WHERE sku = NEW.sku AND product_id = NEW.product_id)
BEGIN
  SELECT RAISE(ABORT, 'variant of another product');
END;
