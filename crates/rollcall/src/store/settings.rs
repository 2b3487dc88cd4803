//! Settings an admin changes while the server runs: the `settings` table, a name and its value
//! as text. What the names mean and which values are valid is [`crate::site_settings`]'s.

use super::{Entry, Store, StoreError};

impl Store {
    /// Every stored setting, `(name, value)`.
    pub async fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as("SELECT name, value FROM settings ORDER BY name")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Store `changes` (`(name, value)`) and their audit entries in one transaction.
    pub async fn set_settings(
        &self,
        changes: &[(&str, String)],
        audits: &[Entry],
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (name, value) in changes {
                // Delete and insert: one text for both backends' "upsert".
                sqlx::query("DELETE FROM settings WHERE name = ?")
                    .bind(*name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?)")
                    .bind(*name)
                    .bind(value.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            for audit in audits {
                insert_audit!(&mut *tx, audit);
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
