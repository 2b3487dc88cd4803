//! A person's reference faces one by one: listed, found, deleted. The reference in the `users`
//! row is face 0; the rows of `faces` are numbered by their own id (never 0). Deleting face 0
//! promotes the person's oldest other face into the `users` row, in the same transaction, so a
//! person always has a reference there.

use super::{Entry, Store, StoreError};
use chrono::{DateTime, Utc};

/// The id of the reference held in the `users` row.
pub const PRIMARY_FACE: i64 = 0;

/// Where a reference face came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSource {
    /// A file sent to `/register` or `/users/{id}/faces`.
    Upload,
    /// A webcam photo taken on the admin page.
    Webcam,
    /// A kiosk check-in accepted with a clear margin (when the setting allows it).
    Kiosk,
    /// `rollcall register` or `rollcall enroll`.
    Cli,
}

impl FaceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FaceSource::Upload => "upload",
            FaceSource::Webcam => "webcam",
            FaceSource::Kiosk => "kiosk",
            FaceSource::Cli => "cli",
        }
    }

    /// A stored value; unknown words (a newer binary's) read as `upload`.
    fn stored(s: &str) -> FaceSource {
        match s {
            "webcam" => FaceSource::Webcam,
            "kiosk" => FaceSource::Kiosk,
            "cli" => FaceSource::Cli,
            _ => FaceSource::Upload,
        }
    }
}

/// One reference face of a person.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRecord {
    /// [`PRIMARY_FACE`] for the `users` row's reference, else the `faces` row's id.
    pub id: i64,
    pub user_id: i64,
    pub model: String,
    pub source: FaceSource,
    pub created_at: DateTime<Utc>,
    pub image_path: String,
}

/// What [`Store::delete_face`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceDeletion {
    NoUser,
    NoFace,
    /// The person's only reference: a person without one could not be recognised.
    LastFace,
    /// Deleted; the photo file to remove now that the transaction committed.
    Deleted {
        image_path: String,
    },
}

type PrimaryRow = (String, String, String, Option<DateTime<Utc>>, DateTime<Utc>);
type FaceRow = (
    i64,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

impl Store {
    /// A person's references, face 0 first then the others oldest first; `None` when there is
    /// no such person.
    pub async fn faces_of(&self, user_id: i64) -> Result<Option<Vec<FaceRecord>>, StoreError> {
        let (primary, others): (Option<PrimaryRow>, Vec<FaceRow>) = with_pool!(self, pool => {
            let primary = sqlx::query_as(
                "SELECT model, face_source, image_path, face_added_at, created_at FROM users \
                 WHERE id = ?",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            let others = sqlx::query_as(
                "SELECT f.id, f.model, f.source, f.image_path, f.created_at, u.created_at \
                 FROM faces f JOIN users u ON u.id = f.user_id WHERE f.user_id = ? ORDER BY f.id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            (primary, others)
        });
        let Some((model, source, image_path, added, registered)) = primary else {
            return Ok(None);
        };
        let mut faces = vec![FaceRecord {
            id: PRIMARY_FACE,
            user_id,
            model,
            source: FaceSource::stored(&source),
            created_at: added.unwrap_or(registered),
            image_path,
        }];
        faces.extend(others.into_iter().map(
            |(id, model, source, image_path, added, registered)| FaceRecord {
                id,
                user_id,
                model,
                source: FaceSource::stored(&source),
                created_at: added.unwrap_or(registered),
                image_path,
            },
        ));
        Ok(Some(faces))
    }

    /// Delete one reference face, writing `audit` in the same transaction. Face 0 is replaced
    /// by the person's oldest other face; the only face is never deleted.
    pub async fn delete_face(
        &self,
        user_id: i64,
        face_id: i64,
        audit: &Entry,
    ) -> Result<FaceDeletion, StoreError> {
        let outcome = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Writing the person's row first takes its lock (InnoDB) or the write lock (SQLite):
            // two deletions of one person's last two faces cannot both see two.
            sqlx::query("UPDATE users SET first_name = first_name WHERE id = ?")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let primary: Option<String> =
                sqlx::query_scalar("SELECT image_path FROM users WHERE id = ?")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let oldest_other: Option<(i64, String)> = sqlx::query_as(
                "SELECT id, image_path FROM faces WHERE user_id = ? ORDER BY id LIMIT 1",
            )
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match (primary, oldest_other) {
                (None, _) => FaceDeletion::NoUser,
                (Some(_), None) if face_id == PRIMARY_FACE => FaceDeletion::LastFace,
                (Some(primary), Some((promoted, _))) if face_id == PRIMARY_FACE => {
                    let from_face = |column: &str| {
                        format!("{column} = (SELECT f.{column} FROM faces f WHERE f.id = ?)")
                    };
                    let sql = format!(
                        "UPDATE users SET {}, {}, {}, face_source = (SELECT f.source FROM faces f \
                         WHERE f.id = ?), face_added_at = (SELECT f.created_at FROM faces f \
                         WHERE f.id = ?) WHERE id = ?",
                        from_face("embedding"),
                        from_face("model"),
                        from_face("image_path"),
                    );
                    let mut update = sqlx::query(&sql);
                    for _ in 0..5 {
                        update = update.bind(promoted);
                    }
                    update.bind(user_id).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM faces WHERE id = ?")
                        .bind(promoted)
                        .execute(&mut *tx)
                        .await?;
                    FaceDeletion::Deleted { image_path: primary }
                }
                (Some(_), _) => {
                    let path: Option<String> = sqlx::query_scalar(
                        "SELECT image_path FROM faces WHERE id = ? AND user_id = ?",
                    )
                    .bind(face_id)
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match path {
                        None => FaceDeletion::NoFace,
                        Some(image_path) => {
                            sqlx::query("DELETE FROM faces WHERE id = ?")
                                .bind(face_id)
                                .execute(&mut *tx)
                                .await?;
                            FaceDeletion::Deleted { image_path }
                        }
                    }
                }
            };
            if matches!(outcome, FaceDeletion::Deleted { .. }) {
                insert_audit!(&mut *tx, audit);
                log_gallery_change!(tx, user_id, super::ChangeKind::DeleteFace);
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            outcome
        });
        if matches!(outcome, FaceDeletion::Deleted { .. }) {
            // Committed: a failed checkpoint must not undo the answer.
            if let Err(e) = self.forget_deleted().await {
                tracing::warn!("after deleting a face: {e}");
            }
        }
        Ok(outcome)
    }
}
