//! Operations: `/health`, `/metrics`, and the middleware counting requests per route.

use super::AppState;
use crate::store::Storage;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rollcall_vision::EmbedderKind;
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The process-wide Prometheus recorder (metrics are global; one recorder serves every app
/// built in this process, e.g. the tests' many servers).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const SECONDS: &[f64] = &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(SECONDS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Counts and times every request by route template (`/users/{id}`, not `/users/7`).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("rollcall_http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("rollcall_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(n) = state.rollcall.count_users().await {
        metrics::gauge!("rollcall_users").set(n as f64);
    }
    metrics::gauge!("rollcall_gallery_people").set(state.rollcall.gallery_len() as f64);
    let point = state.rollcall.operating_point();
    metrics::gauge!("rollcall_threshold").set(f64::from(point.threshold.value()));
    metrics::gauge!("rollcall_threshold_margin").set(point.margin);
    metrics::gauge!("rollcall_threshold_false_accept_rate").set(point.false_accept_rate);
    metrics::gauge!("rollcall_gallery_sync_lag_seconds")
        .set(state.rollcall.gallery_sync().lag().as_secs_f64());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// How long /health waits for the database, and for the photo store's probe: both run at
/// once, so the answer comes within a second even when the database does not answer.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(800);

/// The body of `/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when the database and the photo store both work, else `unavailable`.
    #[schema(example = "ok")]
    status: &'static str,
    /// `ok`, or `unavailable` when the database cannot be reached in time.
    #[schema(example = "ok")]
    database: &'static str,
    /// The reference photo store: `ok`, `full` (no space left) or `unavailable` (cannot be
    /// written: read-only, permissions, missing).
    #[schema(example = "ok")]
    storage: &'static str,
    #[schema(example = "sqlite")]
    backend: &'static str,
    model: String,
    #[schema(value_type = String, example = "face-api")]
    embedder: EmbedderKind,
    /// The threshold in force (derived for the people registered now, unless configured).
    threshold: f64,
    /// How much more similar than the next person the best must be (0: the best alone decides).
    margin: f64,
    /// The false-accept rate per attempt it was derived for.
    false_accept_rate: f64,
    /// `sampled`, `model`, `gallery`, `configured` or `default` (docs/accuracy.md).
    #[schema(example = "sampled")]
    threshold_source: &'static str,
    /// People and reference faces the threshold was derived for (those of the model in use).
    gallery_people: usize,
    gallery_references: usize,
    /// Registered people (of every model). Null when the database cannot be reached, or while
    /// the first count of a very large table is still running.
    users: Option<i64>,
    /// Every change to the registered people committed before this instant (by this server,
    /// another one or the command line) is in this server's gallery.
    #[schema(value_type = String, format = DateTime)]
    gallery_synced_at: DateTime<Utc>,
    /// How far behind the database the gallery may be: milliseconds since `gallery_synced_at`
    /// (about the sync interval when all is well; growing while the database is out of reach).
    gallery_sync_lag_ms: u64,
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "The server, its database and its photo store work", body = Health),
        (status = 503, description = "The database cannot be reached, or photos cannot be written", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let rollcall = &state.rollcall;
    let database = tokio::time::timeout(HEALTH_TIMEOUT, rollcall.ping());
    // The count is not what says the database works: at a million people a fresh count takes
    // longer than a probe waits. It runs in its own task, so it finishes (and is cached for the
    // next probe) even when this one stops waiting.
    let counting = tokio::spawn({
        let rollcall = Arc::clone(rollcall);
        async move { rollcall.count_users().await }
    });
    let users = tokio::time::timeout(HEALTH_TIMEOUT, counting);
    let storage = tokio::time::timeout(HEALTH_TIMEOUT, rollcall.storage());
    let (database, users, storage) = tokio::join!(database, users, storage);
    let database = match database {
        Ok(Ok(())) => "ok",
        // At DEBUG: a load balancer polls this every few seconds, and its 503 has its access
        // line (one per run of them); the sync task logs the outage and its end once.
        Ok(Err(e)) => {
            tracing::debug!("health: database: {e}");
            "unavailable"
        }
        Err(_) => {
            tracing::debug!("health: the database did not answer within {HEALTH_TIMEOUT:?}");
            "unavailable"
        }
    };
    let users = match users {
        Ok(Ok(Ok(n))) if database == "ok" => Some(n),
        _ => None,
    };
    // A probe that hangs (a dead network mount) is as bad as one that fails.
    let storage = storage.unwrap_or(Storage::Unavailable);
    let healthy = database == "ok" && storage == Storage::Ok;
    let point = rollcall.operating_point();
    let sync = rollcall.gallery_sync();
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        database,
        storage: storage.as_str(),
        backend: rollcall.backend(),
        model: state.rollcall.model().to_owned(),
        embedder: state.rollcall.embedder(),
        threshold: crate::view::round(point.threshold.value()),
        margin: crate::view::round_margin(point.margin),
        false_accept_rate: point.false_accept_rate,
        threshold_source: point.source.as_str(),
        gallery_people: point.people,
        gallery_references: point.references,
        users,
        gallery_synced_at: sync.synced_at,
        gallery_sync_lag_ms: u64::try_from(sync.lag().as_millis()).unwrap_or(u64::MAX),
    };
    if healthy {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        // As every 503 of the server: when to ask again.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(body),
        )
            .into_response()
    }
}
