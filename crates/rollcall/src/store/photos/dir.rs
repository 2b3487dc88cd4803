//! The default photo store: files in `<data-dir>/img_refs/`, 0700 folder, 0600 files.
//!
//! A photo is first written under a temp name (`img_refs/.tmp-<uuid>.<ext>`), renamed to its
//! final name inside the transaction of its row, before the commit.

use super::{file_name, Storage, DIR_NAME, TEMP_PREFIX};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct PhotoDir {
    data_dir: PathBuf,
}

/// A photo written under its temp name: what [`super::StagedPhoto`] renames into place.
#[derive(Debug)]
pub(super) struct TempFile {
    pub temp: PathBuf,
    pub target: PathBuf,
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
        file_name(image_path).map(|name| self.dir().join(name))
    }

    /// Write `bytes` to a temp file named for `name`; nothing is visible under a final name yet.
    pub(super) fn stage(&self, bytes: &[u8], name: &str) -> std::io::Result<TempFile> {
        let dir = self.dir();
        super::super::private::create_dir(&dir)?;
        let staged = TempFile {
            temp: dir.join(format!("{TEMP_PREFIX}{name}")),
            target: dir.join(name),
        };
        let mut file = super::super::private::create_file(&staged.temp)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&staged.temp);
            return Err(e);
        }
        Ok(staged)
    }

    /// The bytes of a stored photo; `None` when the path is not one of ours or the file is gone.
    pub async fn read(&self, image_path: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(path) = self.resolve(image_path) else {
            return Ok(None);
        };
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Delete the files of deleted rows (after their transaction committed). A failure is logged:
    /// the next start's sweep retries it.
    pub fn remove(&self, image_paths: &[String]) {
        for p in image_paths {
            if let Some(path) = self.resolve(p) {
                remove_file(&path);
            }
        }
    }

    /// Delete temp files and placed files that no row names (`referenced` holds the stored
    /// `image_path`s) older than `grace`. Returns how many files were deleted.
    pub fn sweep(&self, referenced: &HashSet<String>, grace: Duration) -> std::io::Result<usize> {
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
                .is_some_and(|age| age < grace);
            if super::stale(&name, young, referenced) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Can a photo be written now? A small temp file is written and deleted (a full disk or a
    /// read-only mount only shows when writing).
    pub fn probe(&self) -> Storage {
        let dir = self.dir();
        let probe = dir.join(format!("{TEMP_PREFIX}probe-{}", uuid::Uuid::new_v4()));
        let written = super::super::private::create_dir(&dir)
            .and_then(|()| super::super::private::create_file(&probe))
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

/// Delete a file, logging any failure but its absence.
pub(super) fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("could not delete {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::PhotoStore;
    use super::*;
    use crate::domain::ImageFormat;

    #[tokio::test]
    async fn staged_photos_vanish_unless_placed_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PhotoDir::new(tmp.path());
        let photos = PhotoStore::Dir(dir.clone());
        let count = || std::fs::read_dir(dir.dir()).unwrap().count();

        drop(photos.stage(b"abc", ImageFormat::Jpeg).await.unwrap());
        assert_eq!(count(), 0);

        let placed = photos
            .stage(b"abc", ImageFormat::Png)
            .await
            .unwrap()
            .place()
            .unwrap();
        assert_eq!(count(), 1);
        drop(placed);
        assert_eq!(count(), 0);

        let staged = photos.stage(b"abc", ImageFormat::Png).await.unwrap();
        let stored = staged.image_path().to_owned();
        staged.place().unwrap().keep();
        assert!(dir.resolve(&stored).unwrap().exists());
        assert_eq!(
            photos.read(&stored).await.unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert!(dir.resolve("img_refs/../rollcall.db").is_none());
        assert!(dir.resolve("/etc/passwd").is_none());
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
        assert_eq!(
            photos
                .sweep(&referenced, super::super::SWEEP_GRACE)
                .unwrap(),
            2
        );
        let mut left: Vec<String> = std::fs::read_dir(photos.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![".tmp-d.jpg", "c.jpg", "e.jpg"]);
    }
}
