//! Check-ins: recorded once per person per cooldown (safe across processes), listed, purged.

use super::{DbTime, InsertedId, Store, StoreError};
use crate::liveness::Liveness;
use chrono::{DateTime, Utc};

/// One check-in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AttendanceRecord {
    pub id: i64,
    pub user_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub at: DateTime<Utc>,
    pub similarity: f64,
    pub kiosk: Option<String>,
    #[serde(skip)]
    pub model: String,
    /// How liveness was established: `none` (one photo) or `challenge` (a sequence).
    pub liveness: String,
}

/// A check-in to record.
#[derive(Debug, Clone)]
pub struct NewCheckIn<'a> {
    pub user_id: i64,
    pub at: DateTime<Utc>,
    pub similarity: f64,
    pub kiosk: Option<&'a str>,
    pub model: &'a str,
    /// No event is recorded when this person has one after this instant.
    pub not_since: DateTime<Utc>,
}

/// What a check-in did.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckIn {
    Recorded(AttendanceRecord),
    /// Already checked in within the cooldown: the earlier event.
    AlreadyIn(AttendanceRecord),
    /// The person was deleted meanwhile.
    UnknownUser,
}

/// Filters of the attendance queries.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttendanceFilter {
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub before: Option<DateTime<Utc>>,
    pub user_id: Option<i64>,
    /// At most this many records (all when `None`), after skipping `offset` newer ones.
    pub limit: Option<u64>,
    pub offset: u64,
}

const ATTENDANCE_COLUMNS: &str =
    "SELECT id, user_id, first_name, last_name, at, similarity, kiosk, model, liveness \
     FROM attendance";

impl Store {
    /// Record a check-in unless the person has one after `not_since`. Safe across processes:
    /// the transaction first writes the person's `users` row, which takes that row's lock
    /// (InnoDB) or the database write lock (SQLite), so a second check-in of the same person
    /// waits and then sees the first one's event.
    pub async fn check_in(&self, new: NewCheckIn<'_>) -> Result<CheckIn, StoreError> {
        self.check_in_with(new, Liveness::None).await
    }

    /// [`Store::check_in`], recording how liveness was established.
    pub async fn check_in_with(
        &self,
        new: NewCheckIn<'_>,
        liveness: Liveness,
    ) -> Result<CheckIn, StoreError> {
        let select_last = format!(
            "{ATTENDANCE_COLUMNS} WHERE user_id = ? AND at > ? ORDER BY at DESC, id DESC LIMIT 1"
        );
        Ok(with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET first_name = first_name WHERE id = ?")
                .bind(new.user_id)
                .execute(&mut *tx)
                .await?;
            let user: Option<(String, String)> =
                sqlx::query_as("SELECT first_name, last_name FROM users WHERE id = ?")
                    .bind(new.user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match user {
                None => CheckIn::UnknownUser,
                Some((first_name, last_name)) => {
                    let last: Option<AttendanceRecord> = sqlx::query_as(&select_last)
                        .bind(new.user_id)
                        .bind(DbTime(new.not_since))
                        .fetch_optional(&mut *tx)
                        .await?;
                    match last {
                        Some(earlier) => {
                            tx.commit().await?;
                            CheckIn::AlreadyIn(earlier)
                        }
                        None => {
                            let id = sqlx::query(
                                "INSERT INTO attendance \
                                 (user_id, first_name, last_name, at, similarity, kiosk, model, liveness) \
                                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            )
                            .bind(new.user_id)
                            .bind(&first_name)
                            .bind(&last_name)
                            .bind(DbTime(new.at))
                            .bind(new.similarity)
                            .bind(new.kiosk)
                            .bind(new.model)
                            .bind(liveness.as_str())
                            .execute(&mut *tx)
                            .await?
                            .inserted_id();
                            tx.commit().await?;
                            CheckIn::Recorded(AttendanceRecord {
                                id,
                                user_id: new.user_id,
                                first_name,
                                last_name,
                                at: new.at,
                                similarity: new.similarity,
                                kiosk: new.kiosk.map(str::to_owned),
                                model: new.model.to_owned(),
                                liveness: liveness.as_str().to_owned(),
                            })
                        }
                    }
                }
            }
        }))
    }

    /// Delete every check-in before `cutoff` (retention), leaving no copy in the database files.
    /// Returns how many were deleted.
    pub async fn purge_attendance(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = with_pool!(self, pool => {
            sqlx::query("DELETE FROM attendance WHERE at < ?")
                .bind(DbTime(cutoff))
                .execute(pool)
                .await?
                .rows_affected()
        });
        if deleted > 0 {
            self.forget_deleted().await?;
        }
        Ok(deleted)
    }

    /// Check-ins matching `filter`, newest first.
    pub async fn attendance(
        &self,
        filter: AttendanceFilter,
    ) -> Result<Vec<AttendanceRecord>, StoreError> {
        let sql = format!(
            "{ATTENDANCE_COLUMNS} WHERE (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) \
             AND (? IS NULL OR user_id = ?) ORDER BY at DESC, id DESC LIMIT ? OFFSET ?"
        );
        // Neither SQLite nor MySQL has a "no limit" value both accept; the largest BIGINT is one.
        let limit = filter
            .limit
            .map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        Ok(with_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(filter.since.map(DbTime))
                .bind(filter.since.map(DbTime))
                .bind(filter.before.map(DbTime))
                .bind(filter.before.map(DbTime))
                .bind(filter.user_id)
                .bind(filter.user_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?
        }))
    }
}
