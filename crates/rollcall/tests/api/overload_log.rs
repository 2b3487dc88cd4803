//! The log under overload: a storm of 503s (a full inference queue, a database out of reach)
//! writes a few lines for the whole run, never one or two per refused request, and no ERROR.
//!
//! The server's lines are captured by running it on a runtime of its own whose every thread
//! logs to this test's buffer (through the filter `rollcall serve` uses by default), so the
//! other tests of this binary, on their own runtimes, never write into it.

use crate::helpers::{
    fixture, image_part, mysql_proxy, spawn_app_behind, spawn_app_with, tony_blair, Backend, Form,
    TestConfig,
};
use rollcall::http::outage_log::SUMMARY_EVERY;
use rollcall_test_support::log_capture::LogCapture;
use std::time::{Duration, Instant};

/// A runtime whose threads (workers and blocking pool) log to `captured`.
fn logging_runtime(captured: &LogCapture) -> (tokio::runtime::Runtime, tracing::Dispatch) {
    let writer = captured.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                rollcall::app::DEFAULT_LOG_FILTER,
            ))
            .finish(),
    );
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // For the thread's whole life: these threads belong to this runtime alone.
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .build()
        .expect("a runtime");
    (runtime, dispatch)
}

/// `clients` clients, each sending `each` requests (`request` makes one) one after another:
/// the statuses, every 503 checked for `Retry-After`.
async fn storm<F, Fut>(clients: usize, each: usize, request: F) -> Vec<u16>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Response> + Send + 'static,
{
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::with_capacity(each);
                for _ in 0..each {
                    let r = request().await;
                    let status = r.status().as_u16();
                    if status == 503 {
                        assert!(
                            r.headers().contains_key("retry-after"),
                            "a 503 without Retry-After"
                        );
                    }
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.expect("a client task"));
    }
    statuses
}

/// Lines a run of 503s may take: its first, its end, and one per [`SUMMARY_EVERY`] begun.
fn allowed_lines(took: Duration) -> usize {
    2 + took.as_secs().div_ceil(SUMMARY_EVERY.as_secs()) as usize
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// Wait until the run of `code` has ended (its summary line), at most 15 s.
async fn run_ended(captured: &LogCapture, code: &str) -> String {
    let start = Instant::now();
    loop {
        let ended = captured
            .lines()
            .into_iter()
            .find(|l| l.contains("503s ended") && l.contains(&format!("error={code}")));
        if let Some(line) = ended {
            return line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the run of {code} never ended: {:#?}",
            captured.lines()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_full_queue_storm_is_a_few_lines_not_one_per_503() {
    let captured = LogCapture::default();
    let (runtime, dispatch) = logging_runtime(&captured);
    let _guard = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(async {
        let app = spawn_app_with(
            Backend::Sqlite,
            TestConfig {
                workers: 1,
                queue: 0,
                ..Default::default()
            },
        )
        .await;
        app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
        captured.clear();
        // A group photo: the largest image of the fixtures, so each analysis takes a while.
        let bytes = fixture("scenes/group/multiface_friends_cast.jpg");
        let (client, url) = (app.client.clone(), app.url("/verify"));
        let send = move || {
            let (client, url, bytes) = (client.clone(), url.clone(), bytes.clone());
            async move {
                let form = Form::new().part("image", image_part(bytes, "group.jpg"));
                client
                    .post(url)
                    .multipart(form)
                    .send()
                    .await
                    .expect("a verify")
            }
        };
        let start = Instant::now();
        let statuses = storm(8, 40, send).await;
        let took = start.elapsed();
        let refused = statuses.iter().filter(|&&s| s == 503).count();
        assert!(
            statuses.iter().all(|s| [404, 503].contains(s)),
            "{statuses:?}"
        );
        assert!(refused >= 100, "too few 503s to call it a storm: {refused}");
        let ended = run_ended(&captured, "busy").await;
        let lines = captured.lines();
        assert_eq!(count(&lines, "ERROR"), 0, "{lines:#?}");
        // The run's first line, its end, and a summary per 10 s at most.
        let busy = count(&lines, "busy");
        assert!(
            busy <= allowed_lines(took),
            "{busy} lines for {refused} busy answers: {lines:#?}"
        );
        assert!(
            ended.contains(&format!("answered={refused}")),
            "the summary counts every 503 ({refused}): {ended}"
        );
    });
}

#[test]
fn a_database_outage_storm_is_a_few_lines_not_one_per_503() {
    let captured = LogCapture::default();
    let (runtime, dispatch) = logging_runtime(&captured);
    let _guard = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(async {
        let proxy = mysql_proxy().await;
        let app = spawn_app_behind(&proxy, TestConfig::default()).await;
        assert_eq!(app.get("/users").await.status(), 200);
        captured.clear();
        proxy.cut();
        let (client, url) = (app.client.clone(), app.url("/users"));
        let send = move || {
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(url).send().await.expect("a request") }
        };
        let (client, url) = (app.anonymous(), app.url("/health"));
        let health = move || {
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(url).send().await.expect("a request") }
        };
        let start = Instant::now();
        let (mut statuses, polled) = tokio::join!(storm(16, 4, send), storm(2, 4, health));
        let took = start.elapsed();
        statuses.extend(polled);
        assert!(statuses.iter().all(|&s| s == 503), "{statuses:?}");
        proxy.restore();
        run_ended(&captured, "database_unavailable").await;
        let lines = captured.lines();
        assert_eq!(count(&lines, "ERROR"), 0, "{lines:#?}");
        // Per run (database_unavailable, and /health's 503s without a code): its first line,
        // its summaries and its end; and the sync task's lines for the outage and its end. Not
        // one line per answer.
        assert!(
            lines.len() <= 2 * allowed_lines(took) + 2,
            "{} lines for {} 503s: {lines:#?}",
            lines.len(),
            statuses.len()
        );
    });
}
