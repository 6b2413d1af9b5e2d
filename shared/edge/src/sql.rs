//! Small helpers around one D1 statement: bind, run, deserialize, and turn runtime errors into
//! `StoreError`s that say what was being done.

use serde::de::DeserializeOwned;
use shop_domain::StoreError;
use worker::wasm_bindgen::JsValue;
use worker::D1Database;

/// A JS number for an integer bind (D1 integers travel as JS numbers; ours stay below 2^53).
pub fn num(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn store_error(context: &str, e: worker::Error) -> StoreError {
    StoreError::new(format!("{context}: {e}"))
}

/// The first row of `sql`, if any.
pub async fn first<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    binds: &[JsValue],
    context: &str,
) -> Result<Option<T>, StoreError> {
    db.prepare(sql)
        .bind(binds)
        .map_err(|e| store_error(context, e))?
        .first(None)
        .await
        .map_err(|e| store_error(context, e))
}

/// Every row of `sql`.
pub async fn all<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    binds: &[JsValue],
    context: &str,
) -> Result<Vec<T>, StoreError> {
    db.prepare(sql)
        .bind(binds)
        .map_err(|e| store_error(context, e))?
        .all()
        .await
        .map_err(|e| store_error(context, e))?
        .results()
        .map_err(|e| store_error(context, e))
}
