//! The HTTP API of `docs/api.md`: [`app`] builds the router the server, the CLI and the tests
//! all use. One module per resource; [`error::ApiError`] is the one error answer.

pub mod access_log;
pub mod attendance;
pub mod audit;
pub mod error;
pub mod form;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod recognition;
pub mod users;

use crate::service::Rollcall;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub rollcall: Arc<Rollcall>,
    pub metrics: PrometheusHandle,
    /// The largest request body accepted (uploads); larger → 413.
    pub max_upload_bytes: usize,
}

impl AppState {
    pub fn new(rollcall: Arc<Rollcall>, max_upload_bytes: usize) -> Self {
        AppState {
            rollcall,
            metrics: ops::metrics_handle(),
            max_upload_bytes,
        }
    }
}

/// The whole application: API routes, operations routes and the web pages.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/register", post(recognition::register))
        .route("/verify", post(recognition::verify))
        .route("/detect", post(recognition::detect))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::get).delete(users::delete))
        .route("/users/{id}/photo", get(users::photo))
        .route("/users/{id}/faces", post(users::add_face))
        .route("/attendance", get(attendance::list))
        .route("/attendance.csv", get(attendance::csv))
        .route("/attendance/summary", get(attendance::day_summary))
        .route("/attendance/daily", get(attendance::per_day))
        .route("/audit", get(audit::list))
        .route("/audit.csv", get(audit::csv))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::document))
        .merge(pages::router());
    api.route_layer(axum::middleware::from_fn(ops::track))
        .fallback(|| async { error::ApiError::not_found("no such route") })
        // Answers axum writes itself (a 405, an extractor's rejection) get the error shape too.
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(state.max_upload_bytes))
        // Outermost: every answer, refusals of the layers above included, gets its line.
        .layer(axum::middleware::from_fn(access_log::log))
        .with_state(state)
}
