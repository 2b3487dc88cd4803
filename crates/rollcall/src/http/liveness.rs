//! `POST /verify/challenge`, and the sequence branch of `POST /verify`: a kiosk asks for a
//! challenge, records the person following it and sends the frames with the nonce.

use super::error::{ApiError, ErrorCode};
use super::form::Form;
use super::openapi::ErrorBody;
use super::recognition::answer;
use super::AppState;
use crate::auth::Caller;
use crate::domain::Kiosk;
use crate::liveness::sequence::{MAX_FRAMES, MIN_FRAMES};
use crate::liveness::{Liveness, Mode, RECORD_MS};
use crate::view::Recognised;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The movement asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstructionJson {
    /// `turn_left` or `turn_right` (the person's own left or right).
    #[schema(example = "turn_left")]
    pub kind: &'static str,
    /// What the kiosk shows.
    #[schema(example = "Turn your head slowly to the left, then back")]
    pub text: &'static str,
}

/// How many frames `/verify` takes with a challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameCount {
    pub min: usize,
    pub max: usize,
}

/// The 200 of `POST /verify/challenge`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeJson {
    /// Send it back as the `challenge` field of `/verify`, once, before `expires_at`.
    pub nonce: String,
    pub instruction: InstructionJson,
    pub expires_at: DateTime<Utc>,
    pub frames: FrameCount,
    /// How long to record the movement for.
    pub duration_ms: u32,
}

/// A challenge for a check-in from a sequence of frames.
#[utoipa::path(
    post,
    path = "/verify/challenge",
    tag = "recognition",
    responses(
        (status = 200, description = "A new challenge", body = ChallengeJson),
        (status = 409, description = "`liveness_off`: the server runs with `--liveness off`", body = ErrorBody),
        (status = 503, description = "The database is unreachable (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn challenge(State(state): State<AppState>) -> Result<Json<ChallengeJson>, ApiError> {
    if state.liveness == Mode::Off {
        return Err(off());
    }
    let c = state
        .rollcall
        .new_challenge(state.liveness_instruction)
        .await?;
    Ok(Json(ChallengeJson {
        nonce: c.nonce,
        instruction: InstructionJson {
            kind: c.instruction.as_str(),
            text: c.instruction.text(),
        },
        expires_at: c.expires_at,
        frames: FrameCount {
            min: MIN_FRAMES,
            max: MAX_FRAMES,
        },
        duration_ms: RECORD_MS,
    }))
}

fn off() -> ApiError {
    ApiError::new(
        ErrorCode::LivenessOff,
        "this server gives no liveness challenges (--liveness off): send one photo to /verify",
    )
}

/// `/verify` with a `challenge` field: every `image` part is a frame, in order.
pub(super) async fn verify_sequence(
    state: &AppState,
    caller: &Caller,
    nonce: &str,
    form: &Form,
    kiosk: Option<&Kiosk>,
) -> Result<Json<Recognised>, ApiError> {
    if state.liveness == Mode::Off {
        return Err(off());
    }
    let frames = form.images()?;
    if frames.len() > MAX_FRAMES {
        return Err(ApiError::new(
            ErrorCode::TooManyImages,
            format!("at most {MAX_FRAMES} frames are taken with a challenge"),
        ));
    }
    let s = state
        .rollcall
        .verify_sequence(nonce, frames, kiosk, true)
        .await?;
    Ok(Json(answer(caller, &s.verification, Liveness::Challenge)?))
}
