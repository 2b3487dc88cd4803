//! The browser test's moving parts: the real `rollcall serve`, Debian's chromedriver and
//! Chromium sessions with a fake camera, plus waiting and screenshot helpers. Every process is
//! owned by a guard that kills it on drop, so a failing test leaves nothing running.
#![allow(dead_code)]

pub mod signin;
pub mod y4m;

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for anything before calling it stuck. Generous: models load and faces are
/// embedded on a small, shared CPU. This bounds a hang; it is not a speed requirement.
pub const PATIENCE: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

pub use crate::shared::{models_dir, shared_dir};

pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where screenshots go: `<workspace>/target/test-artifacts/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = workspace_dir().join("target/test-artifacts/screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// An executable on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn require(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH. The browser test drives a real Chromium: install Debian's \
             `chromium` and `chromium-driver` packages (apt-get install chromium chromium-driver)."
        )
    })
}

/// A child process killed (and reaped) on drop.
pub struct Guard {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Guard {
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Guard {
        let out = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Guard { name, child, log }
    }

    /// Panics with the log if the process has already exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.log_text()
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Killing chromedriver alone leaves the Chromium it started running, re-parented to
        // init, for good: the whole tree goes, children first seen from the top.
        for pid in descendants(self.child.id()) {
            // SAFETY: kill(2) with a pid read from /proc; at worst the process is already gone.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process below `root`, from /proc (parents before their children).
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the parenthesised command name: state, then the parent's pid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The administrator `Server::start` creates (through `rollcall admin add`).
pub const ADMIN_USER: &str = "chief";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Run `rollcall ARGS --data-dir DIR` to completion with `stdin`; its stdout, or a panic with its
/// output when it fails.
pub fn rollcall(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("rollcall {args:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("rollcall output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rollcall {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `rollcall serve` on a free port with a fresh data directory.
pub struct Server {
    pub url: String,
    pub guard: Guard,
    pub data_dir: PathBuf,
    /// An admin key for the test's own requests (`None` on a fresh server).
    pub admin_key: Option<String>,
}

impl Server {
    /// A server with an administrator (`ADMIN_USER`) and an admin key, both made with the CLI
    /// before it starts, as an operator would.
    pub async fn start(data_dir: &Path) -> Server {
        Server::start_admin_with(data_dir, &[]).await
    }

    /// `start` with more flags for `rollcall serve`.
    pub async fn start_admin_with(data_dir: &Path, flags: &[&str]) -> Server {
        let password = format!("{ADMIN_PASSWORD}\n");
        rollcall(data_dir, &["admin", "add", ADMIN_USER], &password);
        let key = rollcall(
            data_dir,
            &[
                "keys",
                "create",
                "--name",
                "browser test",
                "--scope",
                "admin",
            ],
            "",
        );
        let mut server = Server::start_with(data_dir, flags).await;
        server.admin_key = Some(key.trim().to_owned());
        server
    }

    /// A server over `data_dir` as it is: with no account, it logs the first-run setup link.
    pub async fn start_fresh(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[]).await
    }

    /// `start_fresh` with more flags for `rollcall serve`.
    pub async fn start_with(data_dir: &Path, flags: &[&str]) -> Server {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        command
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--models")
            .arg(models_dir())
            .args(["--embedder", "face-api"])
            .args(flags)
            .env("RUST_LOG", "info");
        let mut guard = Guard::spawn("rollcall serve", &mut command, data_dir.join("server.log"));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            guard.check_alive();
            if let Ok(response) = http.get(format!("{url}/health")).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the server never became healthy; its output:\n{}",
                guard.log_text()
            );
            tokio::time::sleep(POLL).await;
        }
        Server {
            url,
            guard,
            data_dir: data_dir.to_owned(),
            admin_key: None,
        }
    }

    /// The `/admin#setup=TOKEN` link the server logged on a start without accounts.
    pub fn setup_link(&self) -> String {
        let log = self.guard.log_text();
        let (_, rest) = log
            .split_once("#setup=")
            .unwrap_or_else(|| panic!("no setup link in the server's log:\n{log}"));
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert!(!token.is_empty(), "an empty setup token in:\n{log}");
        format!("{}/admin#setup={token}", self.url)
    }

    /// A client sending the admin key.
    pub fn http(&self) -> reqwest::Client {
        let key = self
            .admin_key
            .as_deref()
            .expect("a server with an admin key");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}").parse().expect("a header value"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("a client")
    }

    /// A new key of `scope` named `name`, made over HTTP with the admin key.
    pub async fn create_key(&self, name: &str, scope: &str) -> String {
        let response = self
            .http()
            .post(format!("{}/keys", self.url))
            .json(&json!({ "name": name, "scope": scope }))
            .send()
            .await
            .expect("POST /keys");
        assert!(response.status().is_success(), "POST /keys: {response:?}");
        let body: Value = response.json().await.expect("the new key");
        body["key"].as_str().expect("a key").to_owned()
    }
}

/// Debian's chromedriver on a free port.
pub struct Driver {
    pub url: String,
    pub chromium: PathBuf,
    pub guard: Guard,
}

impl Driver {
    pub async fn start(log_dir: &Path) -> Driver {
        let chromium = require("chromium");
        let chromedriver = require("chromedriver");
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}"));
        let mut guard = Guard::spawn(
            "chromedriver",
            &mut command,
            log_dir.join("chromedriver.log"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            guard.check_alive();
            let ready = match http.get(format!("{url}/status")).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == json!(true)),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver never became ready:\n{}",
                guard.log_text()
            );
            tokio::time::sleep(POLL).await;
        }
        Driver {
            url,
            chromium,
            guard,
        }
    }

    /// A fresh headless Chromium with its own profile whose camera shows `camera` (a Y4M file),
    /// or, with `None`, whose user refuses the camera.
    pub async fn session(
        &self,
        camera: Option<&Path>,
        profile: &Path,
        (width, height): (u32, u32),
    ) -> Client {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--use-fake-device-for-media-stream".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
            "--lang=en-GB".to_owned(),
        ];
        match camera {
            Some(clip) => args.extend([
                "--use-fake-ui-for-media-stream".to_owned(),
                format!("--use-file-for-fake-video-capture={}", clip.display()),
            ]),
            // The fake permission prompt answers "block".
            None => args.push("--use-fake-ui-for-media-stream=deny".to_owned()),
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": self.chromium, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "starting Chromium through chromedriver: {e}\n{}",
                    self.guard.log_text()
                )
            })
    }
}

/// Run `script` (a function body) until it returns something other than null/false; returns it.
pub async fn wait_js(client: &Client, what: &str, script: &str) -> Value {
    let started = Instant::now();
    loop {
        let value = client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if !value.is_null() && value != json!(false) {
            return value;
        }
        assert!(started.elapsed() < PATIENCE, "gave up waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Resize the viewport to exactly `width`×`height` CSS pixels (headless windows have no frame).
pub async fn resize(client: &Client, (width, height): (u32, u32)) {
    client
        .set_window_size(width, height)
        .await
        .expect("set window size");
    // Chromium may keep a minimum outer size; correct by the measured difference once.
    let inner: Value = client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .expect("measure viewport");
    let (iw, ih) = (
        inner[0].as_u64().unwrap_or(0) as u32,
        inner[1].as_u64().unwrap_or(0) as u32,
    );
    if (iw, ih) != (width, height) && iw > 0 && ih > 0 {
        let w = (2 * width).saturating_sub(iw);
        let h = (2 * height).saturating_sub(ih);
        client.set_window_size(w, h).await.expect("set window size");
    }
}

/// Save a PNG of the viewport as `<screenshot_dir>/<name>.png`, after checking that nothing
/// overflows horizontally (a layout bug on small screens).
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let overflow = client
        .execute(
            "const d = document.documentElement; \
             return d.scrollWidth > window.innerWidth ? [d.scrollWidth, window.innerWidth] : null;",
            vec![],
        )
        .await
        .expect("measure overflow");
    assert!(
        overflow.is_null(),
        "{name}: the page is wider than the window (scrollWidth, innerWidth) = {overflow}"
    );
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}
