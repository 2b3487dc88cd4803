//! Every request is answered within the answer timeout (`--answer-timeout-secs`): a database
//! that stops answering without closing its connections (a hung server, a network that drops
//! packets) would otherwise hold a kiosk's check-in, and its connection, forever.
//!
//! The handler runs as a task of its own, and giving up on it does not cancel it: stopped at
//! an arbitrary await it could drop a registration's photo after its COMMIT was sent, or a
//! transaction half-way. It goes on until the database answers or fails, as it would have;
//! only its answer is dropped, and the caller gets 503 `timed_out` saying the request may
//! still take effect. The same holds when a client hangs up after sending its request: what it
//! asked for finishes. Such tasks are bounded: a photo's work by the inference queue, a
//! query's by the pool's connections (once those are taken new requests fail fast waiting for
//! one).

use super::error::{ApiError, ErrorCode};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tracing::Instrument;

pub async fn answer_within(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    // The route's pattern, never its path: paths carry ids (see the access log).
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // In the caller's span, should a layer outside open one.
    let handler = tokio::spawn(next.run(request).in_current_span());
    match tokio::time::timeout(limit, handler).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::error!("a request to {route} failed: {e}");
            ApiError::new(ErrorCode::Internal, "internal error").into_response()
        }
        Err(_) => {
            // DEBUG: the 503 has its access line, and a storm of them is counted in runs
            // (`outage_log`), not a line each.
            tracing::debug!(
                "a request to {route} was not answered within {limit:?}: the database or the \
                 photo store is not answering; it goes on in the background"
            );
            ApiError::new(
                ErrorCode::TimedOut,
                format!(
                    "no answer within {} s: the database or the photo store is not answering. \
                     The request may still take effect: check before sending it again",
                    limit.as_secs()
                ),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tower::ServiceExt;

    const LIMIT: Duration = Duration::from_millis(200);

    async fn status_and_code(app: Router, uri: &str) -> (u16, String) {
        let request = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    }

    #[tokio::test]
    async fn a_late_handler_gets_a_503_and_still_finishes_its_work() {
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let app = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(LIMIT * 3).await;
                    done.store(true, Ordering::SeqCst);
                    "late"
                }),
            )
            .route("/quick", get(|| async { "in time" }))
            .route_layer(axum::middleware::from_fn_with_state(LIMIT, answer_within));
        let started = std::time::Instant::now();
        assert_eq!(
            status_and_code(app.clone(), "/slow").await,
            (503, "timed_out".to_owned())
        );
        assert!(started.elapsed() < LIMIT * 2, "{:?}", started.elapsed());
        assert!(!finished.load(Ordering::SeqCst));
        // Its work was not cancelled with the answer.
        tokio::time::sleep(LIMIT * 4).await;
        assert!(finished.load(Ordering::SeqCst), "the handler was cancelled");
        assert_eq!(status_and_code(app, "/quick").await.0, 200);
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_a_500() {
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    panic!("a bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(LIMIT, answer_within));
        assert_eq!(
            status_and_code(app, "/boom").await,
            (500, "internal".to_owned())
        );
    }
}
