//! How usable a detected face is as a reference, measured on the decoded image: its size, its
//! sharpness, its light and how far it is turned. Pure measures; which values are too poor is
//! the caller's rule (rollcall's registration, with cuts measured on LFW in docs/accuracy.md).

use crate::image::RgbImage;
use crate::mtcnn::Detection;

/// Side of the square the face box is resampled to before its sharpness is measured, so that
/// the measure compares faces of any size on the same grid.
const SHARPNESS_GRID: usize = 64;

/// The measures of one face.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FaceMeasures {
    /// The shorter side of the box clipped to the image, in pixels.
    pub side: f32,
    /// Variance of the Laplacian of the face's luma on a [`SHARPNESS_GRID`]² grid, divided by
    /// the luma's own variance: high for a sharp face, near 0 for a blurred one, and the same
    /// for a face and a darker copy of it (the light is [`FaceMeasures::brightness`]'s job).
    pub sharpness: f32,
    /// Mean luma (BT.601, 0–255) inside the box.
    pub brightness: f32,
    /// How far the face is turned left or right: the nose's offset from the eyes' midpoint
    /// along the eye line, over the distance between the eyes (0 facing the camera, about
    /// ±0.5 and beyond in profile).
    pub yaw: f32,
    /// The eye line's angle to the horizontal, in degrees.
    pub roll: f32,
}

/// Measure `face` in `image` (its box is clipped to the image; an empty box measures 0).
pub fn measure(image: &RgbImage, face: &Detection) -> FaceMeasures {
    let [x1, y1, x2, y2] = face.bbox;
    let (w, h) = (image.width as f32, image.height as f32);
    let (x1, y1, x2, y2) = (x1.max(0.0), y1.max(0.0), x2.min(w), y2.min(h));
    let side = (x2 - x1).min(y2 - y1).max(0.0);
    let grid = resample_luma(image, [x1, y1, x2, y2]);
    let (brightness, variance) = mean_and_variance(grid.iter().copied());
    let laplacian = laplacian(&grid);
    let (_, lap_variance) = mean_and_variance(laplacian.into_iter());
    let sharpness = if variance > 1e-3 {
        lap_variance / variance
    } else {
        0.0
    };
    let (yaw, roll) = pose(&face.landmarks);
    FaceMeasures {
        side,
        sharpness,
        brightness,
        yaw,
        roll,
    }
}

/// Yaw and roll from the five landmarks (left eye, right eye, nose, mouth corners).
fn pose(points: &[[f32; 2]; 5]) -> (f32, f32) {
    let [left, right, nose, ..] = *points;
    let (dx, dy) = (right[0] - left[0], right[1] - left[1]);
    let eyes = (dx * dx + dy * dy).sqrt();
    if eyes <= f32::EPSILON {
        return (0.0, 0.0);
    }
    let mid = [(left[0] + right[0]) / 2.0, (left[1] + right[1]) / 2.0];
    // The nose's offset projected on the eye line, so a tilted head is not read as turned.
    let along = ((nose[0] - mid[0]) * dx + (nose[1] - mid[1]) * dy) / eyes;
    (along / eyes, dy.atan2(dx).to_degrees())
}

/// The luma of the box, averaged over each cell of a `SHARPNESS_GRID`² grid.
fn resample_luma(image: &RgbImage, [x1, y1, x2, y2]: [f32; 4]) -> Vec<f32> {
    let n = SHARPNESS_GRID;
    let mut out = vec![0.0f32; n * n];
    if x2 - x1 < 1.0 || y2 - y1 < 1.0 {
        return out;
    }
    let (cw, ch) = ((x2 - x1) / n as f32, (y2 - y1) / n as f32);
    let width = image.width as usize;
    for gy in 0..n {
        let ya = (y1 + gy as f32 * ch) as usize;
        let yb = ((y1 + (gy + 1) as f32 * ch) as usize).max(ya + 1);
        for gx in 0..n {
            let xa = (x1 + gx as f32 * cw) as usize;
            let xb = ((x1 + (gx + 1) as f32 * cw) as usize).max(xa + 1);
            let (mut sum, mut count) = (0.0f32, 0u32);
            for y in ya..yb.min(image.height as usize) {
                for x in xa..xb.min(width) {
                    let p = (y * width + x) * 3;
                    let [r, g, b] = [image.data[p], image.data[p + 1], image.data[p + 2]];
                    sum += 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
                    count += 1;
                }
            }
            out[gy * n + gx] = if count > 0 { sum / count as f32 } else { 0.0 };
        }
    }
    out
}

/// The 4-neighbour Laplacian of the grid's inner cells.
fn laplacian(grid: &[f32]) -> Vec<f32> {
    let n = SHARPNESS_GRID;
    let mut out = Vec::with_capacity((n - 2) * (n - 2));
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            let c = grid[y * n + x];
            out.push(
                grid[(y - 1) * n + x]
                    + grid[(y + 1) * n + x]
                    + grid[y * n + x - 1]
                    + grid[y * n + x + 1]
                    - 4.0 * c,
            );
        }
    }
    out
}

fn mean_and_variance(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (mut n, mut sum, mut sq) = (0.0f64, 0.0f64, 0.0f64);
    for v in values {
        n += 1.0;
        sum += f64::from(v);
        sq += f64::from(v) * f64::from(v);
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = sum / n;
    ((mean) as f32, (sq / n - mean * mean).max(0.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkerboard(size: u32, cell: u32, dark: u8, light: u8) -> RgbImage {
        let mut data = Vec::with_capacity((size * size * 3) as usize);
        for y in 0..size {
            for x in 0..size {
                let v = if (x / cell + y / cell).is_multiple_of(2) {
                    dark
                } else {
                    light
                };
                data.extend([v, v, v]);
            }
        }
        RgbImage {
            width: size,
            height: size,
            data,
        }
    }

    fn face(side: f32, landmarks: [[f32; 2]; 5]) -> Detection {
        Detection {
            bbox: [0.0, 0.0, side, side],
            probability: 0.99,
            landmarks,
        }
    }

    const FRONTAL: [[f32; 2]; 5] = [
        [30.0, 40.0],
        [70.0, 40.0],
        [50.0, 60.0],
        [35.0, 80.0],
        [65.0, 80.0],
    ];

    #[test]
    fn sharp_edges_measure_sharper_than_flat_ones_and_light_does_not_change_it() {
        let sharp = measure(&checkerboard(128, 4, 0, 200), &face(128.0, FRONTAL));
        let coarse = measure(&checkerboard(128, 32, 0, 200), &face(128.0, FRONTAL));
        assert!(
            sharp.sharpness > 4.0 * coarse.sharpness,
            "{sharp:?} {coarse:?}"
        );
        let dim = measure(&checkerboard(128, 4, 0, 50), &face(128.0, FRONTAL));
        assert!((dim.sharpness - sharp.sharpness).abs() < 0.05 * sharp.sharpness);
        assert!((sharp.brightness - 100.0).abs() < 1.0, "{sharp:?}");
        assert!((dim.brightness - 25.0).abs() < 1.0, "{dim:?}");
        assert_eq!(sharp.side, 128.0);
    }

    #[test]
    fn the_nose_off_the_eye_midpoint_is_yaw() {
        let image = checkerboard(100, 4, 0, 200);
        let frontal = measure(&image, &face(100.0, FRONTAL));
        assert!(frontal.yaw.abs() < 1e-6 && frontal.roll.abs() < 1e-6);
        let mut turned = FRONTAL;
        turned[2] = [70.0, 60.0];
        assert!((measure(&image, &face(100.0, turned)).yaw - 0.5).abs() < 1e-6);
        // A tilted head, nose on the eyes' perpendicular: rolled, not turned.
        let tilted = [[30.0, 30.0], [70.0, 70.0], [40.0, 60.0], [0.0; 2], [0.0; 2]];
        let m = measure(&image, &face(100.0, tilted));
        assert!(m.yaw.abs() < 1e-6 && (m.roll - 45.0).abs() < 1e-4, "{m:?}");
    }
}
