//! Product search in D1's FTS5 (schema/0034): one batch, one round trip, for the page and its
//! facets. The word index first; when it finds nothing, the trigram index (substrings of the
//! title); when both find nothing, a suggestion from the index's vocabulary.

use serde::{Deserialize, Serialize};
use shop_domain::catalog::search::{
    closest, price_bands, segments, OptionFilter, SearchSort, SearchText, Segment,
};
use shop_domain::catalog::{Category, StockStatus};
use shop_domain::kernel::ids::ProductId;
use shop_domain::kernel::money::{Currency, Money};
use shop_domain::kernel::pagination::{Cursor, Limit};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::catalog::{prices, product_stock, StoredPrice};
use crate::store::sql::{self, err, json_err, num, opt_str, Db};

/// What the shopper asked for, parsed.
pub struct SearchRequest<'a> {
    pub text: &'a SearchText,
    /// Any of these categories (or below them).
    pub categories: &'a [Category],
    pub in_stock: bool,
    /// The currency prices are read, filtered, sorted and banded in: when given, only products
    /// sold in it are found.
    pub currency: Option<Currency>,
    /// Bounds of the product's lowest price in `currency`, in minor units (inclusive).
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub options: &'a OptionFilter,
    /// The least average rating (1–5).
    pub rating_min: Option<u8>,
    pub sort: SearchSort,
    pub after: Option<&'a Cursor>,
    pub limit: Limit,
}

/// One product found.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: ProductId,
    pub name: String,
    pub handle: String,
    pub category: Option<String>,
    pub price_from: Vec<Money>,
    pub stock: StockStatus,
    /// The title with the matched words marked.
    pub title: Vec<Segment>,
    /// The best few words of the matching text, matches marked.
    pub snippet: Vec<Segment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryCount {
    pub handle: String,
    pub name: String,
    pub count: u64,
}

/// Counts over the whole match (every page), with the request's filters applied.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    pub total: u64,
    pub categories: Vec<CategoryCount>,
    pub in_stock: u64,
    /// Products per option value (of their active variants).
    pub options: Vec<OptionCount>,
    /// Products per band of their lowest price, when a currency was asked for.
    pub price_bands: Vec<PriceBand>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptionCount {
    pub name: String,
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceBand {
    pub min: Money,
    /// `None`: no top.
    pub max: Option<Money>,
    pub count: u64,
}

/// Facets as the statement answers them: bands as `[min, max, count]` in minor units.
#[derive(Deserialize)]
struct FacetsRow {
    total: u64,
    categories: Vec<CategoryCount>,
    in_stock: u64,
    options: Vec<OptionCount>,
    price_bands: Vec<(i64, Option<i64>, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    pub data: Vec<Hit>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
    pub facets: Facets,
    /// How the products were found: by `words`, by `substring` of the title (no word
    /// matched), or `none`.
    pub matched_by: &'static str,
    /// When nothing was found: the query with its words replaced by the index's nearest ones.
    pub did_you_mean: Option<String>,
}

#[derive(Deserialize)]
struct HitRow {
    id: ProductId,
    name: String,
    handle: String,
    category: Option<String>,
    key: i64,
    title: String,
    snippet: String,
    prices: Vec<StoredPrice>,
    stock: Vec<(i64, i64)>,
}

/// Which FTS5 table a query runs on, with its ranking and snippet (constant SQL).
struct Index {
    table: &'static str,
    rank: &'static str,
    snippet: &'static str,
}

const WORDS: Index = Index {
    table: "product_search",
    rank: "bm25(product_search, 10.0, 3.0, 2.0, 1.0)",
    snippet: "snippet(product_search, -1, char(57344), char(57345), '…', 12)",
};

const SUBSTRINGS: Index = Index {
    table: "product_trigrams",
    rank: "bm25(product_trigrams)",
    snippet: "snippet(product_trigrams, 0, char(57344), char(57345), '…', 12)",
};

/// The matching, filtered products, materialized so FTS5 ranks each once before anything else
/// is done, the FTS5 table the outer loop (`CROSS JOIN`: otherwise SQLite may
/// walk `products` by status and run the match once per product, 70 times slower at 10,000) (`?1` the expression, `?2` category handles as a JSON array, `?3` in
/// stock only, `?7` the currency, `?8`/`?9` price bounds, `?10` the option filter, `?11` the
/// least rating). The rank is bm25 in millionths and the rating a thousandth of a star, integers:
/// exact to compare in a cursor. `price` is the lowest active price in `?7`.
fn hits(index: &Index) -> String {
    format!(
        "WITH hits AS MATERIALIZED (
  SELECT p.id, p.rowid AS prowid, p.name, p.handle, p.category_id, p.created_at,
         CAST(round({rank} * 1000000) AS INTEGER) AS rank,
         CASE WHEN p.rating_count > 0 THEN p.rating_sum * 1000 / p.rating_count ELSE -1 END AS rating,
         CASE WHEN ?7 IS NULL THEN NULL ELSE (
           SELECT MIN(pr.amount_minor) FROM variants v JOIN prices pr ON pr.sku = v.sku
           WHERE v.product_id = p.id AND v.status = 'active' AND pr.currency = ?7) END AS price
  FROM {table} CROSS JOIN products p ON p.rowid = {table}.rowid
  WHERE {table} MATCH ?1 AND p.status = 'active'
    AND (?2 IS NULL OR p.category_id IN (
          SELECT cp.descendant FROM categories c JOIN category_paths cp ON cp.ancestor = c.id
          WHERE c.handle IN (SELECT value FROM json_each(?2))))
    AND (?3 = 0 OR EXISTS (
          SELECT 1 FROM variants v JOIN inventory i ON i.sku = v.sku
          WHERE v.product_id = p.id AND v.status = 'active' AND i.available > 0))
    AND (?10 IS NULL OR EXISTS (
          SELECT 1 FROM variants v WHERE v.product_id = p.id AND v.status = 'active'
          AND NOT EXISTS (
            SELECT 1 FROM json_each(?10) f
            WHERE json_extract(v.options, '$.' || f.key) IS NULL
               OR json_extract(v.options, '$.' || f.key) NOT IN (SELECT value FROM json_each(f.value)))))),
filtered AS (
  SELECT * FROM hits
  WHERE (?7 IS NULL OR price IS NOT NULL)
    AND (?8 IS NULL OR price >= ?8) AND (?9 IS NULL OR price <= ?9)
    AND (?11 IS NULL OR rating >= ?11 * 1000))",
        rank = index.rank,
        table = index.table,
    )
}

/// The page: after the cursor (`?4` its key, `?5` its id), in the sort's order, `?6` rows.
fn page_sql(index: &Index, sort: SearchSort) -> String {
    let (key, after, order) = match sort {
        SearchSort::Relevance => ("rank", "(rank > ?4 OR (rank = ?4 AND id > ?5))", "rank, id"),
        SearchSort::Newest => (
            "created_at",
            "(created_at < ?4 OR (created_at = ?4 AND id > ?5))",
            "created_at DESC, id",
        ),
        SearchSort::PriceAscending => (
            "price",
            "(price > ?4 OR (price = ?4 AND id > ?5))",
            "price, id",
        ),
        SearchSort::PriceDescending => (
            "price",
            "(price < ?4 OR (price = ?4 AND id > ?5))",
            "price DESC, id",
        ),
        SearchSort::Rating => (
            "rating",
            "(rating < ?4 OR (rating = ?4 AND id > ?5))",
            "rating DESC, id",
        ),
    };
    // Highlights and snippets are made for the page's rows only: a second, rowid-bound match.
    format!(
        "{hits},
page AS (SELECT * FROM filtered WHERE ?4 IS NULL OR {after} ORDER BY {order} LIMIT ?6),
marked AS MATERIALIZED (
  SELECT rowid AS r, highlight({table}, 0, char(57344), char(57345)) AS title, {snippet} AS snippet
  FROM {table} WHERE {table} MATCH ?1 AND rowid IN (SELECT prowid FROM page))
SELECT json_group_array(json_object(
  'id', h.id, 'name', h.name, 'handle', h.handle, 'key', h.{key},
  'category', (SELECT handle FROM categories WHERE id = h.category_id),
  'title', (SELECT title FROM marked WHERE r = h.prowid),
  'snippet', (SELECT snippet FROM marked WHERE r = h.prowid),
  'prices', json((SELECT json_group_array(json_array(currency, m)) FROM (
      SELECT pr.currency AS currency, MIN(pr.amount_minor) AS m
      FROM variants v JOIN prices pr ON pr.sku = v.sku
      WHERE v.product_id = h.id AND v.status = 'active' GROUP BY pr.currency))),
  'stock', json((SELECT json_group_array(json_array(COALESCE(i.available, 0), COALESCE(i.low_threshold, 0)))
      FROM variants v LEFT JOIN inventory i ON i.sku = v.sku
      WHERE v.product_id = h.id AND v.status = 'active')))) AS doc
FROM (SELECT * FROM page ORDER BY {order}) h",
        hits = hits(index),
        table = index.table,
        snippet = index.snippet,
    )
}

fn facets_sql(index: &Index) -> String {
    format!(
        "{hits}
SELECT json_object(
  'total', (SELECT count(*) FROM filtered),
  'categories', json((SELECT json_group_array(json_object('handle', c.handle, 'name', c.name, 'count', g.n))
      FROM (SELECT category_id, count(*) AS n FROM filtered GROUP BY category_id) g
      JOIN categories c ON c.id = g.category_id)),
  'in_stock', (SELECT count(*) FROM filtered h WHERE EXISTS (
      SELECT 1 FROM variants v JOIN inventory i ON i.sku = v.sku
      WHERE v.product_id = h.id AND v.status = 'active' AND i.available > 0)),
  'options', json((SELECT json_group_array(json_object('name', name, 'value', value, 'count', n))
      FROM (SELECT o.key AS name, o.value AS value, count(DISTINCT h.id) AS n
            FROM filtered h JOIN variants v ON v.product_id = h.id AND v.status = 'active',
                 json_each(v.options) o
            GROUP BY o.key, o.value ORDER BY o.key, n DESC, o.value))),
  'price_bands', json((SELECT json_group_array(json_array(
        json_extract(b.value, '$[0]'), json_extract(b.value, '$[1]'),
        (SELECT count(*) FROM filtered h WHERE h.price >= json_extract(b.value, '$[0]')
           AND (json_extract(b.value, '$[1]') IS NULL OR h.price < json_extract(b.value, '$[1]')))))
      FROM json_each(?12) b WHERE ?7 IS NOT NULL))) AS doc",
        hits = hits(index),
    )
}

#[derive(Deserialize)]
struct Doc {
    doc: Option<String>,
}

/// A cursor's key: `<index: w or s>|<rank or created_at>|<product id>`.
struct After {
    substrings: bool,
    key: JsValue,
    id: JsValue,
}

fn after(cursor: Option<&Cursor>) -> Option<After> {
    let (index, rest) = cursor?.key().split_once('|')?;
    let (key, id) = rest.split_once('|')?;
    Some(After {
        substrings: index == "s",
        key: num(key.parse::<i64>().ok()?),
        id: id.into(),
    })
}

/// Run the search on `index` with `expression`: the page and the facets in one batch.
async fn run(
    db: &Db,
    index: &Index,
    expression: &str,
    request: &SearchRequest<'_>,
) -> Result<(Vec<HitRow>, Facets), StoreError> {
    let context = "search";
    let (key, id) = match after(request.after) {
        Some(after) => (after.key, after.id),
        None => (JsValue::NULL, JsValue::NULL),
    };
    let options = if request.options.is_empty() {
        JsValue::NULL
    } else {
        serde_json::to_string(request.options)
            .map_err(json_err(context))?
            .into()
    };
    let categories = if request.categories.is_empty() {
        JsValue::NULL
    } else {
        let handles: Vec<&str> = request.categories.iter().map(Category::as_str).collect();
        serde_json::to_string(&handles)
            .map_err(json_err(context))?
            .into()
    };
    let bands = match request.currency {
        Some(currency) => serde_json::to_string(&price_bands(currency))
            .map_err(json_err(context))?
            .into(),
        None => JsValue::NULL,
    };
    let optional = |n: Option<i64>| n.map_or(JsValue::NULL, num);
    let binds = [
        expression.into(),
        categories,
        num(i64::from(request.in_stock)),
        key,
        id,
        num(i64::from(request.limit.get()) + 1),
        opt_str(request.currency.map(Currency::code)),
        optional(request.price_min),
        optional(request.price_max),
        options,
        optional(request.rating_min.map(i64::from)),
        bands,
    ];
    let page = db
        .prepare(page_sql(index, request.sort))
        .bind(binds.get(..11).unwrap_or_default())
        .map_err(err(context))?;
    let facets = db
        .prepare(facets_sql(index))
        .bind(&binds)
        .map_err(err(context))?;
    let results = db.batch(vec![page, facets]).await.map_err(err(context))?;
    let doc = |i: usize| -> Result<String, StoreError> {
        let rows: Vec<Doc> = results
            .get(i)
            .ok_or_else(|| StoreError::new(format!("{context}: missing result {i}")))?
            .results()
            .map_err(err(context))?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.doc)
            .unwrap_or_default())
    };
    let hits: Vec<HitRow> = serde_json::from_str(&doc(0)?).map_err(json_err(context))?;
    let row: FacetsRow = serde_json::from_str(&doc(1)?).map_err(json_err(context))?;
    let money = |minor: i64| {
        request
            .currency
            .and_then(|currency| Money::from_minor(minor, currency).ok())
    };
    let facets = Facets {
        total: row.total,
        categories: row.categories,
        in_stock: row.in_stock,
        options: row.options,
        price_bands: row
            .price_bands
            .into_iter()
            .filter_map(|(min, max, count)| {
                Some(PriceBand {
                    min: money(min)?,
                    max: max.and_then(money),
                    count,
                })
            })
            .collect(),
    };
    Ok((hits, facets))
}

/// Search: by words; by substrings of the title when no word matched; a suggestion when
/// neither found anything.
pub async fn search(db: &Db, request: &SearchRequest<'_>) -> Result<SearchPage, StoreError> {
    let mut found = None;
    let continued = after(request.after);
    if let (Some(words), false) = (
        request.text.words(),
        continued.as_ref().is_some_and(|a| a.substrings),
    ) {
        let (hits, facets) = run(db, &WORDS, &words, request).await?;
        if facets.total > 0 || continued.is_some() {
            found = Some((hits, facets, "words"));
        }
    }
    if found.is_none() && continued.as_ref().is_none_or(|a| a.substrings) {
        if let Some(substrings) = request.text.substrings() {
            let (hits, facets) = run(db, &SUBSTRINGS, &substrings, request).await?;
            if facets.total > 0 || continued.is_some() {
                found = Some((hits, facets, "substring"));
            }
        }
    }
    let Some((mut hits, facets, matched_by)) = found else {
        return Ok(SearchPage {
            data: Vec::new(),
            next_cursor: None,
            has_more: false,
            facets: Facets::default(),
            matched_by: "none",
            did_you_mean: did_you_mean(db, request.text).await?,
        });
    };
    let limit = request.limit.get() as usize;
    let has_more = hits.len() > limit;
    hits.truncate(limit);
    let next_cursor = has_more.then(|| hits.last()).flatten().map(|last| {
        let index = if matched_by == "substring" { "s" } else { "w" };
        Cursor::after(&format!("{index}|{}|{}", last.key, last.id)).encode()
    });
    Ok(SearchPage {
        data: hits.into_iter().map(hit).collect(),
        next_cursor,
        has_more,
        facets,
        matched_by,
        did_you_mean: None,
    })
}

fn hit(row: HitRow) -> Hit {
    Hit {
        stock: product_stock(&row.stock),
        id: row.id,
        name: row.name,
        handle: row.handle,
        category: row.category,
        price_from: prices(row.prices),
        title: segments(&row.title),
        snippet: segments(&row.snippet),
    }
}

/// Each word replaced by the index's nearest word (two edits at most), when any is.
async fn did_you_mean(db: &Db, text: &SearchText) -> Result<Option<String>, StoreError> {
    let context = "did you mean";
    let words = text.as_words();
    if words.is_empty() {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Term {
        term: String,
        doc: u64,
    }
    // Candidates share the word's first letter and are about as long (one statement).
    let firsts: Vec<String> = words
        .iter()
        .filter_map(|w| w.chars().next())
        .map(|c| c.to_lowercase().to_string())
        .collect();
    let terms: Vec<Term> = sql::all(
        db,
        "SELECT term, doc FROM product_search_vocabulary \
         WHERE substr(term, 1, 1) IN (SELECT value FROM json_each(?1)) LIMIT 2000",
        &[serde_json::to_string(&firsts)
            .map_err(json_err(context))?
            .into()],
        context,
    )
    .await?;
    let vocabulary: Vec<(String, u64)> = terms.into_iter().map(|t| (t.term, t.doc)).collect();
    let mut changed = false;
    let suggestion: Vec<String> = words
        .iter()
        .map(|w| match closest(w, &vocabulary) {
            Some(better) => {
                changed = true;
                better.to_owned()
            }
            None => w.to_lowercase(),
        })
        .collect();
    Ok(changed.then(|| suggestion.join(" ")))
}

/// One completion for a search box: a product (its title) or a category (its name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suggestion {
    /// `product` or `category`.
    pub kind: String,
    pub text: String,
    /// The product's id, or the category's handle.
    pub id: String,
    pub handle: String,
}

/// At most this many completions.
pub const SUGGESTIONS: usize = 8;

/// Completions of what is being typed: categories whose name starts with it, then the best
/// matching products' titles, at most [`SUGGESTIONS`] in all, in one round trip.
pub async fn suggest(
    db: &Db,
    text: &SearchText,
    typed: &str,
) -> Result<Vec<Suggestion>, StoreError> {
    let context = "suggest";
    let Some(words) = text.words() else {
        return Ok(Vec::new());
    };
    // A prefix compared as text (D1 limits LIKE patterns to 50 bytes, and nothing needs escaping).
    let prefix = typed.trim().to_lowercase();
    let limit = num(SUGGESTIONS as i64);
    let categories = db
        .prepare(
            "SELECT json_group_array(json_object('kind', 'category', 'text', name, 'id', id, \
             'handle', handle)) AS doc FROM (SELECT * FROM categories \
             WHERE substr(lower(name), 1, length(?1)) = ?1 ORDER BY length(name), name LIMIT ?2)",
        )
        .bind(&[prefix.into(), limit.clone()])
        .map_err(err(context))?;
    let products = db
        .prepare(
            "SELECT json_group_array(json_object('kind', 'product', 'text', name, 'id', id, \
             'handle', handle)) AS doc FROM (SELECT p.id, p.name, p.handle FROM product_search \
             CROSS JOIN products p ON p.rowid = product_search.rowid \
             WHERE product_search MATCH ?1 AND p.status = 'active' \
             ORDER BY bm25(product_search, 10.0, 3.0, 2.0, 1.0), p.id LIMIT ?2)",
        )
        .bind(&[words.into(), limit])
        .map_err(err(context))?;
    let results = db
        .batch(vec![categories, products])
        .await
        .map_err(err(context))?;
    let mut out: Vec<Suggestion> = Vec::new();
    for result in &results {
        let rows: Vec<Doc> = result.results().map_err(err(context))?;
        let doc = rows
            .into_iter()
            .next()
            .and_then(|r| r.doc)
            .unwrap_or_default();
        let found: Vec<Suggestion> = serde_json::from_str(&doc).map_err(json_err(context))?;
        out.extend(found);
    }
    // Categories first, but never more than half.
    let categories = out
        .iter()
        .filter(|s| s.kind == "category")
        .count()
        .min(SUGGESTIONS / 2);
    let mut kept: Vec<Suggestion> = Vec::with_capacity(SUGGESTIONS);
    kept.extend(
        out.iter()
            .filter(|s| s.kind == "category")
            .take(categories)
            .cloned(),
    );
    kept.extend(
        out.into_iter()
            .filter(|s| s.kind == "product")
            .take(SUGGESTIONS - categories),
    );
    Ok(kept)
}
