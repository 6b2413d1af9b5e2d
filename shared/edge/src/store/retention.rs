//! Retention: what the cron forgets (idempotency records past their 24 h, long-expired carts).

use serde::Serialize;
use shop_domain::kernel::time::Timestamp;
use shop_domain::StoreError;

use crate::store::sql::{changes, err, num, Db};

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Purged {
    pub idempotency_keys: usize,
    pub carts: usize,
}

/// How long an expired cart is kept (answering 404 `cart_expired`) before it is deleted.
pub const EXPIRED_CART_RETENTION: shop_domain::kernel::time::Duration =
    shop_domain::kernel::time::Duration::from_days(30);

/// Forget idempotency records past their 24 h and active carts expired for longer than
/// [`EXPIRED_CART_RETENTION`] (checked-out carts stay: their orders point at them). One batch.
pub async fn purge_expired(db: &Db, now: Timestamp) -> Result<Purged, StoreError> {
    let context = "purge expired";
    let statements = vec![
        db.prepare("DELETE FROM idempotency_keys WHERE expires_at <= ?1")
            .bind(&[num(now.millis())])
            .map_err(err(context))?,
        db.prepare("DELETE FROM carts WHERE status = 'active' AND expires_at <= ?1")
            .bind(&[num(now.minus(EXPIRED_CART_RETENTION).millis())])
            .map_err(err(context))?,
    ];
    let results = db.batch(statements).await.map_err(err(context))?;
    let changed = |i: usize| results.get(i).map_or(0, changes);
    Ok(Purged {
        idempotency_keys: changed(0),
        carts: changed(1),
    })
}
