//! Users, their reference faces and the attendance log, in SQLite (the default) or MySQL.
//!
//! [`Store`] is an enum over the two pools. The SQL is written once, in the dialect both accept
//! (`?` placeholders, no `RETURNING`), and [`with_pool!`] expands each method body once per
//! backend so that sqlx checks the types against each driver. Queries are built at run time: no
//! database is needed to compile.

pub mod photos;
pub mod private;
mod time;

use crate::audit::{Entry, Target};
use crate::domain::PersonName;
use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlQueryResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

pub use faces::{FaceDeletion, FaceRecord, FaceSource, PRIMARY_FACE};
pub use photos::{
    BucketLocation, PhotoBucket, PhotoDir, PhotoLocation, PhotoStore, PhotoStoreError, StagedPhoto,
    Storage,
};
pub use time::DbTime;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("reference photo: {0}")]
    Photo(#[from] std::io::Error),
    #[error(
        "another rollcall has held the migration lock of this database for {0} s: is one still \
         migrating it, or stuck?"
    )]
    MigrationLock(u64),
    #[error("unsupported database URL `{0}`: use sqlite://FILE or mysql://USER:PASS@HOST:PORT/DB")]
    UnsupportedUrl(String),
    /// The connection broke while a `COMMIT` was on its way: the rows may or may not exist, so
    /// the photos they would name are kept (a leftover is swept; a missing photo is a face lost).
    #[error(
        "the database connection broke during the commit (the change may have been stored): {0}"
    )]
    CommitUnknown(sqlx::Error),
}

impl StoreError {
    /// A fault of the disk rather than of the data: a photo that could not be written, or a
    /// database whose disk is full (SQLite's SQLITE_FULL; MySQL's "table is full", "disk full").
    pub fn storage(&self) -> Option<Storage> {
        match self {
            StoreError::Photo(e) => Some(Storage::of_error(e)),
            StoreError::Database(sqlx::Error::Database(e)) => {
                let full = if let Some(e) = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                {
                    matches!(e.number(), 1021 | 1114)
                } else {
                    e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                        && e.code()
                            .and_then(|c| c.parse::<i32>().ok())
                            .is_some_and(|c| c & 0xFF == SQLITE_FULL)
                };
                full.then_some(Storage::Full)
            }
            _ => None,
        }
    }
}

/// How long a starting server waits for another one's migrations (MySQL's named lock).
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(300);

/// SQLite's primary result code for "database or disk is full".
const SQLITE_FULL: i32 = 13;

/// The two backends.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Mysql(MySqlPool),
}

/// The database file of an SQLite URL; `None` for an in-memory database.
fn sqlite_file(options: &SqliteConnectOptions) -> Option<std::path::PathBuf> {
    let file = options.get_filename();
    let name = file.to_string_lossy();
    (!name.is_empty() && name != ":memory:" && !name.starts_with("file:")).then(|| file.to_owned())
}

/// Runs `$body` with `$pool` bound to the backend's pool; the body is compiled once per backend.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Mysql($pool) => $body,
        }
    };
}

/// Inserts one audit entry on `$conn` (a transaction, so the entry commits with the change it
/// records); expands once per backend inside [`with_pool!`].
macro_rules! insert_audit {
    ($conn:expr, $entry:expr) => {{
        let entry: &Entry = $entry;
        sqlx::query($crate::store::audit_log::INSERT)
            .bind($crate::store::DbTime(entry.at))
            .bind(entry.actor.label())
            .bind(entry.action.as_str())
            .bind(entry.target.as_deref())
            .bind(entry.address())
            .bind(entry.detail.as_deref())
            .execute($conn)
            .await?
    }};
}

mod accounts;
mod attendance;
mod audit_log;
#[macro_use]
mod changes;
mod challenges;
mod faces;
mod keys;
mod settings;

pub use accounts::{AccountLogin, AccountRecord, NewAccount};
pub use attendance::{AttendanceFilter, AttendanceRecord, CheckIn, NewCheckIn};
pub use changes::{ChangeKind, GalleryChange};
pub use keys::KeyRecord;

/// The id of the row an `INSERT` created (the two drivers name it differently).
trait InsertedId {
    fn inserted_id(&self) -> i64;
}

impl InsertedId for SqliteQueryResult {
    fn inserted_id(&self) -> i64 {
        self.last_insert_rowid()
    }
}

impl InsertedId for MySqlQueryResult {
    fn inserted_id(&self) -> i64 {
        // AUTO_INCREMENT BIGINT ids stay far below i64::MAX.
        i64::try_from(self.last_insert_id()).unwrap_or(i64::MAX)
    }
}

/// A registered person, as listed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub image_path: String,
    pub model: String,
    pub created_at: DateTime<Utc>,
    /// Reference embeddings: the one in `users` plus the extra rows in `faces`.
    pub faces: i64,
}

/// One reference embedding, with whose it is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmbeddingRow {
    pub user_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub model: String,
    pub embedding: Vec<u8>,
}

/// Where a reference photo's embedding is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingOwner {
    /// `users.embedding` of this user.
    User(i64),
    /// `faces.embedding` of this face row.
    Face(i64),
}

#[derive(Debug, Clone)]
pub struct ReferencePhoto {
    pub owner: EmbeddingOwner,
    pub user_id: i64,
    pub image_path: String,
    pub model: String,
    /// Where its face was found when registered; `None` for photos stored before that was
    /// kept (their subject is their face).
    pub face_box: Option<[f32; 4]>,
}

/// A reference face to store: its embedding bytes, its photo (staged on disk), where in the
/// photo the face is (the detection box) and where it came from.
pub struct NewFace {
    pub embedding: Vec<u8>,
    pub photo: StagedPhoto,
    pub face_box: [f32; 4],
    pub source: FaceSource,
}

/// A face box as stored: "x1,y1,x2,y2".
fn box_text(b: [f32; 4]) -> String {
    format!("{},{},{},{}", b[0], b[1], b[2], b[3])
}

/// A stored face box; `None` for NULL or a value that is not four finite numbers.
fn parse_box(text: Option<String>) -> Option<[f32; 4]> {
    let values: Vec<f32> = text?
        .split(',')
        .map(|v| v.trim().parse::<f32>().ok().filter(|x| x.is_finite()))
        .collect::<Option<_>>()?;
    values.try_into().ok()
}

/// What [`Store::add_faces`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum FacesAdded {
    NoUser,
    /// Nothing added: the person holds the cap already (or would pass it).
    AtCap,
    /// Added; the person as they are now.
    Added(UserRecord),
}

/// One more reference face of a user (at registration and by `add_faces`).
const INSERT_FACE: &str =
    "INSERT INTO faces (user_id, embedding, model, image_path, created_at, source, face_box) \
     VALUES (?, ?, ?, ?, ?, ?, ?)";

/// Inserts `$faces` (one more reference each) of `$user_id` on the transaction `$tx`, placing
/// each staged photo into `$placed`; expands once per backend inside [`with_pool!`].
macro_rules! insert_faces {
    ($tx:ident, $user_id:expr, $model:expr, $now:expr, $faces:expr, $placed:ident) => {{
        for face in $faces {
            sqlx::query(INSERT_FACE)
                .bind($user_id)
                .bind(&face.embedding)
                .bind($model)
                .bind(face.photo.image_path())
                .bind(DbTime($now))
                .bind(face.source.as_str())
                .bind(box_text(face.face_box))
                .execute(&mut *$tx)
                .await?;
            $placed.push(face.photo.place()?);
        }
    }};
}

/// Commits `$tx`, then keeps the `$placed` photos. When the commit's answer is lost (the
/// connection broke while it was on its way), the transaction may have committed: the photos
/// stay then too. A photo no row names is deleted by the next start's sweep; a committed row
/// whose photo was deleted would be a face lost for good.
macro_rules! commit_keeping {
    ($tx:ident, $placed:ident) => {{
        if let Err(e) = $tx.commit().await {
            if matches!(e, sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed) {
                $placed.into_iter().for_each(photos::PlacedPhoto::keep);
                return Err(StoreError::CommitUnknown(e));
            }
            return Err(e.into());
        }
        $placed.into_iter().for_each(photos::PlacedPhoto::keep);
    }};
}

const USER_COLUMNS: &str =
    "SELECT u.id, u.first_name, u.last_name, u.image_path, u.model, u.created_at, \
     (SELECT COUNT(*) FROM faces f WHERE f.user_id = u.id) + 1 AS faces FROM users u";

const ALL_EMBEDDINGS: &str =
    "SELECT id AS user_id, first_name, last_name, model, embedding FROM users \
     UNION ALL \
     SELECT f.user_id, u.first_name, u.last_name, f.model, f.embedding \
     FROM faces f JOIN users u ON u.id = f.user_id";

/// SQLITE_BUSY, with any of its extended codes.
fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

/// The SQLite pool. A first connection switches the file to WAL, which needs the file to
/// itself: servers opening one new file together can get SQLITE_BUSY there at once (SQLite
/// does not wait where waiting could deadlock), so that one error is retried for a while.
async fn connect_sqlite(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(20);
    loop {
        match SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
        {
            Err(sqlx::Error::Database(e))
                if is_busy(&*e) && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Open the database, creating an SQLite file (0600) when it does not exist yet.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                // Deleted rows are overwritten with zeros, not left in free space of the file.
                .pragma("secure_delete", "ON")
                // Writers queue instead of failing while another holds the lock.
                .busy_timeout(Duration::from_secs(30));
            let file = sqlite_file(&options);
            if let Some(file) = &file {
                private::prepare_sqlite(file)?;
            }
            let pool = connect_sqlite(options).await?;
            if let Some(file) = &file {
                // The -wal and -shm SQLite has just made.
                private::tighten_sqlite(file)?;
            }
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let url = url.replacen("mariadb:", "mysql:", 1);
            let pool = MySqlPoolOptions::new()
                .max_connections(8)
                // /health answers within a few seconds when the server is gone.
                .acquire_timeout(Duration::from_secs(3))
                .connect(&url)
                .await?;
            Ok(Store::Mysql(pool))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Mysql(_) => "mysql",
        }
    }

    /// Apply the backend's pending migrations, under a lock that servers starting together on
    /// one database take in turn: the first applies them, the others find them applied.
    ///
    /// sqlx's own lock is off: on MySQL it is `GET_LOCK(…, -1)` with its answer ignored, and
    /// MariaDB answers NULL to a negative wait without taking the lock (two servers then both
    /// insert version 1: `1062 Duplicate entry`); on SQLite it does nothing, and the second
    /// server's `CREATE TABLE` fails with "table … already exists".
    pub async fn migrate(&self) -> Result<(), StoreError> {
        use sqlx::Connection;
        match self {
            Store::Sqlite(pool) => {
                let mut migrator = sqlx::migrate!("migrations/sqlite");
                migrator.set_locking(false);
                let mut conn = pool.acquire().await?;
                // IMMEDIATE takes the write lock at once, whatever the first statement is:
                // another process waits (busy_timeout) until this one has committed every
                // migration, then sees them applied.
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                migrator.run_direct(&mut *tx).await?;
                tx.commit().await?;
            }
            Store::Mysql(pool) => {
                let mut migrator = sqlx::migrate!("migrations/mysql");
                migrator.set_locking(false);
                // A connection of its own, closed afterwards: the named lock belongs to the
                // session, so closing it releases the lock whatever happened meanwhile.
                let mut conn = pool.acquire().await?.detach();
                let got: Option<i64> = sqlx::query_scalar(
                    "SELECT GET_LOCK(CONCAT('rollcall_migrate_', SHA1(DATABASE())), ?)",
                )
                .bind(MIGRATION_LOCK_WAIT.as_secs())
                .fetch_one(&mut conn)
                .await?;
                if got != Some(1) {
                    let _ = conn.close().await;
                    return Err(StoreError::MigrationLock(MIGRATION_LOCK_WAIT.as_secs()));
                }
                let result = migrator.run_direct(&mut conn).await;
                let _ = conn.close().await;
                result?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)?);
        Ok(())
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let n: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Everyone, sorted by last name, first name.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("{USER_COLUMNS} ORDER BY u.last_name, u.first_name, u.id");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    pub async fn get_user(&self, id: i64) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("{USER_COLUMNS} WHERE u.id = ?");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    /// Insert a person with their reference faces (the first goes into `users`, the others into
    /// `faces`), placing each photo under its final name before the commit. `audit` is written
    /// in the same transaction, its target set to the new user.
    pub async fn create_user(
        &self,
        name: &PersonName,
        model: &str,
        faces: Vec<NewFace>,
        now: DateTime<Utc>,
        audit: Entry,
    ) -> Result<UserRecord, StoreError> {
        let mut faces = faces.into_iter();
        let Some(first) = faces.next() else {
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "a user needs at least one reference face".into(),
            )));
        };
        let id = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id = sqlx::query(
                "INSERT INTO users (first_name, last_name, embedding, image_path, model, created_at, \
                 face_added_at, face_source, face_box) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(name.first.as_str())
            .bind(name.last.as_str())
            .bind(&first.embedding)
            .bind(first.photo.image_path())
            .bind(model)
            .bind(DbTime(now))
            .bind(DbTime(now))
            .bind(first.source.as_str())
            .bind(box_text(first.face_box))
            .execute(&mut *tx)
            .await?
            .inserted_id();
            insert_audit!(&mut *tx, &audit.target(Target::user(id)));
            let mut placed = vec![first.photo.place()?];
            insert_faces!(tx, id, model, now, faces, placed);
            log_gallery_change!(tx, id, ChangeKind::Register);
            commit_keeping!(tx, placed);
            id
        });
        self.get_user(id)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Add reference faces to a person (all or none), writing `audit` in the same transaction.
    /// With `cap`, nothing is added when the person would then hold more than `cap` references:
    /// the count is taken under the lock of the person's row, inside the transaction that
    /// inserts, so two requests (or two servers) adding at once cannot both pass it.
    pub async fn add_faces(
        &self,
        user_id: i64,
        model: &str,
        faces: Vec<NewFace>,
        cap: Option<i64>,
        now: DateTime<Utc>,
        audit: &Entry,
    ) -> Result<FacesAdded, StoreError> {
        let adding = i64::try_from(faces.len()).unwrap_or(i64::MAX);
        let outcome = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Writing the person's row first takes its lock (InnoDB) or the write lock
            // (SQLite) until the commit; the count below is read after it, so it sees every
            // face another transaction added before.
            sqlx::query("UPDATE users SET first_name = first_name WHERE id = ?")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM faces f WHERE f.user_id = u.id) + 1 FROM users u \
                 WHERE u.id = ?",
            )
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            match held {
                None => {
                    tx.rollback().await?;
                    Some(FacesAdded::NoUser)
                }
                Some(held) if cap.is_some_and(|cap| held.saturating_add(adding) > cap) => {
                    tx.rollback().await?;
                    Some(FacesAdded::AtCap)
                }
                Some(_) => {
                    let mut placed = Vec::with_capacity(faces.len());
                    insert_faces!(tx, user_id, model, now, faces, placed);
                    insert_audit!(&mut *tx, audit);
                    log_gallery_change!(tx, user_id, ChangeKind::AddFace);
                    commit_keeping!(tx, placed);
                    None
                }
            }
        });
        // `None`: added; the person as they are now (gone again if deleted since the commit).
        Ok(match outcome {
            Some(refused) => refused,
            None => match self.get_user(user_id).await? {
                Some(user) => FacesAdded::Added(user),
                None => FacesAdded::NoUser,
            },
        })
    }

    /// Delete a person and their faces (and, with `history`, their attendance), writing `audit`
    /// in the same transaction. Returns the photo paths to delete once this has committed,
    /// `None` when there is no such person.
    pub async fn delete_user(
        &self,
        id: i64,
        history: bool,
        audit: &Entry,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let deleted = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let main: Option<String> = sqlx::query_scalar("SELECT image_path FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            match main {
                None => None,
                Some(main) => {
                    let mut paths: Vec<String> =
                        sqlx::query_scalar("SELECT image_path FROM faces WHERE user_id = ?")
                            .bind(id)
                            .fetch_all(&mut *tx)
                            .await?;
                    paths.insert(0, main);
                    sqlx::query("DELETE FROM faces WHERE user_id = ?").bind(id).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM users WHERE id = ?").bind(id).execute(&mut *tx).await?;
                    if history {
                        sqlx::query("DELETE FROM attendance WHERE user_id = ?")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    insert_audit!(&mut *tx, audit);
                    log_gallery_change!(tx, id, ChangeKind::DeleteUser);
                    tx.commit().await?;
                    Some(paths)
                }
            }
        });
        if deleted.is_some() {
            // The deletion has committed: a failed checkpoint must not undo the answer.
            if let Err(e) = self.forget_deleted().await {
                tracing::warn!("after a deletion: {e}");
            }
        }
        Ok(deleted)
    }

    /// After a deletion: leave no copy of what was deleted in the database files. SQLite's
    /// `secure_delete` zeroes the rows in the database file, but the write-ahead log still holds
    /// the pages as they were; a TRUNCATE checkpoint writes the log into the database and empties
    /// it. (MySQL: see docs/privacy.md — InnoDB pages, undo and redo logs and the binary log are
    /// the server's, out of rollcall's reach.)
    pub async fn forget_deleted(&self) -> Result<(), StoreError> {
        if let Store::Sqlite(pool) = self {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(pool)
                .await?;
            if busy != 0 {
                // A reader kept a snapshot open; the next deletion or start retries.
                tracing::warn!(
                    "the write-ahead log could not be emptied after a deletion: a reader was busy"
                );
            }
        }
        Ok(())
    }

    /// Every reference embedding (all models), for the gallery.
    pub async fn all_embeddings(&self) -> Result<Vec<EmbeddingRow>, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_as(ALL_EMBEDDINGS).fetch_all(pool).await?))
    }

    /// Every reference embedding handed to `each` as it arrives, so that a million of them are
    /// never all in memory at once (the gallery's load at start).
    pub async fn for_each_embedding(
        &self,
        mut each: impl FnMut(EmbeddingRow),
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        with_pool!(self, pool => {
            let mut rows = sqlx::query_as::<_, EmbeddingRow>(ALL_EMBEDDINGS).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                each(row);
            }
        });
        Ok(())
    }

    /// Every stored photo path (for the start-up sweep of the photo store).
    pub async fn all_image_paths(&self) -> Result<HashSet<String>, StoreError> {
        const SQL: &str = "SELECT image_path FROM users UNION ALL SELECT image_path FROM faces";
        let paths: Vec<String> =
            with_pool!(self, pool => sqlx::query_scalar(SQL).fetch_all(pool).await?);
        Ok(paths.into_iter().collect())
    }

    /// Every reference photo with where its embedding lives (for `reindex`).
    pub async fn reference_photos(&self) -> Result<Vec<ReferencePhoto>, StoreError> {
        type Row = (i64, String, String, Option<String>);
        let users: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id, image_path, model, face_box FROM users ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        let faces: Vec<(i64, i64, String, String, Option<String>)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT id, user_id, image_path, model, face_box FROM faces ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        let users = users
            .into_iter()
            .map(|(id, image_path, model, face_box)| ReferencePhoto {
                owner: EmbeddingOwner::User(id),
                user_id: id,
                image_path,
                model,
                face_box: parse_box(face_box),
            });
        let faces =
            faces.into_iter().map(
                |(id, user_id, image_path, model, face_box)| ReferencePhoto {
                    owner: EmbeddingOwner::Face(id),
                    user_id,
                    image_path,
                    model,
                    face_box: parse_box(face_box),
                },
            );
        Ok(users.chain(faces).collect())
    }

    /// Replace one stored embedding of `user_id` (after re-embedding its photo with another
    /// model).
    pub async fn set_embedding(
        &self,
        user_id: i64,
        owner: EmbeddingOwner,
        embedding: &[u8],
        model: &str,
    ) -> Result<(), StoreError> {
        let (sql, id) = match owner {
            EmbeddingOwner::User(id) => {
                ("UPDATE users SET embedding = ?, model = ? WHERE id = ?", id)
            }
            EmbeddingOwner::Face(id) => {
                ("UPDATE faces SET embedding = ?, model = ? WHERE id = ?", id)
            }
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql).bind(embedding).bind(model).bind(id).execute(&mut *tx).await?;
            log_gallery_change!(tx, user_id, ChangeKind::Reindex);
            tx.commit().await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod face_box_tests {
    use super::{box_text, parse_box};

    #[test]
    fn a_face_box_is_stored_and_read_back_as_it_was() {
        let b = [83.50556, 65.68585, 171.39305, 182.2286];
        assert_eq!(parse_box(Some(box_text(b))), Some(b));
        assert_eq!(parse_box(None), None);
        for bad in [
            "",
            "1,2,3",
            "1,2,3,4,5",
            "1,2,x,4",
            "1,2,NaN,4",
            "1,2,inf,4",
        ] {
            assert_eq!(parse_box(Some(bad.into())), None, "{bad}");
        }
    }
}
