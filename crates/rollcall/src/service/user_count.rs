//! How many people are registered, for `/health` and `/metrics`. `COUNT(*)` reads the whole
//! table (about a second at a million people on MySQL), which a load balancer polling every few
//! seconds must not cost each time. Every change to `users` writes the gallery change log in its
//! own transaction, so a count taken at a given head of the log stays exact until the head moves:
//! the count is cached by head, and only one count runs at a time.

use super::{Rollcall, ServiceError};

#[derive(Default)]
pub(super) struct UserCount {
    /// (head of the change log read before counting, the count).
    last: std::sync::Mutex<Option<(i64, i64)>>,
    /// Held while a count runs, so that probes arriving meanwhile wait for it instead of
    /// starting their own.
    counting: tokio::sync::Mutex<()>,
}

impl UserCount {
    fn at(&self, head: i64) -> Option<i64> {
        // A plain pair, never left half-written: a poisoned lock is still usable.
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.and_then(|(h, n)| (h == head).then_some(n))
    }
}

impl Rollcall {
    /// The number of registered people (of every model), counted again only when the change log
    /// says people were registered or deleted since the last count.
    pub async fn count_users(&self) -> Result<i64, ServiceError> {
        let head = self.store.gallery_head().await?;
        if let Some(n) = self.user_count.at(head) {
            return Ok(n);
        }
        let _one = self.user_count.counting.lock().await;
        if let Some(n) = self.user_count.at(head) {
            return Ok(n);
        }
        // A change committed after `head` was read may be in the count; the head has moved then,
        // so the next call counts again.
        let n = self.store.count_users().await?;
        *self
            .user_count
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((head, n));
        Ok(n)
    }
}
