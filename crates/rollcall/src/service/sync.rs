//! The gallery follows the database: every change to a person's references is logged with it
//! ([`crate::store::ChangeKind`]; ids commit in order, without gaps), and every server applies
//! the log after its cursor every `--sync-interval-ms`, re-reading from the database only the
//! people named there. The server's own changes go through the same road right after they
//! commit, so one lock orders every update of the gallery and the cursor: a person deleted
//! elsewhere is never put back by a late local update. Re-applying a change is harmless (the
//! person is re-read as they are now), so a pass cut short is simply run again.
//!
//! When the log no longer holds the changes after the cursor (pruned while this server was cut
//! off, or the database replaced), the whole gallery is reloaded. While the database does not
//! answer, the last gallery keeps serving; the failure is logged once, and so is the recovery.

use super::{Rollcall, ServiceError};
use crate::domain::Embedding;
use crate::gallery::LoadReport;
use crate::store::{EmbeddingRow, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long changes stay in the log: a server cut off for longer reloads its whole gallery.
pub const KEEP_CHANGES: Duration = Duration::from_secs(3600);

/// How often a server prunes the log.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Changes read at once.
const BATCH: u32 = 1000;

/// A query of a pass that takes longer fails the pass (a database that does not answer would
/// otherwise hold the next passes, and the server's own changes, for as long as the pool waits).
/// Only the queries: the gallery's own work is never cut short, so a long pass still progresses.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// `query`, failed when the database does not answer within [`QUERY_TIMEOUT`].
async fn within<T>(
    query: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, ServiceError> {
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ServiceError::Store(StoreError::Database(sqlx::Error::Io(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the database did not answer within {QUERY_TIMEOUT:?}"),
            ),
        )))),
    }
}

/// The cursor and what `/health` says of it.
pub(super) struct GallerySync {
    /// The last change applied. Its lock is held for a whole pass: the gallery and the cursor
    /// move together, one pass at a time.
    cursor: tokio::sync::Mutex<i64>,
    state: std::sync::Mutex<SyncState>,
}

struct SyncState {
    synced_at: DateTime<Utc>,
    /// The last pass failed (its error has been logged once).
    failing: bool,
}

impl GallerySync {
    /// A gallery loaded after reading `head`, at `loaded_at`.
    pub(super) fn new(head: i64, loaded_at: DateTime<Utc>) -> Self {
        GallerySync {
            cursor: tokio::sync::Mutex::new(head),
            state: std::sync::Mutex::new(SyncState {
                synced_at: loaded_at,
                failing: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SyncState> {
        // Two plain fields, never left half-written: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How current the gallery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStatus {
    /// Every change committed before this instant is in the gallery.
    pub synced_at: DateTime<Utc>,
    /// The last pass failed: the gallery is as it was at `synced_at`.
    pub failing: bool,
}

impl SyncStatus {
    /// How far behind the database the gallery may be.
    pub fn lag(&self) -> Duration {
        (Utc::now() - self.synced_at).to_std().unwrap_or_default()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Changes read from the log.
    pub changes: usize,
    /// People re-read from the database.
    pub people: usize,
    /// The whole gallery was reloaded (the log had been pruned past the cursor).
    pub reloaded: bool,
}

impl Rollcall {
    /// Apply the changes logged since the last pass. Failures are logged once until a pass
    /// succeeds again.
    pub async fn sync_gallery(&self) -> Result<SyncReport, ServiceError> {
        let started = Utc::now();
        let mut cursor = self.sync.cursor.lock().await;
        let result = self.apply_log(&mut cursor).await;
        drop(cursor);
        let mut state = self.sync.state();
        match &result {
            Ok(report) => {
                if state.failing {
                    tracing::info!(
                        "gallery sync: the database answers again; {} change(s) applied{}",
                        report.changes,
                        if report.reloaded {
                            ", gallery reloaded"
                        } else {
                            ""
                        }
                    );
                } else if report.reloaded {
                    tracing::info!("gallery sync: the log no longer reaches back here: reloaded");
                }
                state.failing = false;
                // Passes may end out of order (the poller's and one after a local change).
                state.synced_at = state.synced_at.max(started);
                metrics::counter!("rollcall_gallery_sync_changes_total")
                    .increment(report.changes as u64);
                if report.reloaded {
                    metrics::counter!("rollcall_gallery_reloads_total").increment(1);
                }
            }
            Err(e) if !state.failing => {
                state.failing = true;
                tracing::warn!(
                    "gallery sync: {e}; serving the gallery as it was at {}, retrying",
                    state.synced_at.to_rfc3339()
                );
            }
            Err(_) => {}
        }
        result
    }

    /// After a change of this process has committed: bring the gallery up to it (and to
    /// whatever else is in the log). A failure leaves it to the next pass.
    pub(super) async fn follow_own_change(&self) {
        let _ = self.sync_gallery().await;
    }

    /// Reload the whole gallery and move the cursor to the head of the log.
    pub(super) async fn reload_gallery(&self) -> Result<LoadReport, ServiceError> {
        let started = Utc::now();
        let mut cursor = self.sync.cursor.lock().await;
        let (head, report) = self.load_all().await?;
        *cursor = head;
        let mut state = self.sync.state();
        state.synced_at = state.synced_at.max(started);
        Ok(report)
    }

    /// How current the gallery is (`/health`, `/metrics`).
    pub fn gallery_sync(&self) -> SyncStatus {
        let state = self.sync.state();
        SyncStatus {
            synced_at: state.synced_at,
            failing: state.failing,
        }
    }

    /// Delete changes older than [`KEEP_CHANGES`] (any server may; each does it now and then).
    pub async fn prune_gallery_log(&self) {
        let Ok(keep) = chrono::Duration::from_std(KEEP_CHANGES) else {
            return;
        };
        match within(self.store.prune_gallery_changes(Utc::now() - keep)).await {
            Ok(n) if n > 0 => tracing::debug!("gallery sync: pruned {n} old change(s)"),
            Ok(_) => {}
            // The passes log the database's absence, once.
            Err(e) => tracing::debug!("gallery sync: pruning: {e}"),
        }
    }

    /// The head of the log, then everything: changes after that head are applied later (again,
    /// harmlessly, if the load already saw them).
    async fn load_all(&self) -> Result<(i64, LoadReport), ServiceError> {
        let head = within(self.store.gallery_head()).await?;
        let rows = within(self.store.all_embeddings()).await?;
        Ok((head, self.gallery.load(rows)))
    }

    async fn apply_log(&self, cursor: &mut i64) -> Result<SyncReport, ServiceError> {
        let mut report = SyncReport::default();
        loop {
            let head = within(self.store.gallery_head()).await?;
            if head == *cursor {
                return Ok(report);
            }
            let mut changes = if head > *cursor {
                within(self.store.gallery_changes(*cursor, BATCH)).await?
            } else {
                Vec::new()
            };
            // Committed after `head` was read: the next round takes them.
            changes.retain(|c| c.id <= head);
            let expected = (head - *cursor).min(i64::from(BATCH));
            // Ids have no gaps: anything else means the log was pruned past the cursor, or the
            // database is another one (restored, replaced: its head may even be behind).
            let whole = changes.len() as i64 == expected
                && changes
                    .iter()
                    .zip(*cursor + 1..)
                    .all(|(change, id)| change.id == id);
            if !whole {
                let (head, _) = self.load_all().await?;
                *cursor = head;
                report.reloaded = true;
                return Ok(report);
            }
            let people: BTreeSet<i64> = changes.iter().map(|c| c.user_id).collect();
            let people: Vec<i64> = people.into_iter().collect();
            let rows = within(self.store.embeddings_of(&people)).await?;
            self.replace_people(&people, rows);
            report.changes += changes.len();
            report.people += people.len();
            if let Some(last) = changes.last() {
                *cursor = last.id;
            }
        }
    }

    /// Put each of `people` in the gallery as `rows` say they are now (out, when they have no
    /// reference of the model in use, or no longer exist).
    fn replace_people(&self, people: &[i64], rows: Vec<EmbeddingRow>) {
        let mut now: BTreeMap<i64, (String, String, Vec<Embedding>)> = BTreeMap::new();
        for row in rows {
            if row.model != self.gallery.model() {
                continue;
            }
            let Some(embedding) = Embedding::from_le_bytes(&row.embedding) else {
                continue;
            };
            now.entry(row.user_id)
                .or_insert_with(|| (row.first_name, row.last_name, Vec::new()))
                .2
                .push(embedding);
        }
        for id in people {
            // In one step, so a verify never finds the person missing half way.
            match now.remove(id) {
                Some((first, last, refs)) => self.gallery.replace(*id, &first, &last, refs),
                None => self.gallery.remove(*id),
            }
        }
    }
}
