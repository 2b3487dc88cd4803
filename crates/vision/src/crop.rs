//! Face crops for the embedders: facenet-pytorch's `extract_face` (box, truncated to ints,
//! Pillow's antialiased bilinear resize, bit-exact) and a 5-landmark similarity alignment.

use crate::image::RgbImage;
use crate::mtcnn::Detection;
use crate::tensor::Tensor;

/// facenet-pytorch's crop with margin 0: `[int(max(x1,0)), int(max(y1,0)), int(min(x2,W)),
/// int(min(y2,H))]`, resized to `size`×`size` with Pillow's BILINEAR filter. Returns HWC RGB u8,
/// or `None` when nothing of the box lies inside the image (zero width or height after
/// clipping: Pillow would fail on the empty crop).
pub fn box_crop(image: &RgbImage, det: &Detection, size: u32) -> Option<RgbImage> {
    let [x0, y0, x1, y1] = box_int(det.bbox, image.width, image.height)?;
    let (cw, ch) = (x1 - x0, y1 - y0);
    let stride = image.width as usize * 3;
    let mut data = Vec::with_capacity(cw * ch * 3);
    for row in image.data.chunks_exact(stride).skip(y0).take(ch) {
        data.extend_from_slice(&row[x0 * 3..x1 * 3]);
    }
    let region = RgbImage {
        width: cw as u32,
        height: ch as u32,
        data,
    };
    Some(pil_bilinear_resize(&region, size, size))
}

/// The integer box of `extract_face`: `int()` truncates, and after the clamps every value is
/// ≥ 0 (or, for the far edges, may be negative, which makes the box empty).
pub fn box_int(b: [f32; 4], width: u32, height: u32) -> Option<[usize; 4]> {
    let x0 = b[0].max(0.0) as i64;
    let y0 = b[1].max(0.0) as i64;
    let x1 = b[2].min(width as f32) as i64;
    let y1 = b[3].min(height as f32) as i64;
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    Some([x0 as usize, y0 as usize, x1 as usize, y1 as usize])
}

/// facenet-pytorch's `fixed_image_standardization` of a crop: [1, 3, H, W], `(x − 127.5)/128`.
pub fn standardize_facenet(crop: &RgbImage) -> Tensor {
    let plane = crop.width as usize * crop.height as usize;
    let mut data = vec![0.0f32; 3 * plane];
    for (i, px) in crop.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (px[c] as f32 - 127.5) / 128.0;
        }
    }
    Tensor::new(vec![1, 3, crop.height as usize, crop.width as usize], data)
}

/// Pillow's `PRECISION_BITS` (32 − 8 − 2): fixed-point fraction bits of the 8-bit resampler.
const PRECISION_BITS: u32 = 22;

/// Pillow 10's `Image.resize(…, BILINEAR)` for 8-bit RGB, bit-exact: a separable triangle
/// filter widened by the scale factor when shrinking (antialiasing), horizontal pass then
/// vertical, each pass in fixed point and clamped to u8.
pub fn pil_bilinear_resize(image: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    let (w, h) = (image.width as usize, image.height as usize);
    let (ow, oh) = (out_w as usize, out_h as usize);
    let mut cur = image.clone();
    if ow != w {
        let coeffs = Coeffs::new(w, ow);
        let mut out = vec![0u8; h * ow * 3];
        for (src, dst) in cur
            .data
            .chunks_exact(w * 3)
            .zip(out.chunks_exact_mut(ow * 3))
        {
            for (xx, px) in dst.chunks_exact_mut(3).enumerate() {
                let (xmin, k) = coeffs.get(xx);
                let mut acc = [1i64 << (PRECISION_BITS - 1); 3];
                for (x, &kv) in k.iter().enumerate() {
                    let s = &src[(xmin + x) * 3..(xmin + x) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += s[c] as i64 * kv;
                    }
                }
                for c in 0..3 {
                    px[c] = clip8(acc[c]);
                }
            }
        }
        cur = RgbImage {
            width: out_w,
            height: h as u32,
            data: out,
        };
    }
    if oh != h {
        let row = cur.width as usize * 3;
        let coeffs = Coeffs::new(h, oh);
        let mut out = vec![0u8; oh * row];
        for (yy, dst) in out.chunks_exact_mut(row).enumerate() {
            let (ymin, k) = coeffs.get(yy);
            for (i, d) in dst.iter_mut().enumerate() {
                let mut acc = 1i64 << (PRECISION_BITS - 1);
                for (y, &kv) in k.iter().enumerate() {
                    acc += cur.data[(ymin + y) * row + i] as i64 * kv;
                }
                *d = clip8(acc);
            }
        }
        cur = RgbImage {
            width: cur.width,
            height: out_h,
            data: out,
        };
    }
    cur
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter.
struct Coeffs {
    /// (first input index, number of taps) per output index.
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    /// Fixed-point weights, `ksize` per output index.
    k: Vec<i64>,
}

impl Coeffs {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the bilinear filter's support is 1
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut k = vec![0i64; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) cast truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
            let mut ww = 0.0;
            for (x, wx) in w.iter_mut().enumerate().take(xmax) {
                let t = ((x + xmin) as f64 - center + 0.5) * ss;
                *wx = (1.0 - t.abs()).max(0.0);
                ww += *wx;
            }
            for x in 0..xmax {
                let v = if ww != 0.0 { w[x] / ww } else { w[x] };
                let fixed = v * (1u64 << PRECISION_BITS) as f64;
                k[xx * ksize + x] = if v < 0.0 {
                    (-0.5 + fixed) as i64
                } else {
                    (0.5 + fixed) as i64
                };
            }
            bounds.push((xmin, xmax));
        }
        Coeffs { bounds, ksize, k }
    }

    fn get(&self, i: usize) -> (usize, &[i64]) {
        let (xmin, n) = self.bounds[i];
        (xmin, &self.k[i * self.ksize..i * self.ksize + n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4]) -> Detection {
        Detection {
            bbox,
            probability: 1.0,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn box_int_truncates_and_clips() {
        assert_eq!(
            box_int([-3.7, 2.9, 50.99, 700.0], 100, 80),
            Some([0, 2, 50, 80])
        );
        assert_eq!(box_int([120.0, 2.0, 150.0, 10.0], 100, 80), None);
        assert_eq!(box_int([10.2, 2.0, 10.9, 10.0], 100, 80), None);
    }

    #[test]
    fn degenerate_box_gives_no_crop() {
        let img = RgbImage {
            width: 4,
            height: 4,
            data: vec![7; 48],
        };
        assert!(box_crop(&img, &det([-10.0, -10.0, -2.0, -2.0]), 160).is_none());
        let c = box_crop(&img, &det([0.0, 0.0, 4.0, 4.0]), 8).expect("crop");
        assert_eq!((c.width, c.height), (8, 8));
        assert!(c.data.iter().all(|&v| v == 7));
    }

    #[test]
    fn resize_to_same_size_is_identity_and_uniform_stays_uniform() {
        let data: Vec<u8> = (0..5 * 3 * 3).map(|v| (v * 5) as u8).collect();
        let img = RgbImage {
            width: 5,
            height: 3,
            data,
        };
        assert_eq!(pil_bilinear_resize(&img, 5, 3), img);
        let flat = RgbImage {
            width: 37,
            height: 23,
            data: vec![200; 37 * 23 * 3],
        };
        let r = pil_bilinear_resize(&flat, 160, 160);
        assert!(r.data.iter().all(|&v| v == 200));
    }
}

// ---- Crops for the face-api embedder. ----

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

/// The image mirrored left to right (a face seen in a mirror: same person, other side lit).
pub fn mirror(image: &RgbImage) -> RgbImage {
    let row = image.width as usize * 3;
    let mut data = Vec::with_capacity(image.data.len());
    for line in image.data.chunks_exact(row) {
        data.extend(line.chunks_exact(3).rev().flatten());
    }
    RgbImage {
        width: image.width,
        height: image.height,
        data,
    }
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
    aligned_crop_to(image, &det.landmarks, &dlib_template(size, padding), size)
}

/// The `size`×`size` chip in which `landmarks` land as close as a similarity allows on
/// `template` (chip pixel-centre coordinates).
pub fn aligned_crop_to(
    image: &RgbImage,
    landmarks: &[[f32; 2]; 5],
    template: &[[f32; 2]; 5],
    size: u32,
) -> RgbImage {
    let chip_to_image = Similarity::estimate(template, landmarks);
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
    fn mirror_reverses_each_row_and_twice_is_identity() {
        let image = RgbImage {
            width: 3,
            height: 2,
            data: (0..18).collect(),
        };
        let m = mirror(&image);
        assert_eq!(
            m.data,
            vec![6, 7, 8, 3, 4, 5, 0, 1, 2, 15, 16, 17, 12, 13, 14, 9, 10, 11]
        );
        assert_eq!(mirror(&m), image);
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
