//! Product images: an upload is taken for what its bytes are, never for what its header says.
//! Its type comes from the magic bytes (JPEG, PNG, WebP, AVIF, GIF; anything else is refused),
//! its width and height from the image's own header (the `imagesize` crate), and it is stored
//! under the SHA-256 of its bytes, so the same picture uploaded twice is one object. Attaching
//! one to a product is a change of the product (`product.updated`, one version on).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::product::{ProductChanged, ProductRecord};
use super::variant::VariantRecord;
use super::{position, Refusal};
use crate::events::{Event, Payload};
use crate::kernel::contact::{has_unsafe_characters, FieldIssue};
use crate::kernel::ids::{IdSource, Sku};
use crate::kernel::time::Timestamp;

/// The largest image accepted, in bytes (10 MiB).
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// The longest alt text, in characters.
pub const MAX_ALT_CHARS: usize = 250;

/// The image types a product may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageKind {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "image/avif")]
    Avif,
    #[serde(rename = "image/gif")]
    Gif,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Webp => "image/webp",
            ImageKind::Avif => "image/avif",
            ImageKind::Gif => "image/gif",
        }
    }
}

/// The SHA-256 of an image's bytes, as 64 lowercase hex digits: its name in the bucket and in
/// its URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageHash(String);

impl ImageHash {
    pub fn of(bytes: &[u8]) -> Self {
        ImageHash(hex::encode(Sha256::digest(bytes)))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ImageHash(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its strong entity tag: the bytes never change under a hash.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// Where it is served.
    pub fn url(&self) -> String {
        format!("/v1/images/{}", self.0)
    }
}

impl TryFrom<String> for ImageHash {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        ImageHash::parse(&text).ok_or_else(|| "not an image hash".to_owned())
    }
}

impl From<ImageHash> for String {
    fn from(hash: ImageHash) -> String {
        hash.0
    }
}

/// What an upload's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub hash: ImageHash,
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// Why an upload is not an image a product may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRefusal {
    /// Not one of the accepted types by its magic bytes (whatever its Content-Type said).
    UnsupportedType,
    /// An accepted type whose header does not give a width and a height.
    Unreadable,
    /// More than [`MAX_IMAGE_BYTES`].
    TooLarge,
}

/// Read what `bytes` are: their type from the magic bytes, their size from the header.
pub fn inspect(bytes: &[u8]) -> Result<ImageFacts, ImageRefusal> {
    use imagesize::{Compression, ImageType};
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageRefusal::TooLarge);
    }
    let kind = match imagesize::image_type(bytes) {
        Ok(ImageType::Jpeg) => ImageKind::Jpeg,
        Ok(ImageType::Png) => ImageKind::Png,
        Ok(ImageType::Webp) => ImageKind::Webp,
        Ok(ImageType::Gif) => ImageKind::Gif,
        Ok(ImageType::Heif(Compression::Av1)) => ImageKind::Avif,
        _ => return Err(ImageRefusal::UnsupportedType),
    };
    let size = imagesize::blob_size(bytes).map_err(|_| ImageRefusal::Unreadable)?;
    let (Ok(width), Ok(height)) = (u32::try_from(size.width), u32::try_from(size.height)) else {
        return Err(ImageRefusal::Unreadable);
    };
    if width == 0 || height == 0 {
        return Err(ImageRefusal::Unreadable);
    }
    Ok(ImageFacts {
        hash: ImageHash::of(bytes),
        kind,
        width,
        height,
        bytes: bytes.len() as u64,
    })
}

/// An image as a product shows it, in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductImage {
    pub id: String,
    pub hash: ImageHash,
    pub url: String,
    pub content_type: ImageKind,
    pub width: u32,
    pub height: u32,
    pub alt: String,
    pub position: u32,
    /// The variant it shows, when it shows one.
    pub sku: Option<Sku>,
}

/// Where an upload goes on its product, as the query of the upload gives it.
#[derive(Debug, Clone, Default)]
pub struct Placement<'a> {
    pub alt: Option<&'a str>,
    pub position: Option<&'a str>,
    pub sku: Option<&'a str>,
}

/// An image attached: the row to store, the product's next version, the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    pub image: ProductImage,
    pub bytes: u64,
    pub product_version: u32,
    pub event: Event,
}

/// `facts` attached to `product` as `placement` says, or why not.
pub fn attach(
    product: &ProductRecord,
    variants: &[VariantRecord],
    facts: &ImageFacts,
    placement: &Placement<'_>,
    ids: &dyn IdSource,
    now: Timestamp,
) -> Result<ImageChange, Refusal> {
    let alt = placement.alt.unwrap_or_default().trim();
    if alt.chars().count() > MAX_ALT_CHARS || has_unsafe_characters(alt) {
        return Err(FieldIssue::new(
            "/query/alt",
            "invalid_alt",
            format!("alt is plain text of at most {MAX_ALT_CHARS} characters"),
        )
        .into());
    }
    let position = match placement.position {
        Some(text) => position(text.parse().unwrap_or(-1)).map_err(|_| {
            FieldIssue::new(
                "/query/position",
                "invalid_position",
                "position is a whole number from 0 to 10000",
            )
        })?,
        None => 0,
    };
    let sku = match placement.sku {
        Some(text) => Some(
            variants
                .iter()
                .map(|v| &v.sku)
                .find(|sku| sku.as_str() == text)
                .cloned()
                .ok_or_else(|| {
                    FieldIssue::new(
                        "/query/sku",
                        "unknown_variant",
                        "sku names none of this product's variants",
                    )
                })?,
        ),
        None => None,
    };
    let image = ProductImage {
        id: format!("img_{:032x}", ids.next_u128()),
        url: facts.hash.url(),
        hash: facts.hash.clone(),
        content_type: facts.kind,
        width: facts.width,
        height: facts.height,
        alt: alt.to_owned(),
        position,
        sku,
    };
    let version = product.version + 1;
    let event = Event::new(
        ids,
        now,
        Payload::ProductUpdated(ProductChanged {
            product_id: product.id.clone(),
            handle: product.handle.clone(),
            status: product.status,
            version,
        }),
    );
    Ok(ImageChange {
        image,
        bytes: facts.bytes,
        product_version: version,
        event,
    })
}
