//! Private data through the real binary: owner-only file modes whatever the umask, and
//! `rollcall attendance purge` on SQLite and MariaDB.

use rollcall_test_support as shared;

mod cli_support;

use cli_support::mysql::MysqlDatabase;
use cli_support::{seed_check_ins, tony_blair, DataDir};
use shared::models_dir;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `rollcall ARGS…` started by `sh` after `umask 000`: every file it creates would be world
/// readable and writable unless rollcall sets the mode itself.
fn under_umask_000(data_dir: &Path, args: &[&str]) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--models")
        .arg(models_dir())
        .args(["--embedder", "face-api"])
        .args(args);
    // The clean environment `cli_support::rollcall()` gives.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("ROLLCALL_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            sh.env_remove(key.as_ref());
        }
    }
    sh
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn files_are_owner_only_under_umask_000() {
    let data = DataDir::new();
    // A data directory that does not exist yet: rollcall creates it.
    let dir = data.path().join("fresh");
    let mut child = under_umask_000(&dir, &["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting rollcall serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let server = Serving(child);
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve stopped before listening:\n{seen}"))
            .unwrap();
        if line.contains("listening on http://") {
            break;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    std::thread::spawn(move || lines.for_each(drop));

    // Registered beside the running server, which holds the database open (-wal and -shm).
    let photo = tony_blair("0048");
    let run = under_umask_000(
        &dir,
        &[
            "register",
            "--first-name",
            "Tony",
            "--last-name",
            "Blair",
            photo.to_str().unwrap(),
        ],
    )
    .output()
    .expect("running rollcall register");
    assert!(run.status.success(), "{run:?}");

    assert_eq!(mode(&dir), 0o700, "the data directory");
    assert_eq!(mode(&dir.join("img_refs")), 0o700, "img_refs/");
    for name in ["rollcall.db", "rollcall.db-wal", "rollcall.db-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let photos: Vec<_> = std::fs::read_dir(dir.join("img_refs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(photos.len(), 1);
    assert_eq!(mode(&photos[0]), 0o600, "the photo");
    drop(server);
}

fn purge_keeps_only_recent_check_ins(data: &DataDir, url: &str) {
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let now = chrono::Utc::now();
    let ago = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
    let instants = [ago(120), ago(91), ago(89), ago(1)];
    let instants: Vec<&str> = instants.iter().map(String::as_str).collect();
    seed_check_ins(url, 1, &instants);
    assert_eq!(data.export(&[]).len(), 4);

    let run = data
        .run(["attendance", "purge", "--older-than-days", "90"])
        .ok();
    assert_eq!(
        run.stdout.trim(),
        "deleted 2 check-in(s) older than 90 days"
    );
    assert_eq!(data.export(&[]).len(), 2);
    let run = data
        .run(["attendance", "purge", "--older-than-days", "0"])
        .failed();
    assert!(run.stderr.contains("from 1 to"), "{}", run.stderr);
    assert_eq!(data.export(&[]).len(), 2);
}

#[test]
fn attendance_purge_deletes_old_check_ins_on_sqlite() {
    let data = DataDir::new();
    let url = data.sqlite_url();
    purge_keeps_only_recent_check_ins(&data, &url);
}

#[test]
fn attendance_purge_deletes_old_check_ins_on_mysql() {
    let db = MysqlDatabase::create();
    let data = DataDir::with_database(db.url());
    purge_keeps_only_recent_check_ins(&data, &db.url());
}
