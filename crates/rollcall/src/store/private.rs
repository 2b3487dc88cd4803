//! Files only their owner can read: the data directory and the photo folder 0700, the database
//! (with its `-wal` and `-shm`) and the photos 0600, whatever the umask of whoever starts
//! rollcall. Faces and names are personal data; a umask of 022 (or 000) must not publish them
//! to every account on the machine.
//!
//! Modes are set explicitly, also on what an earlier release left readable.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Create `dir` (and its parents) 0700, or make an existing one 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Create a new file 0600 for writing (an existing one is an error: names are fresh).
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    // The umask can only take bits away from 0600; set it anyway so the mode is what we say.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// The SQLite database file, created empty 0600 before SQLite opens it (SQLite creates a file
/// with 0644 less the umask, and gives its `-wal` and `-shm` the database file's mode).
/// An existing database and its side files are made 0600.
pub fn prepare_sqlite(db: &Path) -> io::Result<()> {
    match create_file(db) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    tighten_sqlite(db)
}

/// Make the database file and its `-wal`, `-shm` and `-journal` 0600 (those that exist).
pub fn tighten_sqlite(db: &Path) -> io::Result<()> {
    for path in sqlite_files(db) {
        match set_mode(&path, FILE_MODE) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// The database file and the files SQLite keeps beside it.
pub fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_get_owner_only_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&dir)), (0o700, 0o700));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "an existing directory is tightened");

        let file = dir.join("f");
        create_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(create_file(&file).is_err(), "never reuses a name");

        let db = dir.join("x.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(dir.join("x.db-wal"), b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.join("x.db-wal"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        prepare_sqlite(&db).unwrap();
        assert_eq!((mode(&db), mode(&dir.join("x.db-wal"))), (0o600, 0o600));
        let fresh = dir.join("y.db");
        prepare_sqlite(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }
}
