//! The gallery's change log (`gallery_changes`, ids from `gallery_sequence`): what every server
//! reads to keep its gallery in step with the database, whoever made the change.
//!
//! A change is logged by [`log_gallery_change!`] inside the transaction of the change itself, as
//! its last statement before the commit. It bumps the one sequence row first: the row's lock
//! (InnoDB's, or SQLite's database write lock) is held until the commit, so the next change can
//! take id N+1 only once the change holding N has committed. Ids therefore commit in order and
//! without gaps, and a reader whose cursor is at N has seen every change up to N for good. (An
//! AUTO_INCREMENT id is handed out at insert time: a transaction holding N could commit after
//! one holding N+1, and a reader that had moved past N+1 would miss it.) The price: changes to
//! people commit one at a time, which registrations can afford.

use super::{DbTime, EmbeddingRow, Store, StoreError};
use chrono::{DateTime, Utc};

/// What happened to a person's references (the log's `kind`; a reader re-reads the person
/// whatever it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Register,
    AddFace,
    DeleteUser,
    Reindex,
    DeleteFace,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Register => "register",
            ChangeKind::AddFace => "add_face",
            ChangeKind::DeleteUser => "delete_user",
            ChangeKind::Reindex => "reindex",
            ChangeKind::DeleteFace => "delete_face",
        }
    }
}

/// One logged change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct GalleryChange {
    pub id: i64,
    pub user_id: i64,
}

pub(super) const BUMP: &str = "UPDATE gallery_sequence SET last_id = last_id + 1 WHERE id = 1";
pub(super) const INSERT: &str = "INSERT INTO gallery_changes (id, user_id, kind, at) \
     SELECT last_id, ?, ?, ? FROM gallery_sequence WHERE id = 1";

/// Logs a change of `$user_id`'s references on the transaction `$tx`; expands once per backend
/// inside [`with_pool!`]. Call it last before the commit: the sequence row stays locked until
/// then.
macro_rules! log_gallery_change {
    ($tx:ident, $user_id:expr, $kind:expr) => {{
        let kind: $crate::store::ChangeKind = $kind;
        sqlx::query($crate::store::changes::BUMP)
            .execute(&mut *$tx)
            .await?;
        sqlx::query($crate::store::changes::INSERT)
            .bind($user_id)
            .bind(kind.as_str())
            .bind($crate::store::DbTime(chrono::Utc::now()))
            .execute(&mut *$tx)
            .await?;
    }};
}

/// People re-read per query (each id is one bound parameter, twice).
const USERS_PER_QUERY: usize = 400;

impl Store {
    /// The id of the last committed change (0 before the first): every change up to it has
    /// committed (see the module's note).
    pub async fn gallery_head(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT last_id FROM gallery_sequence WHERE id = 1";
        Ok(with_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?))
    }

    /// Up to `limit` changes after `after`, in order.
    pub async fn gallery_changes(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<GalleryChange>, StoreError> {
        const SQL: &str =
            "SELECT id, user_id FROM gallery_changes WHERE id > ? ORDER BY id LIMIT ?";
        Ok(with_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Every reference embedding (all models) of these people, those of one person together;
    /// nothing for someone who no longer exists.
    pub async fn embeddings_of(&self, user_ids: &[i64]) -> Result<Vec<EmbeddingRow>, StoreError> {
        let mut rows = Vec::new();
        for ids in user_ids.chunks(USERS_PER_QUERY) {
            let marks = vec!["?"; ids.len()].join(", ");
            let sql = format!(
                "SELECT id AS user_id, first_name, last_name, model, embedding, 0 AS face \
                 FROM users WHERE id IN ({marks}) \
                 UNION ALL \
                 SELECT f.user_id, u.first_name, u.last_name, f.model, f.embedding, f.id AS face \
                 FROM faces f JOIN users u ON u.id = f.user_id WHERE f.user_id IN ({marks}) \
                 ORDER BY user_id, face"
            );
            let chunk: Vec<(i64, String, String, String, Vec<u8>, i64)> = with_pool!(self, pool => {
                let mut query = sqlx::query_as(&sql);
                for id in ids.iter().chain(ids) {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await?
            });
            rows.extend(chunk.into_iter().map(
                |(user_id, first_name, last_name, model, embedding, _)| EmbeddingRow {
                    user_id,
                    first_name,
                    last_name,
                    model,
                    embedding,
                },
            ));
        }
        Ok(rows)
    }

    /// Delete the changes logged before `cutoff`; how many. A server whose cursor is behind
    /// what is left reloads its whole gallery.
    pub async fn prune_gallery_changes(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM gallery_changes WHERE at < ?";
        Ok(with_pool!(self, pool => {
            sqlx::query(SQL).bind(DbTime(cutoff)).execute(pool).await?.rows_affected()
        }))
    }
}
