-- Product reviews by verified buyers (issue 12). Who may review is decided inside the review's
-- own INSERT, by constraints: the product exists and the customer has a paid order containing
-- it (a trigger), one review per customer and product (UNIQUE). A product's rating (count and
-- sum of its visible reviews' stars) is kept by triggers in the same statement as every
-- review change, so it can never drift from the reviews.
CREATE TABLE reviews (
  id            TEXT PRIMARY KEY CHECK (id GLOB 'rev_*'),
  product_id    TEXT NOT NULL REFERENCES products (id),
  customer_id   TEXT NOT NULL REFERENCES customers (id),
  -- The name shown with the review, as the customer had it when writing (NULL: none, or erased).
  author        TEXT,
  rating        INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  title         TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
  body          TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
  hidden        INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
  hidden_reason TEXT CHECK ((hidden = 1) = (hidden_reason IS NOT NULL)),
  helpful       INTEGER NOT NULL DEFAULT 0 CHECK (helpful >= 0),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  UNIQUE (customer_id, product_id)
) STRICT;
CREATE INDEX reviews_newest ON reviews (product_id, hidden, created_at, id);
CREATE INDEX reviews_helpful ON reviews (product_id, hidden, helpful, created_at, id);

CREATE TRIGGER reviews_verified_buyer BEFORE INSERT ON reviews
BEGIN
  SELECT RAISE(ABORT, 'unknown product')
  WHERE NOT EXISTS (SELECT 1 FROM products WHERE id = NEW.product_id);
  SELECT RAISE(ABORT, 'not a verified buyer')
  WHERE NOT EXISTS (
    SELECT 1 FROM orders o JOIN order_lines l ON l.order_id = o.id
    WHERE o.customer_id = NEW.customer_id AND l.product_id = NEW.product_id
      AND o.status IN ('paid', 'partially_fulfilled', 'fulfilled', 'delivered', 'completed'));
END;

ALTER TABLE products ADD COLUMN rating_count INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0);
ALTER TABLE products ADD COLUMN rating_sum INTEGER NOT NULL DEFAULT 0 CHECK (rating_sum >= 0);

CREATE TRIGGER reviews_rating_insert AFTER INSERT ON reviews
BEGIN
  UPDATE products SET rating_count = rating_count + (1 - NEW.hidden),
    rating_sum = rating_sum + NEW.rating * (1 - NEW.hidden)
  WHERE id = NEW.product_id;
END;

CREATE TRIGGER reviews_rating_update AFTER UPDATE OF hidden, rating ON reviews
BEGIN
  UPDATE products SET rating_count = rating_count - (1 - OLD.hidden) + (1 - NEW.hidden),
    rating_sum = rating_sum - OLD.rating * (1 - OLD.hidden) + NEW.rating * (1 - NEW.hidden)
  WHERE id = NEW.product_id;
END;

CREATE TRIGGER reviews_rating_delete AFTER DELETE ON reviews
BEGIN
  UPDATE products SET rating_count = rating_count - (1 - OLD.hidden),
    rating_sum = rating_sum - OLD.rating * (1 - OLD.hidden)
  WHERE id = OLD.product_id;
END;

-- "Helpful" votes: one per customer and review (the key), never on one's own review (a
-- trigger); the review's count moves in the same statement.
CREATE TABLE review_votes (
  review_id   TEXT NOT NULL REFERENCES reviews (id),
  customer_id TEXT NOT NULL REFERENCES customers (id),
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (review_id, customer_id)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER review_votes_not_own BEFORE INSERT ON review_votes
WHEN (SELECT customer_id FROM reviews WHERE id = NEW.review_id) = NEW.customer_id
BEGIN
  SELECT RAISE(ABORT, 'own review');
END;

CREATE TRIGGER review_votes_count AFTER INSERT ON review_votes
BEGIN
  UPDATE reviews SET helpful = helpful + 1 WHERE id = NEW.review_id;
END;
