//! The front door of the real `rollcall serve`: SIGTERM with an upload stalled mid-body, and
//! HTTPS with the certificate `rollcall tls self-signed` writes.

use rollcall_test_support as shared;

mod cli_support;

use cli_support::server::Server;
use cli_support::{rollcall, tony_blair, DataDir, Run};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Wait up to `limit` for the process to exit; its status, or `None` if it still runs.
fn exited_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn sigterm_with_a_stalled_upload_exits_within_the_shutdown_deadline() {
    let data = DataDir::new();
    // The upload must be let in (a request refused at once would not be under way).
    let key = data
        .run([
            "keys", "create", "--name", "uploader", "--scope", "register",
        ])
        .ok()
        .stdout;
    let mut server = Server::start_with(
        &data,
        &["--shutdown-timeout-secs", "2", "--body-timeout-secs", "120"],
    );
    // An upload that sends its headers and part of its body, then stalls.
    let photo = std::fs::read(tony_blair("0048")).expect("photo");
    let mut upload = TcpStream::connect(server.address()).expect("connect");
    let head = format!(
        "POST /register HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        key.trim(),
        photo.len() * 4
    );
    upload.write_all(head.as_bytes()).expect("headers");
    upload
        .write_all(
            b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n",
        )
        .expect("the start of the body");
    upload
        .write_all(&photo[..photo.len() / 2])
        .expect("half a photo");
    std::thread::sleep(Duration::from_millis(500));

    let pid = server.child().id() as libc::pid_t;
    let signalled = Instant::now();
    // SAFETY: kill(2) on the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill");
    let status = exited_within(server.child(), Duration::from_secs(15));
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM"));
    assert!(status.success(), "{status}");
    // It waited for the upload (the deadline), and not much longer.
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_secs(5),
        "exited {took:?} after SIGTERM, with a 2 s deadline"
    );
    // Nobody was registered by the abandoned upload.
    drop(upload);
    assert!(data.users_json().is_empty());
}

#[test]
fn tls_self_signed_writes_a_private_key_and_the_server_speaks_https_with_it() {
    let data = DataDir::new();
    let out = data.path().join("tls");
    // Even under umask 000 the key is the owner's only.
    let run: Run = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_rollcall"))
        .args([
            "tls",
            "self-signed",
            "--name",
            "localhost",
            "--name",
            "127.0.0.1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running rollcall tls self-signed")
        .into();
    let run = run.ok();
    assert!(run.stdout.contains("--tls-cert"), "{}", run.stdout);
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| {
        std::fs::metadata(out.join(name))
            .expect("written")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("key.pem"), 0o600);
    assert_eq!(mode("cert.pem"), 0o644);
    let cert = std::fs::read_to_string(out.join("cert.pem")).expect("cert.pem");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    // A second run does not overwrite them unless told.
    let again: Run = rollcall()
        .args(["tls", "self-signed", "--name", "localhost", "--out"])
        .arg(&out)
        .output()
        .expect("running it again")
        .into();
    let again = again.failed();
    assert!(again.stderr.contains("--force"), "{}", again.stderr);

    let cert_path = out.join("cert.pem");
    let key_path = out.join("key.pem");
    let server = Server::start_with(
        &data,
        &[
            "--tls-cert",
            cert_path.to_str().expect("path"),
            "--tls-key",
            key_path.to_str().expect("path"),
        ],
    );
    assert!(
        server.announced.contains("listening on https://"),
        "{}",
        server.announced
    );
    let answer = https_get(&cert, server.address(), "/health");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// GET `path` over TLS trusting only `cert_pem`; the raw answer.
fn https_get(cert_pem: &str, address: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{crypto, ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("DER"))
        .expect("trust");
    let config = ClientConfig::builder_with_provider(crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    cli_support::runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    })
}
