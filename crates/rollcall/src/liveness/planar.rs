//! Is the motion of a face that of a flat picture? A photo or a screen moved or tilted in front
//! of a camera maps every point of it by one homography. Fit that homography to the four
//! roughly coplanar landmarks (the eyes and the mouth corners) between two frames and see where
//! it sends the nose: on a picture the nose lands where predicted (up to landmark noise); on a
//! turning head, whose nose stands in front of that plane, it does not (parallax).

use super::pose::{eye_distance, LEFT_EYE, MOUTH_LEFT, MOUTH_RIGHT, NOSE, RIGHT_EYE};

/// A 3×3 homography, row-major, `h[8] = 1`.
pub type Homography = [f64; 9];

/// The homography sending each `from[i]` to `to[i]` (direct linear transform on four point
/// pairs: eight equations, eight unknowns). `None` when three of the points are collinear.
pub fn homography(from: &[[f32; 2]; 4], to: &[[f32; 2]; 4]) -> Option<Homography> {
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (f64::from(from[i][0]), f64::from(from[i][1]));
        let (u, v) = (f64::from(to[i][0]), f64::from(to[i][1]));
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    let h = solve8(a)?;
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

/// Gaussian elimination with partial pivoting on an 8×8 system (the last column is the right
/// side). `None` when the matrix is singular for practical purposes.
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    // Pivots are relative to the largest entry, so pixel coordinates and unit ones alike work.
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return None;
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 * scale {
            return None;
        }
        a.swap(col, pivot);
        for row in col + 1..8 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (v, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *v -= f * p;
            }
        }
    }
    let mut x = [0.0f64; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (a[row][8] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Where `h` sends `p` (`None` at the line sent to infinity).
pub fn apply(h: &Homography, p: [f32; 2]) -> Option<[f32; 2]> {
    let (x, y) = (f64::from(p[0]), f64::from(p[1]));
    let w = h[6] * x + h[7] * y + h[8];
    if w.abs() < 1e-12 {
        return None;
    }
    let u = (h[0] * x + h[1] * y + h[2]) / w;
    let v = (h[3] * x + h[4] * y + h[5]) / w;
    Some([u as f32, v as f32])
}

fn plane(points: &[[f32; 2]; 5]) -> [[f32; 2]; 4] {
    [
        points[LEFT_EYE],
        points[RIGHT_EYE],
        points[MOUTH_RIGHT],
        points[MOUTH_LEFT],
    ]
}

/// How far the nose of `later` is from where the homography of the eyes and mouth corners
/// (from `first` to `later`) puts the nose of `first`, over `later`'s eye distance. ~0 for a
/// picture; grows with a real head's turn. `None` when the landmarks are degenerate.
pub fn nose_parallax(first: &[[f32; 2]; 5], later: &[[f32; 2]; 5]) -> Option<f32> {
    let h = homography(&plane(first), &plane(later))?;
    let predicted = apply(&h, first[NOSE])?;
    let eyes = eye_distance(later);
    if eyes <= f32::EPSILON {
        return None;
    }
    let nose = later[NOSE];
    let off = ((nose[0] - predicted[0]).powi(2) + (nose[1] - predicted[1]).powi(2)).sqrt();
    Some(off / eyes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator (the tests need many random homographies, reproducibly).
    pub struct Lcg(pub u64);
    impl Lcg {
        /// Uniform in [-1, 1).
        pub fn uniform(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    pub const FACE: [[f32; 2]; 5] = [
        [100.0, 100.0],
        [160.0, 100.0],
        [130.0, 135.0],
        [108.0, 165.0],
        [152.0, 165.0],
    ];

    #[test]
    fn the_homography_maps_its_four_points() {
        let from = plane(&FACE);
        let to = [[10.0, 12.0], [80.0, 5.0], [90.0, 70.0], [5.0, 60.0]];
        let h = homography(&from, &to).expect("a homography");
        for (f, t) in from.iter().zip(&to) {
            let p = apply(&h, *f).expect("finite");
            assert!((p[0] - t[0]).abs() < 1e-3 && (p[1] - t[1]).abs() < 1e-3);
        }
        let collinear = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 5.0]];
        assert!(homography(&collinear, &to).is_none());
    }

    /// A random homography near a tilt, shift and scale of a picture.
    pub fn random_homography(rng: &mut Lcg) -> Homography {
        let s = 1.0 + 0.3 * f64::from(rng.uniform());
        let r = 0.3 * f64::from(rng.uniform());
        let (c, sn) = (r.cos() * s, r.sin() * s);
        [
            c + 0.1 * f64::from(rng.uniform()),
            -sn,
            40.0 * f64::from(rng.uniform()),
            sn,
            c + 0.1 * f64::from(rng.uniform()),
            40.0 * f64::from(rng.uniform()),
            0.002 * f64::from(rng.uniform()),
            0.002 * f64::from(rng.uniform()),
            1.0,
        ]
    }

    #[test]
    fn a_picture_under_any_homography_has_no_parallax() {
        let mut rng = Lcg(7);
        for _ in 0..500 {
            let h = random_homography(&mut rng);
            let moved = FACE.map(|p| apply(&h, p).expect("finite"));
            let parallax = nose_parallax(&FACE, &moved).expect("not degenerate");
            assert!(parallax < 1e-3, "{parallax}");
        }
    }
}
