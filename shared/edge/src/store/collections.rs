//! Collections in D1: manual, ordered lists of products. A collection's products are set as a
//! whole in one batch (the old list goes, the new one comes in its order); an unknown product
//! aborts the batch (a foreign key) and nothing changes.

use shop_domain::catalog::management::collection::CollectionRecord;
use shop_domain::catalog::management::Refusal;
use shop_domain::kernel::ids::ProductId;
use shop_domain::StoreError;

use crate::store::products::Outcome;
use crate::store::sql::{self, err, json_err, num, Db, Violation};

const COLLECTION_JSON: &str = "json_object('id', c.id, 'handle', c.handle, 'title', c.title, \
     'product_ids', json((SELECT json_group_array(product_id) FROM (SELECT product_id \
       FROM collection_products WHERE collection_id = c.id ORDER BY position))), \
     'created_at', strftime('%Y-%m-%dT%H:%M:%fZ', c.created_at / 1000.0, 'unixepoch'), \
     'updated_at', strftime('%Y-%m-%dT%H:%M:%fZ', c.updated_at / 1000.0, 'unixepoch'))";

/// Every collection, by handle.
pub async fn collections(db: &Db) -> Result<Vec<CollectionRecord>, StoreError> {
    let context = "list collections";
    let sql = format!(
        "SELECT json_group_array(json(doc)) AS doc FROM (SELECT {COLLECTION_JSON} AS doc \
         FROM collections c ORDER BY c.handle)"
    );
    let doc = sql::doc_or_empty(db, &sql, &[], context).await?;
    serde_json::from_str(&doc).map_err(json_err(context))
}

pub async fn collection(db: &Db, id: &str) -> Result<Option<CollectionRecord>, StoreError> {
    let context = "read collection";
    let sql = format!("SELECT {COLLECTION_JSON} AS doc FROM collections c WHERE c.id = ?1");
    match sql::doc(db, &sql, &[id.into()], context).await? {
        Some(doc) => serde_json::from_str(&doc)
            .map(Some)
            .map_err(json_err(context)),
        None => Ok(None),
    }
}

pub async fn create_collection(db: &Db, collection: &CollectionRecord) -> Outcome<()> {
    let context = "create collection";
    let result = db
        .prepare(
            "INSERT INTO collections (id, handle, title, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .bind(&[
            collection.id.as_str().into(),
            collection.handle.as_str().into(),
            collection.title.as_str().into(),
            num(collection.created_at.millis()),
        ])
        .map_err(err(context))?
        .run()
        .await;
    match result {
        Ok(_) => Ok(Ok(())),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::Unique(_)) => Ok(Err(Refusal::CollectionHandleTaken)),
            _ => Err(err(context)(e)),
        },
    }
}

/// Set collection `id`'s products to `products`, in this order.
pub async fn set_products(db: &Db, id: &str, products: &[ProductId], now: i64) -> Outcome<()> {
    let context = "set collection products";
    let ids: Vec<&str> = products.iter().map(ProductId::as_str).collect();
    let ids = serde_json::to_string(&ids).map_err(json_err(context))?;
    let statements = vec![
        db.prepare("UPDATE collections SET updated_at = ?2 WHERE id = ?1")
            .bind(&[id.into(), num(now)])
            .map_err(err(context))?,
        db.prepare("DELETE FROM collection_products WHERE collection_id = ?1")
            .bind(&[id.into()])
            .map_err(err(context))?,
        db.prepare(
            "INSERT INTO collection_products (collection_id, product_id, position) \
             SELECT ?1, value, CAST(key AS INTEGER) FROM json_each(?2)",
        )
        .bind(&[id.into(), ids.into()])
        .map_err(err(context))?,
    ];
    match db.batch(statements).await {
        Ok(_) => Ok(Ok(())),
        Err(e) => match sql::violation(&e.to_string()) {
            Some(Violation::ForeignKey) => Ok(Err(Refusal::UnknownProduct)),
            _ => Err(err(context)(e)),
        },
    }
}
