//! Product search in D1's FTS5 (schema/0034): one batch, one round trip, for the page and its
//! facets. The word index first; when it finds nothing, the trigram index (substrings of the
//! title); when both find nothing, a suggestion from the index's vocabulary.

use serde::{Deserialize, Serialize};
use shop_domain::catalog::search::{closest, segments, SearchSort, SearchText, Segment};
use shop_domain::catalog::{Category, StockStatus};
use shop_domain::kernel::ids::ProductId;
use shop_domain::kernel::money::Money;
use shop_domain::kernel::pagination::{Cursor, Limit};
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;

use crate::store::catalog::{prices, product_stock, StoredPrice};
use crate::store::sql::{self, err, json_err, num, opt_str, Db};

/// What the shopper asked for, parsed.
pub struct SearchRequest<'a> {
    pub text: &'a SearchText,
    pub category: Option<&'a Category>,
    pub in_stock: bool,
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facets {
    pub total: u64,
    pub categories: Vec<CategoryCount>,
    pub in_stock: u64,
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

/// The matching, filtered products (`?1` the expression, `?2` a category handle, `?3` in stock
/// only), materialized so FTS5 computes highlights and ranks before anything else is done.
/// The rank is bm25 in millionths, an integer: exact to compare in a cursor.
fn hits(index: &Index) -> String {
    format!(
        "WITH hits AS MATERIALIZED (
  SELECT p.id, p.name, p.handle, p.category_id, p.created_at,
         CAST(round({rank} * 1000000) AS INTEGER) AS rank,
         highlight({table}, 0, char(57344), char(57345)) AS title,
         {snippet} AS snippet
  FROM {table} JOIN products p ON p.rowid = {table}.rowid
  WHERE {table} MATCH ?1 AND p.status = 'active'
    AND (?2 IS NULL OR p.category_id IN (
          SELECT cp.descendant FROM categories c JOIN category_paths cp ON cp.ancestor = c.id
          WHERE c.handle = ?2))
    AND (?3 = 0 OR EXISTS (
          SELECT 1 FROM variants v JOIN inventory i ON i.sku = v.sku
          WHERE v.product_id = p.id AND v.status = 'active' AND i.available > 0)))",
        rank = index.rank,
        table = index.table,
        snippet = index.snippet,
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
    };
    format!(
        "{hits}
SELECT json_group_array(json_object(
  'id', h.id, 'name', h.name, 'handle', h.handle, 'key', h.{key},
  'category', (SELECT handle FROM categories WHERE id = h.category_id),
  'title', h.title, 'snippet', h.snippet,
  'prices', json((SELECT json_group_array(json_array(currency, m)) FROM (
      SELECT pr.currency AS currency, MIN(pr.amount_minor) AS m
      FROM variants v JOIN prices pr ON pr.sku = v.sku
      WHERE v.product_id = h.id AND v.status = 'active' GROUP BY pr.currency))),
  'stock', json((SELECT json_group_array(json_array(COALESCE(i.available, 0), COALESCE(i.low_threshold, 0)))
      FROM variants v LEFT JOIN inventory i ON i.sku = v.sku
      WHERE v.product_id = h.id AND v.status = 'active')))) AS doc
FROM (SELECT * FROM hits WHERE ?4 IS NULL OR {after} ORDER BY {order} LIMIT ?6) h",
        hits = hits(index),
    )
}

fn facets_sql(index: &Index) -> String {
    format!(
        "{hits}
SELECT json_object(
  'total', (SELECT count(*) FROM hits),
  'categories', json((SELECT json_group_array(json_object('handle', c.handle, 'name', c.name, 'count', g.n))
      FROM (SELECT category_id, count(*) AS n FROM hits GROUP BY category_id) g
      JOIN categories c ON c.id = g.category_id)),
  'in_stock', (SELECT count(*) FROM hits h WHERE EXISTS (
      SELECT 1 FROM variants v JOIN inventory i ON i.sku = v.sku
      WHERE v.product_id = h.id AND v.status = 'active' AND i.available > 0))) AS doc",
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
    let common = [
        expression.into(),
        opt_str(request.category.map(Category::as_str)),
        num(i64::from(request.in_stock)),
    ];
    let page = db
        .prepare(page_sql(index, request.sort))
        .bind(
            &common
                .iter()
                .cloned()
                .chain([key, id, num(i64::from(request.limit.get()) + 1)])
                .collect::<Vec<_>>(),
        )
        .map_err(err(context))?;
    let facets = db
        .prepare(facets_sql(index))
        .bind(&common)
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
    let facets: Facets = serde_json::from_str(&doc(1)?).map_err(json_err(context))?;
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
