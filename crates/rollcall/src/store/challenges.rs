//! Liveness challenges in the database, so that any server behind the same database can take
//! the answer to a challenge another gave, and each is taken once: [`Store::take_challenge`] is
//! one `UPDATE` that only an unused, unexpired row passes.

use super::{DbTime, Store, StoreError};
use crate::liveness::Instruction;
use chrono::{DateTime, Utc};

/// Expired challenges are deleted this long after their expiry (when a new one is given).
const KEEP_EXPIRED: chrono::Duration = chrono::Duration::hours(1);

impl Store {
    /// Record a challenge given now; also forgets long-expired ones.
    pub async fn add_challenge(
        &self,
        nonce_hash: &str,
        instruction: Instruction,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM liveness_challenges WHERE expires_at < ?")
                .bind(DbTime(now - KEEP_EXPIRED))
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO liveness_challenges (nonce_hash, instruction, created_at, expires_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(nonce_hash)
            .bind(instruction.as_str())
            .bind(DbTime(now))
            .bind(DbTime(expires_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Mark the challenge used and return its instruction, if it is unused and unexpired at
    /// `now`; `None` otherwise (unknown, used or expired are told apart by no one: a guesser
    /// learns nothing). Of two servers taking the same challenge at once, one gets it.
    pub async fn take_challenge(
        &self,
        nonce_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Instruction>, StoreError> {
        let instruction: Option<String> = with_pool!(self, pool => {
            let taken = sqlx::query(
                "UPDATE liveness_challenges SET used_at = ? \
                 WHERE nonce_hash = ? AND used_at IS NULL AND expires_at > ?",
            )
            .bind(DbTime(now))
            .bind(nonce_hash)
            .bind(DbTime(now))
            .execute(pool)
            .await?
            .rows_affected();
            if taken == 1 {
                sqlx::query_scalar::<_, String>("SELECT instruction FROM liveness_challenges WHERE nonce_hash = ?")
                    .bind(nonce_hash)
                    .fetch_optional(pool)
                    .await?
            } else {
                None
            }
        });
        Ok(instruction.as_deref().and_then(Instruction::parse))
    }
}
