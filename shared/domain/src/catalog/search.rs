//! Product search's words: what a shopper typed, made safe for FTS5's `MATCH` (user text never
//! reaches it raw: every word is a quoted string, inner quotes doubled, so `tee-shirt`, `c++` or a
//! lone `"` is text to find, never syntax), the last word a prefix (the shopper is still typing
//! it); the substring fallback's expression for the trigram index; highlighted text as segments;
//! the sort and its cursor.

use serde::{Deserialize, Serialize};

use crate::kernel::contact::{has_unsafe_characters, FieldIssue};
use crate::kernel::money::Currency;

/// Marks around a match in highlighted text, as the store asks FTS5 to write them (private-use
/// characters, never in a title a merchant typed through the API unnoticed: they are only
/// markers until [`segments`] turns them into structure).
pub const MATCH_START: char = '\u{E000}';
pub const MATCH_END: char = '\u{E001}';

/// What the shopper typed, as words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    words: Vec<String>,
}

impl SearchText {
    pub const MAX_CHARS: usize = 100;
    pub const MAX_WORDS: usize = 10;

    /// `q` as words: 1 to [`Self::MAX_CHARS`] characters of plain text; words are separated by
    /// white space, and only those with a letter or digit count (a lone `"` is no word: the
    /// search finds nothing, and says so with a 200).
    pub fn parse(q: &str) -> Result<Self, FieldIssue> {
        let q = q.trim();
        let chars = q.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || has_unsafe_characters(q) {
            return Err(FieldIssue::new(
                "/query/q",
                "invalid_query",
                format!("q is 1 to {} characters of plain text", Self::MAX_CHARS),
            ));
        }
        let words = q
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .take(Self::MAX_WORDS)
            .map(str::to_owned)
            .collect();
        Ok(SearchText { words })
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The `MATCH` expression of the word index: every word a quoted string (all must be
    /// there), the last one a prefix.
    pub fn words(&self) -> Option<String> {
        let last = self.words.len().checked_sub(1)?;
        Some(
            self.words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let quoted = quote(w);
                    if i == last {
                        format!("{quoted}*")
                    } else {
                        quoted
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// The `MATCH` expression of the trigram index (substrings of the title): every word of 3
    /// or more characters quoted; `None` when there is none (a trigram needs three).
    pub fn substrings(&self) -> Option<String> {
        let words: Vec<String> = self
            .words
            .iter()
            .filter(|w| w.chars().count() >= 3)
            .map(|w| quote(w))
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }

    /// The words, for a suggestion.
    pub fn as_words(&self) -> &[String] {
        &self.words
    }
}

/// `word` as an FTS5 string: in double quotes, each inner double quote doubled.
fn quote(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\"\""))
}

/// A piece of highlighted text: matched or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    #[serde(rename = "match")]
    pub matched: bool,
}

/// Text with [`MATCH_START`] / [`MATCH_END`] marks as segments (empty pieces dropped).
pub fn segments(marked: &str) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut text = String::new();
    let mut matched = false;
    for c in marked.chars() {
        let toggle = match c {
            MATCH_START => Some(true),
            MATCH_END => Some(false),
            _ => None,
        };
        match toggle {
            Some(now) => {
                if !text.is_empty() {
                    out.push(Segment {
                        text: std::mem::take(&mut text),
                        matched,
                    });
                }
                matched = now;
            }
            None => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Segment { text, matched });
    }
    out
}

/// The order of search results; ties are broken by product id, so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchSort {
    /// Best match first (bm25, the title weighing most).
    Relevance,
    /// Newest product first.
    Newest,
    /// Cheapest first, by the lowest price of the product's variants in the asked currency.
    PriceAscending,
    /// Dearest first.
    PriceDescending,
    /// Best rated first (average of visible reviews; unrated last).
    Rating,
}

impl SearchSort {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "relevance" => Some(SearchSort::Relevance),
            "newest" => Some(SearchSort::Newest),
            "price_asc" => Some(SearchSort::PriceAscending),
            "price_desc" => Some(SearchSort::PriceDescending),
            "rating" => Some(SearchSort::Rating),
            _ => None,
        }
    }

    /// Sorting by price needs the currency to price in.
    pub fn needs_currency(self) -> bool {
        matches!(
            self,
            SearchSort::PriceAscending | SearchSort::PriceDescending
        )
    }
}

/// The option filters of a search, from `option.<name>=<value>` query pairs: a product matches
/// when one of its active variants has, for every option named, one of the values given (OR
/// within an option, AND across options). Names are option names (`is_key`); at most 5 names and
/// 20 values each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OptionFilter(std::collections::BTreeMap<String, Vec<String>>);

impl OptionFilter {
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FieldIssue> {
        let mut filter: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (key, value) in pairs {
            let Some(name) = key.strip_prefix("option.") else {
                continue;
            };
            let valid_name = (1..=30).contains(&name.len())
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let chars = value.chars().count();
            if !valid_name || chars == 0 || chars > 100 || has_unsafe_characters(value) {
                return Err(FieldIssue::new(
                    format!("/query/{key}"),
                    "invalid_option_filter",
                    "option.<name>=<value>: an option's name (a-z, 0-9, _) and one of its values",
                ));
            }
            let values = filter.entry(name.to_owned()).or_default();
            if !values.iter().any(|v| v == value) {
                values.push(value.to_owned());
            }
            if filter.len() > 5 || filter.values().any(|v| v.len() > 20) {
                return Err(FieldIssue::new(
                    format!("/query/{key}"),
                    "too_many_option_filters",
                    "at most 5 options, with at most 20 values each",
                ));
            }
        }
        Ok(OptionFilter(filter))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The price bands a search counts its matches in, in minor units of `currency`: `[min, max)`,
/// the last without a top. Round numbers of the currency's major unit (a hundred times more for
/// JPY, whose unit is worth about a cent).
pub fn price_bands(currency: Currency) -> Vec<(i64, Option<i64>)> {
    let unit: i64 =
        10_i64.pow(currency.exponent()) * if currency == Currency::Jpy { 100 } else { 1 };
    let edges = [0, 10, 25, 50, 100, 250];
    edges
        .iter()
        .enumerate()
        .map(|(i, edge)| (edge * unit, edges.get(i + 1).map(|next| next * unit)))
        .collect()
}

/// The closest word of `vocabulary` to `word` (at most two edits away, and closer than the
/// word's length), for "did you mean": ties go to the word more products have, then to the
/// first in order. `vocabulary` is `(word, documents)`.
pub fn closest<'a>(word: &str, vocabulary: &'a [(String, u64)]) -> Option<&'a str> {
    let word = word.to_lowercase();
    let allowed = match word.chars().count() {
        0..=2 => return None,
        3..=5 => 1,
        _ => 2,
    };
    vocabulary
        .iter()
        .filter(|(term, _)| *term != word)
        .map(|(term, docs)| (strsim::levenshtein(&word, term), *docs, term.as_str()))
        .filter(|(distance, _, _)| *distance <= allowed)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, _, term)| term)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_word_is_quoted_and_the_last_is_a_prefix() {
        let text = SearchText::parse("  classic  tee-shirt ").unwrap();
        assert_eq!(text.words().unwrap(), "\"classic\" \"tee-shirt\"*");
        assert_eq!(
            SearchText::parse("c++ say \"hi\"")
                .unwrap()
                .words()
                .unwrap(),
            "\"c++\" \"say\" \"\"\"hi\"\"\"*"
        );
        let lone = SearchText::parse("\"").unwrap();
        assert!(lone.is_empty() && lone.words().is_none() && lone.substrings().is_none());
        assert_eq!(
            SearchText::parse("oodie xl").unwrap().substrings().unwrap(),
            "\"oodie\""
        );
        for bad in ["", "   ", &"x".repeat(101), "tab\u{0007}"] {
            assert_eq!(SearchText::parse(bad).unwrap_err().code, "invalid_query");
        }
    }

    #[test]
    fn highlights_become_segments() {
        let marked = format!("Zip {MATCH_START}Hood{MATCH_END}ie");
        assert_eq!(
            segments(&marked),
            vec![
                Segment {
                    text: "Zip ".into(),
                    matched: false
                },
                Segment {
                    text: "Hood".into(),
                    matched: true
                },
                Segment {
                    text: "ie".into(),
                    matched: false
                },
            ]
        );
        assert!(segments("").is_empty());
    }

    #[test]
    fn option_filters_are_or_within_and_and_across() {
        let filter = OptionFilter::parse([
            ("option.size", "M"),
            ("q", "tee"),
            ("option.size", "L"),
            ("option.color", "black"),
            ("option.size", "M"),
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_string(&filter).unwrap(),
            r#"{"color":["black"],"size":["M","L"]}"#
        );
        for bad in [("option.Size", "M"), ("option.", "M"), ("option.size", "")] {
            assert_eq!(
                OptionFilter::parse([bad]).unwrap_err().code,
                "invalid_option_filter"
            );
        }
        assert!(OptionFilter::parse([("q", "x")]).unwrap().is_empty());
    }

    #[test]
    fn price_bands_are_round_numbers_of_the_currency() {
        assert_eq!(
            price_bands(Currency::Eur),
            vec![
                (0, Some(1000)),
                (1000, Some(2500)),
                (2500, Some(5000)),
                (5000, Some(10000)),
                (10000, Some(25000)),
                (25000, None)
            ]
        );
        assert_eq!(price_bands(Currency::Jpy)[1], (1000, Some(2500)));
        assert_eq!(price_bands(Currency::Kwd)[1], (10000, Some(25000)));
    }

    #[test]
    fn did_you_mean_is_the_nearest_common_word() {
        let vocabulary: Vec<(String, u64)> =
            [("hoodie", 5), ("hoodies", 2), ("mug", 6), ("mugs", 1)]
                .iter()
                .map(|(t, d)| ((*t).to_owned(), *d))
                .collect();
        assert_eq!(closest("hoddie", &vocabulary), Some("hoodie"));
        assert_eq!(closest("Hoodei", &vocabulary), Some("hoodie"));
        assert_eq!(closest("mu", &vocabulary), None, "too short to guess");
        assert_eq!(closest("mig", &vocabulary), Some("mug"));
        assert_eq!(closest("zebra", &vocabulary), None);
    }

    /// Read `expression` as FTS5 would: strings in double quotes (a doubled quote inside is a
    /// quote), separated by single spaces, the last one followed by `*`. The words it holds.
    fn strings(expression: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut chars = expression.chars().peekable();
        loop {
            if chars.next()? != '"' {
                return None;
            }
            let mut word = String::new();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        word.push('"');
                    }
                    '"' => break,
                    c => word.push(c),
                }
            }
            out.push(word);
            match chars.next() {
                Some(' ') => continue,
                Some('*') if chars.next().is_none() => return Some(out),
                _ => return None,
            }
        }
    }

    proptest! {
        /// Whatever a shopper types, the expression is only quoted strings holding exactly the
        /// words typed: nothing typed can close a string early or become FTS5 syntax.
        #[test]
        fn any_text_makes_a_well_formed_expression(q in "\\PC{1,100}") {
            if let Ok(text) = SearchText::parse(&q) {
                if let Some(expression) = text.words() {
                    let read = strings(&expression);
                    prop_assert_eq!(read.as_deref(), Some(text.as_words()), "{}", expression);
                }
            }
        }
    }
}
