//! One error type for every handler: a status, a stable code and a message for a person,
//! answered as `{ "error": code, "message": text, ... }`.

use crate::domain::InvalidInput;
use crate::service::ServiceError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rollcall_vision::ImageError;
use serde_json::{Map, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More fields of the body (the 404 of /verify lists the faces).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn missing_field(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            format!("the form has no `{field}` field"),
        )
    }

    pub fn empty_field(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_field",
            format!("`{field}` is empty"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the upload is larger than the limit of {limit} bytes"),
        )
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "{}", self.message);
        }
        let mut body = Map::new();
        body.insert("error".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra);
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        match e {
            InvalidInput::Empty(field) => ApiError::empty_field(field),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let unreachable = matches!(
            &e,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        );
        if unreachable {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                e.to_string(),
            )
        } else {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        let (status, code) = match e.root() {
            ServiceError::UnsupportedImage | ServiceError::Image(ImageError::Unsupported) => {
                (StatusCode::BAD_REQUEST, "unsupported_image")
            }
            ServiceError::Image(ImageError::TooLarge { .. }) => {
                (StatusCode::BAD_REQUEST, "image_too_large")
            }
            ServiceError::Image(_) => (StatusCode::BAD_REQUEST, "invalid_image"),
            ServiceError::NoFace => (StatusCode::BAD_REQUEST, "no_face"),
            ServiceError::SeveralFaces { .. } => (StatusCode::BAD_REQUEST, "several_faces"),
            ServiceError::UserNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ServiceError::ModelMismatch { .. } => (StatusCode::CONFLICT, "model_mismatch"),
            ServiceError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ServiceError::Store(_) => {
                let ServiceError::Store(store) = strip(e) else {
                    unreachable!("matched above")
                };
                return store.into();
            }
            ServiceError::InImage { .. } | ServiceError::Photo(_) | ServiceError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        ApiError::new(status, code, message)
    }
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
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.body_text(),
            )
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
