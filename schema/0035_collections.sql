-- Collections (issue 21): manual, ordered lists of products a merchant curates (featured, sale).
-- A product is in a collection once, at one position; positions are unique within a collection.
-- The storefront's product list reads a collection in its order (`?collection=<handle>`).
CREATE TABLE collections (
  id         TEXT PRIMARY KEY CHECK (id GLOB 'col_*'),
  handle     TEXT NOT NULL UNIQUE CHECK (length(handle) BETWEEN 1 AND 100),
  title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE collection_products (
  collection_id TEXT NOT NULL REFERENCES collections (id),
  product_id    TEXT NOT NULL REFERENCES products (id),
  position      INTEGER NOT NULL CHECK (position >= 0),
  PRIMARY KEY (collection_id, product_id)
) STRICT;
CREATE UNIQUE INDEX collection_products_in_order ON collection_products (collection_id, position);
