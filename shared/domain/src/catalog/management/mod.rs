//! Catalog management's words: what a merchant may write about a product, each parsed once into
//! a type that cannot hold a bad value (issue 21's first slice; the routes, the store and the
//! search index build on these).
//!
//! - [`Title`]: 1 to [`Title::MAX_CHARS`] characters of plain text.
//! - [`Handle`]: the product's URL name, `[a-z0-9]` words joined by single hyphens, at most
//!   [`Handle::MAX_CHARS`]; [`Handle::derive`] makes one from a title (accents and case folded,
//!   other characters as separators), and answers `None` when the title has no Latin letter or
//!   digit to make it of (the merchant then names the handle).
//! - [`ProductStatus`]: `draft`, `active`, `archived`; only an active product is shown to
//!   shoppers, and a product is archived, never deleted.
//! - [`Tags`]: at most [`Tags::MAX`] tags of 1 to [`Tags::MAX_CHARS`] characters, the first
//!   spelling of each kept (tags differing only in case are one tag).
//! - [`Gtin`]: a barcode (GTIN-8, -12, -13 or -14) whose check digit holds.

use serde::{Deserialize, Serialize};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::kernel::contact::{has_unsafe_characters, FieldIssue};

/// A product's title, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(FieldIssue::new(
                "/title",
                "invalid_title",
                format!("title has 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if has_unsafe_characters(text) {
            return Err(FieldIssue::new(
                "/title",
                "invalid_title",
                "title is plain text (no control or direction-changing characters)",
            ));
        }
        Ok(Title(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Title {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Title::parse(&text).map_err(|issue| issue.message)
    }
}

impl From<Title> for String {
    fn from(title: Title) -> String {
        title.0
    }
}

/// A product's URL name: lowercase ASCII letters and digits in words joined by single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    pub const MAX_CHARS: usize = 100;

    /// A handle as a merchant wrote it: taken only if it is already one (never rewritten).
    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_CHARS
            && text.split('-').all(|word| {
                !word.is_empty() && word.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
            });
        if valid {
            Ok(Handle(text.to_owned()))
        } else {
            Err(FieldIssue::new(
                "/handle",
                "invalid_handle",
                format!(
                    "handle is 1 to {} of a-z and 0-9, in words joined by single hyphens",
                    Self::MAX_CHARS
                ),
            ))
        }
    }

    /// The handle a title makes: compatibility-decomposed (Unicode NFKD), accents dropped,
    /// lowercased, the few Latin letters that do not decompose spelled out (ß → ss, æ → ae,
    /// ø → o, œ → oe, đ → d, ł → l, þ → th), every other character a word break; cut at a word
    /// break to [`Handle::MAX_CHARS`]. `None` when nothing is left.
    pub fn derive(title: &str) -> Option<Self> {
        let mut words: Vec<String> = Vec::new();
        let mut word = String::new();
        for c in title.nfkd().filter(|c| !is_combining_mark(*c)) {
            for c in c.to_lowercase() {
                match c {
                    'a'..='z' | '0'..='9' => word.push(c),
                    _ => match spelled_out(c) {
                        Some(letters) => word.push_str(letters),
                        None if !word.is_empty() => words.push(std::mem::take(&mut word)),
                        None => {}
                    },
                }
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        let mut handle = String::new();
        for word in words {
            let extra = usize::from(!handle.is_empty()) + word.len();
            if handle.len() + extra > Self::MAX_CHARS {
                if handle.is_empty() {
                    // One word longer than a handle: its first MAX_CHARS letters.
                    handle = word.chars().take(Self::MAX_CHARS).collect();
                }
                break;
            }
            if !handle.is_empty() {
                handle.push('-');
            }
            handle.push_str(&word);
        }
        (!handle.is_empty()).then_some(Handle(handle))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The lowercase Latin letters that have no decomposition, as the letters they are written with.
fn spelled_out(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'ø' => "o",
        'œ' => "oe",
        'đ' | 'ð' => "d",
        'ł' => "l",
        'þ' => "th",
        'ı' => "i",
        _ => return None,
    })
}

impl TryFrom<String> for Handle {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Handle::parse(&text).map_err(|issue| issue.message)
    }
}

impl From<Handle> for String {
    fn from(handle: Handle) -> String {
        handle.0
    }
}

/// Where a product stands: only an `active` product is shown to shoppers; a product is
/// `archived`, never deleted, once it exists (an order line may name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub const ALL: [ProductStatus; 3] = [
        ProductStatus::Draft,
        ProductStatus::Active,
        ProductStatus::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                FieldIssue::new(
                    "/status",
                    "invalid_status",
                    "status is draft, active or archived",
                )
            })
    }

    /// Shown to shoppers (product reads, search): active products only.
    pub fn is_visible(self) -> bool {
        self == ProductStatus::Active
    }
}

/// A product's tags, in the order given, trimmed, each once (compared without case).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Tags(Vec<String>);

impl Tags {
    pub const MAX: usize = 20;
    pub const MAX_CHARS: usize = 50;

    pub fn parse(tags: &[String]) -> Result<Self, FieldIssue> {
        if tags.len() > Self::MAX {
            return Err(FieldIssue::new(
                "/tags",
                "too_many_tags",
                format!("a product has at most {} tags", Self::MAX),
            ));
        }
        let mut kept: Vec<String> = Vec::with_capacity(tags.len());
        let mut seen = std::collections::HashSet::with_capacity(tags.len());
        for (i, tag) in tags.iter().enumerate() {
            let tag = tag.trim();
            let chars = tag.chars().count();
            if chars == 0 || chars > Self::MAX_CHARS || has_unsafe_characters(tag) {
                return Err(FieldIssue::new(
                    format!("/tags/{i}"),
                    "invalid_tag",
                    format!("a tag is 1 to {} characters of plain text", Self::MAX_CHARS),
                ));
            }
            if seen.insert(tag.to_lowercase()) {
                kept.push(tag.to_owned());
            }
        }
        Ok(Tags(kept))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for Tags {
    type Error = String;
    fn try_from(tags: Vec<String>) -> Result<Self, String> {
        Tags::parse(&tags).map_err(|issue| issue.message)
    }
}

impl From<Tags> for Vec<String> {
    fn from(tags: Tags) -> Vec<String> {
        tags.0
    }
}

/// A Global Trade Item Number (EAN/UPC barcode): 8, 12, 13 or 14 digits, the last the check
/// digit of the others (weights 3 and 1 alternating from the right).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Gtin(String);

impl Gtin {
    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        let issue = |message: &str| FieldIssue::new("/barcode", "invalid_barcode", message);
        if !matches!(text.len(), 8 | 12 | 13 | 14) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(issue("barcode is a GTIN: 8, 12, 13 or 14 digits"));
        }
        let (body, check) = text.split_at(text.len() - 1);
        if check_digit(body) != check.bytes().next().map(|b| b - b'0') {
            return Err(issue(
                "barcode's check digit does not match its other digits",
            ));
        }
        Ok(Gtin(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The GTIN check digit of `digits` (all but the last digit of a GTIN); `None` if one is not a
/// digit.
pub fn check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let d = u32::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

impl TryFrom<String> for Gtin {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Gtin::parse(&text).map_err(|issue| issue.message)
    }
}

impl From<Gtin> for String {
    fn from(gtin: Gtin) -> String {
        gtin.0
    }
}

#[cfg(test)]
mod tests;
