//! Request bodies: media type, size limit, and strict JSON parsing into typed requests, with
//! errors that point at the offending member (RFC 6901 JSON Pointer).

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::http::problem::{FieldError, Problem};

/// Default body limit; configurable with `BODY_LIMIT_BYTES`.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// Is this `Content-Type` JSON (`application/json`, any parameters)?
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

pub fn too_large(limit: usize) -> Problem {
    Problem::new(
        413,
        "body_too_large",
        "Request body too large",
        format!("Request bodies are limited to {limit} bytes"),
    )
}

pub fn unsupported_media_type() -> Problem {
    Problem::new(
        415,
        "unsupported_media_type",
        "Unsupported media type",
        "Send the body as application/json",
    )
    .with_header("Accept-Post", "application/json")
}

/// Check the declared length before reading anything.
pub fn check_declared_length(content_length: Option<&str>, limit: usize) -> Result<(), Problem> {
    match content_length.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) if n > limit as u64 => Err(too_large(limit)),
        Some(Err(_)) => Err(Problem::new(
            400,
            "bad_content_length",
            "Bad request",
            "Content-Length is not a number",
        )),
        _ => Ok(()),
    }
}

/// Parse `bytes` as `T`: media type first (415), then size (413), then syntax (400), then
/// shape and types (422 with a pointer to each bad member).
pub fn parse_json<T: DeserializeOwned>(
    content_type: Option<&str>,
    bytes: &[u8],
    limit: usize,
) -> Result<T, Problem> {
    if !is_json(content_type) {
        return Err(unsupported_media_type());
    }
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    // Syntax first (400), then duplicate keys and shape (422). Serde would read a struct from a
    // JSON array too; a request body is always an object.
    let document = strict_document(bytes)?;
    if !document.is_object() {
        return Err(Problem::invalid_field(
            "",
            "invalid_value",
            "The body must be a JSON object",
        ));
    }
    let value: T = serde_path_to_error::deserialize(document).map_err(|e| {
        let pointer = pointer_of(e.path());
        let inner = e.into_inner();
        classify(&inner, pointer)
    })?;
    Ok(value)
}

/// Read `bytes` as one JSON document, refusing an object that names a member twice (serde_json
/// would silently keep the last one, so two readers of the same body could disagree).
fn strict_document(bytes: &[u8]) -> Result<serde_json::Value, Problem> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let document = serde_path_to_error::deserialize::<_, Strict>(&mut reader).map_err(|e| {
        let pointer = pointer_of(e.path());
        let inner = e.into_inner();
        let message = strip_position(&inner.to_string());
        match message.strip_prefix(DUPLICATE) {
            Some(key) => Problem::invalid_field(
                &format!("{pointer}/{}", escape(key)),
                "duplicate_key",
                format!("The member {key:?} appears more than once"),
            ),
            None => classify(&inner, pointer),
        }
    })?;
    reader.end().map_err(|e| classify(&e, String::new()))?;
    Ok(document.0)
}

const DUPLICATE: &str = "duplicate key ";

/// A JSON value whose objects have unique keys.
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    /// A number with no fractional part is an integer, as JSON Schema counts it (`1.0` is a
    /// valid `"type": "integer"`), so a client that writes whole numbers as floats is understood
    /// (within the range a float holds exactly).
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if v.fract() == 0.0 && v.abs() <= EXACT {
            return Ok((v as i64).into());
        }
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

fn classify(error: &serde_json::Error, pointer: String) -> Problem {
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => Problem::new(
            400,
            "malformed_json",
            "Malformed JSON",
            format!(
                "The body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        ),
        Category::Data => {
            let message = strip_position(&error.to_string());
            let member = |field: &str| {
                let leaf = format!("/{}", escape(field));
                if pointer.ends_with(&leaf) {
                    pointer.clone()
                } else {
                    format!("{pointer}{leaf}")
                }
            };
            let (pointer, code) = match quoted_field(&message) {
                Some(field) if message.starts_with("unknown field") => {
                    (member(field), "unknown_field")
                }
                Some(field) if message.starts_with("missing field") => {
                    (member(field), "missing_field")
                }
                _ => (pointer.clone(), "invalid_value"),
            };
            Problem::new(
                422,
                "validation_failed",
                "Request is not valid",
                message.clone(),
            )
            .with_errors(vec![FieldError::new(pointer, code, message)])
        }
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => pointer.push_str(&format!("/{}", escape(key))),
            Segment::Enum { variant } => pointer.push_str(&format!("/{}", escape(variant))),
            Segment::Unknown => {}
        }
    }
    pointer
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// serde_json appends " at line L column C"; clients get the pointer instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

fn quoted_field(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let rest = message.get(start..)?;
    let end = rest.find('`')?;
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
        quantity: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    const CT: Option<&str> = Some("application/json; charset=utf-8");

    fn err(body: &str) -> Problem {
        parse_json::<Order>(CT, body.as_bytes(), 1024).unwrap_err()
    }

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let o: Order = parse_json(CT, br#"{"items":[{"sku":"A","quantity":3.0}]}"#, 1024).unwrap();
        assert_eq!(o.items[0].quantity, 3);
        let o: Order = parse_json(CT, br#"{"items":[{"sku":"A","quantity":-2e3}]}"#, 1024).unwrap();
        assert_eq!(o.items[0].quantity, -2000);
        for fractional in ["2.5", "1e300", "-0.1"] {
            let body = format!(r#"{{"items":[{{"sku":"A","quantity":{fractional}}}]}}"#);
            let problem = err(&body);
            assert_eq!(problem.status, 422, "{fractional}");
        }
    }

    #[test]
    fn parses_valid_bodies() {
        let o: Order = parse_json(CT, br#"{"items":[{"sku":"A","quantity":2}]}"#, 1024).unwrap();
        assert_eq!(o.items[0].quantity, 2);
    }

    #[test]
    fn malformed_is_400() {
        for body in ["{", "", "not json", r#"{"items":[]} trailing"#] {
            let p = err(body);
            assert_eq!((p.status, p.code), (400, "malformed_json"), "{body}");
        }
    }

    #[test]
    fn shape_errors_are_422_with_pointers() {
        let p = err(r#"{"items":[{"sku":"A","quantity":"two"}]}"#);
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].pointer, "/items/0/quantity");
        let p = err(r#"{"items":[{"sku":"A","quantity":1,"price":"0.01"}]}"#);
        assert_eq!(p.errors[0].pointer, "/items/0/price");
        assert_eq!(p.errors[0].code, "unknown_field");
        let p = err(r#"{"items":[{"quantity":1}]}"#);
        assert_eq!(p.errors[0].pointer, "/items/0/sku");
        assert_eq!(p.errors[0].code, "missing_field");
        let p = err("[1, 2]");
        assert_eq!((p.status, p.errors[0].pointer.as_str()), (422, ""));
        let p = err(r#"{"items":[{"sku":"A","quantity":1e30}]}"#);
        assert_eq!(p.status, 422);
    }

    #[test]
    fn duplicate_keys_are_422_at_the_second_one() {
        let p = err(r#"{"items":[{"sku":"A","quantity":1,"quantity":2}]}"#);
        assert_eq!((p.status, p.code), (422, "validation_failed"));
        assert_eq!(p.errors[0].pointer, "/items/0/quantity");
        assert_eq!(p.errors[0].code, "duplicate_key");
        let p = err(r#"{"items":[],"items":[]}"#);
        assert_eq!(p.errors[0].pointer, "/items");
        // The same key in two different objects is fine.
        let o: Order = parse_json(
            CT,
            br#"{"items":[{"sku":"A","quantity":1},{"sku":"B","quantity":2}]}"#,
            1024,
        )
        .unwrap();
        assert_eq!(o.items.len(), 2);
    }

    #[test]
    fn media_type_and_size() {
        let p = parse_json::<Order>(Some("text/plain"), b"{}", 1024).unwrap_err();
        assert_eq!(p.status, 415);
        let p = parse_json::<Order>(None, b"{}", 1024).unwrap_err();
        assert_eq!(p.status, 415);
        let p = parse_json::<Order>(CT, &[b' '; 2000], 1024).unwrap_err();
        assert_eq!(p.status, 413);
        assert_eq!(
            check_declared_length(Some("5000"), 1024)
                .unwrap_err()
                .status,
            413
        );
        assert!(check_declared_length(Some("10"), 1024).is_ok());
    }
}
