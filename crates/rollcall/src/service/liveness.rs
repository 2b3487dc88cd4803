//! Liveness challenges and the check-in from a sequence of frames: give a challenge (stored
//! by the SHA-256 of its nonce), take it back once, judge the frames
//! ([`crate::liveness::sequence`]) and recognise the fused embedding of the frames.

use super::checkin::{Verification, VerifiedFace};
use super::people::without_embedding;
use super::{Rollcall, ServiceError};
use crate::attendance::now_micros;
use crate::auth::secret::{random_token, sha256_hex};
use crate::domain::Kiosk;
use crate::gallery::Judgement;
use crate::liveness::sequence::{self, Cuts, Frame, Motion, Refusal};
use crate::liveness::{Instruction, Liveness, CHALLENGE_TTL};
use crate::store::CheckIn;
use chrono::{DateTime, Utc};
use rollcall_vision::Detection;
use std::sync::Arc;

/// A challenge as given to the kiosk: the nonce itself is never stored.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub nonce: String,
    pub instruction: Instruction,
    pub expires_at: DateTime<Utc>,
}

/// A sequence that passed, and who it showed.
#[derive(Debug, Clone)]
pub struct SequenceVerification {
    /// One face: the subject, as seen in the first frame, matched by the fused embedding.
    pub verification: Verification,
    pub motion: Motion,
    pub frames: usize,
}

impl Rollcall {
    /// A new challenge: `fixed` or else a random movement, valid for [`CHALLENGE_TTL`].
    pub async fn new_challenge(
        &self,
        fixed: Option<Instruction>,
    ) -> Result<Challenge, ServiceError> {
        let nonce = random_token();
        let instruction = fixed.unwrap_or_else(Instruction::random);
        let now = now_micros();
        let ttl = chrono::Duration::from_std(CHALLENGE_TTL).unwrap_or(chrono::Duration::MAX);
        let expires_at = now + ttl;
        self.store
            .add_challenge(&sha256_hex(&nonce), instruction, now, expires_at)
            .await?;
        Ok(Challenge {
            nonce,
            instruction,
            expires_at,
        })
    }

    /// Judge a sequence answering the challenge `nonce` and, when it passes, recognise the
    /// person (checked in with `record`). The challenge is used up first, whatever follows.
    pub async fn verify_sequence(
        &self,
        nonce: &str,
        frames: Vec<Arc<[u8]>>,
        kiosk: Option<&Kiosk>,
        record: bool,
    ) -> Result<SequenceVerification, ServiceError> {
        let taken = self
            .store
            .take_challenge(&sha256_hex(nonce.trim()), now_micros())
            .await?;
        let Some(instruction) = taken else {
            return Err(refused(Refusal::ChallengeExpired));
        };
        if frames.len() < sequence::MIN_FRAMES {
            return Err(refused(Refusal::TooFewFrames { got: frames.len() }));
        }
        // One frame after the other: a sequence must not take the whole inference queue.
        let mut analyses = Vec::with_capacity(frames.len());
        for (index, bytes) in frames.into_iter().enumerate() {
            let analysis =
                self.inference
                    .analyze(bytes, true)
                    .await
                    .map_err(|e| ServiceError::InImage {
                        index,
                        source: Box::new(e),
                    })?;
            analyses.push(analysis);
        }
        let cuts = Cuts::DEFAULT;
        let detections: Vec<Vec<Detection>> = analyses
            .iter()
            .map(|a| a.faces.iter().map(|f| f.detection.clone()).collect())
            .collect();
        let views: Vec<Frame> = analyses
            .iter()
            .zip(&detections)
            .map(|(a, faces)| Frame {
                faces,
                width: a.width,
                height: a.height,
            })
            .collect();
        let subjects = sequence::track(&views, &cuts).map_err(refused)?;
        let mut embeddings = Vec::with_capacity(subjects.len());
        let mut landmarks = Vec::with_capacity(subjects.len());
        for (analysis, &s) in analyses.iter().zip(&subjects) {
            let face = &analysis.faces[s];
            embeddings.push(face.embedding.clone().ok_or_else(without_embedding)?);
            landmarks.push(face.detection.landmarks);
        }
        // One person throughout, by the server's own rule of "the same person": the threshold
        // in force.
        let point = self.gallery.operating_point();
        let fused = sequence::identity(&embeddings, point.threshold.value()).map_err(refused)?;
        let motion = sequence::motion(instruction, &landmarks, &cuts).map_err(refused)?;
        metrics::counter!("rollcall_liveness_total", "result" => "passed").increment(1);

        let Judgement {
            best,
            runner_up,
            matched,
        } = self.gallery.judge(&fused, &point);
        let mut check_in = None;
        if let (true, true, Some(c)) = (matched, record, &best) {
            let outcome = self
                .attendance
                .check_in_with(
                    c.user_id,
                    c.similarity.0,
                    kiosk.map(Kiosk::as_str),
                    self.model(),
                    Liveness::Challenge,
                )
                .await?;
            if matches!(outcome, CheckIn::Recorded(_)) {
                metrics::counter!("rollcall_checkins_total").increment(1);
            }
            check_in = Some(outcome);
        }
        if matched {
            metrics::counter!("rollcall_matches_total").increment(1);
        } else {
            metrics::counter!("rollcall_rejections_total", "reason" => "not_recognised")
                .increment(1);
        }
        let first = &analyses[0];
        Ok(SequenceVerification {
            verification: Verification {
                width: first.width,
                height: first.height,
                faces: vec![VerifiedFace {
                    detection: first.faces[subjects[0]].detection.clone(),
                    best,
                    runner_up,
                    matched,
                    check_in,
                }],
                operating_point: point,
                model: self.model().to_owned(),
            },
            motion,
            frames: analyses.len(),
        })
    }
}

fn refused(refusal: Refusal) -> ServiceError {
    metrics::counter!("rollcall_liveness_total", "result" => refusal.reason()).increment(1);
    ServiceError::NotLive(refusal)
}
