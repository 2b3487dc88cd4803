//! Operations routes: /health and /metrics.

use crate::helpers::{tony_blair, TestApp};
use serde_json::Value;

async fn health_reports_the_database_model_and_users(app: TestApp) {
    let r = app.get("/health").await;
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["database"], "ok");
    assert_eq!(h["embedder"], "face-api");
    assert_eq!(h["users"], 0);
    app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let h: Value = app.get_json("/health").await;
    assert_eq!(h["users"], 1);

    // The database goes away: 503.
    app.store.close().await;
    let r = app.get("/health").await;
    assert_eq!(r.status(), 503);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["database"], "unavailable");
}

async fn metrics_count_requests_and_inference_stages(app: TestApp) {
    app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    assert_eq!(app.verify(&tony_blair()[1]).await.status(), 200);
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for needle in [
        "rollcall_http_requests_total",
        "route=\"/verify\"",
        "rollcall_http_request_duration_seconds_bucket",
        "stage=\"decode\"",
        "stage=\"detect\"",
        "stage=\"embed\"",
        "rollcall_matches_total",
        "rollcall_checkins_total",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
}

async fn unknown_routes_answer_json(app: TestApp) {
    let r = app.get("/nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
}

async fn the_pages_are_served(app: TestApp) {
    for page in ["/", "/admin"] {
        let r = app.get(page).await;
        assert_eq!(r.status(), 200, "{page}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{page}"
        );
    }
}

crate::on_both_backends!(
    the_pages_are_served,
    health_reports_the_database_model_and_users,
    metrics_count_requests_and_inference_stages,
    unknown_routes_answer_json,
);
