//! Who may call what: every route of the router × every kind of caller, and the rules around
//! logging in (rate limit, logout, expiry, password reset, the setup link), keys over HTTP, the
//! kiosk name of a check-in, and `--anonymous-verify`.
//!
//! The expected matrix is written out here, apart from the code's table (`http::access::RULES`),
//! and the routes are those `/openapi.json` lists (which another test proves are the router's).

use crate::helpers::{
    client_with_key, client_with_session, fixture, image_part, photos_of, session_cookie,
    tony_blair, Form, TestApp, PASSWORD,
};
use reqwest::{Client, Method, StatusCode};
use rollcall::auth::{Role, Scope};
use rollcall::domain::{Password, Username};
use rollcall::http::access::RULES;
use rollcall::service::{Accounts, DEFAULT_SESSION_TTL};
use rollcall::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Who may call a route, as docs/api.md words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anyone,
    Verify,
    Register,
    Reports,
    Admin,
}

/// Every route with who may call it: the rules, written down independently of the code.
const EXPECTED: &[(&str, &str, Who)] = &[
    ("GET", "/", Who::Anyone),
    ("GET", "/admin", Who::Anyone),
    ("GET", "/assets/{path}", Who::Anyone),
    ("GET", "/health", Who::Anyone),
    ("GET", "/openapi.json", Who::Anyone),
    ("POST", "/login", Who::Anyone),
    ("GET", "/me", Who::Anyone),
    ("POST", "/setup", Who::Anyone),
    ("POST", "/verify", Who::Verify),
    ("POST", "/verify/challenge", Who::Verify),
    ("POST", "/detect", Who::Verify),
    ("POST", "/register", Who::Register),
    ("POST", "/users/{id}/faces", Who::Register),
    ("GET", "/users", Who::Reports),
    ("GET", "/users/{id}", Who::Reports),
    ("GET", "/users/{id}/photo", Who::Reports),
    ("GET", "/users/{id}/faces", Who::Reports),
    ("GET", "/users/{id}/faces/{face}/photo", Who::Reports),
    ("GET", "/attendance", Who::Reports),
    ("GET", "/attendance.csv", Who::Reports),
    ("GET", "/attendance/summary", Who::Reports),
    ("GET", "/attendance/daily", Who::Reports),
    ("DELETE", "/users/{id}", Who::Admin),
    ("DELETE", "/users/{id}/faces/{face}", Who::Admin),
    ("GET", "/settings", Who::Admin),
    ("PUT", "/settings", Who::Admin),
    ("GET", "/metrics", Who::Admin),
    ("GET", "/keys", Who::Admin),
    ("POST", "/keys", Who::Admin),
    ("DELETE", "/keys/{id}", Who::Admin),
    ("GET", "/audit", Who::Admin),
    ("GET", "/audit.csv", Who::Admin),
    // Last: it ends the sessions of the callers that log in.
    ("POST", "/logout", Who::Anyone),
];

const CALLERS: [&str; 7] = [
    "anonymous",
    "viewer",
    "admin account",
    "verify key",
    "register key",
    "admin key",
    "revoked key",
];

/// What `caller` gets from a route `who` may call: `None` for "let in" (any status but 401 and
/// 403: the requests carry no valid body, so a handler may refuse them after the check).
fn expected(who: Who, caller: &str) -> Option<u16> {
    let allowed = match (who, caller) {
        (_, "revoked key") => return Some(401),
        (Who::Anyone, _) => true,
        (_, "anonymous") => return Some(401),
        (_, "admin account" | "admin key") => true,
        (Who::Verify, c) => c == "verify key",
        (Who::Register, c) => c == "register key",
        (Who::Reports, c) => c == "viewer",
        (Who::Admin, _) => false,
    };
    if allowed {
        None
    } else {
        Some(403)
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "999999")
        .replace("{face}", "1")
        .replace("{path}", "common.js")
}

async fn routes_of_the_document(app: &TestApp) -> BTreeSet<(String, String)> {
    let doc: Value = app.get_json("/openapi.json").await;
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

async fn every_route_answers_each_caller_as_the_rules_say(app: TestApp) {
    // Every route has an expectation here and a rule in the code, and nothing more.
    let documented = routes_of_the_document(&app).await;
    let here: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(here, documented, "routes of this test vs /openapi.json");
    let code: BTreeSet<(String, String)> = RULES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), p.replace("{*", "{")))
        .collect();
    assert_eq!(code, documented, "http::access::RULES vs /openapi.json");

    let revoked = app.key(Scope::Admin).await;
    let r = app
        .delete(&format!("/keys/{}", key_id(&app, "admin key").await))
        .await;
    assert_eq!(r.status(), 204);
    let clients: Vec<Client> = vec![
        app.anonymous(),
        app.logged_in("vera", Role::Viewer).await,
        app.logged_in("ada", Role::Admin).await,
        client_with_key(&app.key(Scope::Verify).await),
        client_with_key(&app.key(Scope::Register).await),
        app.client.clone(),
        client_with_key(&revoked),
    ];

    let mut table = String::new();
    let mut wrong = 0;
    let _ = write!(table, "{:<32}", "");
    for c in CALLERS {
        let _ = write!(table, "{c:>14}");
    }
    table.push('\n');
    for (method, path, who) in EXPECTED {
        let _ = write!(table, "{:<32}", format!("{method} {path}"));
        for (caller, client) in CALLERS.iter().zip(&clients) {
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            let r = client
                .request(method, app.url(&concrete(path)))
                .send()
                .await
                .expect("request");
            let got = r.status().as_u16();
            let ok = match expected(*who, caller) {
                Some(status) => got == status,
                None => got != 401 && got != 403,
            };
            if got == 401 {
                assert!(
                    r.headers().contains_key(reqwest::header::WWW_AUTHENTICATE),
                    "a 401 says how to authenticate"
                );
            }
            if (got == 401 || got == 403) && ok {
                let body: Value = r.json().await.expect("a JSON error");
                let code = if got == 401 {
                    "unauthorized"
                } else {
                    "forbidden"
                };
                assert_eq!(body["error"], code, "{body}");
            }
            wrong += usize::from(!ok);
            let _ = write!(
                table,
                "{:>14}",
                format!("{got}{}", if ok { "" } else { " ✗" })
            );
        }
        table.push('\n');
    }
    assert_eq!(
        wrong, 0,
        "{wrong} answers differ from the rules (✗):\n{table}"
    );
}

async fn key_id(app: &TestApp, name: &str) -> i64 {
    let keys: Value = app.get_json("/keys").await;
    keys.as_array()
        .expect("a list")
        .iter()
        .rev()
        .find(|k| k["name"] == name)
        .and_then(|k| k["id"].as_i64())
        .unwrap_or_else(|| panic!("no key named {name}: {keys}"))
}

async fn login_sets_a_strict_http_only_cookie_and_refuses_alike(app: TestApp) {
    app.account("ada", Role::Admin).await;
    let r = app.login("Ada", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({ "username": "ada", "role": "admin" }));

    let wrong_password = app.login("ada", "not the password").await;
    let unknown_user = app.login("nobody", PASSWORD).await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_user.status(), 401);
    assert!(session_cookie(&wrong_password).is_none());
    let a: Value = wrong_password.json().await.unwrap();
    let b: Value = unknown_user.json().await.unwrap();
    assert_eq!(
        a, b,
        "the same answer for an unknown name and a wrong password"
    );
    assert_eq!(a["error"], "unauthorized");
}

async fn me_says_who_is_asking(app: TestApp) {
    let me = |c: Client| {
        let url = app.url("/me");
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let admin = me(app.logged_in("ada", Role::Admin).await).await;
    assert_eq!(
        (&admin["kind"], &admin["name"], &admin["role"]),
        (&json!("account"), &json!("ada"), &json!("admin"))
    );
    let key = me(client_with_key(&app.key(Scope::Verify).await)).await;
    assert_eq!(
        (&key["kind"], &key["name"], &key["scope"]),
        (&json!("key"), &json!("verify key"), &json!("verify"))
    );
    let nobody = me(app.anonymous()).await;
    assert_eq!(nobody["kind"], "anonymous");
    assert_eq!(nobody["anonymous_verify"], false);
}

async fn failed_logins_are_limited_per_account_and_per_address(app: TestApp) {
    app.account("ada", Role::Admin).await;
    for _ in 0..5 {
        assert_eq!(app.login("ada", "wrong password!").await.status(), 401);
    }
    // The right password too is refused now, with the time to wait.
    let r = app.login("ada", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "too_many_attempts"
    );
    // The same address trying another account is limited as well: the address has used its 5.
    app.account("bob", Role::Viewer).await;
    assert_eq!(app.login("bob", PASSWORD).await.status(), 429);
}

async fn logout_ends_the_session(app: TestApp) {
    app.account("ada", Role::Admin).await;
    let token = session_cookie(&app.login("ada", PASSWORD).await).expect("a cookie");
    let client = client_with_session(&token);
    assert_eq!(
        client.get(app.url("/users")).send().await.unwrap().status(),
        200
    );
    let r = client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let cleared = r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("rollcall_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        client.get(app.url("/users")).send().await.unwrap().status(),
        401
    );
    let me: Value = client
        .get(app.url("/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["kind"], "anonymous");
}

async fn an_expired_session_is_refused(app: TestApp) {
    app.account("ada", Role::Admin).await;
    let token = session_cookie(&app.login("ada", PASSWORD).await).expect("a cookie");
    let client = client_with_session(&token);
    assert_eq!(
        client.get(app.url("/users")).send().await.unwrap().status(),
        200
    );
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let sql = "UPDATE sessions SET expires_at = ?";
    match &app.store {
        Store::Sqlite(pool) => sqlx::query(sql).bind(past).execute(pool).await.map(drop),
        Store::Mysql(pool) => sqlx::query(sql).bind(past).execute(pool).await.map(drop),
    }
    .expect("ageing the session");
    assert_eq!(
        client.get(app.url("/users")).send().await.unwrap().status(),
        401
    );
}

async fn a_password_reset_ends_the_sessions(app: TestApp) {
    app.account("ada", Role::Admin).await;
    let token = session_cookie(&app.login("ada", PASSWORD).await).expect("a cookie");
    let client = client_with_session(&token);
    assert_eq!(
        client.get(app.url("/users")).send().await.unwrap().status(),
        200
    );
    Accounts::new(app.store.clone(), DEFAULT_SESSION_TTL)
        .reset_password(
            &Username::parse("ada").unwrap(),
            &Password::parse("a brand new password").unwrap(),
        )
        .await
        .expect("resetting the password");
    assert_eq!(
        client.get(app.url("/users")).send().await.unwrap().status(),
        401
    );
    assert_eq!(app.login("ada", PASSWORD).await.status(), 401);
    assert_eq!(app.login("ada", "a brand new password").await.status(), 200);
}

async fn setup(app: &TestApp, token: &str, username: &str) -> reqwest::Response {
    app.anonymous()
        .post(app.url("/setup"))
        .json(&json!({ "token": token, "username": username, "password": PASSWORD }))
        .send()
        .await
        .expect("request")
}

async fn the_setup_link_works_once(app: TestApp) {
    let token = app
        .setup_token
        .clone()
        .expect("a fresh server offers a setup link");
    assert_eq!(setup(&app, "wrong-token", "ada").await.status(), 403);
    let r = setup(&app, &token, "ada").await;
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r).expect("logged in");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "username": "ada", "role": "admin" })
    );
    let admin = client_with_session(&cookie);
    assert_eq!(
        admin.get(app.url("/keys")).send().await.unwrap().status(),
        200
    );
    let again = setup(&app, &token, "eve").await;
    assert_eq!(again.status(), 403);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "forbidden");
    assert_eq!(app.login("eve", PASSWORD).await.status(), 401);
}

async fn the_setup_link_dies_once_an_account_exists(app: TestApp) {
    let token = app.setup_token.clone().expect("a setup link");
    // `rollcall admin add` made an account meanwhile.
    app.account("ada", Role::Admin).await;
    assert_eq!(setup(&app, &token, "eve").await.status(), 403);
    assert_eq!(app.login("eve", PASSWORD).await.status(), 401);
}

async fn keys_made_over_http_work_until_revoked(app: TestApp) {
    let r = app
        .client
        .post(app.url("/keys"))
        .json(&json!({ "name": "front door", "scope": "verify" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().expect("the key").to_owned();
    assert!(key.starts_with("rc_") && key.len() == 46, "{key}");
    assert_eq!(created["scope"], "verify");

    // A check-in is recorded under the key's name, whatever the form says.
    app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let kiosk = client_with_key(&key);
    let form = Form::new()
        .text("kiosk", "somewhere else")
        .part("image", image_part(fixture(&tony_blair()[1]), "frame.jpg"));
    let r = kiosk
        .post(app.url("/verify"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log: Value = app.get_json("/attendance").await;
    assert_eq!(log[0]["kiosk"], "front door");

    let keys: Value = app.get_json("/keys").await;
    let listed = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created["id"])
        .expect("listed");
    assert!(listed.get("key").is_none(), "a key is shown once: {listed}");
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(listed["revoked_at"].is_null());
    // Only its SHA-256 is stored.
    let everything = format!("{:?}", app.store.list_keys().await.unwrap());
    assert!(!everything.contains(&key[3..]));

    let r = app.delete(&format!("/keys/{}", created["id"])).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.delete("/keys/999999").await.status(), 404);
    let r = kiosk.get(app.url("/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let keys: Value = app.get_json("/keys").await;
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == created["id"] && k["revoked_at"].is_string()));

    let bad = app
        .client
        .post(app.url("/keys"))
        .json(&json!({ "name": "x", "scope": "root" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

async fn only_admins_see_how_close_a_stranger_came(app: TestApp) {
    app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let stranger = fixture(&photos_of("Aaron_Sorkin")[0]);
    let ask = |client: Client| {
        let (url, bytes) = (app.url("/verify"), stranger.clone());
        async move {
            let form = Form::new().part("image", image_part(bytes, "s.jpg"));
            let r = client.post(url).multipart(form).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            r.json::<Value>().await.unwrap()
        }
    };
    let kiosk = ask(client_with_key(&app.key(Scope::Verify).await)).await;
    assert!(kiosk["faces"][0]["best_similarity"].is_null(), "{kiosk}");
    assert_eq!(kiosk["faces"][0]["box"].as_array().map(Vec::len), Some(4));
    let admin = ask(app.client.clone()).await;
    assert!(admin["faces"][0]["best_similarity"].is_f64(), "{admin}");
}

async fn anonymous_verify_opens_verify_and_detect_only(app: TestApp) {
    app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let anyone = app.anonymous();
    let photo = || Form::new().part("image", image_part(fixture(&tony_blair()[1]), "f.jpg"));
    let r = anyone
        .post(app.url("/verify"))
        .multipart(photo())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = anyone
        .post(app.url("/detect"))
        .multipart(photo())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log: Value = app.get_json("/attendance").await;
    assert_eq!(log[0]["kiosk"], "anonymous");
    let me: Value = anyone
        .get(app.url("/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["anonymous_verify"], true);
    for (method, path) in [
        (Method::POST, "/register"),
        (Method::POST, "/users/1/faces"),
        (Method::GET, "/users"),
        (Method::GET, "/users/1/photo"),
        (Method::GET, "/attendance"),
        (Method::DELETE, "/users/1"),
        (Method::GET, "/keys"),
        (Method::GET, "/metrics"),
    ] {
        let r = anyone
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    // Credentials that do not reach /verify are not let in by it either.
    let desk = client_with_key(&app.key(Scope::Register).await);
    let r = desk
        .post(app.url("/verify"))
        .multipart(photo())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

crate::on_both_backends!(
    every_route_answers_each_caller_as_the_rules_say,
    login_sets_a_strict_http_only_cookie_and_refuses_alike,
    me_says_who_is_asking,
    failed_logins_are_limited_per_account_and_per_address,
    logout_ends_the_session,
    an_expired_session_is_refused,
    a_password_reset_ends_the_sessions,
    the_setup_link_works_once,
    the_setup_link_dies_once_an_account_exists,
    keys_made_over_http_work_until_revoked,
    only_admins_see_how_close_a_stranger_came,
);

mod anonymous_verify {
    use super::*;
    crate::on_both_backends!(
        config = crate::helpers::TestConfig {
            anonymous_verify: true,
            ..crate::helpers::TestConfig::default()
        };
        anonymous_verify_opens_verify_and_detect_only,
    );
}
