//! `POST /register`, `POST /verify` (the original Flask routes) and `POST /detect`.

use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::AppState;
use crate::domain::{Kiosk, PersonName};
use crate::service::Verification;
use crate::store::{AttendanceRecord, CheckIn};
use crate::view::{round, EventRef, FaceJson, UserJson};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn register(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<UserJson>, ApiError> {
    let form = Form::read(multipart, state.max_upload_bytes).await?;
    let name = PersonName::parse(form.text("first_name")?, form.text("last_name")?)?;
    let images = form.images()?;
    let user = state.rollcall.register(&name, images).await?;
    Ok(Json(user.into()))
}

pub async fn detect(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let form = Form::read(multipart, state.max_upload_bytes).await?;
    let analysis = state.rollcall.detect(form.image()?).await?;
    Ok(Json(json!({
        "width": analysis.width,
        "height": analysis.height,
        "faces": analysis.faces,
    })))
}

pub async fn verify(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let form = Form::read(multipart, state.max_upload_bytes).await?;
    let image = form.image()?;
    let kiosk = Kiosk::parse(form.optional_text("kiosk").unwrap_or_default())?;
    let v: Verification = state.rollcall.verify(image, kiosk.as_ref(), true).await?;
    let faces: Vec<FaceJson> = v.faces.iter().map(FaceJson::from).collect();
    let top = &v.faces[0];
    match (&top.best, top.matched) {
        (Some(person), true) => {
            let event: Option<&AttendanceRecord> = match &top.check_in {
                Some(CheckIn::Recorded(e) | CheckIn::AlreadyIn(e)) => Some(e),
                _ => None,
            };
            Ok(Json(json!({
                "id": person.user_id,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "similarity": round(person.similarity.0),
                "threshold": round(v.threshold.value()),
                "model": v.model,
                "checked_in": faces[0].checked_in,
                "attendance": event.map(|e| EventRef { id: e.id, at: e.at }),
                "faces": faces,
            })))
        }
        _ => Err(ApiError::new(
            ErrorCode::NotRecognised,
            "the person in the photo is not registered (no one is similar enough)",
        )
        .with("threshold", round(v.threshold.value()))
        .with("faces", serde_json::to_value(&faces).unwrap_or_default())),
    }
}
