//! The front door: hosts the server answers to, state-changing requests from other origins, the
//! number of images per request, the deadlines of a connection, and HTTPS from the binary.

use crate::helpers::{
    fixture, image_part, spawn_app, spawn_app_with, tony_blair, Backend, Form, TestApp, TestConfig,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A registration form of Tony Blair with `images` copies of one photo.
fn blair_form(images: usize) -> Form {
    let photo = &tony_blair()[0];
    (0..images).fold(
        Form::new()
            .text("first_name", "Tony")
            .text("last_name", "Blair")
            // The same photo registered again and again: these tests are about the front door
            // and the image count, not duplicates (registration.rs).
            .text("allow_duplicate", "true"),
        |form, _| form.part("image", image_part(fixture(photo), "blair.jpg")),
    )
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    assert!(body["message"].is_string(), "{body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// Hosts (no database specifics: one backend)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_the_server_does_not_answer_to_gets_421() {
    let app = spawn_app(Backend::Sqlite).await;
    for host in [
        "attacker.example",
        "attacker.example:8080",
        "rollcall.local",
    ] {
        let r = app
            .client
            .get(app.url("/health"))
            .header("Host", host)
            .send()
            .await
            .expect("request");
        assert_eq!(
            error_of(r).await,
            (421, "host_not_allowed".into()),
            "Host: {host}"
        );
    }
    // A refused host changes nothing either.
    let before = app.snapshot().await;
    let r = app
        .client
        .post(app.url("/register"))
        .header("Host", "attacker.example")
        .multipart(blair_form(1))
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(r).await, (421, "host_not_allowed".into()));
    assert_eq!(app.snapshot().await, before);
    // Loopback names and IP literals, with any port, are the server's own.
    let port = app
        .address
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    for host in [
        "localhost".to_owned(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]:1".to_owned(),
        "192.168.1.20".to_owned(),
    ] {
        let r = app
            .client
            .get(app.url("/health"))
            .header("Host", &host)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "Host: {host}");
    }
}

// ---------------------------------------------------------------------------------------------
// Origins

async fn register_with(app: &TestApp, headers: &[(&str, String)]) -> reqwest::Response {
    headers
        .iter()
        .fold(app.client.post(app.url("/register")), |request, (k, v)| {
            request.header(*k, v)
        })
        .multipart(blair_form(1))
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_from_another_origin_is_refused_and_stores_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let empty = app.snapshot().await;
    let refused: [&[(&str, String)]; 5] = [
        &[("Origin", "http://evil.example".into())],
        &[("Origin", "null".into())],
        // The same host on another port is another origin.
        &[("Origin", "http://127.0.0.1:1".into())],
        &[("Sec-Fetch-Site", "cross-site".into())],
        // Sec-Fetch-Site is what current browsers send, and it wins over Origin.
        &[
            ("Sec-Fetch-Site", "same-site".into()),
            ("Origin", app.address.clone()),
        ],
    ];
    for headers in refused {
        let r = register_with(&app, headers).await;
        assert_eq!(
            error_of(r).await,
            (403, "cross_origin".into()),
            "{headers:?}"
        );
        assert_eq!(app.snapshot().await, empty, "{headers:?}");
    }
    // So is a deletion.
    let r = app
        .client
        .delete(app.url("/users/1"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(r).await, (403, "cross_origin".into()));

    // A page of the server's own origin, and a client sending neither header, pass.
    let r = register_with(&app, &[("Origin", app.address.clone())]).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = register_with(&app, &[("Sec-Fetch-Site", "same-origin".into())]).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = register_with(&app, &[]).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(app.snapshot().await.users.len(), 3);
    // Reading is no forgery: a cross-site GET is answered (the browser keeps the answer from
    // the other page unless CORS allows it, and rollcall allows no other origin).
    let r = app
        .client
        .get(app.url("/users"))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Images per request (the database matters: both backends)

async fn eleven_images_are_refused_before_anything_is_stored(app: TestApp) {
    let before = app.snapshot().await;
    let r = app.post_form("/register", blair_form(11)).await;
    assert_eq!(error_of(r).await, (400, "too_many_images".into()));
    assert_eq!(app.snapshot().await, before);
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let form = (0..11).fold(Form::new(), |form, _| {
        form.part("image", image_part(fixture(&tony_blair()[1]), "b.jpg"))
    });
    let r = app.post_form(&format!("/users/{id}/faces"), form).await;
    assert_eq!(error_of(r).await, (400, "too_many_images".into()));
    let user: Value = app.get_json(&format!("/users/{id}")).await;
    assert_eq!(user["faces"], 1, "{user}");
}

mod default_cap {
    use super::*;
    crate::on_both_backends!(eleven_images_are_refused_before_anything_is_stored);
}

async fn the_cap_is_the_configured_number(app: TestApp) {
    let r = app.post_form("/register", blair_form(3)).await;
    assert_eq!(error_of(r).await, (400, "too_many_images".into()));
    assert!(app.snapshot().await.users.is_empty());
    let r = app.post_form("/register", blair_form(2)).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["faces"], 2, "{body}");
}

fn two_images() -> TestConfig {
    TestConfig {
        max_images: Some(2),
        ..TestConfig::default()
    }
}

mod configured_cap {
    use super::*;
    crate::on_both_backends!(
        config = super::super::two_images();
        the_cap_is_the_configured_number
    );
}

// ---------------------------------------------------------------------------------------------
// Deadlines of a connection

/// Read until the server closes the connection (or `limit` passes); how long that took.
fn closed_within(stream: &mut TcpStream, started: Instant, limit: Duration) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected_at_their_deadlines() {
    let app = spawn_app_with(
        Backend::Sqlite,
        TestConfig {
            header_timeout_secs: Some(2),
            body_timeout_secs: Some(3),
            idle_timeout_secs: Some(4),
            ..TestConfig::default()
        },
    )
    .await;
    let slack = Duration::from_millis(1500);
    let address = app.address.clone();
    let key = app.admin_key.clone();
    let (header, body, idle, prompt) = tokio::task::spawn_blocking(move || {
        let app_address = address;
        let connect = || TcpStream::connect(app_address.trim_start_matches("http://")).unwrap();

        // A byte every 300 ms: each byte is progress, but the headers never end in time.
        let mut slow = connect();
        let started = Instant::now();
        let request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaa";
        slow.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut header = None;
        for byte in request.iter().cycle() {
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
            if slow.write_all(&[*byte]).is_err() {
                header = Some(started.elapsed());
                break;
            }
            // Waiting for the next byte, watch for the server closing.
            match slow.read(&mut [0u8; 64]) {
                Ok(0) => {
                    header = Some(started.elapsed());
                    break;
                }
                Ok(_) => panic!("the server answered headers that never ended"),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => {
                    header = Some(started.elapsed());
                    break;
                }
            }
        }

        // Headers in time, then the body stalls.
        let mut stalled = connect();
        stalled
            .write_all(
                format!(
                    "POST /register HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
                     Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let started = Instant::now();
        let body = closed_within(&mut stalled, started, Duration::from_secs(10));

        // One answered request, then nothing: closed once idle for the idle timeout.
        let mut idle = connect();
        idle.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        let idle_closed = closed_within(&mut idle, started, Duration::from_secs(10));

        // A prompt client on the same server is answered.
        let mut prompt = connect();
        prompt
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = prompt.read_to_string(&mut answer);
        (header, body, idle_closed, answer)
    })
    .await
    .expect("the raw clients");
    let header = header.expect("a slow-header client was never disconnected");
    assert!(
        header >= Duration::from_secs(2) && header <= Duration::from_secs(2) + slack,
        "slow headers: disconnected after {header:?}"
    );
    let body = body.expect("a stalled body was never disconnected");
    assert!(
        body >= Duration::from_millis(2900) && body <= Duration::from_secs(3) + slack,
        "stalled body: disconnected after {body:?}"
    );
    let idle = idle.expect("an idle keep-alive connection was never closed");
    assert!(
        idle >= Duration::from_millis(3900) && idle <= Duration::from_secs(4) + slack,
        "idle: closed after {idle:?}"
    );
    assert!(prompt.starts_with("HTTP/1.1 200"), "{prompt}");
    // The stalled registration stored nothing.
    assert!(app.snapshot().await.users.is_empty());
}

/// With `--max-connections 2`, two open connections take the two places: a third is not
/// served (it waits unaccepted in the listen queue) until one of them closes, and is then.
#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_wait_until_a_place_is_free() {
    let app = spawn_app_with(
        Backend::Sqlite,
        TestConfig {
            max_connections: Some(2),
            idle_timeout_secs: Some(30),
            ..TestConfig::default()
        },
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let (waited, answer) = tokio::task::spawn_blocking(move || {
        let connect = || TcpStream::connect(&address).unwrap();
        let health = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let read_some = |s: &mut TcpStream| {
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        // Two kept-alive connections, each answered once: both places are taken.
        let mut held: Vec<TcpStream> = (0..2).map(|_| connect()).collect();
        for s in &mut held {
            s.write_all(health).unwrap();
            assert!(read_some(s).starts_with("HTTP/1.1 200"));
        }
        // The third connects (the kernel accepts it into the queue) but gets no answer.
        let mut third = connect();
        third
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        third.write_all(health).unwrap();
        let mut buf = [0u8; 16];
        let waited = match third.read(&mut buf) {
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            Ok(_) => false,
        };
        // A place comes free: the third is served.
        drop(held.pop());
        third
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (waited, read_some(&mut third))
    })
    .await
    .unwrap();
    assert!(
        waited,
        "a third connection was served while two held the places"
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

// ---------------------------------------------------------------------------------------------
// HTTPS from the binary

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_tls_with_the_self_signed_certificate_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::ServerName, ClientConfig, RootCertStore};

    let dir = tempfile::tempdir().expect("temp dir");
    let pair = rollcall::server::tls::self_signed(&["localhost".into(), "127.0.0.1".into()])
        .expect("a self-signed certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    let app = spawn_app_with(
        Backend::Sqlite,
        TestConfig {
            tls: Some((cert, key)),
            ..TestConfig::default()
        },
    )
    .await;

    let mut roots = RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pair.cert_pem.as_bytes())
        .expect("the certificate's DER");
    roots.add(der).expect("trusting the certificate");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));

    let address = app.address.trim_start_matches("http://").to_owned();
    let ask = |request: &'static str| {
        let connector = connector.clone();
        let address = address.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = tls.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let answer = ask("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
    // Over HTTPS the server's own origin is https://…, and the front door still stands.
    let answer = ask(
        "DELETE /users/1 HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\n\
         Connection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("cross_origin"), "{answer}");
    let own = format!(
        "DELETE /users/1 HTTP/1.1\r\nHost: {address}\r\nOrigin: https://{address}\r\n\
         Authorization: Bearer {key}\r\nConnection: close\r\n\r\n",
        key = app.admin_key
    );
    let answer = ask(Box::leak(own.into_boxed_str())).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = reqwest::get(app.url("/health")).await;
    assert!(plain.is_err(), "{plain:?}");
}
