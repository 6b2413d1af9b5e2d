// The category tree's invariants, kept by the database (schema/0031): handles unique among
// siblings, the closure table follows every insert and move, and a move that would make a cycle
// is refused, whatever runs concurrently.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnApp } from "./helpers.mjs";

let app;
before(async () => (app = await spawnApp()));
after(async () => app?.close());

const now = Date.now();
const add = (id, parent, handle = id) =>
  app.db
    .prepare("INSERT INTO categories (id, parent_id, handle, name, position, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, CAST(?5 AS INTEGER), CAST(?5 AS INTEGER))")
    .bind(id, parent, handle, handle, now)
    .run();
const move = (id, parent) => app.db.prepare("UPDATE categories SET parent_id = ?2 WHERE id = ?1").bind(id, parent).run();
const ancestors = async (id) =>
  (await app.db.prepare("SELECT ancestor, depth FROM category_paths WHERE descendant = ?1 ORDER BY depth").bind(id).all()).results.map(
    (r) => `${r.ancestor}@${r.depth}`,
  );
const under = async (id) =>
  (await app.db.prepare("SELECT descendant FROM category_paths WHERE ancestor = ?1 ORDER BY descendant").bind(id).all()).results.map((r) => r.descendant);

test("a category knows every ancestor, and a move takes its whole subtree along", async () => {
  // home > kitchen > cups > espresso ; home > office
  await add("cat_home", null);
  await add("cat_kitchen", "cat_home");
  await add("cat_cups", "cat_kitchen");
  await add("cat_espresso", "cat_cups");
  await add("cat_office", "cat_home");
  assert.deepEqual(await ancestors("cat_espresso"), ["cat_espresso@0", "cat_cups@1", "cat_kitchen@2", "cat_home@3"]);
  assert.deepEqual(await under("cat_kitchen"), ["cat_cups", "cat_espresso", "cat_kitchen"]);

  // cups (with espresso) moves under office.
  await move("cat_cups", "cat_office");
  assert.deepEqual(await ancestors("cat_espresso"), ["cat_espresso@0", "cat_cups@1", "cat_office@2", "cat_home@3"]);
  assert.deepEqual(await under("cat_kitchen"), ["cat_kitchen"]);
  assert.deepEqual(await under("cat_office"), ["cat_cups", "cat_espresso", "cat_office"]);

  // To the top level and back.
  await move("cat_cups", null);
  assert.deepEqual(await ancestors("cat_espresso"), ["cat_espresso@0", "cat_cups@1"]);
  await move("cat_cups", "cat_kitchen");
  assert.deepEqual(await ancestors("cat_espresso"), ["cat_espresso@0", "cat_cups@1", "cat_kitchen@2", "cat_home@3"]);
});

test("a move that would make a category its own ancestor is refused and changes nothing", async () => {
  await add("cat_a", null);
  await add("cat_b", "cat_a");
  await add("cat_c", "cat_b");
  const before = await ancestors("cat_c");
  await assert.rejects(move("cat_a", "cat_c"), /category cycle/);
  await assert.rejects(move("cat_a", "cat_a"), /category cycle/);
  // In a batch, the refused move takes the batch's other statements with it.
  await assert.rejects(
    app.db.batch([
      app.db.prepare("UPDATE categories SET name = 'renamed' WHERE id = 'cat_b'"),
      app.db.prepare("UPDATE categories SET parent_id = 'cat_c' WHERE id = 'cat_b'"),
    ]),
    /category cycle/,
  );
  assert.equal(await app.db.prepare("SELECT name FROM categories WHERE id = 'cat_b'").first("name"), "cat_b");
  assert.deepEqual(await ancestors("cat_c"), before);
  assert.equal(await app.db.prepare("SELECT parent_id FROM categories WHERE id = 'cat_a'").first("parent_id"), null);
});

test("handles are unique among siblings only, and a category is never deleted from under its tree", async () => {
  await add("cat_men", null);
  await add("cat_women", null);
  await add("cat_men_shirts", "cat_men", "shirts");
  await add("cat_women_shirts", "cat_women", "shirts");
  await assert.rejects(add("cat_men_shirts_2", "cat_men", "shirts"), /UNIQUE constraint failed/);
  await assert.rejects(add("cat_men_2", null, "cat_men"), /UNIQUE constraint failed/, "top-level siblings too");
  await assert.rejects(move("cat_women_shirts", "cat_men"), /UNIQUE constraint failed/);
  await assert.rejects(app.db.prepare("DELETE FROM categories WHERE id = 'cat_women_shirts'").run(), /category in use/);
  assert.deepEqual(await under("cat_women"), ["cat_women", "cat_women_shirts"]);
});
