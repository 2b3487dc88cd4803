//! The access log: one line per request, written when the answer is ready, at INFO (WARN for a
//! 5xx), except 503s, which come in runs (a full queue, a database away) and are summarised by
//! [`super::outage_log`]: the first of a run has its line here. It says the method, the route *template* (`/users/{id}`, `unmatched` for a path no
//! route has), the status, the error code if any, the time taken, the client's address and the
//! kind of caller (`account:admin`, `key:verify`, `anonymous`…) — never a raw path, a query
//! string, a name or a body, which may hold people's names or secrets.
//!
//! It is the outermost layer, so refusals of the layers inside it (host, cross-origin, auth)
//! get their line too. The caller is resolved inside it, by the auth middleware: that one leaves
//! the [`Caller`] in the response's extensions as well as the request's, for this line.

use super::audit::client_address;
use super::error::ErrorCode;
use super::outage_log::Outages;
use crate::auth::Caller;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// The log target, so `RUST_LOG=rollcall::access=off` silences these lines alone.
pub const TARGET: &str = "rollcall::access";

/// What kind of caller, without their name.
pub fn caller_kind(caller: &Caller) -> String {
    match caller {
        Caller::Anonymous => "anonymous".to_owned(),
        Caller::Account { role, .. } => format!("account:{role}"),
        Caller::Key { scope, .. } => format!("key:{scope}"),
        Caller::Cli { .. } => "cli".to_owned(),
    }
}

/// Middleware: one line per request (a 503 in a run of them: counted by `outages`).
pub async fn log(State(outages): State<Arc<Outages>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let client =
        client_address(request.extensions()).map_or_else(|| "-".to_owned(), |a| a.to_string());
    let response = next.run(request).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let error = response
        .extensions()
        .get::<ErrorCode>()
        .map_or("-", |c| c.as_str());
    let caller = response
        .extensions()
        .get::<Caller>()
        .map_or_else(|| "anonymous".to_owned(), caller_kind);
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        if outages.answered(error) {
            tracing::warn!(target: TARGET, %method, %route, status, %error, ms = format_args!("{ms:.1}"), %client, %caller, "request (503: more of this code are counted, not logged, until they stop)");
        } else {
            tracing::debug!(target: TARGET, %method, %route, status, %error, ms = format_args!("{ms:.1}"), %client, %caller, "request");
        }
    } else if response.status().is_server_error() {
        tracing::warn!(target: TARGET, %method, %route, status, %error, ms = format_args!("{ms:.1}"), %client, %caller, "request");
    } else {
        tracing::info!(target: TARGET, %method, %route, status, %error, ms = format_args!("{ms:.1}"), %client, %caller, "request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, Scope};
    use crate::http::error::ApiError;
    use axum::routing::get;
    use axum::Router;
    use rollcall_test_support::log_capture::LogCapture;
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn lines_for(uri: &str) -> Vec<String> {
        lines_for_each(&[uri]).await
    }

    /// The lines above DEBUG logged while one app answers each of `uris` in turn.
    async fn lines_for_each(uris: &[&str]) -> Vec<String> {
        let captured = LogCapture::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route(
                "/down/{name}",
                get(|| async { ApiError::new(ErrorCode::DatabaseUnavailable, "pool timed out") }),
            )
            .route("/ok/{name}", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(crate::http::error::json_errors))
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(Outages::default()),
                log,
            ));
        for uri in uris {
            let request = axum::http::Request::get(*uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let _ = app.clone().oneshot(request).await.unwrap();
        }
        captured
            .lines()
            .into_iter()
            .filter(|l| !l.contains("DEBUG"))
            .collect()
    }

    #[tokio::test]
    async fn a_503_is_one_warning_line_with_its_code_and_no_error_line() {
        let lines = lines_for("/down/Alice?token=secret").await;
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let line = &lines[0];
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("route=/down/{name}"), "{line}");
        assert!(line.contains("status=503"), "{line}");
        assert!(line.contains("error=database_unavailable"), "{line}");
        assert!(
            !line.contains("Alice") && !line.contains("secret"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn a_run_of_503s_is_one_line_and_other_answers_keep_theirs() {
        let mut uris = vec!["/down/a"; 20];
        uris.extend(["/ok/b", "/down/c", "/ok/d"]);
        let lines = lines_for_each(&uris).await;
        let unavailable: Vec<_> = lines.iter().filter(|l| l.contains("status=503")).collect();
        assert_eq!(unavailable.len(), 1, "{lines:#?}");
        assert!(unavailable[0].contains("WARN"), "{}", unavailable[0]);
        assert_eq!(
            lines.iter().filter(|l| l.contains("status=200")).count(),
            2,
            "{lines:#?}"
        );
        assert_eq!(lines.len(), 3, "{lines:#?}");
    }

    #[tokio::test]
    async fn a_request_is_one_info_line_with_the_template_and_no_query() {
        let lines = lines_for("/ok/Alice?token=secret").await;
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let line = &lines[0];
        assert!(
            line.contains("INFO") && line.contains("rollcall::access"),
            "{line}"
        );
        for field in [
            "method=GET",
            "route=/ok/{name}",
            "status=200",
            "error=-",
            "caller=anonymous",
            "client=-",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(
            !line.contains("Alice") && !line.contains("secret"),
            "{line}"
        );
        let lines = lines_for("/Alice_Smith?q=1").await;
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("route=unmatched") && lines[0].contains("status=404"));
        assert!(!lines[0].contains("Alice"), "{}", lines[0]);
    }

    #[test]
    fn kinds_name_no_one() {
        let account = Caller::Account {
            id: 1,
            username: "alice".into(),
            role: Role::Viewer,
        };
        let key = Caller::Key {
            id: 2,
            name: "front door".into(),
            scope: Scope::Verify,
            require_liveness: false,
        };
        assert_eq!(caller_kind(&account), "account:viewer");
        assert_eq!(caller_kind(&key), "key:verify");
        assert_eq!(caller_kind(&Caller::cli()), "cli");
        assert_eq!(caller_kind(&Caller::Anonymous), "anonymous");
    }
}
