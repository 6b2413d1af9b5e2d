//! Cursor pagination: `?limit=` (1..=100, default 20) and an opaque `?cursor=`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLimit;

impl Limit {
    pub fn parse(text: Option<&str>) -> Result<Self, InvalidLimit> {
        match text {
            None => Ok(Limit(DEFAULT_LIMIT)),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Limit(n)),
                _ => Err(InvalidLimit),
            },
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The position after which the next page starts: the sort key of the last item returned.
/// On the wire it is base64url text, so clients treat it as opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCursor;

impl Cursor {
    pub fn after(key: &str) -> Self {
        Cursor(key.to_owned())
    }

    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let key = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        if key.is_empty() || key.len() > 200 {
            return Err(InvalidCursor);
        }
        Ok(Cursor(key))
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    pub fn key(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Build a page from up to `limit + 1` rows fetched in key order: the extra row, if
    /// present, only tells that there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: Limit, key: impl Fn(&T) -> String) -> Self {
        let limit = limit.get() as usize;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if has_more {
            rows.last().map(|last| Cursor::after(&key(last)).encode())
        } else {
            None
        };
        Page {
            data: rows,
            next_cursor,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds() {
        assert_eq!(Limit::parse(None).unwrap().get(), 20);
        assert_eq!(Limit::parse(Some("100")).unwrap().get(), 100);
        for bad in ["0", "101", "-1", "x", ""] {
            assert!(Limit::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor::after("prod_tee");
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("***").is_err());
        assert!(Cursor::decode("").is_err());
    }

    #[test]
    fn overfetch_sets_has_more_and_cursor() {
        let page = Page::from_overfetch(vec![1, 2, 3], Limit::parse(Some("2")).unwrap(), |n| {
            n.to_string()
        });
        assert_eq!(page.data, vec![1, 2]);
        assert!(page.has_more);
        assert_eq!(
            Cursor::decode(page.next_cursor.as_deref().unwrap())
                .unwrap()
                .key(),
            "2"
        );
        let last = Page::from_overfetch(vec![1, 2], Limit::parse(Some("2")).unwrap(), |n| {
            n.to_string()
        });
        assert!(!last.has_more);
        assert_eq!(last.next_cursor, None);
    }
}
