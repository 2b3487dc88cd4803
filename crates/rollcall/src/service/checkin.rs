//! Who is in a photo, and checking them in: every recognised face once per cooldown, the same
//! person twice in one frame once.

use super::people::without_embedding;
use super::{Rollcall, ServiceError};
use crate::domain::Kiosk;
use crate::domain::Similarity;
use crate::gallery::{Candidate, Judgement};
use crate::operating_point::OperatingPoint;
use crate::store::CheckIn;
use rollcall_vision::Detection;
use std::sync::Arc;

/// One face of a verified photo.
#[derive(Debug, Clone)]
pub struct VerifiedFace {
    pub detection: Detection,
    /// The most similar registered person, matched or not.
    pub best: Option<Candidate>,
    /// The most similar other person's similarity, when the margin rule looked at it.
    pub runner_up: Option<Similarity>,
    /// `best` is accepted: at or above the threshold, and ahead of the runner-up by the margin.
    pub matched: bool,
    /// Set when a check-in was attempted (matched faces, when recording).
    pub check_in: Option<CheckIn>,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub width: u32,
    pub height: u32,
    /// Largest first; never empty.
    pub faces: Vec<VerifiedFace>,
    /// The threshold this photo was judged by, with what it was derived for.
    pub operating_point: OperatingPoint,
    pub model: String,
}

impl Rollcall {
    /// Who is in the photo. With `record`, every recognised person is checked in (once per
    /// cooldown). `NoFace` when there is nobody.
    pub async fn verify(
        &self,
        bytes: Arc<[u8]>,
        kiosk: Option<&Kiosk>,
        record: bool,
    ) -> Result<Verification, ServiceError> {
        let analysis = self.inference.analyze(bytes, true).await?;
        if analysis.faces.is_empty() {
            metrics::counter!("rollcall_rejections_total", "reason" => "no_face").increment(1);
            return Err(ServiceError::NoFace);
        }
        // One threshold for the whole photo, even if someone registers meanwhile.
        let point = self.gallery.operating_point();
        let mut faces = Vec::with_capacity(analysis.faces.len());
        let mut seen = std::collections::HashSet::new();
        for face in analysis.faces {
            let embedding = face.embedding.as_ref().ok_or_else(without_embedding)?;
            let Judgement {
                best,
                runner_up,
                matched,
            } = self.gallery.judge(embedding, &point);
            let mut check_in = None;
            if let (true, true, Some(c)) = (matched, record, &best) {
                // The same person twice in one frame is checked in once.
                if seen.insert(c.user_id) {
                    let outcome = self
                        .attendance
                        .check_in(
                            c.user_id,
                            c.similarity.0,
                            kiosk.map(Kiosk::as_str),
                            self.model(),
                        )
                        .await?;
                    if matches!(outcome, CheckIn::Recorded(_)) {
                        metrics::counter!("rollcall_checkins_total").increment(1);
                    }
                    check_in = Some(outcome);
                }
            }
            faces.push(VerifiedFace {
                detection: face.detection,
                best,
                runner_up,
                matched,
                check_in,
            });
        }
        if faces[0].matched {
            metrics::counter!("rollcall_matches_total").increment(1);
        } else {
            metrics::counter!("rollcall_rejections_total", "reason" => "not_recognised")
                .increment(1);
        }
        Ok(Verification {
            width: analysis.width,
            height: analysis.height,
            faces,
            operating_point: point,
            model: self.model().to_owned(),
        })
    }
}
