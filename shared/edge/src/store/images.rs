//! Product images in R2 (the `IMAGES` bucket): each object named by the SHA-256 of its bytes, so
//! the same picture stored twice is one object, and an object never changes under its name.

use std::ops::RangeInclusive;

use shop_domain::catalog::management::image::{ImageFacts, ImageHash};
use worker::{Bucket, HttpMetadata, Range};

pub const BUCKET: &str = "IMAGES";

/// How long a client or a CDN may keep an image: for ever (its name is its content).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn key(hash: &ImageHash) -> String {
    format!("images/{}", hash.as_str())
}

pub struct Images(Bucket);

/// An image as read: its type and bytes (all of them, or the range asked for), and its size.
pub struct StoredImage {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub size: u64,
}

impl Images {
    pub fn new(bucket: Bucket) -> Self {
        Images(bucket)
    }

    /// Store `bytes` (whose facts are `facts`) unless an object has their hash already.
    pub async fn put(&self, facts: &ImageFacts, bytes: &[u8]) -> worker::Result<()> {
        let key = key(&facts.hash);
        if self.0.head(key.clone()).await?.is_some() {
            return Ok(());
        }
        self.0
            .put(key, bytes.to_vec())
            .http_metadata(HttpMetadata {
                content_type: Some(facts.kind.content_type().to_owned()),
                cache_control: Some(IMMUTABLE.to_owned()),
                ..HttpMetadata::default()
            })
            .execute()
            .await?;
        Ok(())
    }

    /// The size of the image `hash`, if there is one.
    pub async fn size(&self, hash: &ImageHash) -> worker::Result<Option<u64>> {
        Ok(self.0.head(key(hash)).await?.map(|object| object.size()))
    }

    /// The image `hash` (or the bytes `range` of it), if there is one.
    pub async fn read(
        &self,
        hash: &ImageHash,
        range: Option<RangeInclusive<u64>>,
    ) -> worker::Result<Option<StoredImage>> {
        let mut get = self.0.get(key(hash));
        if let Some(range) = &range {
            get = get.range(Range::OffsetWithLength {
                offset: *range.start(),
                length: range.end() - range.start() + 1,
            });
        }
        let Some(object) = get.execute().await? else {
            return Ok(None);
        };
        let content_type = object
            .http_metadata()
            .content_type
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let size = object.size();
        let bytes = match object.body() {
            Some(body) => body.bytes().await?,
            None => Vec::new(),
        };
        Ok(Some(StoredImage {
            content_type,
            bytes,
            size,
        }))
    }
}
