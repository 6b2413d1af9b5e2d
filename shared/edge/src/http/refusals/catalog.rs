//! What catalog management answers for a change it refuses (nothing was written).

use shop_domain::catalog::management::image::{ImageRefusal, MAX_IMAGE_BYTES};
use shop_domain::catalog::management::Refusal;

use crate::http::problem::{FieldError, Problem};

impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(issue) => Problem::invalid_fields(vec![FieldError::new(
                issue.path,
                issue.code,
                issue.message,
            )]),
            Refusal::ProductNotFound => product_not_found(),
            Refusal::VariantNotFound => {
                Problem::not_found("variant_not_found", "This product has no variant with this SKU")
            }
            Refusal::CategoryNotFound => category_not_found(),
            Refusal::Stale { current: Some(etag) } => Problem::new(
                412,
                "precondition_failed",
                "Precondition failed",
                "The product changed since the ETag you sent; read it again and retry",
            )
            .with_header("ETag", etag),
            Refusal::Stale { current: None } => Problem::new(
                409,
                "concurrent_change",
                "Changed concurrently",
                "Another change to this product was saved first; read it again and retry",
            ),
            Refusal::ProductArchived => Problem::new(
                409,
                "product_archived",
                "Product is archived",
                "Variants are not added to an archived product; set its status first",
            ),
            Refusal::HandleTaken => taken(
                "/handle",
                "handle_taken",
                "Another product has this handle",
            ),
            Refusal::CategoryHandleTaken => taken(
                "/handle",
                "handle_taken",
                "Another category under the same parent has this handle",
            ),
            Refusal::SkuTaken => taken("/sku", "sku_taken", "Another variant has this SKU"),
            Refusal::CombinationTaken => taken(
                "/options",
                "combination_taken",
                "Another active variant of this product has these option values",
            ),
            Refusal::UnknownCategory { pointer } => Problem::invalid_field(
                pointer,
                "unknown_category",
                "No category has this id",
            ),
            Refusal::CategoryCycle => Problem::new(
                409,
                "category_cycle",
                "Would make a cycle",
                "A category cannot move under itself or under one of its own descendants",
            ),
            Refusal::Image(ImageRefusal::UnsupportedType) => Problem::new(
                415,
                "unsupported_image_type",
                "Unsupported image type",
                "An image is a JPEG, PNG, WebP, AVIF or GIF, as its own bytes say (whatever its name or Content-Type)",
            ),
            Refusal::Image(ImageRefusal::Unreadable) => Problem::new(
                422,
                "unreadable_image",
                "Unreadable image",
                "The image's header does not give its width and height",
            ),
            Refusal::Image(ImageRefusal::TooLarge) => crate::http::body::too_large(MAX_IMAGE_BYTES),
            Refusal::CollectionNotFound => {
                Problem::not_found("collection_not_found", "No collection with this id")
            }
            Refusal::CollectionHandleTaken => taken(
                "/handle",
                "handle_taken",
                "Another collection has this handle",
            ),
            Refusal::UnknownProduct => Problem::invalid_field(
                "/product_ids",
                "unknown_product",
                "A product in the list does not exist",
            ),
            Refusal::OptionsInUse => Problem::new(
                409,
                "options_in_use",
                "Options in use",
                "A product's options cannot change while it has active variants; archive them first",
            ),
        }
    }
}

/// 409: a unique name or combination is someone else's.
fn taken(pointer: &str, code: &'static str, detail: &str) -> Problem {
    Problem::new(409, code, "Already taken", detail)
        .with_errors(vec![FieldError::new(pointer, code, detail)])
}

/// 404: no product has this id.
pub fn product_not_found() -> Problem {
    Problem::not_found("product_not_found", "No product with this id")
}

/// 404: no category has this id.
pub fn category_not_found() -> Problem {
    Problem::not_found("category_not_found", "No category with this id")
}

/// 404: no image has this hash.
pub fn image_not_found() -> Problem {
    Problem::not_found("image_not_found", "No image with this hash")
}
