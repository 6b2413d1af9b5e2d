//! Collections: manual, ordered lists of products (featured, sale). A collection is made with a
//! title (its handle derived when not given) and its products are set as a whole, in order.

use serde::{Deserialize, Serialize};

use super::{handle_for, Handle, Title};
use crate::kernel::contact::FieldIssue;
use crate::kernel::ids::{IdSource, ProductId};
use crate::kernel::time::Timestamp;

/// The most products one collection holds.
pub const MAX_PRODUCTS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRecord {
    pub id: String,
    pub handle: Handle,
    pub title: Title,
    /// Its products, in order.
    pub product_ids: Vec<ProductId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    pub title: String,
    #[serde(default)]
    pub handle: Option<String>,
}

/// A new, empty collection.
pub fn create(
    input: NewCollection,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<CollectionRecord, FieldIssue> {
    let title = Title::parse(&input.title)?;
    let handle = handle_for(input.handle.as_deref(), title.as_str(), "title")?;
    Ok(CollectionRecord {
        id: format!("col_{:032x}", ids.next_u128()),
        handle,
        title,
        product_ids: Vec::new(),
        created_at: now,
        updated_at: now,
    })
}

/// A collection's products as given: product ids, each once, at most [`MAX_PRODUCTS`], in order.
pub fn products(ids: &[String]) -> Result<Vec<ProductId>, FieldIssue> {
    if ids.len() > MAX_PRODUCTS {
        return Err(FieldIssue::new(
            "/product_ids",
            "too_many_products",
            format!("a collection holds at most {MAX_PRODUCTS} products"),
        ));
    }
    let mut out: Vec<ProductId> = Vec::with_capacity(ids.len());
    for (i, text) in ids.iter().enumerate() {
        let id = ProductId::parse(text).map_err(|_| {
            FieldIssue::new(
                format!("/product_ids/{i}"),
                "invalid_product_id",
                "a product's id (prod_…)",
            )
        })?;
        if out.contains(&id) {
            return Err(FieldIssue::new(
                format!("/product_ids/{i}"),
                "duplicate_product",
                "a product is in a collection once",
            ));
        }
        out.push(id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SequentialIds;

    #[test]
    fn a_collection_derives_its_handle_and_lists_each_product_once() {
        let made = create(
            NewCollection {
                title: "Summer Sale".into(),
                handle: None,
            },
            &SequentialIds::default(),
            Timestamp::from_millis(0),
        )
        .unwrap();
        assert_eq!(made.handle.as_str(), "summer-sale");
        assert!(made.id.starts_with("col_"));
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(products(&ids(&["prod_a", "prod_b"])).unwrap().len(), 2);
        assert_eq!(
            products(&ids(&["prod_a", "prod_a"])).unwrap_err().code,
            "duplicate_product"
        );
        assert_eq!(
            products(&ids(&["nope"])).unwrap_err().path,
            "/product_ids/0"
        );
        assert_eq!(
            products(&vec!["prod_x".to_owned(); 501]).unwrap_err().code,
            "too_many_products"
        );
    }
}
