//! The face to register from a photo: which face (the clear subject, or the client's pick),
//! whether it is good enough ([`crate::quality`]), and whether it is someone already registered.

use super::{Rollcall, ServiceError};
use crate::domain::{Embedding, FaceChoice, ImageFormat};
use crate::gallery::Candidate;
use crate::quality;
use crate::subject::{clear_subject, iou};
use rollcall_vision::quality::FaceMeasures;
use rollcall_vision::{Detection, ImageError};
use std::sync::Arc;

/// A box sent as `box=` must overlap the detected face this much (intersection over union) to
/// name it: less could be a face the detector did not find.
pub const MIN_BOX_IOU: f32 = 0.5;

/// A face good enough to register.
#[derive(Debug, Clone)]
pub struct ReferenceFace {
    pub format: ImageFormat,
    pub detection: Detection,
    pub embedding: Embedding,
    pub measures: FaceMeasures,
}

/// How strict [`Rollcall::reference_face`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub choice: FaceChoice,
    /// Refuse a face below the quality cuts (registration and add-face; not re-embedding a
    /// photo already registered).
    pub check_quality: bool,
}

impl Pick {
    /// The clear subject, quality checked: what a registration without a choice asks for.
    pub const SUBJECT: Pick = Pick {
        choice: FaceChoice::Subject,
        check_quality: true,
    };

    pub fn of(choice: FaceChoice) -> Pick {
        Pick {
            choice,
            check_quality: true,
        }
    }
}

/// The index of the face to register among `faces` (largest first, as `/detect` lists them).
pub fn pick(
    faces: &[Detection],
    width: u32,
    height: u32,
    choice: FaceChoice,
) -> Result<usize, ServiceError> {
    if faces.is_empty() {
        return Err(ServiceError::NoFace);
    }
    let choice_error = |reason: String| ServiceError::FaceChoice {
        reason,
        faces: faces.to_vec(),
    };
    match choice {
        FaceChoice::Subject => {
            clear_subject(faces, width, height).ok_or_else(|| ServiceError::SeveralFaces {
                faces: faces.to_vec(),
            })
        }
        FaceChoice::Index(i) if i < faces.len() => Ok(i),
        FaceChoice::Index(i) => Err(choice_error(format!(
            "face={i}: the photo has {} face(s), numbered from 0",
            faces.len()
        ))),
        FaceChoice::Box(b) => {
            let (best, overlap) = faces
                .iter()
                .enumerate()
                .map(|(i, f)| (i, iou(b, f.bbox)))
                .fold((0, f32::MIN), |acc, x| if x.1 > acc.1 { x } else { acc });
            if overlap >= MIN_BOX_IOU {
                Ok(best)
            } else {
                Err(choice_error(format!(
                    "box={},{},{},{}: no detected face overlaps it enough (best overlap {:.2}, \
                     at least {MIN_BOX_IOU} needed); choose one of the faces listed",
                    b[0], b[1], b[2], b[3], overlap
                )))
            }
        }
    }
}

impl Rollcall {
    /// The face to register from one photo (errors: bad image, no face, several faces without
    /// a clear subject, a choice that names no face, poor quality).
    pub async fn reference_face(
        &self,
        bytes: Arc<[u8]>,
        pick: Pick,
    ) -> Result<ReferenceFace, ServiceError> {
        let format =
            ImageFormat::sniff(&bytes).ok_or(ServiceError::Image(ImageError::Unsupported))?;
        let chosen = self.inference.choose(bytes, pick.choice).await?;
        if pick.check_quality {
            quality::check(&chosen.measures).map_err(ServiceError::PoorQuality)?;
        }
        Ok(ReferenceFace {
            format,
            detection: chosen.detection,
            embedding: chosen.embedding,
            measures: chosen.measures,
        })
    }

    /// The registered person a new reference face already matches (at or above the threshold
    /// in force), other than `owner` (the person it is being added to): a duplicate unless
    /// `allow`ed. With `allow`, the match is returned for the audit entry to say so.
    pub fn duplicate_of(
        &self,
        face: &Embedding,
        owner: Option<i64>,
        allow: bool,
    ) -> Result<Option<Candidate>, ServiceError> {
        let Some(best) = self.gallery.best(face) else {
            return Ok(None);
        };
        // Matching the person it is added to is the point of a second reference face; the best
        // match being someone else means the face would answer as them too.
        if Some(best.user_id) == owner || !self.threshold().accepts(best.similarity) {
            return Ok(None);
        }
        if allow {
            Ok(Some(best))
        } else {
            Err(ServiceError::Duplicate {
                person: best,
                threshold: self.threshold().value(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4]) -> Detection {
        Detection {
            bbox,
            probability: 0.99,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn the_choice_names_one_face_or_explains_why_not() {
        // Two faces of the same size either side of the centre: no clear subject.
        let faces = [det([10.0, 40.0, 30.0, 60.0]), det([70.0, 40.0, 90.0, 60.0])];
        assert!(matches!(
            pick(&faces, 100, 100, FaceChoice::Subject),
            Err(ServiceError::SeveralFaces { faces }) if faces.len() == 2
        ));
        assert_eq!(pick(&faces, 100, 100, FaceChoice::Index(1)).unwrap(), 1);
        assert!(matches!(
            pick(&faces, 100, 100, FaceChoice::Index(2)),
            Err(ServiceError::FaceChoice { .. })
        ));
        assert_eq!(
            pick(&faces, 100, 100, FaceChoice::Box([68.0, 38.0, 92.0, 62.0])).unwrap(),
            1
        );
        // Overlapping by less than half is no face.
        assert!(matches!(
            pick(&faces, 100, 100, FaceChoice::Box([20.0, 40.0, 40.0, 60.0])),
            Err(ServiceError::FaceChoice { .. })
        ));
        assert!(matches!(
            pick(&[], 100, 100, FaceChoice::Index(0)),
            Err(ServiceError::NoFace)
        ));
        assert_eq!(pick(&faces[..1], 100, 100, FaceChoice::Subject).unwrap(), 0);
    }
}
