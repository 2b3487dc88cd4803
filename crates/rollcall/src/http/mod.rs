//! The HTTP API of `docs/api.md`: [`app`] builds the router the server, the CLI and the tests
//! all use. One module per resource; [`error::ApiError`] is the one error answer.

pub mod access;
pub mod access_log;
pub mod attendance;
pub mod audit;
pub mod deadline;
pub mod error;
pub mod form;
pub mod front_door;
pub mod keys;
pub mod liveness;
pub mod openapi;
pub mod ops;
pub mod outage_log;
pub mod pages;
pub mod recognition;
pub mod session;
pub mod settings;
pub mod users;

use crate::service::{Accounts, Rollcall, DEFAULT_SESSION_TTL};
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
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
    /// Accounts, sessions and keys: who each request is.
    pub accounts: Arc<Accounts>,
    /// Callers without credentials may use `/verify` and `/detect` (a kiosk on a trusted network).
    pub anonymous_verify: bool,
    /// The most `image` parts a form may carry; one more → 400 `too_many_images`.
    pub max_images: usize,
    /// The hosts and origins the server knows as its own.
    pub gate: Arc<front_door::Gate>,
    /// Session cookies must be `Secure` (HTTPS from the binary or behind an https public URL).
    pub secure_cookies: bool,
    /// Whether `/verify/challenge` gives challenges.
    pub liveness: crate::liveness::Mode,
    /// A single photo checks nobody in (it is still recognised).
    pub require_liveness: bool,
    /// Every challenge asks this movement (tests only).
    pub liveness_instruction: Option<crate::liveness::Instruction>,
    /// Every request is answered within this long ([`deadline`]).
    pub answer_timeout: std::time::Duration,
}

impl AppState {
    pub fn new(rollcall: Arc<Rollcall>, max_upload_bytes: usize) -> Self {
        let accounts = Accounts::new(rollcall.store().clone(), DEFAULT_SESSION_TTL);
        AppState {
            rollcall,
            metrics: ops::metrics_handle(),
            max_upload_bytes,
            accounts: Arc::new(accounts),
            anonymous_verify: false,
            max_images: crate::config::DEFAULT_MAX_IMAGES,
            gate: Arc::default(),
            secure_cookies: false,
            liveness: crate::liveness::Mode::default(),
            require_liveness: false,
            liveness_instruction: None,
            answer_timeout: std::time::Duration::from_secs(
                crate::config::DEFAULT_ANSWER_TIMEOUT_SECS,
            ),
        }
    }

    /// The same state behind the front door `settings` describe.
    pub fn with_front_door(mut self, settings: &crate::config::Settings) -> Self {
        let front_door = &settings.front_door;
        self.max_images = front_door.max_images;
        self.answer_timeout = front_door.answer_timeout;
        self.gate = Arc::new(front_door::Gate::new(&settings.bind, front_door));
        self.secure_cookies = settings.secure_cookies || front_door.secure_cookies();
        self
    }
}

/// The whole application: API routes, operations routes and the web pages.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/register", post(recognition::register))
        .route("/verify", post(recognition::verify))
        .route("/verify/challenge", post(liveness::challenge))
        .route("/detect", post(recognition::detect))
        .route("/users", get(users::list))
        .route("/users/{id}", get(users::get).delete(users::delete))
        .route("/users/{id}/photo", get(users::photo))
        .route("/users/{id}/faces", get(users::faces).post(users::add_face))
        .route("/users/{id}/faces/{face}", delete(users::delete_face))
        .route("/users/{id}/faces/{face}/photo", get(users::face_photo))
        .route("/settings", get(settings::get).put(settings::put))
        .route("/attendance", get(attendance::list))
        .route("/attendance.csv", get(attendance::csv))
        .route("/attendance/summary", get(attendance::day_summary))
        .route("/attendance/daily", get(attendance::per_day))
        .route("/audit", get(audit::list))
        .route("/audit.csv", get(audit::csv))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/login", post(session::login))
        .route("/logout", post(session::logout))
        .route("/me", get(session::me))
        .route("/setup", post(session::setup))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", delete(keys::revoke))
        .merge(pages::router());
    // Every route is behind the access check; the request count (outside it) counts refusals.
    // The deadline holds the access check too (it may read the database).
    let authorize = axum::middleware::from_fn_with_state(state.clone(), access::authorize);
    let deadline =
        axum::middleware::from_fn_with_state(state.answer_timeout, deadline::answer_within);
    api.route_layer(authorize)
        .route_layer(deadline)
        .route_layer(axum::middleware::from_fn(ops::track))
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
        // Outermost: every answer, refusals of the layers above included, gets its line.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(outage_log::Outages::default()),
            access_log::log,
        ))
        .with_state(state)
}
