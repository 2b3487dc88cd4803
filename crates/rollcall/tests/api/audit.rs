//! The audit log: every change to people and every export leaves exactly one entry naming who
//! (the caller's label), what, which target and from which address; refused requests leave
//! none; no entry holds a photo, an embedding or a person's name; `/audit` pages and
//! `/audit.csv` neutralises cells a spreadsheet would run; logins, logouts and keys are
//! recorded without their secrets; only admins read the log.

use crate::helpers::{fixture, image_part, photos_of, tony_blair, Form, TestApp, ADMIN_KEY_NAME};
use rollcall::audit::{Action, Actor, AuditRecord, Entry, Page, MAX_TEXT};
use rollcall::auth::{Caller, Role, Scope};
use rollcall::domain::{KeyName, Password, Username};
use rollcall::service::{Accounts, DEFAULT_SESSION_TTL};
use serde_json::{json, Value};

fn accounts(app: &TestApp) -> Accounts {
    Accounts::new(app.store.clone(), DEFAULT_SESSION_TTL)
}

/// A new key of `scope` named `name`.
async fn new_key(app: &TestApp, name: &str, scope: Scope) -> String {
    let name = KeyName::parse(name).unwrap();
    accounts(app)
        .create_key(&name, scope, false)
        .await
        .unwrap()
        .1
}

fn client_with(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {key}").parse().unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Every entry, oldest first.
async fn entries(app: &TestApp) -> Vec<AuditRecord> {
    let mut all = app
        .store
        .audit_log(Page {
            limit: Page::MAX,
            before: None,
        })
        .await
        .expect("reading the audit log");
    all.reverse();
    all
}

/// The label the test client (the harness's admin key) acts under.
fn client_actor() -> String {
    format!("key:{ADMIN_KEY_NAME}")
}

fn summary(e: &AuditRecord) -> (String, String, Option<String>, Option<String>) {
    (
        e.actor.clone(),
        e.action.clone(),
        e.target.clone(),
        e.detail.clone(),
    )
}

async fn each_change_and_export_leaves_one_entry(app: TestApp) {
    let me = client_actor();
    let photos = tony_blair();
    let form = Form::new()
        .text("first_name", "Tony")
        .text("last_name", "Blair")
        .part("image", image_part(fixture(&photos[0]), "a.jpg"))
        .part("image", image_part(fixture(&photos[1]), "b.jpg"));
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let user = format!("user:{id}");

    // Refused requests change nothing and record nothing.
    let r = app
        .register("Cup", "Coffee", "scenes/no_face/coffee_cup.png")
        .await;
    assert_eq!(r.status(), 400);
    let face = || Form::new().part("image", image_part(fixture(&photos[2]), "c.jpg"));
    let r = app
        .post_form(&format!("/users/{}/faces", id + 1), face())
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        app.delete(&format!("/users/{}", id + 1)).await.status(),
        404
    );
    // Reading is not recorded, checking in neither (the attendance log is its own record).
    assert_eq!(app.get("/users").await.status(), 200);
    assert_eq!(app.get("/attendance").await.status(), 200);
    assert_eq!(app.verify(&photos[3]).await.status(), 200);
    assert_eq!(entries(&app).await.len(), 1, "{:#?}", entries(&app).await);

    let r = app.post_form(&format!("/users/{id}/faces"), face()).await;
    assert_eq!(r.status(), 200);
    let r = app.get("/attendance.csv").await;
    assert_eq!(r.status(), 200);
    let r = app.delete(&format!("/users/{id}?history=true")).await;
    assert_eq!(r.status(), 204);
    let r = app.get("/audit.csv").await;
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("id,at,actor,action,target,address,detail\n"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().count(),
        1 + 4,
        "the four entries before it:\n{csv}"
    );

    let log = entries(&app).await;
    let s = |a: &str, t: Option<&str>, d: Option<&str>| {
        (
            me.clone(),
            a.to_owned(),
            t.map(str::to_owned),
            d.map(str::to_owned),
        )
    };
    assert_eq!(
        log.iter().map(summary).collect::<Vec<_>>(),
        vec![
            s("register", Some(&user), Some("2 face(s)")),
            s("add_face", Some(&user), None),
            s("export", Some("attendance"), Some("1 row(s)")),
            s("delete_user", Some(&user), Some("with history")),
            s("export", Some("audit"), Some("4 row(s)")),
        ]
    );
    for e in &log {
        assert_eq!(e.address.as_deref(), Some("127.0.0.1"), "{e:?}");
    }
    // Newest first, over HTTP too.
    let listed: Vec<AuditRecord> = app.get_json("/audit").await;
    let mut newest_first = log.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
}

async fn no_entry_holds_a_photo_an_embedding_or_a_name(app: TestApp) {
    let photo = &photos_of("Hugo_Chavez")[0];
    let id = app.register_ok("Zebulon", "Quixotewright", photo).await;
    let embedding: Vec<u8> = match &app.store {
        rollcall::store::Store::Sqlite(pool) => {
            sqlx::query_scalar("SELECT embedding FROM users WHERE id = ?")
                .bind(id)
                .fetch_one(pool)
                .await
        }
        rollcall::store::Store::Mysql(pool) => {
            sqlx::query_scalar("SELECT embedding FROM users WHERE id = ?")
                .bind(id)
                .fetch_one(pool)
                .await
        }
    }
    .unwrap();
    let face = Form::new().part("image", image_part(fixture(photo), "again.jpg"));
    assert_eq!(
        app.post_form(&format!("/users/{id}/faces"), face)
            .await
            .status(),
        200
    );
    assert_eq!(app.get("/attendance.csv").await.status(), 200);
    assert_eq!(
        app.delete(&format!("/users/{id}?history=true"))
            .await
            .status(),
        204
    );

    let log = entries(&app).await;
    assert_eq!(log.len(), 4);
    let photo_bytes = fixture(photo);
    let embedding_text = String::from_utf8_lossy(&embedding[..16]).into_owned();
    let embedding_hex: String = embedding[..16].iter().map(|b| format!("{b:02x}")).collect();
    for e in &log {
        let cells = [
            Some(e.actor.as_str()),
            Some(e.action.as_str()),
            e.target.as_deref(),
            e.address.as_deref(),
            e.detail.as_deref(),
        ];
        for cell in cells.into_iter().flatten() {
            let lower = cell.to_lowercase();
            assert!(cell.chars().count() <= MAX_TEXT, "{e:?}");
            assert!(!cell.chars().any(char::is_control), "{e:?}");
            assert!(
                !lower.contains("zebulon") && !lower.contains("quixotewright"),
                "{e:?}"
            );
            assert!(
                !cell.contains(&embedding_text) && !lower.contains(&embedding_hex),
                "{e:?}"
            );
            assert!(!cell.contains("JFIF") && !cell.contains("Exif"), "{e:?}");
            assert!(
                !photo_bytes
                    .windows(cell.len().max(8))
                    .any(|w| w == cell.as_bytes()),
                "{e:?}"
            );
        }
    }
}

async fn the_log_pages_newest_first_and_its_csv_neutralises_formulas(app: TestApp) {
    let caller = Caller::Key {
        id: 9,
        name: "=cmd|' /C calc'!A0".into(),
        scope: Scope::Admin,
        require_liveness: false,
    };
    let actor = Actor::new(&caller, None);
    for target in ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)"] {
        let entry = Entry::new(&actor, Action::LoginFailed)
            .target(target)
            .detail(format!("\t{target}"));
        app.store.try_audit(&entry).await.unwrap();
    }
    let all: Vec<AuditRecord> = app.get_json("/audit").await;
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let first: Vec<AuditRecord> = app.get_json("/audit?limit=3").await;
    assert_eq!(first, all[..3]);
    let next: Vec<AuditRecord> = app
        .get_json(&format!("/audit?limit=3&before={}", first[2].id))
        .await;
    assert_eq!(next, all[3..]);
    let none: Vec<AuditRecord> = app.get_json(&format!("/audit?before={}", all[3].id)).await;
    assert!(none.is_empty(), "nothing is older than the oldest");
    for bad in ["limit=0", "limit=10001", "limit=x", "before=abc"] {
        let r = app.get(&format!("/audit?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_request");
    }

    let r = app.get("/audit.csv").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "{csv}");
    for row in csv.lines().skip(1) {
        for cell in row.split(',') {
            let cell = cell.trim_start_matches('"');
            // A plain number (`-2`) is no formula: a spreadsheet shows it as the number.
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']) || cell.parse::<f64>().is_ok(),
                "a live formula cell `{cell}` in\n{csv}"
            );
        }
    }
}

/// The value of the session cookie a login answer sets.
fn session_cookie(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn logins_logouts_and_keys_are_recorded_without_secrets(app: TestApp) {
    let password = "correct horse battery staple";
    let username = Username::parse("alice").unwrap();
    accounts(&app)
        .add_account(&username, &Password::parse(password).unwrap(), Role::Admin)
        .await
        .unwrap();
    let before = entries(&app).await.len();
    let browser = reqwest::Client::new();
    let login = |user: &str, pass: &str| {
        browser
            .post(app.url("/login"))
            .json(&json!({ "username": user, "password": pass }))
            .send()
    };

    let r = login("alice", "wrong password, not hers").await.unwrap();
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());
    let r = login("=mallory", "whatever it is typed").await.unwrap();
    assert_eq!(r.status(), 401);
    let r = login("alice", password).await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    let r = browser
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // The session is over: a second logout with its cookie records nothing.
    let r = browser
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let r = app
        .client
        .post(app.url("/keys"))
        .json(&json!({ "name": "front door", "scope": "verify" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let (key_id, key) = (
        created["id"].as_i64().unwrap(),
        created["key"].as_str().unwrap(),
    );
    assert_eq!(app.delete(&format!("/keys/{key_id}")).await.status(), 204);

    let log = entries(&app).await;
    let got: Vec<_> = log[before..].iter().map(summary).collect();
    let me = client_actor();
    let t = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        vec![
            (
                "anonymous".into(),
                "login_failed".into(),
                t("account:alice"),
                t("unauthorized")
            ),
            (
                "anonymous".into(),
                "login_failed".into(),
                t("account:=mallory"),
                t("unauthorized")
            ),
            (
                "account:alice".into(),
                "login".into(),
                t("account:alice"),
                None
            ),
            (
                "account:alice".into(),
                "logout".into(),
                t("account:alice"),
                None
            ),
            (
                me.clone(),
                "key_created".into(),
                t(&format!("key:{key_id}")),
                t("verify: front door")
            ),
            (
                me.clone(),
                "key_revoked".into(),
                t(&format!("key:{key_id}")),
                None
            ),
        ]
    );
    for e in &log {
        assert_eq!(e.address.as_deref(), Some("127.0.0.1"), "{e:?}");
        let text = format!("{e:?}");
        for secret in [
            password,
            "wrong password",
            "whatever it is typed",
            key,
            cookie.as_str(),
        ] {
            assert!(!text.contains(secret), "`{secret}` in {e:?}");
        }
        assert!(!text.contains("rc_"), "a key in {e:?}");
    }
    let csv = app.get("/audit.csv").await.text().await.unwrap();
    assert!(
        csv.contains(",account:=mallory,"),
        "the target does not start the cell: {csv}"
    );
}

/// The log is for admins: accounts and keys of other kinds are refused.
async fn only_admins_read_the_log(app: TestApp) {
    let viewer = app.logged_in("vera", Role::Viewer).await;
    for path in ["/audit", "/audit.csv"] {
        let r = viewer.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path} viewer");
        assert_eq!(app.get(path).await.status(), 200, "{path}");
        let r = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(r.status(), 401, "{path} anonymous");
        for scope in [Scope::Verify, Scope::Register] {
            let key = new_key(&app, &format!("{scope} key"), scope).await;
            let r = client_with(&key).get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 403, "{path} {scope} key");
        }
    }
}

crate::on_both_backends!(
    each_change_and_export_leaves_one_entry,
    no_entry_holds_a_photo_an_embedding_or_a_name,
    the_log_pages_newest_first_and_its_csv_neutralises_formulas,
    logins_logouts_and_keys_are_recorded_without_secrets,
    only_admins_read_the_log,
);
