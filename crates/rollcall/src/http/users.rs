//! `/users`: list, get, photo, delete, add a reference face.

use super::error::ApiError;
use super::form::Form;
use super::openapi::{AddFaceForm, ErrorBody};
use super::AppState;
use crate::audit::Actor;
use crate::domain::ImageFormat;
use crate::service::{Pick, ServiceError};
use crate::store::UserRecord;
use crate::view::UserJson;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// `{id}` of the path, as a JSON error when it is not a number.
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a user id")))
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    responses(
        (status = 200, description = "Every user, sorted by last name, first name", body = Vec<UserJson>),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<UserJson>>, ApiError> {
    let users = state.rollcall.list_users().await?;
    Ok(Json(users.into_iter().map(UserJson::from).collect()))
}

async fn find(state: &AppState, raw_id: &str) -> Result<UserRecord, ApiError> {
    let id = parse_id(raw_id)?;
    state
        .rollcall
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user with id {id}")))
}

#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserJson),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UserJson>, ApiError> {
    Ok(Json(find(&state, &id).await?.into()))
}

#[utoipa::path(
    get,
    path = "/users/{id}/photo",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The reference photo as registered", content(
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
        )),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such user, or their photo file is missing", body = ErrorBody),
    )
)]
pub async fn photo(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    let missing = || ApiError::not_found(format!("the photo of user {} is missing", user.id));
    let path = state.rollcall.photo_file(&user).ok_or_else(missing)?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| missing())?;
    // The type the bytes are, not the one the file name says.
    let mime = ImageFormat::sniff(&bytes).map_or("application/octet-stream", ImageFormat::mime);
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            // Opened on its own, the file is an image and nothing else: no sniffing it into
            // HTML, no script, no request it could make.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, PHOTO_CSP),
        ],
        bytes,
    )
        .into_response())
}

/// What a stored photo may do when a browser shows it as a document: nothing.
pub const PHOTO_CSP: &str = "sandbox; default-src 'none'";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `true` also deletes the user's attendance events (default `false`).
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    history: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted, with their photos"),
        (status = 400, description = "The id or `history` is malformed", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let history = match query.history.as_deref().map(str::trim) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "history=`{other}`: use true or false"
            )))
        }
    };
    state.rollcall.delete_user(id, history, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a reference face to a user.
#[utoipa::path(
    post,
    path = "/users/{id}/faces",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    request_body(content = AddFaceForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The user with one more reference face", body = UserJson),
        (status = 400, description = "As for `/register`", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "`model_mismatch`: the user's faces are of another model; \
            `duplicate` (with `person`, `similarity`, `threshold`): the face matches another \
            registered person", body = ErrorBody),
        (status = 413, description = "The upload is larger than the limit", body = ErrorBody),
        (status = 503, description = "The inference queue is full (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn add_face(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<UserJson>, ApiError> {
    let id = parse_id(&id)?;
    let form = Form::read(multipart, &state).await?;
    let pick = Pick::of(form.face_choice()?);
    let allow_duplicate = form.flag("allow_duplicate")?;
    let user = state
        .rollcall
        .add_face(id, form.image()?, pick, allow_duplicate, &actor)
        .await
        .map_err(|e| match e {
            ServiceError::UserNotFound(id) => ApiError::not_found(format!("no user with id {id}")),
            other => other.into(),
        })?;
    Ok(Json(user.into()))
}
