//! Reference photos, in one of two stores behind [`PhotoStore`]: files in
//! `<data-dir>/img_refs/` (the default, [`PhotoDir`]) or objects in an S3-compatible bucket
//! (`--photo-store s3://BUCKET[/prefix]`, [`PhotoBucket`]). Rows store the same
//! `img_refs/<uuid>.<ext>` either way.
//!
//! A photo and the row naming it must appear and disappear together. Registration therefore
//! runs: [`PhotoStore::stage`] → insert the rows in a transaction → [`StagedPhoto::place`] →
//! commit → [`PlacedPhoto::keep`]. An error at any step drops the guards, which delete what was
//! written; a kill leaves only photos no committed row names, and [`PhotoStore::sweep`] deletes
//! them at the next start once they are older than [`SWEEP_GRACE`]. A committed row always
//! names a photo that was in place before the commit.
//!
//! - In the directory, `stage` writes `img_refs/.tmp-<uuid>.<ext>` and `place` renames it.
//! - A bucket has no atomic rename: `stage` writes the object under its final random key, and
//!   `place` has nothing left to do. Until the commit the key is named by no row, so a failed
//!   transaction deletes the object, and a crash leaves an unreferenced object for the sweep
//!   (which goes by the objects' last-modified time).

mod bucket;
mod dir;

pub use crate::photo_location::{BucketLocation, PhotoLocation};
pub use bucket::PhotoBucket;
pub use dir::PhotoDir;

use crate::domain::ImageFormat;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory name inside the data directory (and the key prefix inside a bucket), as
/// stored in `image_path`.
pub const DIR_NAME: &str = "img_refs";
const TEMP_PREFIX: &str = ".tmp-";

/// Photos younger than this are left alone by [`PhotoStore::sweep`]: they may belong to a
/// registration still in flight in another process (the CLI or another server).
pub const SWEEP_GRACE: Duration = Duration::from_secs(60);

/// The reference photos' store.
#[derive(Debug, Clone)]
pub enum PhotoStore {
    Dir(PhotoDir),
    Bucket(PhotoBucket),
}

/// A photo store that cannot be used at start, said for the person who configured it.
#[derive(Debug, thiserror::Error)]
#[error("--photo-store {location}: {reason}")]
pub struct PhotoStoreError {
    pub location: String,
    pub reason: String,
}

impl PhotoStore {
    /// Open the store `location` names and check that a photo can be written there: a missing
    /// bucket, refused credentials or an unreachable store stop the start with one clear line.
    pub async fn open(
        location: &PhotoLocation,
        data_dir: &Path,
    ) -> Result<PhotoStore, PhotoStoreError> {
        match location {
            PhotoLocation::DataDir => Ok(PhotoStore::Dir(PhotoDir::new(data_dir))),
            PhotoLocation::Bucket(b) => Ok(PhotoStore::Bucket(PhotoBucket::open(b).await?)),
        }
    }

    /// For log lines: the folder or the bucket URL (never credentials).
    pub fn describe(&self) -> String {
        match self {
            PhotoStore::Dir(d) => d.dir().display().to_string(),
            PhotoStore::Bucket(b) => b.location().to_owned(),
        }
    }

    /// Write a photo where nothing names it yet (see the module's protocol).
    pub async fn stage(&self, bytes: &[u8], format: ImageFormat) -> std::io::Result<StagedPhoto> {
        let name = format!("{}.{}", uuid::Uuid::new_v4(), format.extension());
        let image_path = format!("{DIR_NAME}/{name}");
        let state = match self {
            PhotoStore::Dir(d) => {
                let t = d.stage(bytes, &name)?;
                Staged::Temp {
                    temp: t.temp,
                    target: t.target,
                }
            }
            PhotoStore::Bucket(b) => {
                b.put(&name, bytes).await?;
                Staged::Object(b.clone(), name)
            }
        };
        Ok(StagedPhoto { image_path, state })
    }

    /// Delete what the photos `image_paths` were staged as, and wait for it: for a registration
    /// whose rows were not stored (the guards do it too, but a bucket's deletes would only run
    /// later, in the background).
    pub async fn discard(&self, image_paths: &[String]) {
        match self {
            PhotoStore::Dir(d) => {
                for p in image_paths {
                    if let Some(name) = file_name(p) {
                        dir::remove_file(&d.dir().join(format!("{TEMP_PREFIX}{name}")));
                    }
                }
                d.remove(image_paths);
            }
            PhotoStore::Bucket(b) => b.remove(image_paths).await,
        }
    }

    /// The bytes of a stored photo; `None` when the path is not one of ours or the photo is not
    /// there. An error is a store that cannot be read.
    pub async fn read(&self, image_path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match self {
            PhotoStore::Dir(d) => d.read(image_path).await,
            PhotoStore::Bucket(b) => b.read(image_path).await,
        }
    }

    /// Delete the photos of deleted rows (after their transaction committed). A failure is
    /// logged: the next start's sweep retries it.
    pub async fn remove(&self, image_paths: &[String]) {
        match self {
            PhotoStore::Dir(d) => d.remove(image_paths),
            PhotoStore::Bucket(b) => b.remove(image_paths).await,
        }
    }

    /// Delete leftovers older than [`SWEEP_GRACE`]: temp files, and photos no row names
    /// (`referenced` holds the stored `image_path`s). Returns how many were deleted.
    pub async fn sweep(&self, referenced: &HashSet<String>) -> std::io::Result<usize> {
        self.sweep_older_than(referenced, SWEEP_GRACE).await
    }

    /// [`sweep`](Self::sweep) with another grace period.
    pub async fn sweep_older_than(
        &self,
        referenced: &HashSet<String>,
        grace: Duration,
    ) -> std::io::Result<usize> {
        match self {
            PhotoStore::Dir(d) => d.sweep(referenced, grace),
            PhotoStore::Bucket(b) => b.sweep(referenced, grace).await,
        }
    }

    /// Can a photo be written now? (`/health`)
    pub async fn probe(&self) -> Storage {
        match self {
            PhotoStore::Dir(d) => {
                let d = d.clone();
                tokio::task::spawn_blocking(move || d.probe())
                    .await
                    .unwrap_or(Storage::Unavailable)
            }
            PhotoStore::Bucket(b) => b.probe().await,
        }
    }
}

/// The file or object name a stored `image_path` names: `None` for paths that try to leave
/// the store, or name a temp file.
fn file_name(image_path: &str) -> Option<&str> {
    let name = image_path.strip_prefix(DIR_NAME)?.strip_prefix('/')?;
    let ok = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
    ok.then_some(name)
}

/// Whether the sweep deletes `name` (a file or object directly in `img_refs/`).
fn stale(name: &str, young: bool, referenced: &HashSet<String>) -> bool {
    if young {
        return false;
    }
    name.starts_with(TEMP_PREFIX) || !referenced.contains(&format!("{DIR_NAME}/{name}"))
}

/// Whether reference photos can be written: what `/health` reports as `storage`, and what a
/// failed photo write answers (`storage_full`, `storage_unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Ok,
    /// No space (or quota) left on the disk.
    Full,
    /// The store cannot be written: a read-only, missing or failing folder; a bucket that is
    /// unreachable, missing, or refuses the credentials.
    Unavailable,
}

impl Storage {
    /// What a failed write says about the store.
    pub fn of_error(e: &std::io::Error) -> Storage {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                Storage::Full
            }
            _ => Storage::Unavailable,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Ok => "ok",
            Storage::Full => "full",
            Storage::Unavailable => "unavailable",
        }
    }
}

/// A photo written where no row names it yet. Dropping it deletes what was written.
#[derive(Debug)]
pub struct StagedPhoto {
    image_path: String,
    state: Staged,
}

#[derive(Debug)]
enum Staged {
    /// In the directory under its temp name, to be renamed to `target`.
    Temp { temp: PathBuf, target: PathBuf },
    /// In the bucket under its final name already.
    Object(PhotoBucket, String),
    /// Placed: the [`PlacedPhoto`] owns it now.
    Moved,
}

impl StagedPhoto {
    /// What the row stores: `img_refs/<uuid>.<ext>`.
    pub fn image_path(&self) -> &str {
        &self.image_path
    }

    /// Put under the final name (call inside the transaction, before commit).
    pub fn place(mut self) -> std::io::Result<PlacedPhoto> {
        let written = match std::mem::replace(&mut self.state, Staged::Moved) {
            Staged::Temp { temp, target } => {
                if let Err(e) = std::fs::rename(&temp, &target) {
                    self.state = Staged::Temp { temp, target };
                    return Err(e);
                }
                Some(Written::File(target))
            }
            Staged::Object(bucket, name) => Some(Written::Object(bucket, name)),
            Staged::Moved => None,
        };
        Ok(PlacedPhoto { written })
    }
}

impl Drop for StagedPhoto {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, Staged::Moved) {
            Staged::Temp { temp, .. } => {
                let _ = std::fs::remove_file(temp);
            }
            Staged::Object(bucket, name) => bucket.delete_in_background(name),
            Staged::Moved => {}
        }
    }
}

/// A photo under its final name whose row is not committed yet. Dropping it without
/// [`PlacedPhoto::keep`] deletes it.
#[derive(Debug)]
pub struct PlacedPhoto {
    written: Option<Written>,
}

#[derive(Debug)]
enum Written {
    File(PathBuf),
    Object(PhotoBucket, String),
}

impl PlacedPhoto {
    /// The row is committed: the photo stays.
    pub fn keep(mut self) {
        self.written = None;
    }
}

impl Drop for PlacedPhoto {
    fn drop(&mut self) {
        match self.written.take() {
            Some(Written::File(p)) => {
                let _ = std::fs::remove_file(p);
            }
            Some(Written::Object(bucket, name)) => bucket.delete_in_background(name),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_directly_in_the_store_are_resolved() {
        assert_eq!(file_name("img_refs/a.jpg"), Some("a.jpg"));
        for bad in [
            "img_refs/../rollcall.db",
            "img_refs/.tmp-a.jpg",
            "img_refs/",
            "img_refs/a/b.jpg",
            "img_refs\\a.jpg",
            "/etc/passwd",
            "other/a.jpg",
        ] {
            assert_eq!(file_name(bad), None, "{bad}");
        }
    }
}
