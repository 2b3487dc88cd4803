//! `/users`: list, get, photo, delete; a person's reference faces: add, list, photo, delete.

use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::openapi::{AddFaceForm, ErrorBody};
use super::AppState;
use crate::audit::Actor;
use crate::domain::ImageFormat;
use crate::service::{Pick, ServiceError};
use crate::store::{StoreError, UserRecord};
use crate::view::{ReferenceJson, UserJson};
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
        (status = 503, description = "`storage_unavailable`: the photo store cannot be read", body = ErrorBody),
    )
)]
pub async fn photo(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    let missing = format!("the photo of user {} is missing", user.id);
    serve_photo(state.rollcall.photo(&user).await, missing, CACHE_AN_HOUR)
}

const CACHE_AN_HOUR: &str = "private, max-age=3600";
/// Face 0's photo changes when it is deleted and another face takes its place.
const ALWAYS_ASK: &str = "private, no-cache";

/// A stored photo as an answer: 404 with `missing` when it is not in the store, 503
/// `storage_unavailable` when the store cannot be read.
fn serve_photo(
    photo: Result<Option<Vec<u8>>, ServiceError>,
    missing: String,
    cache: &'static str,
) -> Result<Response, ApiError> {
    let bytes = match photo {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(ApiError::not_found(missing)),
        Err(e @ ServiceError::Store(StoreError::Photo(_))) => {
            return Err(ApiError::new(
                ErrorCode::StorageUnavailable,
                format!("the photo store cannot be read: {e}"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    // The type the bytes are, not the one the file name says.
    let mime = ImageFormat::sniff(&bytes).map_or("application/octet-stream", ImageFormat::mime);
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, cache),
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

/// Add reference faces to a user: one per `image` part, all or none.
#[utoipa::path(
    post,
    path = "/users/{id}/faces",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    request_body(content = AddFaceForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The user with the new reference faces", body = UserJson),
        (status = 400, description = "As for `/register` (from the second image on, the \
            message starts `image N:`); nothing is stored", body = ErrorBody),
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
    let source = form.source()?;
    let user = state
        .rollcall
        .add_faces(id, form.images()?, pick, allow_duplicate, source, &actor)
        .await
        .map_err(|e| match e {
            ServiceError::UserNotFound(id) => ApiError::not_found(format!("no user with id {id}")),
            other => other.into(),
        })?;
    Ok(Json(user.into()))
}

/// `{face}` of the path, as a JSON error when it is not a number.
fn parse_face(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a face id")))
}

#[utoipa::path(
    get,
    path = "/users/{id}/faces",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user's reference faces, face 0 first", body = Vec<ReferenceJson>),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn faces(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ReferenceJson>>, ApiError> {
    let faces = state.rollcall.faces_of(parse_id(&id)?).await?;
    Ok(Json(faces.into_iter().map(ReferenceJson::from).collect()))
}

#[utoipa::path(
    get,
    path = "/users/{id}/faces/{face}/photo",
    tag = "users",
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("face" = i64, Path, description = "The face's id (0: the user's own reference)"),
    ),
    responses(
        (status = 200, description = "The face's photo as registered", content(
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/png"),
        )),
        (status = 400, description = "An id is not a number", body = ErrorBody),
        (status = 404, description = "No such user or face, or its photo file is missing", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`: the photo store cannot be read", body = ErrorBody),
    )
)]
pub async fn face_photo(
    State(state): State<AppState>,
    Path((id, face)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, face) = (parse_id(&id)?, parse_face(&face)?);
    let photo = state.rollcall.face_photo(id, face).await;
    let missing = format!("the photo of face {face} of user {id} is missing");
    serve_photo(photo, missing, ALWAYS_ASK)
}

#[utoipa::path(
    delete,
    path = "/users/{id}/faces/{face}",
    tag = "users",
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("face" = i64, Path, description = "The face's id (0: the user's own reference)"),
    ),
    responses(
        (status = 200, description = "The user with one reference face fewer", body = UserJson),
        (status = 400, description = "An id is not a number", body = ErrorBody),
        (status = 404, description = "No such user or face", body = ErrorBody),
        (status = 409, description = "`last_face`: the user's only reference face", body = ErrorBody),
    )
)]
pub async fn delete_face(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, face)): Path<(String, String)>,
) -> Result<Json<UserJson>, ApiError> {
    let (id, face) = (parse_id(&id)?, parse_face(&face)?);
    let user = state.rollcall.delete_face(id, face, &actor).await?;
    Ok(Json(user.into()))
}
