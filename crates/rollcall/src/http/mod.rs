//! The HTTP API of `docs/api.md`: [`app`] builds the router the server, the CLI and the tests
//! all use. One module per resource; [`error::ApiError`] is the one error answer.

pub mod attendance;
pub mod error;
pub mod form;
pub mod front_door;
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
    /// The most `image` parts a form may carry; one more → 400 `too_many_images`.
    pub max_images: usize,
    /// The hosts and origins the server knows as its own.
    pub gate: Arc<front_door::Gate>,
    /// Session cookies must be `Secure` (HTTPS from the binary or behind an https public URL).
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(rollcall: Arc<Rollcall>, max_upload_bytes: usize) -> Self {
        AppState {
            rollcall,
            metrics: ops::metrics_handle(),
            max_upload_bytes,
            max_images: crate::config::DEFAULT_MAX_IMAGES,
            gate: Arc::default(),
            secure_cookies: false,
        }
    }

    /// The same state behind the front door `settings` describe.
    pub fn with_front_door(mut self, settings: &crate::config::Settings) -> Self {
        let front_door = &settings.front_door;
        self.max_images = front_door.max_images;
        self.gate = Arc::new(front_door::Gate::new(&settings.bind, front_door));
        self.secure_cookies = front_door.secure_cookies();
        self
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
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::document))
        .merge(pages::router());
    api.route_layer(axum::middleware::from_fn(ops::track))
        .fallback(|| async { error::ApiError::not_found("no such route") })
        // Answers axum writes itself (a 405, an extractor's rejection) get the error shape too.
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(state.max_upload_bytes))
        // The front door, before any other work (auth included): the host, then the origin.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            front_door::same_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            front_door::allowed_host,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
