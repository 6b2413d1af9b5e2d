//! Product reviews by verified buyers: what a review may say, a product's rating, and the
//! orders a listing can come in.
//!
//! Who may review what is decided by the database in the review's own statement (a trigger
//! finds a paid order of the customer's containing the product; `UNIQUE (customer_id,
//! product_id)` refuses a second review), and a product's rating count and sum are kept by
//! triggers in the same statement as every review change, so they cannot drift from the
//! reviews (schema/0022).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::kernel::contact::FieldIssue;
use crate::support::tickets::text;

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_BODY_CHARS: usize = 5_000;
pub const MAX_REASON_CHARS: usize = 500;

/// A review as submitted, checked: a rating of 1 to 5 stars, a title and a body of plain text
/// (no control or bidirectional formatting characters; the body may have line breaks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDraft {
    rating: u8,
    title: String,
    body: String,
}

impl ReviewDraft {
    /// Every field checked at once: all the issues, or the draft.
    pub fn parse(rating: i64, title: &str, body: &str) -> Result<Self, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let rating = u8::try_from(rating).ok().filter(|r| (1..=5).contains(r));
        if rating.is_none() {
            issues.push(FieldIssue::new(
                "/rating",
                "invalid_rating",
                "rating is a whole number of stars from 1 to 5",
            ));
        }
        let title = text(title, MAX_TITLE_CHARS, false, "/title", &mut issues);
        let body = text(body, MAX_BODY_CHARS, true, "/body", &mut issues);
        match (rating, title, body) {
            (Some(rating), Some(title), Some(body)) if issues.is_empty() => Ok(ReviewDraft {
                rating,
                title,
                body,
            }),
            _ => Err(issues),
        }
    }

    pub fn rating(&self) -> u8 {
        self.rating
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn body(&self) -> &str {
        &self.body
    }
}

/// Why a moderator hid a review: plain text, 1 to 500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HideReason(String);

impl HideReason {
    pub fn parse(input: &str) -> Result<Self, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        text(input, MAX_REASON_CHARS, true, "/reason", &mut issues)
            .map(HideReason)
            .ok_or(issues)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's rating over its visible reviews: how many, and their mean to two decimals
/// (half away from zero; `None` without reviews).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rating {
    pub average: Option<Decimal>,
    pub count: u64,
}

impl Rating {
    /// From the count of visible reviews and the sum of their stars, as stored.
    pub fn from_totals(count: u64, sum: u64) -> Self {
        let average = (count > 0).then(|| {
            let mut mean = (Decimal::from(sum) / Decimal::from(count))
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            mean.rescale(2);
            mean
        });
        Rating { average, count }
    }
}

/// The order of a product's review listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewSort {
    /// Newest first.
    Newest,
    /// Most "helpful" votes first; newest first among equals.
    Helpful,
}

impl ReviewSort {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "newest" => Some(ReviewSort::Newest),
            "helpful" => Some(ReviewSort::Helpful),
            _ => None,
        }
    }

    /// The cursor after a review: what the listing orders by, then its id.
    pub fn cursor_key(self, helpful: u64, created_at_millis: i64, id: &str) -> String {
        match self {
            ReviewSort::Newest => format!("{created_at_millis}:{id}"),
            ReviewSort::Helpful => format!("{helpful}:{created_at_millis}:{id}"),
        }
    }

    /// A cursor of this order read back: `(helpful, created_at, id)` (`helpful` 0 for newest).
    pub fn parse_cursor(self, key: &str) -> Option<(u64, i64, String)> {
        let mut parts = key.splitn(3, ':');
        let (helpful, created, id) = match self {
            ReviewSort::Newest => (Some("0"), parts.next(), parts.next()),
            ReviewSort::Helpful => (parts.next(), parts.next(), parts.next()),
        };
        let id = id.filter(|i| i.starts_with("rev_") && !i.contains(':'))?;
        Some((
            helpful?.parse().ok()?,
            created?.parse().ok()?,
            id.to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_draft_is_checked_field_by_field() {
        let ok = ReviewDraft::parse(5, "  Lovely mug ", "Holds tea.\r\nKeeps it warm.").unwrap();
        assert_eq!(
            (ok.rating(), ok.title(), ok.body()),
            (5, "Lovely mug", "Holds tea.\nKeeps it warm.")
        );
        let issues = ReviewDraft::parse(6, "", "x\u{202e}y").unwrap_err();
        let codes: Vec<_> = issues.iter().map(|i| (i.path.as_str(), i.code)).collect();
        assert_eq!(
            codes,
            vec![
                ("/rating", "invalid_rating"),
                ("/title", "invalid_length"),
                ("/body", "invalid_characters"),
            ]
        );
        assert!(ReviewDraft::parse(0, "t", "b").is_err());
        assert!(ReviewDraft::parse(3, "t\u{0007}", "b").is_err());
        assert!(ReviewDraft::parse(3, "t", &"b".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert!(ReviewDraft::parse(3, "t", &"b".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(HideReason::parse("").is_err());
        assert_eq!(HideReason::parse(" spam ").unwrap().as_str(), "spam");
    }

    #[test]
    fn the_average_is_rounded_half_away_from_zero() {
        assert_eq!(Rating::from_totals(0, 0).average, None);
        let avg = |count, sum| Rating::from_totals(count, sum).average.unwrap().to_string();
        assert_eq!(avg(3, 13), "4.33");
        assert_eq!(avg(3, 14), "4.67");
        assert_eq!(avg(8, 33), "4.13"); // 4.125 rounds up
        assert_eq!(avg(2, 9), "4.50");
        assert_eq!(avg(1, 5), "5.00");
    }

    #[test]
    fn cursors_read_back_what_they_wrote() {
        let id = "rev_0123456789abcdef0123456789abcdef";
        for sort in [ReviewSort::Newest, ReviewSort::Helpful] {
            let key = sort.cursor_key(7, 1_800_000_000_000, id);
            let helpful = if sort == ReviewSort::Helpful { 7 } else { 0 };
            assert_eq!(
                sort.parse_cursor(&key),
                Some((helpful, 1_800_000_000_000, id.to_owned()))
            );
        }
        assert_eq!(ReviewSort::Helpful.parse_cursor("x:1:rev_a"), None);
        assert_eq!(ReviewSort::Newest.parse_cursor("1:ord_a"), None);
    }

    proptest! {
        /// The average lies between the lowest and the highest rating and is the exact mean
        /// rounded to two places.
        #[test]
        fn the_average_is_the_rounded_mean(ratings in proptest::collection::vec(1u64..=5, 1..200)) {
            let count = ratings.len() as u64;
            let sum: u64 = ratings.iter().sum();
            let average = Rating::from_totals(count, sum).average.unwrap();
            let lo = Decimal::from(*ratings.iter().min().unwrap());
            let hi = Decimal::from(*ratings.iter().max().unwrap());
            prop_assert!(lo <= average && average <= hi);
            let exact = Decimal::from(sum) / Decimal::from(count);
            prop_assert!((exact - average).abs() <= Decimal::new(5, 3));
            prop_assert_eq!(average.scale(), 2);
        }
    }
}
