//! Box arithmetic between the stages, in f32 and in facenet-pytorch's operation order (each
//! product rounded before the sum: no fused multiply-add).

use super::pyramid::Rect;

/// A candidate face: box [x1, y1, x2, y2] and score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub bbox: [f32; 4],
    pub score: f32,
}

/// P-Net map position → box in image coordinates: `floor((2·i + 1)/scale)` and
/// `floor((2·i + 12)/scale)`, a torch f32 division by the scale rounded to f32.
pub fn pnet_box(ix: usize, iy: usize, scale: f32) -> [f32; 4] {
    let (bx, by) = (ix as f32, iy as f32);
    [
        ((2.0 * bx + 1.0) / scale).floor(),
        ((2.0 * by + 1.0) / scale).floor(),
        ((2.0 * bx + 12.0) / scale).floor(),
        ((2.0 * by + 12.0) / scale).floor(),
    ]
}

/// Stage-1 regression: offsets scaled by the width and height *without* +1.
pub fn regress_stage1(b: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let w = b[2] - b[0];
    let h = b[3] - b[1];
    [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ]
}

/// `bbreg`: offsets scaled by the width and height *with* +1 (stages 2 and 3).
pub fn bbreg(b: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ]
}

/// `rerec`: the square with side max(w, h) (no +1) around the box's centre.
pub fn rerec(b: [f32; 4]) -> [f32; 4] {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// The pixels R-Net and O-Net see for a box: truncate toward zero, clamp x, y to ≥ 1 and
/// the far edges to ≤ W, H, then take rows `y−1..ey` and columns `x−1..ex` (outside parts are
/// clipped, not padded). `None` when nothing of the box is inside the image (facenet-pytorch
/// would silently drop such a crop and misalign the batch; here the candidate is dropped).
pub fn crop_rect(b: [f32; 4], width: u32, height: u32) -> Option<Rect> {
    // `as i64` truncates toward zero and saturates, like the library's int cast for sane values.
    let x = (b[0] as i64).max(1);
    let y = (b[1] as i64).max(1);
    let ex = (b[2] as i64).min(width as i64);
    let ey = (b[3] as i64).min(height as i64);
    if ey > y - 1 && ex > x - 1 {
        Some(Rect {
            x0: (x - 1) as usize,
            y0: (y - 1) as usize,
            x1: ex as usize,
            y1: ey as usize,
        })
    } else {
        None
    }
}

/// Landmarks from O-Net's relative points and the stage-2 box (before its regression):
/// `(w·l + x1) − 1` with w = x2 − x1 + 1.
pub fn landmarks(b: [f32; 4], rel: &[f32]) -> [[f32; 2]; 5] {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    std::array::from_fn(|k| [w * rel[k] + b[0] - 1.0, h * rel[5 + k] + b[1] - 1.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pnet_box_uses_f32_division() {
        // 9 / 0.6f32 = 14.999999 → 14 (f64 would give 15).
        assert_eq!(pnet_box(4, 0, 0.6f64 as f32)[0], 14.0);
        assert_eq!(pnet_box(0, 0, 1.0), [1.0, 1.0, 12.0, 12.0]);
    }

    #[test]
    fn rerec_makes_centered_squares() {
        assert_eq!(rerec([0.0, 0.0, 10.0, 20.0]), [-5.0, 0.0, 15.0, 20.0]);
    }

    #[test]
    fn crop_rect_clips_and_rejects_outside_boxes() {
        assert_eq!(
            crop_rect([-5.5, 3.9, 700.0, 20.2], 640, 480),
            Some(Rect {
                x0: 0,
                y0: 2,
                x1: 640,
                y1: 20
            })
        );
        assert_eq!(crop_rect([-50.0, 3.0, -10.0, 20.0], 640, 480), None);
        assert_eq!(crop_rect([650.0, 3.0, 700.0, 20.0], 640, 480), None);
    }
}
