//! The `audit_log` table: entries written on their own (the changes to people write theirs in
//! their own transaction, with `insert_audit!`) and the log read back a page at a time.

use super::{Store, StoreError};
use crate::audit::{AuditRecord, Entry, Page};

pub(super) const INSERT: &str =
    "INSERT INTO audit_log (at, actor, action, target, address, detail) VALUES (?, ?, ?, ?, ?, ?)";

impl Store {
    /// Write one entry.
    pub async fn try_audit(&self, entry: &Entry) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            insert_audit!(pool, entry);
        });
        Ok(())
    }

    /// Write one entry recording something that already happened: if the database refuses it,
    /// the action stands and the entry goes to the server's log at ERROR, never lost silently.
    pub async fn audit(&self, entry: &Entry) {
        if let Err(e) = self.try_audit(entry).await {
            tracing::error!("the audit log could not record `{entry}`: {e}");
        }
    }

    /// A page of the log, newest first.
    pub async fn audit_log(&self, page: Page) -> Result<Vec<AuditRecord>, StoreError> {
        const SQL: &str = "SELECT id, at, actor, action, target, address, detail FROM audit_log \
             WHERE (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?";
        Ok(with_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(page.before)
                .bind(page.before)
                .bind(i64::from(page.limit))
                .fetch_all(pool)
                .await?
        }))
    }
}
