//! The audit log over HTTP: who is asking ([`Actor`], extracted from the request for the
//! handlers that record what they do) and `GET /audit`, `GET /audit.csv` (admins only).

use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::AppState;
use crate::audit::{self, Actor, AuditRecord, Entry, Page, Target};
use crate::auth::Caller;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The caller the auth middleware resolved (none yet: anonymous).
pub fn caller(extensions: &Extensions) -> Caller {
    extensions
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous)
}

/// The client's address: the peer of the TCP connection (a reverse proxy's own address when
/// there is one; `X-Forwarded-For` is not trusted).
pub fn client_address(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_canonical())
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Actor, Infallible> {
        Ok(Actor::new(
            &caller(&parts.extensions),
            client_address(&parts.extensions),
        ))
    }
}

/// `limit=` (1 to 10000) and `before=` (an id: the rows older than it).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many entries [default: 100 for `/audit`, all for `/audit.csv`].
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// Only entries older than this id: the last id of the previous page.
    #[param(value_type = Option<i64>)]
    before: Option<String>,
}

impl PageQuery {
    fn page(q: Result<Query<PageQuery>, QueryRejection>, default: u32) -> Result<Page, ApiError> {
        let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let limit = match q.limit.as_deref().map(str::trim) {
            None | Some("") => default,
            Some(raw) => raw
                .parse()
                .ok()
                .filter(|n| (1..=Page::MAX).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a whole number from 1 to {}, not `{raw}`",
                        Page::MAX
                    ))
                })?,
        };
        let before = match q.before.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse().map_err(|_| {
                ApiError::bad_request(format!("before must be an entry id, not `{raw}`"))
            })?),
        };
        Ok(Page { limit, before })
    }
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(PageQuery),
    responses(
        (status = 200, description = "Audit entries, newest first; the next page is \
            `before=` the last id", body = Vec<AuditRecord>),
        (status = 400, description = "A malformed `limit` or `before` (`bad_request`)", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let page = PageQuery::page(q, Page::DEFAULT)?;
    Ok(Json(state.rollcall.audit_log(page).await?))
}

#[utoipa::path(
    get,
    path = "/audit.csv",
    tag = "audit",
    params(PageQuery),
    responses(
        (status = 200, description = "The entries as CSV with a header row, newest first; \
            cells a spreadsheet would run as formulas start with `'`", body = String, content_type = "text/csv"),
        (status = 400, description = "A malformed `limit` or `before` (`bad_request`)", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn csv(
    State(state): State<AppState>,
    actor: Actor,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = PageQuery::page(q, u32::MAX)?;
    let records = state.rollcall.audit_log(page).await?;
    let mut body = Vec::new();
    audit::write_csv(&records, &mut body)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let entry = Entry::export(&actor, Target::AUDIT_LOG, records.len());
    state.rollcall.audit(&entry).await;
    Ok(csv_response(body, "audit.csv"))
}

/// A CSV download named `file`.
pub fn csv_response(body: Vec<u8>, file: &'static str) -> Response {
    let disposition = format!("attachment; filename=\"{file}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}
