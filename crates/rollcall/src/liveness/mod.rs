//! Liveness from a short sequence of frames: the kiosk asks for a challenge (a random head
//! movement), records the person following it and sends the frames; a photo or a screen held
//! up to the camera cannot follow it, because a flat picture moves its landmarks by one
//! homography and a turning head does not. Pure math and rules here; the challenge store is
//! `store::challenges`, the use case `service::liveness`. Method and limits: docs/liveness.md.

pub mod planar;
pub mod pose;
pub mod sequence;
pub mod synth;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use std::time::Duration;

/// How long a challenge may be answered after it was given.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(10);

/// How long the kiosk records for, and the frames it should send.
pub const RECORD_MS: u32 = 1500;
pub const SUGGESTED_FRAMES: usize = 10;

/// A movement the person is asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instruction {
    TurnLeft,
    TurnRight,
}

impl Instruction {
    pub const ALL: [Instruction; 2] = [Instruction::TurnLeft, Instruction::TurnRight];

    /// The word of the `kind` field, and of the database column.
    pub fn as_str(self) -> &'static str {
        match self {
            Instruction::TurnLeft => "turn_left",
            Instruction::TurnRight => "turn_right",
        }
    }

    pub fn parse(s: &str) -> Option<Instruction> {
        Instruction::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// What the kiosk shows.
    pub fn text(self) -> &'static str {
        match self {
            Instruction::TurnLeft => "Turn your head slowly to the left, then back",
            Instruction::TurnRight => "Turn your head slowly to the right, then back",
        }
    }

    /// The sign of the yaw change this movement makes in an unmirrored camera frame: the
    /// person's left is the image's right ([`pose::yaw`] grows).
    pub fn yaw_sign(self) -> f32 {
        match self {
            Instruction::TurnLeft => 1.0,
            Instruction::TurnRight => -1.0,
        }
    }

    /// One of [`Instruction::ALL`], from the operating system's random source, so a video
    /// recorded beforehand has to guess which movement will be asked.
    pub fn random() -> Instruction {
        let i = OsRng.next_u32() as usize % Instruction::ALL.len();
        Instruction::ALL[i]
    }
}

/// How a check-in's liveness was established (the `liveness` of answers and check-ins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// One photo: nothing says a person stood there.
    None,
    /// A sequence that followed a challenge.
    Challenge,
}

impl Liveness {
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::None => "none",
            Liveness::Challenge => "challenge",
        }
    }
}

/// `--liveness`: whether the server gives challenges (and the kiosk page uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No challenges: `/verify/challenge` answers 409 and the kiosk sends single photos.
    Off,
    #[default]
    Challenge,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Challenge => "challenge",
        }
    }
}
