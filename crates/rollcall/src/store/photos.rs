//! Reference photos on disk: `<data-dir>/img_refs/<uuid>.<ext>`.
//!
//! A photo and the row naming it must appear and disappear together. Registration therefore
//! runs: [`PhotoDir::stage`] (write `img_refs/.tmp-<uuid>.<ext>`) → insert the rows in a
//! transaction → [`StagedPhoto::place`] (rename to `<uuid>.<ext>`) → commit →
//! [`PlacedPhoto::keep`]. An error at any step drops the guards, which delete what was written;
//! a kill leaves at most a temp file or a placed file no committed row names, and
//! [`PhotoDir::sweep`] deletes both at the next start. A committed row always names a file that
//! was renamed into place before the commit.

use crate::domain::ImageFormat;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The directory name inside the data directory, as stored in `image_path`.
pub const DIR_NAME: &str = "img_refs";
const TEMP_PREFIX: &str = ".tmp-";

/// Placed files younger than this are left alone by [`PhotoDir::sweep`]: they may belong to a
/// registration still in flight in another process (the CLI beside a running server).
const SWEEP_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct PhotoDir {
    data_dir: PathBuf,
}

impl PhotoDir {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        PhotoDir {
            data_dir: data_dir.into(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.data_dir.join(DIR_NAME)
    }

    /// The file a stored `image_path` names. `None` for paths that try to leave the directory.
    pub fn resolve(&self, image_path: &str) -> Option<PathBuf> {
        let name = image_path.strip_prefix(DIR_NAME)?.strip_prefix('/')?;
        let ok = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        ok.then(|| self.dir().join(name))
    }

    /// Write `bytes` to a temp file; nothing is visible under a final name yet.
    pub fn stage(&self, bytes: &[u8], format: ImageFormat) -> std::io::Result<StagedPhoto> {
        let dir = self.dir();
        super::private::create_dir(&dir)?;
        let name = format!("{}.{}", uuid::Uuid::new_v4(), format.extension());
        let temp = dir.join(format!("{TEMP_PREFIX}{name}"));
        let staged = StagedPhoto {
            temp,
            target: dir.join(&name),
            image_path: format!("{DIR_NAME}/{name}"),
        };
        let mut file = super::private::create_file(&staged.temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Delete the files of deleted rows (after their transaction committed). A failure is logged:
    /// the next start's sweep retries it.
    pub fn remove(&self, image_paths: &[String]) {
        for p in image_paths {
            if let Some(path) = self.resolve(p) {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!("could not delete {}: {e}", path.display());
                    }
                }
            }
        }
    }

    /// Delete temp files and placed files that no row names (`referenced` holds the stored
    /// `image_path`s). Returns how many files were deleted.
    pub fn sweep(&self, referenced: &HashSet<String>) -> std::io::Result<usize> {
        let entries = match std::fs::read_dir(self.dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let young = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age < SWEEP_GRACE);
            let stale = if name.starts_with(TEMP_PREFIX) {
                !young
            } else {
                !young && !referenced.contains(&format!("{DIR_NAME}/{name}"))
            };
            if stale {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Whether reference photos can be written: what `/health` reports as `storage`, and what a
/// failed photo write answers (`storage_full`, `storage_unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Ok,
    /// No space (or quota) left on the disk.
    Full,
    /// The folder cannot be written: read-only, permissions, missing, failing.
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

impl PhotoDir {
    /// Can a photo be written now? A small temp file is written and deleted (a full disk or a
    /// read-only mount only shows when writing).
    pub fn probe(&self) -> Storage {
        let dir = self.dir();
        let probe = dir.join(format!("{TEMP_PREFIX}probe-{}", uuid::Uuid::new_v4()));
        let written = super::private::create_dir(&dir)
            .and_then(|()| super::private::create_file(&probe))
            .and_then(|mut file| file.write_all(&[0u8; PROBE_BYTES]));
        let _ = std::fs::remove_file(&probe);
        match written {
            Ok(()) => Storage::Ok,
            Err(e) => {
                let state = Storage::of_error(&e);
                tracing::warn!("photo store {}: {}: {e}", dir.display(), state.as_str());
                state
            }
        }
    }
}

/// The probe's size: a page of a typical file system.
const PROBE_BYTES: usize = 4096;

/// A photo written under a temp name. Dropping it deletes the temp file.
#[derive(Debug)]
pub struct StagedPhoto {
    temp: PathBuf,
    target: PathBuf,
    image_path: String,
}

impl StagedPhoto {
    /// What the row stores: `img_refs/<uuid>.<ext>`.
    pub fn image_path(&self) -> &str {
        &self.image_path
    }

    /// Rename into place (call inside the transaction, before commit).
    pub fn place(mut self) -> std::io::Result<PlacedPhoto> {
        std::fs::rename(&self.temp, &self.target)?;
        let target = std::mem::take(&mut self.target);
        self.temp = PathBuf::new();
        Ok(PlacedPhoto { path: Some(target) })
    }
}

impl Drop for StagedPhoto {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A photo under its final name whose row is not committed yet. Dropping it without
/// [`PlacedPhoto::keep`] deletes the file.
#[derive(Debug)]
pub struct PlacedPhoto {
    path: Option<PathBuf>,
}

impl PlacedPhoto {
    /// The row is committed: the file stays.
    pub fn keep(mut self) {
        self.path = None;
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Drop for PlacedPhoto {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_photos_vanish_unless_placed_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let photos = PhotoDir::new(tmp.path());
        let count = || std::fs::read_dir(photos.dir()).unwrap().count();

        drop(photos.stage(b"abc", ImageFormat::Jpeg).unwrap());
        assert_eq!(count(), 0);

        let placed = photos
            .stage(b"abc", ImageFormat::Png)
            .unwrap()
            .place()
            .unwrap();
        assert_eq!(count(), 1);
        drop(placed);
        assert_eq!(count(), 0);

        let staged = photos.stage(b"abc", ImageFormat::Png).unwrap();
        let stored = staged.image_path().to_owned();
        staged.place().unwrap().keep();
        assert!(photos.resolve(&stored).unwrap().exists());
        assert!(photos.resolve("img_refs/../rollcall.db").is_none());
        assert!(photos.resolve("/etc/passwd").is_none());
    }

    #[test]
    fn the_sweep_deletes_old_temp_and_unreferenced_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let photos = PhotoDir::new(tmp.path());
        std::fs::create_dir_all(photos.dir()).unwrap();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let make = |name: &str, old: bool| {
            let file = std::fs::File::create(photos.dir().join(name)).unwrap();
            if old {
                file.set_modified(an_hour_ago).unwrap();
            }
        };
        make(".tmp-a.jpg", true); // interrupted before the insert
        make("b.jpg", true); // placed, but its transaction never committed
        make("c.jpg", true); // referenced by a row
        make(".tmp-d.jpg", false); // another process's registration in flight
        make("e.jpg", false);
        let referenced = HashSet::from(["img_refs/c.jpg".to_owned()]);
        assert_eq!(photos.sweep(&referenced).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(photos.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![".tmp-d.jpg", "c.jpg", "e.jpg"]);
    }
}
