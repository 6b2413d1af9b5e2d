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
//! - [`Description`]: plain text (never HTML: shown as text, line breaks kept), at most
//!   [`Description::MAX_CHARS`].
//! - [`Attributes`]: a small map of named facts (`material`, `brand`), each a short text.
//! - [`OptionNames`]: the options a product's variants differ by (`size`, `color`), in order.
//! - [`SeoText`]: a search-engine title or description.
//!
//! [`product`], [`variant`] and [`category`] decide the changes made of these words, and name
//! their events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

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

    /// The handle a title makes: full-width Latin letters and digits (what CJK input methods
    /// type) read as the ASCII they stand for, canonically decomposed (Unicode NFD: the canonical
    /// tables only, which cost a third of what the compatibility ones would in every worker that
    /// derives handles), accents dropped, lowercased, the few Latin letters that do not
    /// decompose spelled out (ß → ss, æ → ae, ø → o, œ → oe, đ → d, ł → l, þ → th), every other
    /// character a word break; cut at a word break to [`Handle::MAX_CHARS`]. `None` when
    /// nothing is left.
    pub fn derive(title: &str) -> Option<Self> {
        let mut words: Vec<String> = Vec::new();
        let mut word = String::new();
        let mut letters = Vec::with_capacity(title.len());
        for c in title.chars().map(halfwidth) {
            decompose_canonical(c, |d| {
                if !is_combining_mark(d) {
                    letters.push(d);
                }
            });
        }
        for c in letters {
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

/// A full-width form (U+FF01 to U+FF5E) as the ASCII character it stands for; any other
/// character as it is.
fn halfwidth(c: char) -> char {
    match u32::from(c) {
        code @ 0xFF01..=0xFF5E => char::from_u32(code - 0xFEE0).unwrap_or(c),
        _ => c,
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

/// A product's description: plain text, trimmed, line breaks and tabs kept, no other control or
/// direction-changing characters. It is never HTML: a page shows it as text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 5000;

    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        let text = text.trim();
        let plain = text
            .split(['\n', '\t', '\r'])
            .all(|part| !has_unsafe_characters(part));
        if text.chars().count() > Self::MAX_CHARS || !plain {
            return Err(FieldIssue::new(
                "/description",
                "invalid_description",
                format!(
                    "description is plain text of at most {} characters",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Description(text.replace("\r\n", "\n")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Description {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Description::parse(&text).map_err(|issue| issue.message)
    }
}

impl From<Description> for String {
    fn from(text: Description) -> String {
        text.0
    }
}

/// Is `name` a key of the catalog's small vocabularies (an attribute or option name): 1 to 30 of
/// `a-z`, `0-9` and `_`, starting with a letter?
fn is_key(name: &str) -> bool {
    (1..=30).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A short text value (an attribute's or an option's): 1 to 100 characters of plain text.
fn is_short_text(value: &str) -> bool {
    let chars = value.chars().count();
    (1..=100).contains(&chars) && value.trim() == value && !has_unsafe_characters(value)
}

/// A product's attributes: at most [`Attributes::MAX`] names (`material`, `brand`: see
/// `is_key`), each with a short text value. Searched with the product's text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    pub const MAX: usize = 20;

    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, FieldIssue> {
        if map.len() > Self::MAX {
            return Err(FieldIssue::new(
                "/attributes",
                "invalid_attributes",
                format!("a product has at most {} attributes", Self::MAX),
            ));
        }
        for (name, value) in &map {
            if !is_key(name) || !is_short_text(value) {
                return Err(FieldIssue::new(
                    format!("/attributes/{name}"),
                    "invalid_attribute",
                    "an attribute's name is 1 to 30 of a-z, 0-9 and _ (starting with a letter), \
                     its value 1 to 100 characters of plain text",
                ));
            }
        }
        Ok(Attributes(map))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl TryFrom<BTreeMap<String, String>> for Attributes {
    type Error = String;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, String> {
        Attributes::parse(map).map_err(|issue| issue.message)
    }
}

impl From<Attributes> for BTreeMap<String, String> {
    fn from(attributes: Attributes) -> Self {
        attributes.0
    }
}

/// The options a product's variants differ by, in the merchant's order: at most
/// [`OptionNames::MAX`] distinct names (see `is_key`). Each variant names one value per option.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct OptionNames(Vec<String>);

impl OptionNames {
    pub const MAX: usize = 3;

    pub fn parse(names: Vec<String>) -> Result<Self, FieldIssue> {
        let issue = || {
            FieldIssue::new(
                "/options",
                "invalid_options",
                format!(
                    "options lists at most {} distinct names, each 1 to 30 of a-z, 0-9 and _ \
                     starting with a letter",
                    Self::MAX
                ),
            )
        };
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        if names.len() > Self::MAX || distinct.len() != names.len() {
            return Err(issue());
        }
        if names.iter().all(|n| is_key(n)) {
            Ok(OptionNames(names))
        } else {
            Err(issue())
        }
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// `values` as a variant of this product: exactly one short text value per option.
    pub fn values(&self, values: BTreeMap<String, String>) -> Result<OptionValues, FieldIssue> {
        let named = values.len() == self.0.len() && self.0.iter().all(|n| values.contains_key(n));
        if !named {
            return Err(FieldIssue::new(
                "/options",
                "options_mismatch",
                format!(
                    "a variant of this product names one value for each of its options: {}",
                    if self.0.is_empty() {
                        "it has none".to_owned()
                    } else {
                        self.0.join(", ")
                    }
                ),
            ));
        }
        if let Some((name, _)) = values.iter().find(|(_, v)| !is_short_text(v)) {
            return Err(FieldIssue::new(
                format!("/options/{name}"),
                "invalid_option_value",
                "an option's value is 1 to 100 characters of plain text",
            ));
        }
        Ok(OptionValues(values))
    }
}

impl TryFrom<Vec<String>> for OptionNames {
    type Error = String;
    fn try_from(names: Vec<String>) -> Result<Self, String> {
        OptionNames::parse(names).map_err(|issue| issue.message)
    }
}

impl From<OptionNames> for Vec<String> {
    fn from(names: OptionNames) -> Self {
        names.0
    }
}

/// A variant's option values, one per option of its product (made by [`OptionNames::values`];
/// kept sorted by name, so equal combinations are equal text in the store).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OptionValues(BTreeMap<String, String>);

impl OptionValues {
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// A search-engine title (at most 120 characters) or description (at most 320): plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeoText(String);

impl SeoText {
    pub const MAX_TITLE_CHARS: usize = 120;
    pub const MAX_DESCRIPTION_CHARS: usize = 320;

    pub fn title(text: &str) -> Result<Self, FieldIssue> {
        Self::parse(text, "/seo_title", Self::MAX_TITLE_CHARS)
    }

    pub fn description(text: &str) -> Result<Self, FieldIssue> {
        Self::parse(text, "/seo_description", Self::MAX_DESCRIPTION_CHARS)
    }

    fn parse(text: &str, path: &'static str, max: usize) -> Result<Self, FieldIssue> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > max || has_unsafe_characters(text) {
            return Err(FieldIssue::new(
                path,
                "invalid_seo_text",
                format!("{} is 1 to {max} characters of plain text", &path[1..]),
            ));
        }
        Ok(SeoText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The handle given, or the one `name` makes (see [`Handle::derive`]); `what` names the field
/// it was made from in the refusal (`title`, `name`).
fn handle_for(given: Option<&str>, name: &str, what: &str) -> Result<Handle, FieldIssue> {
    match given {
        Some(handle) => Handle::parse(handle),
        None => Handle::derive(name).ok_or_else(|| {
            FieldIssue::new(
                "/handle",
                "handle_required",
                format!("the {what} has no letter or digit a handle can be made of: give a handle"),
            )
        }),
    }
}

/// The last position a variant (among its product's) or a category (among its siblings) may take.
pub const MAX_POSITION: i64 = 10_000;

/// A position as given: a whole number from 0 to [`MAX_POSITION`].
fn position(n: i64) -> Result<u32, FieldIssue> {
    u32::try_from(n)
        .ok()
        .filter(|p| i64::from(*p) <= MAX_POSITION)
        .ok_or_else(|| {
            FieldIssue::new(
                "/position",
                "invalid_position",
                format!("position is a whole number from 0 to {MAX_POSITION}"),
            )
        })
}

/// A field of a change that may be set, cleared with `null`, or left out: `#[serde(default,
/// deserialize_with = "nullable")]` on an `Option<Option<T>>` tells `null` (`Some(None)`) from
/// absent (`None`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Why a catalog change is refused: by the domain before anything is written (`Invalid`,
/// `ProductArchived`, `*NotFound` from the read), or by a guard of the database inside the
/// change's batch (the rest), whatever ran concurrently. Nothing is written in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Invalid(FieldIssue),
    ProductNotFound,
    VariantNotFound,
    CategoryNotFound,
    /// The product changed since the version the request was made against: `current` is its
    /// entity tag now (absent when the request named none and another change won the race).
    Stale {
        current: Option<String>,
    },
    /// Variants are not added to an archived product.
    ProductArchived,
    /// Another product has this handle.
    HandleTaken,
    /// A sibling category has this handle.
    CategoryHandleTaken,
    /// Another variant (of any product) has this SKU.
    SkuTaken,
    /// Another active variant of the product has these option values.
    CombinationTaken,
    /// No category has the id given as the product's category or the category's parent.
    UnknownCategory {
        pointer: &'static str,
    },
    /// The move would put the category under itself.
    CategoryCycle,
    /// The product's options cannot change while it has active variants.
    OptionsInUse,
    /// An upload that is not an image a product may show.
    Image(image::ImageRefusal),
    CollectionNotFound,
    /// Another collection has this handle.
    CollectionHandleTaken,
    /// A product a collection was given does not exist.
    UnknownProduct,
}

impl From<image::ImageRefusal> for Refusal {
    fn from(refusal: image::ImageRefusal) -> Self {
        Refusal::Image(refusal)
    }
}

impl From<FieldIssue> for Refusal {
    fn from(issue: FieldIssue) -> Self {
        Refusal::Invalid(issue)
    }
}

pub mod category;
pub mod collection;
pub mod image;
pub mod product;
pub mod variant;

#[cfg(test)]
mod tests;
