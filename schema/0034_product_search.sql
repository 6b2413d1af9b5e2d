-- Product search (issue 21) in D1's FTS5, kept by triggers in the same statement as the product
-- change: a product is findable the moment its change commits, and only while it is active
-- (drafts and archived products are never in the index).
-- - product_search: words of the title, tags, attributes and description (`unicode61
--   remove_diacritics 2`: case and accents folded, so "creme brulee" finds "Crème brûlée"),
--   with prefix indexes for the word being typed; ranked by bm25 with the title weighted most.
-- - product_trigrams: the title's trigrams, for the substring fallback when no word matches
--   ("oodie" finds "Hoodie").
-- Both are external-content tables over `products` (nothing is stored twice); the triggers give
-- FTS5 the old values to forget and the new ones to index.
CREATE VIRTUAL TABLE product_search USING fts5(
  name, tags, attributes, description,
  content = 'products', content_rowid = 'rowid',
  tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);

CREATE VIRTUAL TABLE product_trigrams USING fts5(
  name,
  content = 'products', content_rowid = 'rowid',
  tokenize = 'trigram'
);

-- The index's vocabulary, for "did you mean".
CREATE VIRTUAL TABLE product_search_vocabulary USING fts5vocab(product_search, 'row');

INSERT INTO product_search (rowid, name, tags, attributes, description)
  SELECT rowid, name, tags, attributes, description FROM products WHERE status = 'active';
INSERT INTO product_trigrams (rowid, name)
  SELECT rowid, name FROM products WHERE status = 'active';

CREATE TRIGGER products_search_on_insert AFTER INSERT ON products
WHEN NEW.status = 'active'
BEGIN
  INSERT INTO product_search (rowid, name, tags, attributes, description)
    VALUES (NEW.rowid, NEW.name, NEW.tags, NEW.attributes, NEW.description);
  INSERT INTO product_trigrams (rowid, name) VALUES (NEW.rowid, NEW.name);
END;

CREATE TRIGGER products_search_on_update AFTER UPDATE OF name, tags, attributes, description, status ON products
BEGIN
  INSERT INTO product_search (product_search, rowid, name, tags, attributes, description)
    SELECT 'delete', OLD.rowid, OLD.name, OLD.tags, OLD.attributes, OLD.description
    WHERE OLD.status = 'active';
  INSERT INTO product_trigrams (product_trigrams, rowid, name)
    SELECT 'delete', OLD.rowid, OLD.name WHERE OLD.status = 'active';
  INSERT INTO product_search (rowid, name, tags, attributes, description)
    SELECT NEW.rowid, NEW.name, NEW.tags, NEW.attributes, NEW.description
    WHERE NEW.status = 'active';
  INSERT INTO product_trigrams (rowid, name)
    SELECT NEW.rowid, NEW.name WHERE NEW.status = 'active';
END;

CREATE TRIGGER products_search_on_delete AFTER DELETE ON products
WHEN OLD.status = 'active'
BEGIN
  INSERT INTO product_search (product_search, rowid, name, tags, attributes, description)
    VALUES ('delete', OLD.rowid, OLD.name, OLD.tags, OLD.attributes, OLD.description);
  INSERT INTO product_trigrams (product_trigrams, rowid, name)
    VALUES ('delete', OLD.rowid, OLD.name);
END;
