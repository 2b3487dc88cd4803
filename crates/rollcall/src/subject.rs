//! Which face of a photo is its subject: the one rule `rollcall eval` embeds and registration
//! stores, so the accuracy eval measures is the accuracy of the faces the server registers.

use rollcall_vision::Detection;

/// How far the subject's score must beat the next face's for it to be "clearly" the subject.
/// A factor of 2 is the area ratio registration asked of the largest face before the scores
/// were centrality-weighted: for two faces equally far from the centre the rule is unchanged,
/// and a bystander needs half the subject's weighted area to make the photo ambiguous.
pub const CLEAR_FACTOR: f32 = 2.0;

/// A face's *centrality-weighted area*, `area × (1 − d / r)²`, where `area` is the box clipped
/// to the image, `d` the distance from the box centre to the image centre and `r` half the
/// image diagonal. A face at the centre keeps its whole area, one at a corner counts for
/// nothing; so a large bystander at the edge loses to the central subject, while a lone
/// off-centre face is still chosen.
pub fn score(d: &Detection, width: u32, height: u32) -> f32 {
    let (w, h) = (width as f32, height as f32);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let r = (cx * cx + cy * cy).sqrt().max(f32::MIN_POSITIVE);
    let [x1, y1, x2, y2] = d.bbox;
    let area = (x2.min(w) - x1.max(0.0)).max(0.0) * (y2.min(h) - y1.max(0.0)).max(0.0);
    let dist = (((x1 + x2) / 2.0 - cx).powi(2) + ((y1 + y2) / 2.0 - cy).powi(2)).sqrt();
    area * (1.0 - dist / r).max(0.0).powi(2)
}

/// The subject: the face with the highest [`score`]; ties go to the earlier (larger) detection.
pub fn subject_index(dets: &[Detection], width: u32, height: u32) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, d) in dets.iter().enumerate() {
        let s = score(d, width, height);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// The subject when it is clear: the only face, or one whose score is at least
/// [`CLEAR_FACTOR`] times every other face's. `None` when there is no face or no clear one.
pub fn clear_subject(dets: &[Detection], width: u32, height: u32) -> Option<usize> {
    let subject = subject_index(dets, width, height)?;
    let top = score(&dets[subject], width, height);
    let clear = dets
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != subject)
        .all(|(_, d)| top >= CLEAR_FACTOR * score(d, width, height));
    clear.then_some(subject)
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (0 when either is empty).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
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
    fn the_central_face_beats_a_larger_one_at_the_edge() {
        // 200×100 image: a 40-pixel face at the centre, a 50-pixel face in the corner.
        let dets = [det([0.0, 0.0, 50.0, 50.0]), det([80.0, 30.0, 120.0, 70.0])];
        assert_eq!(subject_index(&dets, 200, 100), Some(1));
        assert_eq!(subject_index(&[], 200, 100), None);
    }

    #[test]
    fn a_subject_is_clear_at_twice_the_next_score() {
        let centred = |side: f32| {
            det([
                50.0 - side / 2.0,
                50.0 - side / 2.0,
                50.0 + side / 2.0,
                50.0 + side / 2.0,
            ])
        };
        assert_eq!(clear_subject(&[centred(20.0)], 100, 100), Some(0));
        // Same centre: the scores are the areas; 20² = 2 × (√200)².
        assert_eq!(
            clear_subject(&[centred(20.0), centred(200f32.sqrt() - 0.01)], 100, 100),
            Some(0)
        );
        assert_eq!(
            clear_subject(&[centred(20.0), centred(200f32.sqrt() + 0.01)], 100, 100),
            None
        );
        assert_eq!(clear_subject(&[], 100, 100), None);
    }

    #[test]
    fn iou_of_boxes() {
        assert_eq!(iou([0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou([0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]), 0.0);
        assert!((iou([0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou([0.0; 4], [0.0; 4]), 0.0);
    }
}
