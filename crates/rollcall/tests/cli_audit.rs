//! The audit log and the access log through the real binary: what the commands record (as the
//! CLI, with no address), `rollcall audit`, and the server's one access line per request read
//! from its stderr.

use rollcall_test_support as shared;

mod cli_support;

use cli_support::{fixture, rollcall, tony_blair, DataDir};
use serde_json::Value;
use shared::models_dir;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn commands_record_as_the_cli_and_audit_prints_newest_first() {
    let data = DataDir::new();
    let run = data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    assert!(run.stdout.contains("Blair"), "{run:#?}");
    let id = data.users_json()[0]["id"].as_i64().unwrap();
    data.run(["attendance", "export"]).ok();
    let id_text = id.to_string();
    data.run(["users", "delete", id_text.as_str(), "--with-history"])
        .ok();
    // A refused command records nothing.
    data.run(["users", "delete", "999"]).failed();
    let key = data
        .run([
            "keys",
            "create",
            "--name",
            "front door",
            "--scope",
            "verify",
        ])
        .ok()
        .stdout;
    let key = key.trim();
    let keys = data.run(["keys", "list", "--json"]).ok().json();
    let key_id = keys[0]["id"].as_i64().expect("the key's id");
    let key_id_text = key_id.to_string();
    data.run(["keys", "revoke", key_id_text.as_str()]).ok();

    let log = data.run(["audit", "--json"]).ok().json();
    let log = log.as_array().expect("an array");
    let got: Vec<(&str, Option<&str>, Option<&str>)> = log
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"].as_str(),
                e["detail"].as_str(),
            )
        })
        .collect();
    let user = format!("user:{id}");
    let key_target = format!("key:{key_id}");
    assert_eq!(
        got,
        vec![
            ("key_revoked", Some(key_target.as_str()), None),
            (
                "key_created",
                Some(key_target.as_str()),
                Some("verify: front door")
            ),
            ("delete_user", Some(user.as_str()), Some("with history")),
            ("export", Some("attendance"), Some("0 row(s)")),
            ("register", Some(user.as_str()), Some("1 face(s)")),
        ]
    );
    for e in log {
        assert!(e["actor"].as_str().unwrap().starts_with("cli:"), "{e}");
        assert_eq!(e["address"], Value::Null, "{e}");
        assert!(!e.to_string().contains(key), "the key itself in {e}");
    }

    let text = data.run(["audit", "--limit", "2"]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("key_revoked") && lines[0].contains(&key_target),
        "{text}"
    );
    assert!(lines[1].contains("key_created"), "{text}");
    let oldest = log[4]["id"].as_i64().unwrap();
    let before_text = (oldest + 1).to_string();
    let before = data
        .run(["audit", "--before", before_text.as_str()])
        .ok()
        .stdout;
    assert!(
        before.contains("register") && before.lines().count() == 1,
        "{before}"
    );
    data.run(["audit", "--limit", "0"]).failed();
}

/// `rollcall serve` with its stderr collected line by line.
struct Serving {
    child: std::process::Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    fn start(data: &DataDir) -> Serving {
        let mut child = rollcall()
            .arg("--data-dir")
            .arg(data.path())
            .arg("--models")
            .arg(models_dir())
            .args(["--embedder", "face-api", "serve", "--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting rollcall serve");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            let found = lines.lock().unwrap().iter().find_map(|l: &String| {
                l.split_once("listening on http://")
                    .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_owned())
            });
            if let Some(addr) = found {
                break addr;
            }
            assert!(
                Instant::now() < deadline,
                "rollcall serve did not start:\n{}",
                lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Serving { child, addr, lines }
    }

    fn access_lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("rollcall::access"))
            .cloned()
            .collect()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_server_writes_one_access_line_per_request_without_names_or_queries() {
    let data = DataDir::new();
    let key = |scope: &str| {
        let name = format!("{scope} Xylophone");
        let run = data.run(["keys", "create", "--name", name.as_str(), "--scope", scope]);
        run.ok().stdout.trim().to_owned()
    };
    let (admin, verify) = (key("admin"), key("verify"));
    let server = Serving::start(&data);
    let base = format!("http://{}", server.addr);
    let photo = std::fs::read(fixture("faces/Tony_Blair/Tony_Blair_0048.jpg")).unwrap();
    let statuses = cli_support::runtime().block_on(async {
        let anonymous = reqwest::Client::new();
        let with = |key: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            let value = format!("Bearer {key}").parse().expect("a header value");
            headers.insert(reqwest::header::AUTHORIZATION, value);
            reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("a client")
        };
        let (client, kiosk) = (with(&admin), with(&verify));
        let register = reqwest::multipart::Form::new()
            .text("first_name", "Zebulon")
            .text("last_name", "Quixotewright")
            .part(
                "image",
                reqwest::multipart::Part::bytes(photo).file_name("z.jpg"),
            );
        let requests = vec![
            anonymous.get(format!("{base}/health")),
            client.get(format!("{base}/users/4242?token=hunter2")),
            client.get(format!("{base}/Zebulon_Quixotewright?q=secret")),
            client.post(format!("{base}/register")).multipart(register),
            client.delete(format!("{base}/users/1?history=true")),
            client.get(format!("{base}/attendance.csv?user_id=1")),
            kiosk.get(format!("{base}/audit?limit=5")),
            anonymous.get(format!("{base}/users")),
        ];
        let mut statuses = Vec::new();
        for r in requests {
            statuses.push(r.send().await.expect("a request").status().as_u16());
        }
        statuses
    });
    let n = statuses.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.access_lines().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Time for a second line per request, were there one.
    std::thread::sleep(Duration::from_millis(300));
    let lines = server.access_lines();
    let all = server.lines.lock().unwrap().join("\n");
    assert_eq!(lines.len(), n, "one access line per request:\n{all}");
    assert_eq!(statuses, [200, 404, 404, 200, 204, 200, 403, 401]);
    let routes = [
        ("/health", "anonymous"),
        ("/users/{id}", "key:admin"),
        ("unmatched", "anonymous"),
        ("/register", "key:admin"),
        ("/users/{id}", "key:admin"),
        ("/attendance.csv", "key:admin"),
        ("/audit", "key:verify"),
        ("/users", "anonymous"),
    ];
    for ((line, (route, caller)), status) in lines.iter().zip(routes).zip(&statuses) {
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(&format!("route={route} ")), "{route}: {line}");
        assert!(line.contains(&format!("status={status} ")), "{line}");
        assert!(line.contains("client=127.0.0.1 "), "{line}");
        assert!(
            line.ends_with(&format!("caller={caller}")),
            "{caller}: {line}"
        );
        assert!(line.contains(" ms="), "{line}");
    }
    // The id asked for, in the shapes a path or a field would print it; the bare digits
    // can occur in a timestamp (".424210Z").
    let secrets = [
        "Zebulon",
        "Quixotewright",
        "hunter2",
        "secret",
        "/4242",
        "=4242",
        "4242?",
        "Xylophone",
    ];
    for secret in secrets.into_iter().chain([admin.as_str(), verify.as_str()]) {
        assert!(
            !all.contains(secret),
            "`{secret}` in the server's log:\n{all}"
        );
    }
    assert!(
        !all.contains('\u{1b}'),
        "no ANSI colours into a pipe:\n{all}"
    );
}
