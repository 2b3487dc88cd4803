//! Head yaw from the five MTCNN landmarks: the nose's offset from the eyes' midpoint along the
//! eye line, over the eye distance (the measure `rollcall_vision::quality` reports as `yaw`).
//! 0 facing the camera; positive when the nose is toward the image's right, which is the
//! person's own left in an unmirrored camera frame.

/// Landmark indices (image left/right, as MTCNN gives them).
pub const LEFT_EYE: usize = 0;
pub const RIGHT_EYE: usize = 1;
pub const NOSE: usize = 2;
pub const MOUTH_LEFT: usize = 3;
pub const MOUTH_RIGHT: usize = 4;

/// The distance between the eyes (0 for a degenerate face).
pub fn eye_distance(points: &[[f32; 2]; 5]) -> f32 {
    let [l, r] = [points[LEFT_EYE], points[RIGHT_EYE]];
    ((r[0] - l[0]).powi(2) + (r[1] - l[1]).powi(2)).sqrt()
}

/// The yaw measure; 0 when the eyes coincide.
pub fn yaw(points: &[[f32; 2]; 5]) -> f32 {
    let [l, r, nose] = [points[LEFT_EYE], points[RIGHT_EYE], points[NOSE]];
    let eyes = eye_distance(points);
    if eyes <= f32::EPSILON {
        return 0.0;
    }
    let (dx, dy) = (r[0] - l[0], r[1] - l[1]);
    let mid = [(l[0] + r[0]) / 2.0, (l[1] + r[1]) / 2.0];
    // Projected on the eye line, so a tilted (rolled) head is not read as turned.
    ((nose[0] - mid[0]) * dx + (nose[1] - mid[1]) * dy) / (eyes * eyes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontal_is_zero_and_a_nose_to_the_right_is_positive() {
        let frontal = [
            [30.0, 40.0],
            [70.0, 40.0],
            [50.0, 60.0],
            [35.0, 80.0],
            [65.0, 80.0],
        ];
        assert!(yaw(&frontal).abs() < 1e-6);
        let mut turned = frontal;
        turned[NOSE] = [60.0, 60.0];
        assert!((yaw(&turned) - 0.25).abs() < 1e-6);
        // Rolled 90°: the nose below the eye line in the head's frame is not yaw.
        let rolled = [[40.0, 30.0], [40.0, 70.0], [20.0, 50.0], [0.0; 2], [0.0; 2]];
        assert!(yaw(&rolled).abs() < 1e-6);
    }
}
