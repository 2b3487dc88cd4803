//! `/settings`: what an admin changes while the server runs ([`crate::site_settings`]).

use super::error::ApiError;
use super::openapi::{ErrorBody, SettingsPatch};
use super::AppState;
use crate::audit::Actor;
use crate::site_settings::SiteSettings;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde_json::Value;

#[utoipa::path(
    get,
    path = "/settings",
    tag = "operations",
    responses((status = 200, description = "Every setting with its value in force", body = SiteSettings))
)]
pub async fn get(State(state): State<AppState>) -> Result<Json<SiteSettings>, ApiError> {
    Ok(Json(state.rollcall.site_settings().await?))
}

#[utoipa::path(
    put,
    path = "/settings",
    tag = "operations",
    request_body(content = SettingsPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Every setting with its value in force", body = SiteSettings),
        (status = 400, description = "Not a JSON object, an unknown setting, or a value of the \
            wrong type or out of range (with `field`); nothing is changed", body = ErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    actor: Actor,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<SiteSettings>, ApiError> {
    let Json(patch) = body.map_err(|e| {
        ApiError::bad_request(format!("expected a JSON object: {}", e.body_text()))
            .with("field", "body")
    })?;
    Ok(Json(state.rollcall.change_settings(&patch, &actor).await?))
}
