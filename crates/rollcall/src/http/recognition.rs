//! `POST /register`, `POST /verify` (the original Flask routes) and `POST /detect`.

use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::users::UserJson;
use super::AppState;
use crate::domain::{Kiosk, PersonName};
use crate::service::{Verification, VerifiedFace};
use crate::store::{AttendanceRecord, CheckIn};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::Json;
use serde::Serialize;
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

/// One face of the frame as `/verify` answers it.
#[derive(Debug, Serialize)]
pub struct FaceJson {
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub probability: f32,
    #[serde(rename = "match")]
    pub matched: Option<MatchJson>,
    pub checked_in: bool,
    /// The most similar registered person's similarity; null when nobody is registered.
    pub best_similarity: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct MatchJson {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub similarity: f64,
}

/// Similarities to 6 decimals: an f32 printed as f64 shows noise digits (0.9200000166893005).
pub fn round(x: f32) -> f64 {
    (f64::from(x) * 1e6).round() / 1e6
}

#[derive(Debug, Serialize)]
pub struct EventRef {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl From<&VerifiedFace> for FaceJson {
    fn from(f: &VerifiedFace) -> Self {
        FaceJson {
            bbox: f.detection.bbox,
            probability: f.detection.probability,
            matched: f.best.as_ref().filter(|_| f.matched).map(|c| MatchJson {
                id: c.user_id,
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                similarity: round(c.similarity.0),
            }),
            checked_in: matches!(f.check_in, Some(CheckIn::Recorded(_))),
            best_similarity: f.best.as_ref().map(|c| round(c.similarity.0)),
        }
    }
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
