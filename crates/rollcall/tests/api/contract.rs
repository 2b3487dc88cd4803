//! The error shape of `docs/api.md` holds for answers no handler writes: unknown routes, methods
//! a route does not have, unknown assets and axum's own rejections. Routing does not depend on the
//! database, so SQLite is enough.

use crate::helpers::{spawn_app, Backend, TestApp};
use reqwest::Method;
use serde_json::Value;

/// Sends `method path` and checks the answer is `status` with the JSON error body of `code`;
/// returns the response headers.
async fn error_answer(
    app: &TestApp,
    method: Method,
    path: &str,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    let r = app
        .client
        .request(method.clone(), app.url(path))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), status, "{method} {path}");
    let headers = r.headers().clone();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii").to_owned());
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{method} {path}"
    );
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(body["error"], code, "{method} {path}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{method} {path}: {body}"
    );
    headers
}

/// The methods of an `Allow` header, sorted.
fn allowed(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    let allow = headers
        .get(reqwest::header::ALLOW)
        .expect("a 405 names the methods it has in Allow")
        .to_str()
        .expect("ascii");
    let mut methods: Vec<String> = allow.split(',').map(|m| m.trim().to_owned()).collect();
    methods.sort();
    methods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_route_does_not_have_is_a_json_405_with_allow() {
    let app = spawn_app(Backend::Sqlite).await;
    let trace = Method::from_bytes(b"TRACE").expect("method");
    for (method, path, allow) in [
        (Method::GET, "/verify", vec!["POST"]),
        (Method::PUT, "/users/1", vec!["DELETE", "GET", "HEAD"]),
        (trace, "/", vec!["GET", "HEAD"]),
        (Method::POST, "/health", vec!["GET", "HEAD"]),
        (Method::DELETE, "/assets/common.js", vec!["GET", "HEAD"]),
    ] {
        let headers = error_answer(&app, method.clone(), path, 405, "method_not_allowed").await;
        assert_eq!(allowed(&headers), allow, "{method} {path}");
    }
    // Still counted under its route, like every answer of a route.
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rollcall_http_requests_total{")
                && l.contains("method=\"GET\"")
                && l.contains("route=\"/verify\"")
                && l.contains("status=\"405\"")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_assets_are_a_json_404() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/nope", "/users/1/nope", "/assets/nope.js", "/assets/"] {
        error_answer(&app, Method::GET, path, 404, "not_found").await;
    }
    error_answer(&app, Method::POST, "/nope", 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extractor_rejection_is_a_json_error() {
    let app = spawn_app(Backend::Sqlite).await;
    // A path parameter that is not UTF-8 is refused by axum before the handler runs.
    error_answer(&app, Method::GET, "/users/%FF", 400, "bad_request").await;
    error_answer(&app, Method::GET, "/assets/%FF", 400, "bad_request").await;
}
