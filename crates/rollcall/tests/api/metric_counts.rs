//! `/metrics` after a known sequence of requests: exact counts, and routes labelled by their
//! template (`/users/{id}`), never by the raw path.
//!
//! The Prometheus recorder is global to a process and the other tests of this binary run
//! beside this one, so the sequence runs in a process of its own: the test starts this same
//! test binary again with only the `alone_*` test selected.

use crate::helpers::{photos_of, spawn_app, tony_blair, Backend};
use std::collections::{BTreeMap, BTreeSet};

/// Set in the process started for the `alone_*` tests.
const ALONE: &str = "ROLLCALL_TEST_METRICS_ALONE";

/// One line of a Prometheus text page.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text page (label values here hold no quotes or commas).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=\"value\"");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The value of the sample with exactly these labels; 0 when there is none (a counter never
/// incremented is not rendered).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == labels)
        .map_or(0.0, |s| s.value)
}

async fn known_requests_give_exact_metrics(backend: Backend) {
    let app = spawn_app(backend).await;
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    assert_eq!(app.get(&format!("/users/{id}")).await.status(), 200);
    assert_eq!(
        app.get(&format!("/users/{}", id + 1000)).await.status(),
        404
    );
    assert_eq!(
        app.get(&format!("/users/{}", id + 2000)).await.status(),
        404
    );
    assert_eq!(app.get(&format!("/users/{id}/photo")).await.status(), 200);
    assert_eq!(app.verify(&photos[1]).await.status(), 200); // checked in
    assert_eq!(app.verify(&photos[2]).await.status(), 200); // within the cooldown
    assert_eq!(app.verify(&photos_of("Hugo_Chavez")[0]).await.status(), 404);
    assert_eq!(
        app.verify("scenes/no_face/coffee_cup.png").await.status(),
        400
    );

    let text = app.get("/metrics").await.text().await.unwrap();
    let got = samples(&text);
    let requests = "rollcall_http_requests_total";
    let expected = [
        ("POST", "/register", "200", 1.0),
        ("GET", "/users/{id}", "200", 1.0),
        ("GET", "/users/{id}", "404", 2.0),
        ("GET", "/users/{id}/photo", "200", 1.0),
        ("POST", "/verify", "200", 2.0),
        ("POST", "/verify", "404", 1.0),
        ("POST", "/verify", "400", 1.0),
    ];
    for (method, route, status, count) in expected {
        let labels = [("method", method), ("route", route), ("status", status)];
        assert_eq!(
            value(&got, requests, &labels),
            count,
            "{method} {route} {status}:\n{text}"
        );
    }
    let total: f64 = got
        .iter()
        .filter(|s| s.name == requests)
        .map(|s| s.value)
        .sum();
    let made: f64 = expected.iter().map(|e| e.3).sum();
    assert_eq!(total, made, "no request counted that was not made:\n{text}");
    assert_eq!(
        value(
            &got,
            "rollcall_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/users/{id}")]
        ),
        3.0,
        "{text}"
    );
    let routes: BTreeSet<&str> = got
        .iter()
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    assert_eq!(
        routes,
        ["/register", "/users/{id}", "/users/{id}/photo", "/verify"].into(),
        "routes are labelled by their template:\n{text}"
    );

    let count = |name: &str, labels: &[(&str, &str)]| value(&got, name, labels);
    assert_eq!(count("rollcall_registrations_total", &[]), 1.0, "{text}");
    assert_eq!(count("rollcall_checkins_total", &[]), 1.0, "{text}");
    assert_eq!(count("rollcall_matches_total", &[]), 2.0, "{text}");
    for reason in ["not_recognised", "no_face"] {
        assert_eq!(
            count("rollcall_rejections_total", &[("reason", reason)]),
            1.0,
            "{reason}:\n{text}"
        );
    }
    // One register and four verifies decoded and searched for faces.
    for stage in ["decode", "detect"] {
        assert_eq!(
            count("rollcall_inference_seconds_count", &[("stage", stage)]),
            5.0,
            "{stage}:\n{text}"
        );
    }
    assert_eq!(count("rollcall_users", &[]), 1.0, "{text}");
}

/// Run `test` (an `alone_*` test of this binary) in a new process of this test binary.
fn run_alone(test: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--include-ignored", "--test-threads=1"])
        .args(["--nocapture"])
        .env(ALONE, "1")
        .output()
        .expect("starting the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own process:\n{stdout}\n{stderr}"
    );
}

#[test]
fn sqlite_metric_counts_and_route_labels_are_exact() {
    run_alone("metric_counts::alone_sqlite");
}

#[test]
fn mysql_metric_counts_and_route_labels_are_exact() {
    run_alone("metric_counts::alone_mysql");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a process of its own by sqlite_metric_counts_and_route_labels_are_exact"]
async fn alone_sqlite() {
    if std::env::var_os(ALONE).is_some() {
        known_requests_give_exact_metrics(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a process of its own by mysql_metric_counts_and_route_labels_are_exact"]
async fn alone_mysql() {
    if std::env::var_os(ALONE).is_some() {
        known_requests_give_exact_metrics(Backend::Mysql).await;
    }
}
