//! `POST /register`, `POST /verify` (the original Flask routes) and `POST /detect`.

use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::openapi::{
    Detected, Duplicate, ErrorBody, NotRecognised, PhotoForm, RegisterForm, VerifyForm,
};
use super::AppState;
use crate::audit::Actor;
use crate::auth::Caller;
use crate::domain::{Kiosk, PersonName};
use crate::liveness::sequence::MAX_FRAMES;
use crate::liveness::Liveness;
use crate::service::{Pick, Verification};
use crate::store::{AttendanceRecord, CheckIn};
use crate::subject::clear_subject;
use crate::view::{round, round_margin, DetectJson, EventRef, FaceJson, Recognised, UserJson};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::{Extension, Json};

#[utoipa::path(
    post,
    path = "/register",
    tag = "recognition",
    request_body(content = RegisterForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The new user", body = UserJson),
        (status = 400, description = "A missing or empty field, an image that cannot be read, \
            no face, several faces with none clearly the subject (`several_faces`, with `faces`), \
            a `face` or `box` naming no face (`bad_request`, with `faces`), or a face too small, \
            blurred, dark, bright or turned (`poor_quality`, with `reason`, `measured`, `limit`)", body = ErrorBody),
        (status = 409, description = "`duplicate`: the face already belongs to a registered person \
            (send `allow_duplicate=true` to register it anyway)", body = Duplicate),
        (status = 413, description = "The upload is larger than the limit", body = ErrorBody),
        (status = 503, description = "The inference queue is full or the database unreachable \
            (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    actor: Actor,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<UserJson>, ApiError> {
    let form = Form::read(multipart, &state).await?;
    // A missing `last_name` is a person with one name.
    let last_name = form.optional_text("last_name").unwrap_or_default();
    let name = PersonName::parse(form.text("first_name")?, last_name)?;
    let pick = Pick::of(form.face_choice()?);
    let allow_duplicate = form.flag("allow_duplicate")?;
    let source = form.source()?;
    let images = form.images()?;
    let user = state
        .rollcall
        .register(&name, images, pick, allow_duplicate, source, &actor)
        .await?;
    Ok(Json(user.into()))
}

#[utoipa::path(
    post,
    path = "/detect",
    tag = "recognition",
    request_body(content = PhotoForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The faces found, largest first", body = Detected),
        (status = 400, description = "A missing image, or one that cannot be read", body = ErrorBody),
        (status = 413, description = "The upload is larger than the limit", body = ErrorBody),
        (status = 503, description = "The inference queue is full (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn detect(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<DetectJson>, ApiError> {
    let form = Form::read(multipart, &state).await?;
    let analysis = state.rollcall.detect(form.image()?).await?;
    let detections: Vec<_> = analysis.faces.iter().map(|f| f.detection.clone()).collect();
    Ok(Json(DetectJson {
        subject: clear_subject(&detections, analysis.width, analysis.height),
        width: analysis.width,
        height: analysis.height,
        faces: analysis.faces,
    }))
}

/// Recognise the people in a frame and check in every recognised face; or, with a
/// `challenge`, judge a sequence of frames answering it ([`super::liveness`]).
#[utoipa::path(
    post,
    path = "/verify",
    tag = "recognition",
    request_body(content = VerifyForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The largest face matched this person", body = Recognised),
        (status = 400, description = "A missing image, one that cannot be read, or no face", body = ErrorBody),
        (status = 404, description = "`not_recognised`: nobody is similar enough to the largest face", body = NotRecognised),
        (status = 409, description = "`liveness_off`: a `challenge` sent to a server run with \
            `--liveness off`", body = ErrorBody),
        (status = 413, description = "The upload is larger than the limit", body = ErrorBody),
        (status = 422, description = "`not_live`: the frames did not answer the challenge \
            (`reason`: `challenge_expired`, `too_few_frames`, `no_face`, `several_people`, \
            `lost_track`, `identity_changed`, `no_turn`, `not_back`, `flat`)", body = ErrorBody),
        (status = 503, description = "The inference queue is full or the database unreachable \
            (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    actor: Actor,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Recognised>, ApiError> {
    let cap = state.max_images.max(MAX_FRAMES);
    let form = Form::read_up_to(multipart, &state, cap).await?;
    // The `kiosk` field is ignored: any client could name any kiosk.
    let kiosk = kiosk_of(&caller)?;
    if let Some(nonce) = form.single_text("challenge")? {
        return super::liveness::verify_sequence(&state, &caller, nonce, &form, kiosk.as_ref())
            .await;
    }
    let image = form.image()?;
    // Where liveness is required (by the server, or by the key of this kiosk), one photo still
    // names the person but checks nobody in.
    let record = !(state.require_liveness || caller.requires_liveness());
    let v: Verification = state
        .rollcall
        .verify(image.clone(), kiosk.as_ref(), record)
        .await?;
    let mut recognised = answer(&caller, &v, Liveness::None)?;
    if !record {
        recognised.reason = Some("liveness_required");
    }
    // After the check-in is recorded, and never failing it.
    recognised.reference_added = state
        .rollcall
        .offer_kiosk_reference(&v, image, &actor)
        .await;
    Ok(Json(recognised))
}

/// The 200 of a verification whose largest face matched, else the 404 `not_recognised`.
pub(super) fn answer(
    caller: &Caller,
    v: &Verification,
    liveness: Liveness,
) -> Result<Recognised, ApiError> {
    let mut faces: Vec<FaceJson> = v.faces.iter().map(FaceJson::from).collect();
    if !caller.is_admin() {
        // How close a stranger came to someone is a hint for whoever tries faces on a kiosk.
        for face in faces.iter_mut() {
            if face.matched.is_none() {
                face.best_similarity = None;
            }
            face.runner_up_similarity = None;
        }
    }
    let top = &v.faces[0];
    match (&top.best, top.matched) {
        (Some(person), true) => {
            let event: Option<&AttendanceRecord> = match &top.check_in {
                Some(CheckIn::Recorded(e) | CheckIn::AlreadyIn(e)) => Some(e),
                _ => None,
            };
            Ok(Recognised {
                id: person.user_id,
                first_name: person.first_name.clone(),
                last_name: person.last_name.clone(),
                similarity: round(person.similarity.0),
                threshold: round(v.operating_point.threshold.value()),
                margin: round_margin(v.operating_point.margin),
                false_accept_rate: v.operating_point.false_accept_rate,
                threshold_source: v.operating_point.source.as_str(),
                model: v.model.clone(),
                checked_in: faces[0].checked_in,
                attendance: event.map(|e| EventRef { id: e.id, at: e.at }),
                faces,
                reference_added: false,
                liveness: liveness.as_str(),
                reason: None,
            })
        }
        _ => Err(ApiError::new(
            ErrorCode::NotRecognised,
            "the person in the photo is not registered (no one is similar enough)",
        )
        .with("threshold", round(v.operating_point.threshold.value()))
        .with("margin", round_margin(v.operating_point.margin))
        .with("false_accept_rate", v.operating_point.false_accept_rate)
        .with("threshold_source", v.operating_point.source.as_str())
        .with("faces", serde_json::to_value(&faces).unwrap_or_default())
        .with("liveness", liveness.as_str())),
    }
}

/// The kiosk a check-in is recorded under: the key's name, the account's username, or
/// `anonymous` (a server run with `--anonymous-verify`).
pub(super) fn kiosk_of(caller: &Caller) -> Result<Option<Kiosk>, ApiError> {
    let name = match caller {
        Caller::Anonymous => "anonymous",
        Caller::Account { username, .. } => username,
        Caller::Key { name, .. } => name,
        Caller::Cli { user } => user,
    };
    Ok(Kiosk::parse(name)?)
}
