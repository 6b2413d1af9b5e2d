//! `GET /v1/images/{hash}`: a product image from the bucket, with its type, a strong `ETag` (its
//! hash: the bytes never change under it), cached for a year as immutable; 304 when the client
//! has it (`If-None-Match`, answered without reading the bucket), 206 for one byte range (416
//! when the range lies outside the image; a header that is not one range is ignored, as
//! RFC 9110 allows).

use http_range_header::{parse_range_header_with_max_ranges, RangeUnsatisfiableError};
use shop_domain::catalog::management::image::ImageHash;
use shop_edge::http::refusals::catalog::image_not_found;
use shop_edge::store::images::IMMUTABLE;
use shop_edge::{Call, Problem, Reply};

use crate::Endpoint;

pub async fn get(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    call.only_query_params(&[])?;
    let hash = call.path_param(0, |h| ImageHash::parse(h).ok_or(()), image_not_found)?;
    let etag = hash.etag();
    let cached = |reply: Reply| {
        reply
            .header("ETag", etag.clone())
            .header("Cache-Control", IMMUTABLE)
            .header("Accept-Ranges", "bytes")
    };
    let known = call.header("If-None-Match").is_some_and(|tags| {
        tags.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
    });
    if known {
        return Ok(cached(Reply::raw(304, "", String::new())));
    }
    let images = call.images()?;
    let fault = |e: worker::Error| call.internal("read image", &e);
    let range = match call
        .header("Range")
        .map(|h| parse_range_header_with_max_ranges(&h, std::num::NonZeroUsize::MIN))
    {
        Some(Ok(ranges)) => {
            let size = images
                .size(&hash)
                .await
                .map_err(fault)?
                .ok_or_else(image_not_found)?;
            match ranges.validate(size) {
                Ok(valid) => valid.into_iter().next().map(|r| (r, size)),
                Err(RangeUnsatisfiableError::Unsatisfiable) => {
                    return Err(Problem::new(
                        416,
                        "range_not_satisfiable",
                        "Range not satisfiable",
                        format!("The image has {size} bytes"),
                    )
                    .with_header("Content-Range", format!("bytes */{size}")));
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    let image = images
        .read(&hash, range.as_ref().map(|(r, _)| r.clone()))
        .await
        .map_err(fault)?
        .ok_or_else(image_not_found)?;
    let reply = match range {
        Some((r, size)) => Reply::binary(206, &image.content_type, image.bytes).header(
            "Content-Range",
            format!("bytes {}-{}/{size}", r.start(), r.end()),
        ),
        None => Reply::binary(200, &image.content_type, image.bytes),
    };
    Ok(cached(reply))
}
