//! The contract of `docs/api.md` as an OpenAPI 3 document at `GET /openapi.json`, so an
//! integrator can generate a client. The operations come from the handlers' `#[utoipa::path]`
//! annotations and the bodies from the types the handlers answer with; this module adds only
//! what no handler type spells out: the error body and the multipart forms (the handlers read
//! them field by field through [`super::form::Form`]).

use super::{attendance, audit, keys, liveness, ops, recognition, session, settings, users};
use crate::view::FaceJson;
use axum::Json;
use std::sync::LazyLock;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rollcall",
        description = "Face-recognition attendance: register people, verify a frame, read the \
            attendance log. Every error is `{ \"error\": code, \"message\": text }`; the codes \
            are listed in docs/api.md."
    ),
    paths(
        recognition::register,
        recognition::verify,
        liveness::challenge,
        recognition::detect,
        users::list,
        users::get,
        users::photo,
        users::delete,
        users::add_face,
        users::faces,
        users::face_photo,
        users::delete_face,
        settings::get,
        settings::put,
        attendance::list,
        attendance::csv,
        attendance::day_summary,
        attendance::per_day,
        audit::list,
        audit::csv,
        ops::health,
        ops::metrics,
        document,
        session::login,
        session::logout,
        session::me,
        session::setup,
        keys::list,
        keys::create,
        keys::revoke,
        super::pages::kiosk,
        super::pages::admin,
        super::pages::asset,
    ),
    tags(
        (name = "recognition", description = "Register people and recognise them in a frame"),
        (name = "users", description = "Registered people and their reference faces"),
        (name = "attendance", description = "The check-in log and its summaries (days are UTC)"),
        (name = "audit", description = "Who did what, when and from where (admins only)"),
        (name = "operations", description = "Health, metrics and this document"),
        (name = "pages", description = "The kiosk and admin web pages"),
        (name = "access", description = "Logging in, the first-run setup, and machine keys \
            (`Authorization: Bearer KEY`); who may call what is in docs/api.md"),
    )
)]
pub struct ApiDoc;

/// Built once: the document does not change while the process runs.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

/// Every error answer: a stable code and a message for a person.
#[derive(ToSchema)]
pub struct ErrorBody {
    /// A stable code from the table in docs/api.md.
    #[schema(example = "no_face")]
    pub error: String,
    /// What went wrong, for a person to read.
    pub message: String,
}

/// The 404 of `/verify`: nobody registered is similar enough to the largest face.
#[derive(ToSchema)]
pub struct NotRecognised {
    #[schema(example = "not_recognised")]
    pub error: String,
    pub message: String,
    /// The threshold in force.
    pub threshold: f64,
    /// How much the best person must beat the next by (0: the best alone decides).
    pub margin: f64,
    /// The false-accept rate per attempt the threshold was derived for.
    pub false_accept_rate: f64,
    /// `sampled`, `model`, `gallery`, `configured` or `default`.
    #[schema(example = "sampled")]
    pub threshold_source: String,
    /// Every face of the frame, largest first.
    pub faces: Vec<FaceJson>,
    /// `none` (one photo) or `challenge` (a sequence that followed a challenge).
    #[schema(example = "none")]
    pub liveness: String,
}

/// A photo part: the bytes of a JPEG or PNG file.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Photo(pub Vec<u8>);

/// The form of `POST /register`.
#[derive(ToSchema)]
pub struct RegisterForm {
    pub first_name: String,
    /// Missing or empty for a person with one name (stored as an empty string).
    pub last_name: Option<String>,
    /// One or more photos of the person: each is one reference face.
    pub image: Vec<Photo>,
    /// Which face of the first photo is the person, by its index in the list `/detect` (and a
    /// `several_faces` answer) gives, largest first. Other photos need one clear subject.
    pub face: Option<u32>,
    /// Or the face as `x1,y1,x2,y2` in pixels: the detected face overlapping it best
    /// (intersection over union at least 0.5).
    #[schema(rename = "box")]
    pub bbox: Option<String>,
    /// `true` registers a face that already matches someone (default `false`: 409 `duplicate`).
    pub allow_duplicate: Option<bool>,
    /// `upload` (default) or `webcam`: where the photos came from, as the faces list shows.
    pub source: Option<String>,
}

/// The form of `POST /users/{id}/faces`.
#[derive(ToSchema)]
pub struct AddFaceForm {
    /// One or more photos of the person: each is one more reference face (all or none).
    pub image: Vec<Photo>,
    /// `upload` (default) or `webcam`: where the photos came from, as the faces list shows.
    pub source: Option<String>,
    /// As for `/register`.
    pub face: Option<u32>,
    #[schema(rename = "box")]
    pub bbox: Option<String>,
    /// `true` adds a face that matches another registered person (default `false`).
    pub allow_duplicate: Option<bool>,
}

/// The 409 `duplicate`: the face already belongs to someone registered.
#[derive(ToSchema)]
pub struct Duplicate {
    #[schema(example = "duplicate")]
    pub error: String,
    pub message: String,
    /// The registered person the face matches.
    pub person: DuplicatePerson,
    /// The face's similarity to them, and the threshold it reached.
    pub similarity: f64,
    pub threshold: f64,
}

#[derive(ToSchema)]
pub struct DuplicatePerson {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
}

/// The form of `POST /verify`.
#[derive(ToSchema)]
pub struct VerifyForm {
    /// The frame to recognise; with `challenge`, the frames of the sequence (the part repeated,
    /// in order).
    pub image: Photo,
    /// Accepted and ignored: the check-in is recorded under the caller's key or account name.
    pub kiosk: Option<String>,
    /// The `nonce` of a `POST /verify/challenge` answer: the frames answer that challenge.
    pub challenge: Option<String>,
}

/// A form with one photo (`POST /detect`, `POST /users/{id}/faces`).
#[derive(ToSchema)]
pub struct PhotoForm {
    pub image: Photo,
}

/// A face `POST /detect` found (the detector's own output, not matched against anyone).
#[derive(ToSchema)]
pub struct DetectedFace {
    /// `[x1, y1, x2, y2]` in pixels of the decoded image, not clipped to it.
    #[schema(rename = "box")]
    pub bbox: [f32; 4],
    pub probability: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner, as `[x, y]`.
    pub landmarks: [[f32; 2]; 5],
}

/// The 200 of `POST /detect`.
#[derive(ToSchema)]
pub struct Detected {
    /// Of the decoded image, in pixels.
    pub width: u32,
    pub height: u32,
    /// Largest first.
    pub faces: Vec<DetectedFace>,
    /// The index of the face `/register` takes when no `face` or `box` is sent (the clear
    /// subject); null when no face is clearly the subject.
    pub subject: Option<u32>,
}

/// The body of `PUT /settings`: the settings to change, any of them; the others keep their value.
#[derive(ToSchema)]
pub struct SettingsPatch {
    /// Keep a kiosk check-in accepted with a clear margin as one more reference of the person.
    pub kiosk_adds_references: Option<bool>,
    /// A kiosk check-in adds no reference to a person who has this many (1 to 20).
    pub max_references_per_person: Option<u32>,
}
