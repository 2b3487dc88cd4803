//! `GET /keys`, `POST /keys`, `DELETE /keys/{id}`: machine keys, for admins. A key is shown once,
//! in the answer that creates it.

use super::error::ApiError;
use super::openapi::ErrorBody;
use super::session::json_body;
use super::AppState;
use crate::audit::{Action, Actor, Entry, Target};
use crate::auth::Scope;
use crate::domain::KeyName;
use crate::view::{KeyJson, NewKeyJson};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// The body of `POST /keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewKeyBody {
    /// What the key is for (`front door`): a kiosk's check-ins are recorded under it.
    pub name: String,
    /// `verify`, `register` or `admin`.
    pub scope: String,
    /// A single photo sent with the key is recognised but checks nobody in: its check-ins
    /// must answer a liveness challenge. Default false.
    #[serde(default)]
    pub require_liveness: bool,
}

#[utoipa::path(
    get,
    path = "/keys",
    tag = "access",
    responses((status = 200, description = "Every key, revoked ones included, oldest first", body = Vec<KeyJson>))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<KeyJson>>, ApiError> {
    let keys = state.accounts.list_keys().await?;
    Ok(Json(keys.into_iter().map(KeyJson::from).collect()))
}

#[utoipa::path(
    post,
    path = "/keys",
    tag = "access",
    request_body = NewKeyBody,
    responses(
        (status = 201, description = "The new key, shown this once", body = NewKeyJson),
        (status = 400, description = "A missing or bad name or scope", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    body: Result<Json<NewKeyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<NewKeyJson>), ApiError> {
    let body = json_body(body)?;
    let name = KeyName::parse(&body.name)?;
    let scope = Scope::parse(body.scope.trim()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "scope `{}`: use verify, register or admin",
            body.scope
        ))
    })?;
    let (record, key) = state
        .accounts
        .create_key(&name, scope, body.require_liveness)
        .await?;
    let entry = Entry::key_created(
        &actor,
        record.id,
        record.scope,
        &record.name,
        record.require_liveness,
    );
    state.rollcall.audit(&entry).await;
    Ok((StatusCode::CREATED, Json(NewKeyJson::new(record, key))))
}

#[utoipa::path(
    delete,
    path = "/keys/{id}",
    tag = "access",
    params(("id" = i64, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked (it stays listed, with `revoked_at`)"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a key id")))?;
    match state.accounts.revoke_key(id).await? {
        Some(_) => {
            let entry = Entry::new(&actor, Action::KeyRevoked).target(Target::key(id));
            state.rollcall.audit(&entry).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found(format!("no key with id {id}"))),
    }
}
