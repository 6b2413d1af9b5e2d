//! A small in-isolate cache of replies with a time-to-live, for reads whose staleness is
//! harmless (catalog pages). Each isolate has its own copy; nothing here is shared or durable.

use std::cell::RefCell;
use std::collections::HashMap;

use shop_domain::kernel::time::{Duration, Timestamp};

use crate::reply::Reply;

const MAX_ENTRIES: usize = 512;

thread_local! {
    static ENTRIES: RefCell<HashMap<String, (Timestamp, Reply)>> = RefCell::new(HashMap::new());
}

pub fn get(key: &str, now: Timestamp) -> Option<Reply> {
    ENTRIES.with(|entries| {
        let entries = entries.borrow();
        entries
            .get(key)
            .filter(|(expires, _)| now < *expires)
            .map(|(_, reply)| reply.clone())
    })
}

pub fn put(key: &str, reply: &Reply, now: Timestamp, ttl: Duration) {
    if ttl.millis() == 0 {
        return;
    }
    ENTRIES.with(|entries| {
        let mut entries = entries.borrow_mut();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (expires, _)| now < *expires);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (now.plus(ttl), reply.clone()));
    });
}

pub fn clear() {
    ENTRIES.with(|entries| entries.borrow_mut().clear());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_ttl() {
        let t0 = Timestamp::from_millis(1_000);
        put("k", &Reply::empty(200), t0, Duration::from_secs(10));
        assert!(get("k", t0.plus(Duration::from_secs(9))).is_some());
        assert!(get("k", t0.plus(Duration::from_secs(10))).is_none());
        clear();
        assert!(get("k", t0).is_none());
    }
}
