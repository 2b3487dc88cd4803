//! Whether a face is good enough to register, and what to tell the person when it is not. The
//! measures are `rollcall_vision::quality`'s; the cuts below were measured on LFW with
//! `rollcall eval --quality` (docs/accuracy.md, "Registration quality"): each refuses reference
//! photos that really lower recognition while refusing few of the photos that do not.
//! Registration and add-face apply them; `/verify` never does (a kiosk frame is what it is).

use rollcall_vision::quality::FaceMeasures;

/// Shortest face side, in pixels of the decoded image.
pub const MIN_SIDE: f32 = 40.0;
/// Least sharpness (see [`FaceMeasures::sharpness`]).
pub const MIN_SHARPNESS: f32 = 0.05;
/// Mean luma of the face box, 0–255.
pub const MIN_BRIGHTNESS: f32 = 30.0;
pub const MAX_BRIGHTNESS: f32 = 210.0;
/// Largest |yaw| (nose offset over eye distance).
pub const MAX_YAW: f32 = 0.35;

/// What is wrong with a face, as the `reason` of a `poor_quality` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    TooSmall,
    Blurred,
    TooDark,
    TooBright,
    Turned,
}

impl Problem {
    pub const ALL: [Problem; 5] = [
        Problem::TooSmall,
        Problem::Blurred,
        Problem::TooDark,
        Problem::TooBright,
        Problem::Turned,
    ];

    /// The `reason` field of the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::TooSmall => "too_small",
            Problem::Blurred => "blurred",
            Problem::TooDark => "too_dark",
            Problem::TooBright => "too_bright",
            Problem::Turned => "turned",
        }
    }

    /// What the person in front of the camera can do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Problem::TooSmall => "the face is too small: come closer to the camera",
            Problem::Blurred => "the face is blurred: hold still and keep the camera steady",
            Problem::TooDark => "the face is too dark: find more light",
            Problem::TooBright => "the face is overexposed: move out of direct light",
            Problem::Turned => "the face is turned away: face the camera",
        }
    }
}

/// A face refused for its quality: the problem, the value measured and the limit it missed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoorQuality {
    pub problem: Problem,
    pub measured: f32,
    pub limit: f32,
}

/// The first problem of a face, in the order a person fixes them (come closer before anything
/// else: a small face also measures blurred), or `Ok`.
pub fn check(m: &FaceMeasures) -> Result<(), PoorQuality> {
    let refuse = |problem, measured, limit| {
        Err(PoorQuality {
            problem,
            measured,
            limit,
        })
    };
    if m.side < MIN_SIDE {
        return refuse(Problem::TooSmall, m.side, MIN_SIDE);
    }
    if m.brightness < MIN_BRIGHTNESS {
        return refuse(Problem::TooDark, m.brightness, MIN_BRIGHTNESS);
    }
    if m.brightness > MAX_BRIGHTNESS {
        return refuse(Problem::TooBright, m.brightness, MAX_BRIGHTNESS);
    }
    if m.sharpness < MIN_SHARPNESS {
        return refuse(Problem::Blurred, m.sharpness, MIN_SHARPNESS);
    }
    if m.yaw.abs() > MAX_YAW {
        return refuse(Problem::Turned, m.yaw, MAX_YAW);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> FaceMeasures {
        FaceMeasures {
            side: 100.0,
            sharpness: 1.0,
            brightness: 120.0,
            yaw: 0.0,
            roll: 0.0,
        }
    }

    #[test]
    fn each_measure_past_its_cut_is_its_problem() {
        assert_eq!(check(&good()), Ok(()));
        let cases = [
            (
                FaceMeasures {
                    side: MIN_SIDE - 1.0,
                    ..good()
                },
                Problem::TooSmall,
            ),
            (
                FaceMeasures {
                    sharpness: MIN_SHARPNESS / 2.0,
                    ..good()
                },
                Problem::Blurred,
            ),
            (
                FaceMeasures {
                    brightness: MIN_BRIGHTNESS - 1.0,
                    ..good()
                },
                Problem::TooDark,
            ),
            (
                FaceMeasures {
                    brightness: MAX_BRIGHTNESS + 1.0,
                    ..good()
                },
                Problem::TooBright,
            ),
            (
                FaceMeasures {
                    yaw: -MAX_YAW - 0.01,
                    ..good()
                },
                Problem::Turned,
            ),
        ];
        for (m, problem) in cases {
            assert_eq!(check(&m).map_err(|e| e.problem), Err(problem), "{m:?}");
        }
        // At the cut is still accepted.
        assert_eq!(
            check(&FaceMeasures {
                side: MIN_SIDE,
                yaw: MAX_YAW,
                ..good()
            }),
            Ok(())
        );
    }

    #[test]
    fn a_small_face_is_told_to_come_closer_before_anything_else() {
        let m = FaceMeasures {
            side: 10.0,
            sharpness: 0.0,
            brightness: 5.0,
            yaw: 1.0,
            roll: 0.0,
        };
        let e = check(&m).unwrap_err();
        assert_eq!(e.problem, Problem::TooSmall);
        assert!(e.problem.advice().contains("come closer"));
    }
}
