-- The category tree of catalog management (issue 21), its invariants kept by the database:
-- a category's handle is unique among its siblings, and a move that would make a category its
-- own ancestor is refused whatever runs concurrently (the trigger aborts the statement, and the
-- batch with it). SQLite does not allow a recursive CTE inside a trigger, so the tree keeps a
-- closure table, category_paths (every ancestor of every category at its depth, a category its
-- own at depth 0), maintained here on insert and on every move: it answers "is X under Y" for
-- the cycle check and "a category and every category under it" for category filters in one
-- indexed read.
CREATE TABLE categories (
  id          TEXT PRIMARY KEY,
  parent_id   TEXT REFERENCES categories (id),
  handle      TEXT NOT NULL CHECK (length(handle) BETWEEN 1 AND 100),
  name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  position    INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE UNIQUE INDEX categories_handle_among_siblings ON categories (coalesce(parent_id, ''), handle);
CREATE INDEX categories_children ON categories (parent_id, position, id);

CREATE TABLE category_paths (
  ancestor    TEXT NOT NULL REFERENCES categories (id),
  descendant  TEXT NOT NULL REFERENCES categories (id),
  depth       INTEGER NOT NULL CHECK (depth >= 0),
  PRIMARY KEY (ancestor, descendant)
) WITHOUT ROWID;

CREATE INDEX category_paths_up ON category_paths (descendant, depth);

-- A new category: itself at depth 0, and every ancestor of its parent one level further.
CREATE TRIGGER categories_paths_on_insert AFTER INSERT ON categories
BEGIN
  INSERT INTO category_paths (ancestor, descendant, depth) VALUES (NEW.id, NEW.id, 0);
  INSERT INTO category_paths (ancestor, descendant, depth)
    SELECT ancestor, NEW.id, depth + 1 FROM category_paths WHERE descendant = NEW.parent_id;
END;

-- A move may not put a category under itself or under one of its descendants.
CREATE TRIGGER categories_no_cycle BEFORE UPDATE OF parent_id ON categories
WHEN NEW.parent_id IS NOT NULL AND NEW.parent_id IS NOT OLD.parent_id
BEGIN
  SELECT RAISE(ABORT, 'category cycle')
  WHERE EXISTS (SELECT 1 FROM category_paths WHERE ancestor = NEW.id AND descendant = NEW.parent_id);
END;

-- A move: the moved subtree leaves its old ancestors and joins the new parent's.
CREATE TRIGGER categories_paths_on_move AFTER UPDATE OF parent_id ON categories
WHEN NEW.parent_id IS NOT OLD.parent_id
BEGIN
  DELETE FROM category_paths
  WHERE descendant IN (SELECT descendant FROM category_paths WHERE ancestor = NEW.id)
    AND ancestor NOT IN (SELECT descendant FROM category_paths WHERE ancestor = NEW.id);
  INSERT INTO category_paths (ancestor, descendant, depth)
    SELECT up.ancestor, down.descendant, up.depth + down.depth + 1
    FROM category_paths up, category_paths down
    WHERE up.descendant = NEW.parent_id AND down.ancestor = NEW.id;
END;

-- A category with children or paths is never deleted from under them (categories are moved or
-- renamed; removing one is a later decision of catalog management).
CREATE TRIGGER categories_no_delete BEFORE DELETE ON categories
BEGIN
  SELECT RAISE(ABORT, 'category in use');
END;
