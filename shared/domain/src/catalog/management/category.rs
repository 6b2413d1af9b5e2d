//! The category tree as the merchant arranges it: categories are made, renamed and moved (each
//! change `category.created` or `category.updated`). A handle is unique among its siblings and a
//! move never makes a cycle: the database keeps both (schema/0031), so a move under the
//! category itself is refused here only because no read is needed to see it.

use serde::{Deserialize, Serialize};

use super::{handle_for, nullable, position, Handle};
use crate::events::{Event, Payload};
use crate::kernel::contact::{has_unsafe_characters, FieldIssue};
use crate::kernel::ids::{CategoryId, IdSource};
use crate::kernel::time::Timestamp;

/// A category's name: 1 to 100 characters of plain text, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CategoryName(String);

impl CategoryName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(text: &str) -> Result<Self, FieldIssue> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || has_unsafe_characters(text) {
            return Err(FieldIssue::new(
                "/name",
                "invalid_name",
                format!("name is 1 to {} characters of plain text", Self::MAX_CHARS),
            ));
        }
        Ok(CategoryName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRecord {
    pub id: CategoryId,
    pub parent_id: Option<CategoryId>,
    pub handle: Handle,
    pub name: CategoryName,
    pub position: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `category.created` and `category.updated` (renamed, moved or reordered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryChanged {
    pub category_id: CategoryId,
    pub parent_id: Option<CategoryId>,
    pub handle: Handle,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    pub name: String,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub position: Option<i64>,
}

/// A change to a category: `parent_id: null` makes it a root.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub parent_id: Option<Option<String>>,
    #[serde(default)]
    pub position: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryChange {
    pub category: CategoryRecord,
    pub event: Event,
}

fn parent(text: &str) -> Result<CategoryId, FieldIssue> {
    CategoryId::parse(text).map_err(|_| {
        FieldIssue::new(
            "/parent_id",
            "invalid_parent",
            "parent_id is a category's id (cat_…)",
        )
    })
}

fn changed(category: &CategoryRecord) -> CategoryChanged {
    CategoryChanged {
        category_id: category.id.clone(),
        parent_id: category.parent_id.clone(),
        handle: category.handle.clone(),
    }
}

/// A new category, its handle derived from its name when not given.
pub fn create(
    input: NewCategory,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<CategoryChange, FieldIssue> {
    let name = CategoryName::parse(&input.name)?;
    let handle = handle_for(input.handle.as_deref(), name.as_str(), "name")?;
    let category = CategoryRecord {
        id: CategoryId::mint(ids),
        parent_id: input.parent_id.as_deref().map(parent).transpose()?,
        handle,
        name,
        position: input.position.map(position).transpose()?.unwrap_or(0),
        created_at: now,
        updated_at: now,
    };
    let event = Event::new(ids, now, Payload::CategoryCreated(changed(&category)));
    Ok(CategoryChange { category, event })
}

impl CategoryRecord {
    /// This category with `patch` applied; `None` when nothing changes.
    pub fn revise(
        &self,
        patch: CategoryPatch,
        ids: &dyn IdSource,
        now: Timestamp,
    ) -> Result<Option<CategoryChange>, FieldIssue> {
        let mut next = self.clone();
        if let Some(name) = patch.name.as_deref() {
            next.name = CategoryName::parse(name)?;
        }
        if let Some(handle) = patch.handle.as_deref() {
            next.handle = Handle::parse(handle)?;
        }
        if let Some(parent_id) = patch.parent_id {
            next.parent_id = parent_id.as_deref().map(parent).transpose()?;
            if next.parent_id.as_ref() == Some(&self.id) {
                return Err(FieldIssue::new(
                    "/parent_id",
                    "category_cycle",
                    "a category cannot be its own parent",
                ));
            }
        }
        if let Some(n) = patch.position {
            next.position = position(n)?;
        }
        if next == *self {
            return Ok(None);
        }
        next.updated_at = now;
        let event = Event::new(ids, now, Payload::CategoryUpdated(changed(&next)));
        Ok(Some(CategoryChange {
            category: next,
            event,
        }))
    }
}
