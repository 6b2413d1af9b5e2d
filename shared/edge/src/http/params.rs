//! One toolkit for query and path parameters: each parameter kind is parsed into its domain
//! type in one place, and a bad one is always the same 400/422 problem with the parameter's
//! JSON pointer (`/query/<name>`), whichever worker reads it.

use shop_domain::kernel::pagination::{Cursor, Limit};
use shop_domain::kernel::time::Timestamp;

use crate::http::problem::Problem;
use crate::http::runtime::Call;

impl<E> Call<E> {
    /// `?limit=` (1 to 100, default 20).
    pub fn limit(&self) -> Result<Limit, Problem> {
        Limit::parse(self.query("limit")).map_err(|_| {
            Problem::invalid_field(
                "/query/limit",
                "invalid_limit",
                "limit is a whole number from 1 to 100",
            )
        })
    }

    /// `?cursor=`, as this API issued it.
    pub fn cursor(&self) -> Result<Option<Cursor>, Problem> {
        self.query("cursor")
            .map(|c| Cursor::decode(c).map_err(|_| invalid_cursor()))
            .transpose()
    }

    /// The cursor of a newest-first listing: `<created_at millis>:<id>` of the last item.
    pub fn time_cursor(&self) -> Result<Option<(i64, String)>, Problem> {
        self.cursor()?
            .map(|cursor| {
                cursor
                    .key()
                    .split_once(':')
                    .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(invalid_cursor)
            })
            .transpose()
    }

    /// `?name=` as an RFC 3339 timestamp.
    pub fn timestamp_query(&self, name: &str) -> Result<Option<Timestamp>, Problem> {
        self.parsed_query(name, "invalid_timestamp", "an RFC 3339 timestamp", |t| {
            Timestamp::parse_rfc3339(t)
        })
    }

    /// `?name=true` / `false`; absent is `false`.
    pub fn flag_query(&self, name: &str) -> Result<bool, Problem> {
        Ok(self
            .parsed_query(name, "invalid_value", "true or false", |v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            })?
            .unwrap_or(false))
    }

    /// `?name=` parsed by `parse`; `None` from it is 422 `code`, "`name` is `what`".
    pub fn parsed_query<T>(
        &self,
        name: &str,
        code: &'static str,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, Problem> {
        self.query(name)
            .map(|v| {
                parse(v).ok_or_else(|| {
                    Problem::invalid_field(
                        &format!("/query/{name}"),
                        code,
                        format!("{name} is {what}"),
                    )
                })
            })
            .transpose()
    }

    /// Path parameter `index` parsed by `parse`; anything unparsable is `not_found` (an id that
    /// cannot exist names nothing).
    pub fn path_param<T, X>(
        &self,
        index: usize,
        parse: impl FnOnce(&str) -> Result<T, X>,
        not_found: impl FnOnce() -> Problem,
    ) -> Result<T, Problem> {
        parse(self.route.param(index)).map_err(|_| not_found())
    }
}

/// The problem of a cursor that is not one this listing gave.
pub fn invalid_cursor() -> Problem {
    Problem::invalid_field(
        "/query/cursor",
        "invalid_cursor",
        "cursor is not one this API issued",
    )
}
