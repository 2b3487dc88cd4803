//! Face crops for the embedders: facenet-pytorch's `extract_face` (box, truncated to ints,
//! Pillow's antialiased bilinear resize, bit-exact) and a 5-landmark similarity alignment.

use crate::image::RgbImage;
use crate::mtcnn::Detection;

/// facenet-pytorch's crop with margin 0: `[int(max(x1,0)), int(max(y1,0)), int(min(x2,W)),
/// int(min(y2,H))]`, resized to `size`×`size` with Pillow's BILINEAR filter. Returns HWC RGB u8.
pub fn box_crop(image: &RgbImage, det: &Detection, size: u32) -> RgbImage {
    let _ = (image, det, size);
    todo!("crop::box_crop")
}

// ---- Crops for the face-api embedder (appended by the embedder branch). ----

/// Where the 5 MTCNN landmarks (image-left eye centre, image-right eye centre, nose tip,
/// image-left mouth corner, image-right mouth corner) go in a `size`×`size` face chip, the way
/// dlib's `get_face_chip_details(shape, size, padding)` places a face: dlib's mean face shape
/// (landmarks 17–67 of the iBUG 68-point scheme, in a unit square; the
/// `mean_face_shape_x/y` tables of dlib's `image_transforms/interpolation.h`) reduced to the 5
/// points (eye = mean of its 6 contour points 36–41 / 42–47, nose tip = 30, mouth corners =
/// 48 and 54), then `(padding + p) / (2·padding + 1) · size`. dlib's face recognition model was
/// trained on chips made with size 150 and padding 0.25.
pub fn dlib_template(size: u32, padding: f32) -> [[f32; 2]; 5] {
    // (x, y) of 68-point landmarks 36–47 (eye contours), 30 (nose tip), 48 and 54 (mouth
    // corners) in dlib's mean face.
    const LEFT_EYE: [[f32; 2]; 6] = [
        [0.121737, 0.216423],
        [0.187122, 0.178758],
        [0.265825, 0.179852],
        [0.334606, 0.231733],
        [0.260918, 0.245099],
        [0.182743, 0.244077],
    ];
    const RIGHT_EYE: [[f32; 2]; 6] = [
        [0.645647, 0.231733],
        [0.714428, 0.179852],
        [0.793132, 0.178758],
        [0.858516, 0.216423],
        [0.79751, 0.244077],
        [0.719335, 0.245099],
    ];
    const NOSE_TIP: [f32; 2] = [0.490127, 0.515625];
    const MOUTH_LEFT: [f32; 2] = [0.254149, 0.780233];
    const MOUTH_RIGHT: [f32; 2] = [0.726104, 0.780233];

    let centre = |pts: &[[f32; 2]; 6]| {
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
        [sx / 6.0, sy / 6.0]
    };
    let unit = [
        centre(&LEFT_EYE),
        centre(&RIGHT_EYE),
        NOSE_TIP,
        MOUTH_LEFT,
        MOUTH_RIGHT,
    ];
    let s = size as f32;
    unit.map(|[x, y]| {
        [
            (padding + x) / (2.0 * padding + 1.0) * s,
            (padding + y) / (2.0 * padding + 1.0) * s,
        ]
    })
}

/// A 2-D similarity transform `p ↦ [[a, −b], [b, a]]·p + t` (rotation, uniform scale,
/// translation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// The least-squares similarity taking `from[i]` to `to[i]` (Umeyama 1991, which in 2-D
    /// without reflection has this closed form).
    pub fn estimate(from: &[[f32; 2]], to: &[[f32; 2]]) -> Similarity {
        assert_eq!(from.len(), to.len(), "point sets differ in length");
        let n = from.len() as f64;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |(sx, sy), p| {
                (sx + p[0] as f64, sy + p[1] as f64)
            });
            (sx / n, sy / n)
        };
        let ((fx, fy), (tx, ty)) = (mean(from), mean(to));
        let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
        for (f, t) in from.iter().zip(to) {
            let (x, y) = (f[0] as f64 - fx, f[1] as f64 - fy);
            let (u, v) = (t[0] as f64 - tx, t[1] as f64 - ty);
            dot += x * u + y * v;
            cross += x * v - y * u;
            var += x * x + y * y;
        }
        if var == 0.0 {
            // All source points coincide: only the translation is defined.
            return Similarity {
                a: 1.0,
                b: 0.0,
                tx: tx - fx,
                ty: ty - fy,
            };
        }
        let (a, b) = (dot / var, cross / var);
        Similarity {
            a,
            b,
            tx: tx - (a * fx - b * fy),
            ty: ty - (b * fx + a * fy),
        }
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        )
    }

    /// The scale factor: how many units of the target one unit of the source becomes.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }
}

/// dlib-style aligned face chip: the similarity that best takes [`dlib_template`] (size,
/// padding) to the detection's 5 landmarks, sampled bilinearly (supersampled when the face is
/// larger than the chip). Outside the image is black, as in dlib's `extract_image_chip`.
pub fn aligned_crop(image: &RgbImage, det: &Detection, size: u32, padding: f32) -> RgbImage {
    let chip_to_image = Similarity::estimate(&dlib_template(size, padding), &det.landmarks);
    // Landmarks and template are pixel-centre coordinates (pixel i spans [i − ½, i + ½]);
    // `warp` works with pixel i spanning [i, i + 1].
    let full = SourceRect {
        x0: 0.0,
        y0: 0.0,
        x1: image.width as f64,
        y1: image.height as f64,
    };
    warp(image, size, full, chip_to_image.scale(), |u, v| {
        let (x, y) = chip_to_image.apply(u - 0.5, v - 0.5);
        (x + 0.5, y + 0.5)
    })
}

/// What face-api.js feeds its recogniser: the detection box (clipped to the image) drawn into a
/// square canvas the way `imageToSquare(box, size, centerImage = true)` does — scaled so its
/// longer side fills the square, centred, the rest black.
pub fn square_box_crop(image: &RgbImage, det: &Detection, size: u32) -> RgbImage {
    let [x1, y1, x2, y2] = det.bbox.map(f64::from);
    let rect = SourceRect {
        x0: x1.max(0.0),
        y0: y1.max(0.0),
        x1: x2.min(image.width as f64),
        y1: y2.min(image.height as f64),
    };
    let (w, h) = (rect.x1 - rect.x0, rect.y1 - rect.y0);
    if w <= 0.0 || h <= 0.0 {
        return RgbImage {
            width: size,
            height: size,
            data: vec![0; (size * size * 3) as usize],
        };
    }
    let per_pixel = w.max(h) / size as f64; // source pixels per output pixel
                                            // Centre the shorter side: the square's origin in source coordinates.
    let (ox, oy) = (
        rect.x0 - (w.max(h) - w) / 2.0,
        rect.y0 - (w.max(h) - h) / 2.0,
    );
    warp(image, size, rect, per_pixel, |u, v| {
        (ox + u * per_pixel, oy + v * per_pixel)
    })
}

/// The part of the source image a crop may read; samples outside it are black.
#[derive(Clone, Copy, Debug)]
struct SourceRect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

/// Resample a `size`×`size` RGB image: output point (u, v) (continuous, pixel (i, j) spans
/// [i, i+1]×[j, j+1]) reads source point `map(u, v)` bilinearly. When one output pixel covers
/// `per_pixel` > 1 source pixels, k×k samples (k = ⌈per_pixel⌉) are averaged so that large
/// faces are not aliased.
fn warp(
    image: &RgbImage,
    size: u32,
    rect: SourceRect,
    per_pixel: f64,
    map: impl Fn(f64, f64) -> (f64, f64),
) -> RgbImage {
    let size = size as usize;
    let k = per_pixel.ceil().clamp(1.0, 16.0) as usize;
    let mut data = vec![0u8; size * size * 3];
    for v in 0..size {
        for u in 0..size {
            let mut acc = [0.0f64; 3];
            for sj in 0..k {
                for si in 0..k {
                    let (x, y) = map(
                        u as f64 + (si as f64 + 0.5) / k as f64,
                        v as f64 + (sj as f64 + 0.5) / k as f64,
                    );
                    let px = sample_bilinear(image, rect, x, y);
                    for c in 0..3 {
                        acc[c] += px[c];
                    }
                }
            }
            let out = &mut data[(v * size + u) * 3..(v * size + u) * 3 + 3];
            for c in 0..3 {
                out[c] = (acc[c] / (k * k) as f64).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage {
        width: size as u32,
        height: size as u32,
        data,
    }
}

/// Bilinear sample at continuous point (x, y); black outside `rect`, edge pixels of `rect`
/// repeated for the half pixel next to its border.
fn sample_bilinear(image: &RgbImage, rect: SourceRect, x: f64, y: f64) -> [f64; 3] {
    if !(x >= rect.x0 && x < rect.x1 && y >= rect.y0 && y < rect.y1) {
        return [0.0; 3];
    }
    let (lo_x, hi_x) = (rect.x0.floor() as i64, rect.x1.ceil() as i64 - 1);
    let (lo_y, hi_y) = (rect.y0.floor() as i64, rect.y1.ceil() as i64 - 1);
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (ix, iy) = (fx.floor(), fy.floor());
    let (dx, dy) = (fx - ix, fy - iy);
    let (ix, iy) = (ix as i64, iy as i64);
    let w = image.width as usize;
    let at = |xi: i64, yi: i64| {
        let (xi, yi) = (xi.clamp(lo_x, hi_x) as usize, yi.clamp(lo_y, hi_y) as usize);
        let o = (yi * w + xi) * 3;
        [
            image.data[o] as f64,
            image.data[o + 1] as f64,
            image.data[o + 2] as f64,
        ]
    };
    let (p00, p10, p01, p11) = (
        at(ix, iy),
        at(ix + 1, iy),
        at(ix, iy + 1),
        at(ix + 1, iy + 1),
    );
    let mut out = [0.0; 3];
    for c in 0..3 {
        let top = p00[c] + (p10[c] - p00[c]) * dx;
        let bottom = p01[c] + (p11[c] - p01[c]) * dx;
        out[c] = top + (bottom - top) * dy;
    }
    out
}

#[cfg(test)]
mod aligned_tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let truth = Similarity {
            a: 1.5 * 0.3f64.cos(),
            b: 1.5 * 0.3f64.sin(),
            tx: 12.0,
            ty: -7.0,
        };
        let from = [
            [10.0, 20.0],
            [40.0, 22.0],
            [25.0, 40.0],
            [12.0, 55.0],
            [38.0, 56.0],
        ];
        let to: Vec<[f32; 2]> = from
            .iter()
            .map(|p| {
                let (x, y) = truth.apply(p[0] as f64, p[1] as f64);
                [x as f32, y as f32]
            })
            .collect();
        let est = Similarity::estimate(&from, &to);
        for (e, t) in [
            (est.a, truth.a),
            (est.b, truth.b),
            (est.tx, truth.tx),
            (est.ty, truth.ty),
        ] {
            assert!((e - t).abs() < 1e-4, "{est:?} vs {truth:?}");
        }
    }

    #[test]
    fn template_is_a_plausible_face() {
        let t = dlib_template(150, 0.25);
        // Eyes level and mirror images about the vertical midline, nose between eyes and mouth.
        assert!((t[0][1] - t[1][1]).abs() < 0.5);
        assert!(((t[0][0] + t[1][0]) / 2.0 - 75.0).abs() < 1.0);
        assert!(t[2][1] > t[0][1] && t[2][1] < t[3][1]);
        assert!(t.iter().flatten().all(|&c| c > 0.0 && c < 150.0));
    }

    #[test]
    fn aligned_crop_of_template_landmarks_is_identity() {
        // An image whose landmarks already sit on the template: the chip is the image itself.
        let (w, h) = (150u32, 150u32);
        let data = (0..w * h * 3).map(|i| ((i / 3) % 251) as u8).collect();
        let image = RgbImage {
            width: w,
            height: h,
            data,
        };
        let det = Detection {
            bbox: [0.0, 0.0, 150.0, 150.0],
            probability: 1.0,
            landmarks: dlib_template(150, 0.25),
        };
        let chip = aligned_crop(&image, &det, 150, 0.25);
        assert_eq!(chip, image);
    }
}
