//! The decision on a sequence of frames: one subject followed through every frame, the head
//! turning as the challenge asked and back, a motion no flat picture makes, and one identity
//! throughout. Pure: the frames' detections and embeddings in, a verdict out.

use super::planar::nose_parallax;
use super::pose::yaw;
use super::Instruction;
use crate::subject::{clear_subject, iou};
use rollcall_vision::{Detection, Embedding};

/// The fewest and the most frames a sequence may have.
pub const MIN_FRAMES: usize = 4;
pub const MAX_FRAMES: usize = 24;

/// The cuts of the decision; [`Cuts::DEFAULT`] is what the server uses (measured with
/// `rollcall eval-liveness`, docs/liveness.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cuts {
    /// Consecutive subject boxes overlap at least this much (one continuous track).
    pub track_iou: f32,
    /// The yaw must move at least this far from the first frame, in the asked direction
    /// (about 12° of head turn; the yaw measure is in eye distances).
    pub amplitude: f32,
    /// …and come back to at most this share of its peak by the last frame.
    pub back: f32,
    /// The nose at the turn's peak is at least this far (in eye distances) from where the
    /// homography of the eyes and mouth corners puts it.
    pub parallax: f32,
}

impl Cuts {
    pub const DEFAULT: Cuts = Cuts {
        track_iou: 0.3,
        amplitude: 0.12,
        back: 0.5,
        parallax: 0.15,
    };
}

/// One frame: its faces (largest first) and its size.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub faces: &'a [Detection],
    pub width: u32,
    pub height: u32,
}

/// Why a sequence was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Fewer frames than [`MIN_FRAMES`].
    TooFewFrames {
        got: usize,
    },
    /// The challenge is unknown, used or past its expiry.
    ChallengeExpired,
    NoFace {
        frame: usize,
    },
    SeveralPeople {
        frame: usize,
    },
    /// The subject's box jumped between two frames: not one continuous track.
    LostTrack {
        frame: usize,
        iou: f32,
    },
    /// A frame's face is not the person of the others.
    IdentityChanged {
        frame: usize,
        similarity: f32,
    },
    /// The head did not turn far enough in the asked direction.
    NoTurn {
        peak: f32,
    },
    /// The head turned but did not come back.
    NotBack {
        peak: f32,
        last: f32,
    },
    /// The landmarks moved as those of a flat picture do.
    Flat {
        parallax: f32,
    },
}

impl Refusal {
    /// The word of the `reason` field.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooFewFrames { .. } => "too_few_frames",
            Refusal::ChallengeExpired => "challenge_expired",
            Refusal::NoFace { .. } => "no_face",
            Refusal::SeveralPeople { .. } => "several_people",
            Refusal::LostTrack { .. } => "lost_track",
            Refusal::IdentityChanged { .. } => "identity_changed",
            Refusal::NoTurn { .. } => "no_turn",
            Refusal::NotBack { .. } => "not_back",
            Refusal::Flat { .. } => "flat",
        }
    }

    /// What the person in front of the kiosk can do about it.
    pub fn advice(&self) -> String {
        match self {
            Refusal::TooFewFrames { got } => {
                format!("only {got} frame(s) arrived; at least {MIN_FRAMES} are needed — try again")
            }
            Refusal::ChallengeExpired => {
                "the challenge expired or was already used — try again".into()
            }
            Refusal::NoFace { frame } => {
                format!(
                    "we lost your face (frame {}) — stay in view and try again",
                    frame + 1
                )
            }
            Refusal::SeveralPeople { .. } => {
                "only one person at a time — step up alone and try again".into()
            }
            Refusal::LostTrack { .. } => {
                "your face moved too fast — keep it in the frame and try again".into()
            }
            Refusal::IdentityChanged { .. } => {
                "the face changed during the recording — one person at a time, try again".into()
            }
            Refusal::NoTurn { .. } => "we could not see your head turn — try again".into(),
            Refusal::NotBack { .. } => {
                "turn your head back to face the camera at the end — try again".into()
            }
            Refusal::Flat { .. } => {
                "this looked like a photo or a screen, not a person — try again in person".into()
            }
        }
    }
}

/// The subject of each frame (its index among the frame's faces): its one clear face,
/// followed through overlapping boxes.
pub fn track(frames: &[Frame], cuts: &Cuts) -> Result<Vec<usize>, Refusal> {
    if frames.len() < MIN_FRAMES {
        return Err(Refusal::TooFewFrames { got: frames.len() });
    }
    let mut subjects: Vec<usize> = Vec::with_capacity(frames.len());
    let mut previous: Option<[f32; 4]> = None;
    for (i, f) in frames.iter().enumerate() {
        if f.faces.is_empty() {
            return Err(Refusal::NoFace { frame: i });
        }
        let Some(s) = clear_subject(f.faces, f.width, f.height) else {
            return Err(Refusal::SeveralPeople { frame: i });
        };
        let bbox = f.faces[s].bbox;
        if let Some(previous) = previous {
            let overlap = iou(previous, bbox);
            if overlap <= cuts.track_iou {
                return Err(Refusal::LostTrack {
                    frame: i,
                    iou: overlap,
                });
            }
        }
        previous = Some(bbox);
        subjects.push(s);
    }
    Ok(subjects)
}

fn sum(embeddings: &[Embedding]) -> Vec<f32> {
    let dim = embeddings.first().map_or(0, Embedding::dim);
    let mut sum = vec![0.0f32; dim];
    for e in embeddings {
        for (s, v) in sum.iter_mut().zip(e.values()) {
            *s += v;
        }
    }
    sum
}

/// The face a sequence shows: the re-normalised mean of its frames' embeddings (`None` for no
/// frames). Measured against the best single frame with `rollcall eval-liveness` (its
/// `fusion`, docs/liveness.md).
pub fn fuse(embeddings: &[Embedding]) -> Option<Embedding> {
    Embedding::new(sum(embeddings))
}

/// One identity throughout: every frame's embedding is at least `min` similar to the mean of
/// the others (one odd frame cannot hide in a mean that includes it) and to the frame before
/// it (a switch of person half way shows there, where each frame may still resemble a mean
/// that is half theirs: embeddings share a large common part, and means of many faces drift
/// toward it). Returns the fused embedding ([`fuse`]): the face recognised.
pub fn identity(embeddings: &[Embedding], min: f32) -> Result<Embedding, Refusal> {
    let sum = sum(embeddings);
    let cosine = |a: Vec<f32>, b: Vec<f32>| match (Embedding::new(a), Embedding::new(b)) {
        (Some(a), Some(b)) => a.similarity(&b).0,
        _ => 1.0,
    };
    for (i, e) in embeddings.iter().enumerate() {
        let others: Vec<f32> = sum.iter().zip(e.values()).map(|(s, v)| s - v).collect();
        let similarity = cosine(e.values().to_vec(), others);
        if similarity < min {
            return Err(Refusal::IdentityChanged {
                frame: i,
                similarity,
            });
        }
    }
    for (i, pair) in embeddings.windows(2).enumerate() {
        let similarity = pair[0].similarity(&pair[1]).0;
        if similarity < min {
            return Err(Refusal::IdentityChanged {
                frame: i + 1,
                similarity,
            });
        }
    }
    fuse(embeddings).ok_or(Refusal::NoFace { frame: 0 })
}

/// What the head did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    /// The largest yaw change from the first frame in the asked direction.
    pub peak: f32,
    /// The nose's parallax at that frame.
    pub parallax: f32,
}

/// Did the subject turn as `instruction` asks, and back, with a head and not a picture?
pub fn motion(
    instruction: Instruction,
    landmarks: &[[[f32; 2]; 5]],
    cuts: &Cuts,
) -> Result<Motion, Refusal> {
    let Some(first) = landmarks.first() else {
        return Err(Refusal::TooFewFrames { got: 0 });
    };
    let sign = instruction.yaw_sign();
    let start = yaw(first);
    let moved: Vec<f32> = landmarks.iter().map(|p| sign * (yaw(p) - start)).collect();
    let (peak_at, peak) = moved
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    if peak < cuts.amplitude {
        return Err(Refusal::NoTurn { peak });
    }
    let last = moved[moved.len() - 1];
    if last > cuts.back * peak {
        return Err(Refusal::NotBack { peak, last });
    }
    let parallax = nose_parallax(first, &landmarks[peak_at]).unwrap_or(0.0);
    if parallax < cuts.parallax {
        return Err(Refusal::Flat { parallax });
    }
    Ok(Motion { peak, parallax })
}

#[cfg(test)]
mod tests {
    use super::super::planar::apply;
    use super::super::planar::tests::{random_homography, Lcg, FACE};
    use super::*;

    /// A head: eyes and mouth corners on the plane z = 0, the nose tip in front of it
    /// (toward the camera, at z = -0.6 eye distances), turned by `degrees` about the vertical
    /// axis (positive: the nose goes to the image's right) and seen by a pinhole camera.
    fn head(degrees: f32, shift: f32) -> [[f32; 2]; 5] {
        let model: [[f32; 3]; 5] = [
            [-0.5, -0.3, 0.0],
            [0.5, -0.3, 0.0],
            [0.0, 0.25, -0.6],
            [-0.4, 0.75, 0.0],
            [0.4, 0.75, 0.0],
        ];
        let t = degrees.to_radians();
        let (c, s) = (t.cos(), t.sin());
        model.map(|[x, y, z]| {
            // Rotation about y: the nose (z < 0, toward the camera) moves to +x for t > 0.
            let (xr, zr) = (c * x - s * z, s * x + c * z);
            let depth = zr + 8.0;
            [
                320.0 + 600.0 * (xr + shift) / depth,
                240.0 + 600.0 * y / depth,
            ]
        })
    }

    fn turn(direction: f32, peak: f32, n: usize) -> Vec<[[f32; 2]; 5]> {
        // Out to the peak and back, like a person following the instruction.
        (0..n)
            .map(|i| {
                let phase = i as f32 / (n - 1) as f32;
                let angle = direction * peak * (std::f32::consts::PI * phase).sin();
                head(angle, 0.02 * i as f32)
            })
            .collect()
    }

    #[test]
    fn a_head_turning_the_asked_way_and_back_is_live() {
        for (instruction, direction) in
            [(Instruction::TurnLeft, 1.0), (Instruction::TurnRight, -1.0)]
        {
            let m = motion(instruction, &turn(direction, 25.0, 10), &Cuts::DEFAULT)
                .unwrap_or_else(|r| panic!("{instruction:?}: {r:?}"));
            assert!(m.parallax > 0.15, "{m:?}");
        }
    }

    #[test]
    fn the_wrong_way_a_small_turn_or_no_return_is_refused() {
        let wrong = motion(Instruction::TurnRight, &turn(1.0, 25.0, 10), &Cuts::DEFAULT);
        assert!(matches!(wrong, Err(Refusal::NoTurn { .. })), "{wrong:?}");
        let small = motion(Instruction::TurnLeft, &turn(1.0, 5.0, 10), &Cuts::DEFAULT);
        assert!(matches!(small, Err(Refusal::NoTurn { .. })), "{small:?}");
        let out: Vec<_> = (0..8).map(|i| head(4.0 * i as f32, 0.0)).collect();
        let stays = motion(Instruction::TurnLeft, &out, &Cuts::DEFAULT);
        assert!(matches!(stays, Err(Refusal::NotBack { .. })), "{stays:?}");
    }

    #[test]
    fn a_picture_moved_by_random_homographies_is_flat() {
        // Even with the yaw cut at zero, a picture is caught by its missing parallax.
        let cuts = Cuts {
            amplitude: 0.0,
            back: 1.0,
            ..Cuts::DEFAULT
        };
        let mut rng = Lcg(11);
        for _ in 0..200 {
            let frames: Vec<_> = (0..8)
                .map(|i| {
                    if i == 0 {
                        FACE
                    } else {
                        let h = random_homography(&mut rng);
                        FACE.map(|p| apply(&h, p).expect("finite"))
                    }
                })
                .collect();
            for instruction in [Instruction::TurnLeft, Instruction::TurnRight] {
                let verdict = motion(instruction, &frames, &cuts);
                assert!(matches!(verdict, Err(Refusal::Flat { .. })), "{verdict:?}");
            }
        }
    }

    fn det(bbox: [f32; 4]) -> Detection {
        Detection {
            bbox,
            probability: 0.99,
            landmarks: FACE,
        }
    }

    #[test]
    fn the_track_needs_one_clear_face_in_overlapping_boxes() {
        let one = [det([100.0, 100.0, 200.0, 200.0])];
        let moved = [det([110.0, 105.0, 210.0, 205.0])];
        let far = [det([300.0, 100.0, 400.0, 200.0])];
        let two = [
            det([100.0, 100.0, 200.0, 200.0]),
            det([220.0, 100.0, 310.0, 190.0]),
        ];
        fn frame(faces: &[Detection]) -> Frame<'_> {
            Frame {
                faces,
                width: 640,
                height: 480,
            }
        }
        let ok = [frame(&one), frame(&moved), frame(&one), frame(&moved)];
        assert_eq!(track(&ok, &Cuts::DEFAULT).map(|s| s.len()), Ok(4));
        let jump = [frame(&one), frame(&moved), frame(&far), frame(&far)];
        assert!(matches!(
            track(&jump, &Cuts::DEFAULT),
            Err(Refusal::LostTrack { frame: 2, .. })
        ));
        let crowd = [frame(&one), frame(&two), frame(&one), frame(&one)];
        assert!(matches!(
            track(&crowd, &Cuts::DEFAULT),
            Err(Refusal::SeveralPeople { frame: 1 })
        ));
        assert!(matches!(
            track(&ok[..3], &Cuts::DEFAULT),
            Err(Refusal::TooFewFrames { got: 3 })
        ));
    }

    #[test]
    fn an_odd_face_out_breaks_the_identity() {
        let e = |v: &[f32]| Embedding::new(v.to_vec()).expect("finite");
        let same = [
            e(&[1.0, 0.1, 0.0]),
            e(&[1.0, 0.0, 0.1]),
            e(&[1.0, 0.05, 0.05]),
        ];
        let fused = identity(&same, 0.9).expect("one person");
        assert!(fused.values()[0] > 0.99);
        let a = e(&[1.0, 0.1, 0.0]);
        let odd = [
            a.clone(),
            a.clone(),
            a.clone(),
            e(&[0.0, 1.0, 0.0]),
            a.clone(),
            a,
        ];
        assert!(matches!(
            identity(&odd, 0.9),
            Err(Refusal::IdentityChanged { frame: 3, .. })
        ));
        // Half one person, half another: each frame is 0.85 similar to the mean of the others,
        // but the frames either side of the switch only 0.6.
        let a = e(&[1.0, 0.0, 0.0]);
        let b = e(&[0.6, 0.8, 0.0]);
        let halves = [a.clone(), a.clone(), a.clone(), b.clone(), b.clone(), b];
        assert!(identity(&halves, 0.9).is_err());
        assert!(matches!(
            identity(&halves, 0.75),
            Err(Refusal::IdentityChanged { frame: 3, .. })
        ));
    }
}
