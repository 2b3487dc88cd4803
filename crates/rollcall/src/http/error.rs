//! One error type for every handler: a stable [`ErrorCode`] (which fixes the status) and a
//! message for a person, answered as `{ "error": code, "message": text, ... }`.

use crate::domain::InvalidInput;
use crate::service::{AccessError, ServiceError};
use crate::store::{Storage, StoreError};
use crate::view::round;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rollcall_vision::ImageError;
use serde_json::{Map, Value};

/// Declares [`ErrorCode`] and [`ErrorCode::ALL`] from one list, so no code can be left out of
/// `ALL` (and so out of the test that checks `docs/api.md` documents each one).
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $code:literal, $status:ident;)*) => {
        /// Every error code the API answers with; the `error` field of an error body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as sent in the `error` field.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status every answer with this code has.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// A malformed query, id, date or form.
    BadRequest => "bad_request", BAD_REQUEST;
    MissingField => "missing_field", BAD_REQUEST;
    /// A name with text-direction controls, or with no visible character.
    InvalidName => "invalid_name", BAD_REQUEST;
    EmptyField => "empty_field", BAD_REQUEST;
    /// Corrupt, truncated, empty, or a JPEG with too many scans.
    InvalidImage => "invalid_image", BAD_REQUEST;
    /// Neither JPEG nor PNG.
    UnsupportedImage => "unsupported_image", BAD_REQUEST;
    /// Too many pixels, refused from the header before decoding.
    ImageTooLarge => "image_too_large", BAD_REQUEST;
    NoFace => "no_face", BAD_REQUEST;
    /// More `image` parts than the server takes in one request.
    TooManyImages => "too_many_images", BAD_REQUEST;
    /// Several faces and none clearly the subject (registering); the body lists them.
    SeveralFaces => "several_faces", BAD_REQUEST;
    /// The face to register is too small, blurred, dark, bright or turned (`reason`).
    PoorQuality => "poor_quality", BAD_REQUEST;
    /// A sequence of frames that did not show a live person following its challenge, or a
    /// challenge unknown, used or expired (`reason`).
    NotLive => "not_live", UNPROCESSABLE_ENTITY;
    /// No credentials, or a key that is unknown, revoked or malformed, or a wrong login.
    Unauthorized => "unauthorized", UNAUTHORIZED;
    /// Credentials whose role or scope does not reach the route.
    Forbidden => "forbidden", FORBIDDEN;
    /// A state-changing request from a page of another origin.
    CrossOrigin => "cross_origin", FORBIDDEN;
    /// No such user, photo, route or asset.
    NotFound => "not_found", NOT_FOUND;
    /// Nobody above the threshold (`/verify`).
    NotRecognised => "not_recognised", NOT_FOUND;
    /// The route exists, but not with this method (`Allow` lists the ones it has).
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED;
    /// The user's embeddings are of another model than the server's.
    ModelMismatch => "model_mismatch", CONFLICT;
    /// The face to register already matches a registered person.
    Duplicate => "duplicate", CONFLICT;
    /// The person's only reference face cannot be deleted.
    LastFace => "last_face", CONFLICT;
    /// Liveness challenges are off on this server (`--liveness off`).
    LivenessOff => "liveness_off", CONFLICT;
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE;
    /// Too many failed logins for the account or from the address (with `Retry-After`).
    TooManyAttempts => "too_many_attempts", TOO_MANY_REQUESTS;
    /// The `Host` names a server this is not (DNS rebinding, a misdirected request).
    HostNotAllowed => "host_not_allowed", MISDIRECTED_REQUEST;
    Internal => "internal", INTERNAL_SERVER_ERROR;
    /// The inference queue is full.
    Busy => "busy", SERVICE_UNAVAILABLE;
    DatabaseUnavailable => "database_unavailable", SERVICE_UNAVAILABLE;
    /// The request was not answered within the answer timeout (a database or photo store
    /// that stopped answering); it may still take effect.
    TimedOut => "timed_out", SERVICE_UNAVAILABLE;
    /// The disk holding the reference photos is full.
    StorageFull => "storage_full", INSUFFICIENT_STORAGE;
    /// The photo folder cannot be written (read-only, permission, missing).
    StorageUnavailable => "storage_unavailable", SERVICE_UNAVAILABLE;
}

impl ErrorCode {
    /// The code for an error answer that comes with a status only (axum's own rejections); a
    /// status no code has becomes the general 400 or 500.
    fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            s if s.is_client_error() => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// More fields of the body (the 404 of /verify lists the faces).
    pub extra: Map<String, Value>,
    /// Seconds for `Retry-After` (a 503 without one says 1).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn missing_field(field: &str) -> Self {
        ApiError::new(
            ErrorCode::MissingField,
            format!("the form has no `{field}` field"),
        )
    }

    pub fn empty_field(field: &str) -> Self {
        ApiError::new(ErrorCode::EmptyField, format!("`{field}` is empty"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the upload is larger than the limit of {limit} bytes"),
        )
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

/// How long a refused login waits when the limiter did not say: its whole window.
const DEFAULT_LOGIN_RETRY_SECS: u64 = 15 * 60;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A 503 is a passing state (a full queue, a database away) said by the access line with
        // its code; a fault of the server is worth an ERROR line with the message.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::debug!(code = self.code.as_str(), "{}", self.message);
        } else if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), "{}", self.message);
        }
        let code = self.code;
        let mut body = Map::new();
        body.insert("error".into(), self.code.as_str().into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra);
        let mut response = (status, Json(Value::Object(body))).into_response();
        // For the access log.
        response.extensions_mut().insert(code);
        let retry_after = match status {
            StatusCode::SERVICE_UNAVAILABLE => Some(self.retry_after.unwrap_or(1)),
            StatusCode::TOO_MANY_REQUESTS => {
                Some(self.retry_after.unwrap_or(DEFAULT_LOGIN_RETRY_SECS))
            }
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rollcall\""),
            );
        }
        response
    }
}

/// Middleware: an error answer that is not already the JSON error shape becomes one, keeping its
/// headers (`Allow` of a 405). These come from axum, not from a handler: a method the route does
/// not have, or a rejection of one of its extractors (e.g. a path that is not UTF-8).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let asked = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts.headers.get(header::ALLOW);
        let allow = allow
            .and_then(|v| v.to_str().ok())
            .unwrap_or("other methods");
        format!("{asked}: this route answers {allow}")
    } else {
        // Rejection bodies are one line of text; anything longer is not worth repeating.
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        if text.is_empty() {
            format!("{asked}: {status}")
        } else {
            text
        }
    };
    let code = ErrorCode::for_status(status);
    let answer = ApiError::new(code, message).into_response();
    let (answer_parts, answer_body) = answer.into_parts();
    parts.status = answer_parts.status;
    parts.extensions.insert(code);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(answer_parts.headers);
    Response::from_parts(parts, answer_body)
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        match e {
            InvalidInput::Empty(field) => ApiError::empty_field(field),
            e @ (InvalidInput::DirectionControls(_) | InvalidInput::NothingVisible(_)) => {
                ApiError::new(ErrorCode::InvalidName, e.to_string())
            }
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.storage() {
            Some(Storage::Full) => {
                return ApiError::new(
                    ErrorCode::StorageFull,
                    format!("the server's disk is full, nothing was stored: {e}"),
                )
            }
            Some(Storage::Unavailable) => {
                return ApiError::new(
                    ErrorCode::StorageUnavailable,
                    format!("the photo store cannot be written, nothing was stored: {e}"),
                )
            }
            Some(Storage::Ok) | None => {}
        }
        let unreachable = matches!(
            &e,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            ) | StoreError::CommitUnknown(_)
        );
        if unreachable {
            ApiError::new(ErrorCode::DatabaseUnavailable, e.to_string())
        } else {
            ApiError::new(ErrorCode::Internal, e.to_string())
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        let code = match e.root() {
            ServiceError::Image(ImageError::Unsupported) => ErrorCode::UnsupportedImage,
            ServiceError::Image(ImageError::TooLarge { .. }) => ErrorCode::ImageTooLarge,
            ServiceError::Image(_) => ErrorCode::InvalidImage,
            ServiceError::NoFace => ErrorCode::NoFace,
            ServiceError::SeveralFaces { faces } => {
                return ApiError::new(ErrorCode::SeveralFaces, message)
                    .with("faces", listed_faces(faces))
            }
            ServiceError::FaceChoice { faces, .. } => {
                return ApiError::bad_request(message).with("faces", listed_faces(faces))
            }
            ServiceError::PoorQuality(q) => {
                return ApiError::new(ErrorCode::PoorQuality, message)
                    .with("reason", q.problem.as_str())
                    .with("measured", round(q.measured))
                    .with("limit", round(q.limit))
            }
            ServiceError::NotLive(refusal) => {
                return ApiError::new(ErrorCode::NotLive, message).with("reason", refusal.reason())
            }
            ServiceError::Duplicate { person, threshold } => {
                return ApiError::new(ErrorCode::Duplicate, message)
                    .with(
                        "person",
                        serde_json::json!({
                            "id": person.user_id,
                            "first_name": person.first_name,
                            "last_name": person.last_name,
                        }),
                    )
                    .with("similarity", round(person.similarity.0))
                    .with("threshold", round(*threshold))
            }
            ServiceError::UserNotFound(_) | ServiceError::FaceNotFound { .. } => {
                ErrorCode::NotFound
            }
            ServiceError::LastFace(_) => ErrorCode::LastFace,
            ServiceError::Setting(e) => {
                return ApiError::bad_request(message).with("field", e.field.clone())
            }
            ServiceError::ModelMismatch { .. } => ErrorCode::ModelMismatch,
            ServiceError::Busy => ErrorCode::Busy,
            ServiceError::Store(_) => {
                let ServiceError::Store(store) = strip(e) else {
                    unreachable!("matched above")
                };
                return store.into();
            }
            // `root` unwraps `InImage`; it is listed for the match to be complete.
            ServiceError::InImage { .. } | ServiceError::Internal(_) => ErrorCode::Internal,
        };
        ApiError::new(code, message)
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        let message = e.to_string();
        match e {
            AccessError::WrongCredentials => ApiError::new(ErrorCode::Unauthorized, message),
            AccessError::TooManyAttempts { retry_after } => {
                // Rounded up: a client that waits exactly this long is let in.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                ApiError::new(ErrorCode::TooManyAttempts, message).with_retry_after(seconds.max(1))
            }
            AccessError::SetupClosed => ApiError::new(ErrorCode::Forbidden, message),
            AccessError::UsernameTaken(_) => ApiError::bad_request(message),
            AccessError::NoSuchAccount(_) => ApiError::not_found(message),
            AccessError::Invalid(e) => e.into(),
            AccessError::Store(e) => e.into(),
        }
    }
}

/// The faces a client may choose from, in the order of `/detect` (largest first).
fn listed_faces(faces: &[rollcall_vision::Detection]) -> Value {
    faces
        .iter()
        .enumerate()
        .map(|(index, f)| {
            // As `/detect` prints them (an f32's shortest form), so boxes compare equal.
            let shortest = |x: f32| x.to_string().parse::<f64>().unwrap_or(f64::NAN);
            serde_json::json!({
                "index": index,
                "box": f.bbox.map(shortest),
                "probability": shortest(f.probability),
            })
        })
        .collect()
}

/// The innermost error, owned.
fn strip(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::InImage { source, .. } => strip(*source),
        other => other,
    }
}

impl From<axum::extract::multipart::MultipartError> for ApiError {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, e.body_text())
        } else {
            ApiError::bad_request(format!(
                "the multipart form could not be read: {}",
                e.body_text()
            ))
        }
    }
}

impl From<axum::extract::multipart::MultipartRejection> for ApiError {
    fn from(e: axum::extract::multipart::MultipartRejection) -> Self {
        ApiError::bad_request(format!(
            "expected a multipart/form-data body: {}",
            e.body_text()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const API_DOC: &str = include_str!("../../../../docs/api.md");
    const COMMON_JS: &str = include_str!("pages/static/common.js");
    const PAGE_SCRIPTS: [(&str, &str); 2] = [
        ("kiosk.js", include_str!("pages/static/kiosk.js")),
        ("admin.js", include_str!("pages/static/admin.js")),
    ];

    /// `code → status` from the table under `## Errors` in docs/api.md.
    fn documented_codes() -> BTreeMap<String, u16> {
        let section = API_DOC
            .split("\n## ")
            .find(|s| s.starts_with("Errors\n"))
            .expect("docs/api.md has an `## Errors` section");
        section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let code = cells[1].trim_matches('`').to_owned();
                let status = cells[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("no status in the row of `{code}`: {line}"));
                (code, status)
            })
            .collect()
    }

    #[test]
    fn every_code_is_documented_with_its_status() {
        let documented = documented_codes();
        for code in ErrorCode::ALL {
            assert_eq!(
                documented.get(code.as_str()),
                Some(&code.status().as_u16()),
                "docs/api.md's error table must list `{}` with status {}",
                code.as_str(),
                code.status().as_u16()
            );
        }
        for code in documented.keys() {
            assert!(
                ErrorCode::ALL.iter().any(|c| c.as_str() == code),
                "docs/api.md documents `{code}`, which the server never sends"
            );
        }
    }

    #[test]
    fn codes_are_distinct() {
        let mut seen: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ErrorCode::ALL.len());
    }

    /// The values of `SERVER_ERRORS` in common.js.
    fn page_codes() -> Vec<&'static str> {
        let table = COMMON_JS
            .split_once("const SERVER_ERRORS = Object.freeze({")
            .and_then(|(_, rest)| rest.split_once("})"))
            .expect("common.js declares SERVER_ERRORS")
            .0;
        table
            .split(',')
            .filter_map(|entry| entry.split_once(':'))
            .map(|(_, value)| value.trim().trim_matches('\''))
            .collect()
    }

    #[test]
    fn the_pages_branch_only_on_codes_the_server_sends() {
        let codes = page_codes();
        assert!(!codes.is_empty(), "SERVER_ERRORS is empty");
        for code in codes {
            assert!(
                ErrorCode::ALL.iter().any(|c| c.as_str() == code),
                "common.js's SERVER_ERRORS has `{code}`, which is no ErrorCode"
            );
        }
        // The pages name codes through RC.errors only, so the table above is the whole list.
        for (name, script) in PAGE_SCRIPTS {
            for code in ErrorCode::ALL {
                for literal in [
                    format!("case '{}'", code.as_str()),
                    format!("error === '{}'", code.as_str()),
                    format!("error !== '{}'", code.as_str()),
                ] {
                    assert!(
                        !script.contains(&literal),
                        "{name} compares with `{literal}`: use RC.errors"
                    );
                }
            }
        }
    }

    async fn answer(error: ApiError) -> (StatusCode, Option<HeaderValue>, Value) {
        let response = error.into_response();
        let status = response.status();
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            retry_after,
            serde_json::from_slice(&body).expect("JSON"),
        )
    }

    #[tokio::test]
    async fn refusals_say_how_to_authenticate_and_when_to_retry() {
        let response = ApiError::new(ErrorCode::Unauthorized, "who?").into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"rollcall\""
        );
        let (_, retry_after, _) =
            answer(ApiError::new(ErrorCode::TooManyAttempts, "wait").with_retry_after(42)).await;
        assert_eq!(retry_after.unwrap(), "42");
    }

    #[tokio::test]
    async fn every_code_answers_its_status_in_the_error_shape() {
        for &code in ErrorCode::ALL {
            let (status, retry_after, body) =
                answer(ApiError::new(code, "why").with("threshold", 0.5)).await;
            assert_eq!(status, code.status(), "{code:?}");
            assert_eq!(
                body,
                serde_json::json!({ "error": code.as_str(), "message": "why", "threshold": 0.5 })
            );
            let busy = status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::TOO_MANY_REQUESTS;
            assert_eq!(retry_after.is_some(), busy, "{code:?}: Retry-After");
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(retry_after.unwrap(), "1");
            }
        }
    }
}
