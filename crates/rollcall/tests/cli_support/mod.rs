//! Running `rollcall` as a user does, for the CLI tests: fixture photos, a fresh data directory
//! per test, what a run printed, and the few things a user cannot do from the command line
//! (check-ins at chosen instants, embeddings left by an older release).
#![allow(dead_code)]

pub mod models;
pub mod mysql;
pub mod server;

use crate::shared::{models_dir, shared_dir};
use rollcall::store::{NewCheckIn, Store};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A photo of the shared fixtures, e.g. `faces/Tony_Blair/Tony_Blair_0048.jpg`.
pub fn fixture(rel: &str) -> PathBuf {
    let path = shared_dir().join("fixtures").join(rel);
    assert!(path.is_file(), "fixture {} is missing", path.display());
    path
}

/// Four photos of Tony Blair that face-api scores 0.97–0.98 against one another, above the
/// default threshold (0.962); see the API tests' `tony_blair`.
pub fn tony_blair(n: &str) -> PathBuf {
    fixture(&format!("faces/Tony_Blair/Tony_Blair_{n}.jpg"))
}

/// Someone else, for "not recognised".
pub fn stranger() -> PathBuf {
    fixture("faces/Aaron_Sorkin/Aaron_Sorkin_0001.jpg")
}

pub fn no_face() -> PathBuf {
    fixture("scenes/no_face/coffee_cup.png")
}

/// A `rollcall` process with none of the caller's configuration: no `ROLLCALL_*` variable, no
/// `DATABASE_URL`, no `RUST_LOG`.
pub fn rollcall() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("ROLLCALL_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// What a user sees of one run.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            success: o.status.success(),
            stdout: String::from_utf8(o.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(o.stderr).expect("utf-8 stderr"),
        }
    }
}

impl Run {
    /// Exit status 0, or a panic that shows both streams.
    pub fn ok(self) -> Self {
        assert!(self.success, "expected success: {self:#?}");
        self
    }

    /// A non-zero exit status, or a panic that shows both streams.
    pub fn failed(self) -> Self {
        assert!(!self.success, "expected a non-zero exit status: {self:#?}");
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A fresh data directory (SQLite database and reference photos), removed afterwards.
pub struct DataDir {
    dir: tempfile::TempDir,
    database_url: Option<String>,
}

impl DataDir {
    pub fn new() -> Self {
        DataDir {
            dir: tempfile::tempdir().expect("temp dir"),
            database_url: None,
        }
    }

    /// The same, with the database at `url` instead of SQLite.
    pub fn with_database(url: String) -> Self {
        DataDir {
            database_url: Some(url),
            ..DataDir::new()
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path().join("rollcall.db").display())
    }

    /// `rollcall --data-dir … --models … --embedder face-api <args>`, not yet run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = rollcall();
        cmd.arg("--data-dir")
            .arg(self.path())
            .arg("--models")
            .arg(models_dir())
            .args(["--embedder", "face-api"]);
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        cmd.args(args);
        cmd
    }

    /// Run `rollcall --data-dir … --models … --embedder face-api <args>`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args)
            .output()
            .expect("running rollcall")
            .into()
    }

    /// [`run`](Self::run) with `input` on standard input.
    pub fn run_with_input<I, S>(&self, args: I, input: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running rollcall");
        let mut stdin = child.stdin.take().expect("stdin");
        // A command that refuses its arguments exits without reading stdin: that is its answer,
        // not a fault of the test.
        if let Err(e) = stdin.write_all(input.as_bytes()) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing stdin: {e}"
            );
        }
        drop(stdin);
        child.wait_with_output().expect("running rollcall").into()
    }

    /// Whether any file of the data directory (the database, its journal) holds `needle`.
    pub fn holds(&self, needle: &[u8]) -> bool {
        std::fs::read_dir(self.path())
            .expect("the data directory")
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    }

    /// `rollcall keys create`: the key it printed.
    pub fn create_key(&self, name: &str, scope: &str) -> String {
        let run = self
            .run(["keys", "create", "--name", name, "--scope", scope])
            .ok();
        run.stdout.trim().to_owned()
    }

    pub fn register(&self, first: &str, last: &str, photos: &[PathBuf]) -> Run {
        let mut args: Vec<&OsStr> = vec![
            "register".as_ref(),
            "--first-name".as_ref(),
            first.as_ref(),
            "--last-name".as_ref(),
            last.as_ref(),
        ];
        args.extend(photos.iter().map(|p| p.as_os_str()));
        self.run(args)
    }

    pub fn users_json(&self) -> Vec<Value> {
        let json = self.run(["users", "list", "--json"]).ok().json();
        json.as_array().expect("an array of users").clone()
    }

    /// Files in `img_refs/` (the stored reference photos).
    pub fn stored_photos(&self) -> usize {
        std::fs::read_dir(self.path().join("img_refs")).map_or(0, |d| d.count())
    }

    /// `attendance export` to stdout, as CSV rows without the header.
    pub fn export(&self, filter: &[&str]) -> Vec<Vec<String>> {
        let run = self.run(["attendance", "export"].iter().chain(filter)).ok();
        let mut lines = run.stdout.lines();
        assert_eq!(
            lines.next(),
            Some("id,user_id,first_name,last_name,at,similarity,kiosk,liveness"),
            "CSV header"
        );
        lines
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect()
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Check-ins at the given instants (RFC 3339), through the store the server records them with:
/// `rollcall verify` records nothing, and a kiosk cannot choose the time of a check-in.
pub fn seed_check_ins(database_url: &str, user_id: i64, instants: &[&str]) {
    runtime().block_on(async {
        let store = Store::connect(database_url)
            .await
            .expect("opening the store");
        for at in instants {
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .expect("an RFC 3339 instant")
                .to_utc();
            store
                .check_in(NewCheckIn {
                    user_id,
                    at,
                    similarity: 0.97,
                    kiosk: Some("front door"),
                    model: "face-api-resnet128-flip",
                    not_since: at,
                })
                .await
                .expect("recording a check-in");
        }
        store.close().await;
    });
}

/// Make every stored embedding look as an older release left it: labelled with the model id of
/// face-api before mirror averaging, and (so that only a real re-embedding can match again)
/// zeroed.
pub fn age_embeddings(database_url: &str) {
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("opening the database");
        for table in ["users", "faces"] {
            sqlx::query(&format!(
                "UPDATE {table} SET model = 'face-api-resnet128', embedding = zeroblob(512)"
            ))
            .execute(&pool)
            .await
            .expect("ageing the embeddings");
        }
        pool.close().await;
    });
}

/// Tables of an SQLite database, and how many migrations it records as applied.
pub fn schema(database_url: &str) -> (Vec<String>, i64) {
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("opening the database");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .expect("listing tables");
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .expect("counting migrations");
        pool.close().await;
        (tables, applied)
    })
}
