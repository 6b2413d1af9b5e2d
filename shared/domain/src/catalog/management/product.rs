//! A product as the merchant manages it: made from a [`NewProduct`], changed by a
//! [`ProductPatch`] applied to what is stored, each change one event (`product.created`,
//! `product.updated`, `product.archived`) and one more `version` (its `ETag`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    handle_for, nullable, Attributes, Description, Handle, OptionNames, ProductStatus, SeoText,
    Tags, Title,
};
use crate::events::{Event, Payload};
use crate::kernel::contact::FieldIssue;
use crate::kernel::ids::{CategoryId, IdSource, ProductId};
use crate::kernel::time::Timestamp;

/// A product as stored (without its variants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub id: ProductId,
    pub title: Title,
    pub handle: Handle,
    pub description: Description,
    pub status: ProductStatus,
    pub category_id: Option<CategoryId>,
    pub tags: Tags,
    pub attributes: Attributes,
    pub options: OptionNames,
    pub seo_title: Option<SeoText>,
    pub seo_description: Option<SeoText>,
    /// One more with every saved change of the product or of its variants.
    pub version: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ProductRecord {
    /// The strong entity tag of this version.
    pub fn etag(&self) -> String {
        format!("\"{}.v{}\"", self.id.as_str(), self.version)
    }
}

/// `product.created`, `product.updated` and `product.archived`: the product as it now stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChanged {
    pub product_id: ProductId,
    pub handle: Handle,
    pub status: ProductStatus,
    pub version: u32,
}

/// A new product as the merchant writes it. Only `title` is required: the handle is derived from
/// it when absent, the status is `draft`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub title: String,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub category_id: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub options: Option<Vec<String>>,
    #[serde(default)]
    pub seo_title: Option<String>,
    #[serde(default)]
    pub seo_description: Option<String>,
}

/// A change to a product: each field present is set (`null` clears the optional ones); the
/// handle changes only when it is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub category_id: Option<Option<String>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub attributes: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub options: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub seo_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub seo_description: Option<Option<String>>,
}

/// A change decided: what to store, and the event that announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductChange {
    pub product: ProductRecord,
    pub event: Event,
}

pub fn category_id(text: &str) -> Result<CategoryId, FieldIssue> {
    CategoryId::parse(text).map_err(|_| {
        FieldIssue::new(
            "/category_id",
            "invalid_category_id",
            "category_id is a category's id (cat_…)",
        )
    })
}

fn seo(
    text: Option<&str>,
    parse: fn(&str) -> Result<SeoText, FieldIssue>,
) -> Result<Option<SeoText>, FieldIssue> {
    text.map(parse).transpose()
}

/// A new product, or the first field that is wrong.
pub fn create(
    input: NewProduct,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<ProductChange, FieldIssue> {
    let title = Title::parse(&input.title)?;
    let handle = handle_for(input.handle.as_deref(), title.as_str(), "title")?;
    let product = ProductRecord {
        id: ProductId::mint(ids),
        description: Description::parse(input.description.as_deref().unwrap_or_default())?,
        status: match input.status.as_deref() {
            Some(status) => ProductStatus::parse(status)?,
            None => ProductStatus::Draft,
        },
        category_id: input.category_id.as_deref().map(category_id).transpose()?,
        tags: Tags::parse(&input.tags.unwrap_or_default())?,
        attributes: Attributes::parse(input.attributes.unwrap_or_default())?,
        options: OptionNames::parse(input.options.unwrap_or_default())?,
        seo_title: seo(input.seo_title.as_deref(), SeoText::title)?,
        seo_description: seo(input.seo_description.as_deref(), SeoText::description)?,
        title,
        handle,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let event = Event::new(ids, now, Payload::ProductCreated(changed(&product)));
    Ok(ProductChange { product, event })
}

fn changed(product: &ProductRecord) -> ProductChanged {
    ProductChanged {
        product_id: product.id.clone(),
        handle: product.handle.clone(),
        status: product.status,
        version: product.version,
    }
}

impl ProductRecord {
    /// This product with `patch` applied, one version on; `None` when the patch changes nothing
    /// (nothing is written, no event). Archiving (a move to `archived`) is `product.archived`,
    /// every other change `product.updated`.
    pub fn revise(
        &self,
        patch: ProductPatch,
        ids: &dyn IdSource,
        now: Timestamp,
    ) -> Result<Option<ProductChange>, FieldIssue> {
        let mut next = self.clone();
        if let Some(title) = patch.title.as_deref() {
            next.title = Title::parse(title)?;
        }
        if let Some(handle) = patch.handle.as_deref() {
            next.handle = Handle::parse(handle)?;
        }
        if let Some(text) = patch.description.as_deref() {
            next.description = Description::parse(text)?;
        }
        if let Some(status) = patch.status.as_deref() {
            next.status = ProductStatus::parse(status)?;
        }
        if let Some(category) = patch.category_id {
            next.category_id = category.as_deref().map(category_id).transpose()?;
        }
        if let Some(tags) = patch.tags {
            next.tags = Tags::parse(&tags)?;
        }
        if let Some(attributes) = patch.attributes {
            next.attributes = Attributes::parse(attributes)?;
        }
        if let Some(options) = patch.options {
            next.options = OptionNames::parse(options)?;
        }
        if let Some(text) = patch.seo_title {
            next.seo_title = seo(text.as_deref(), SeoText::title)?;
        }
        if let Some(text) = patch.seo_description {
            next.seo_description = seo(text.as_deref(), SeoText::description)?;
        }
        if next == *self {
            return Ok(None);
        }
        next.version = self.version + 1;
        next.updated_at = now;
        let archived = next.status == ProductStatus::Archived && self.status != next.status;
        let payload = if archived {
            Payload::ProductArchived(changed(&next))
        } else {
            Payload::ProductUpdated(changed(&next))
        };
        Ok(Some(ProductChange {
            event: Event::new(ids, now, payload),
            product: next,
        }))
    }
}
