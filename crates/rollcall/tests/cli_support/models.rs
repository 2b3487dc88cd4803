//! Models directories for `rollcall models fetch`, and a run of it that cannot reach any source.

use super::{rollcall, Run};
use crate::shared::models_dir;
use std::path::{Path, PathBuf};

/// Every file of the model manifest, by group.
pub const MTCNN_FILES: [&str; 3] = ["mtcnn/pnet.pt", "mtcnn/rnet.pt", "mtcnn/onet.pt"];
pub const FACE_API_FILES: [&str; 2] = [
    "face-api/face_recognition_model-weights_manifest.json",
    "face-api/face_recognition_model.bin",
];
pub const FACENET_FILE: &str = "facenet/20180402-114759-vggface2.pt";

/// A models directory holding copies of those of `files` the shared models have.
pub fn models_copy(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in files {
        let from = models_dir().join(file);
        if from.is_file() {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().expect("a folder")).expect("creating a folder");
            std::fs::copy(&from, &to).expect("copying a model file");
        }
    }
    dir
}

/// Every file under `dir` with its bytes and modification time.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("reading a folder") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let modified = path.metadata().and_then(|m| m.modified()).expect("mtime");
                files.push((
                    path.clone(),
                    std::fs::read(&path).expect("reading"),
                    modified,
                ));
            }
        }
    }
    files.sort();
    files
}

/// `rollcall models fetch --models DIR` with every source unreachable: a proxy that refuses
/// connections and no package client on the `PATH`, so that no test downloads anything.
pub fn fetch_offline(models: &Path) -> Run {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let proxy = format!("http://127.0.0.1:{closed_port}");
    let empty = tempfile::tempdir().expect("temp dir");
    let mut cmd = rollcall();
    for var in ["NO_PROXY", "no_proxy"] {
        cmd.env_remove(var);
    }
    for var in [
        "ALL_PROXY",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "all_proxy",
        "https_proxy",
        "http_proxy",
    ] {
        cmd.env(var, &proxy);
    }
    cmd.env("PATH", empty.path())
        .current_dir(empty.path())
        .arg("--data-dir")
        .arg(empty.path().join("data"))
        .arg("--models")
        .arg(models)
        .args(["models", "fetch"])
        .output()
        .expect("running rollcall models fetch")
        .into()
}

/// The status `models fetch` printed for `file`.
pub fn fetch_line<'a>(run: &'a Run, file: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(file))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no line for {file}: {}", run.stdout))
}
