//! The image pyramid and torch's `interpolate(mode='area')`, which feeds every net: P-Net gets
//! the whole image at each scale, R-Net and O-Net get box crops resized to 24 and 48.

use crate::image::RgbImage;

/// facenet-pytorch's scales: `m = 12/min_face_size`, then a cumulative product by `factor`
/// while `min(H,W)·m` (also multiplied each step) stays ≥ 12. Python floats, so f64.
pub fn scales(width: u32, height: u32, min_face_size: f32, factor: f64) -> Vec<f64> {
    let m = 12.0 / min_face_size as f64;
    let mut minl = width.min(height) as f64 * m;
    let mut s = m;
    let mut out = Vec::new();
    while minl >= 12.0 {
        out.push(s);
        s *= factor;
        minl *= factor;
    }
    out
}

/// The P-Net input size at `scale`: `(int(H·s + 1), int(W·s + 1))`.
pub fn level_size(width: u32, height: u32, scale: f64) -> (usize, usize) {
    (
        (height as f64 * scale + 1.0) as usize,
        (width as f64 * scale + 1.0) as usize,
    )
}

/// A rectangle of the image, in pixels: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

/// `interpolate(mode='area')` (= adaptive average pooling) of `rect` of `image` to `oh`×`ow`,
/// normalised for the nets with `(x − 127.5)·0.0078125`, written as planar CHW into `out`
/// (`3·oh·ow` values).
///
/// Output row i averages input rows `[⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉)`, columns likewise. Window sums
/// are integers, so they are computed exactly in integers; torch then divides in f32 by the
/// row count and then by the column count (two roundings, which matter for the last bit).
pub fn area_resize_normalized(image: &RgbImage, rect: Rect, oh: usize, ow: usize, out: &mut [f32]) {
    let (h, w) = (rect.y1 - rect.y0, rect.x1 - rect.x0);
    assert!(h > 0 && w > 0 && oh > 0 && ow > 0, "empty area resize");
    assert_eq!(out.len(), 3 * oh * ow, "area resize output size");
    let stride = image.width as usize * 3;
    let cols: Vec<(usize, usize)> = (0..ow).map(|j| window(j, w, ow)).collect();
    let col_len: Vec<f32> = cols.iter().map(|&(c0, c1)| (c1 - c0) as f32).collect();
    let mut sums = vec![0u32; ow];
    // Column sums of the current row window, interleaved RGB like the image, and their running
    // sums along the row (wrapping: a difference of two is exact whenever the window sum
    // itself fits in u32).
    let mut colsum = vec![0u32; w * 3];
    let mut prefix = vec![0u32; (w + 1) * 3];
    let plane = oh * ow;
    for i in 0..oh {
        let (r0, r1) = window(i, h, oh);
        let row = |r: usize| &image.data[(rect.y0 + r) * stride + rect.x0 * 3..][..w * 3];
        for (s, &v) in colsum.iter_mut().zip(row(r0)) {
            *s = v as u32;
        }
        for r in r0 + 1..r1 {
            for (s, &v) in colsum.iter_mut().zip(row(r)) {
                *s += v as u32;
            }
        }
        // Running sums kept in registers: a chain through `prefix` itself would wait on a
        // store and a load for every element.
        let mut run = [0u32; 3];
        for (p, s) in prefix[3..].chunks_exact_mut(3).zip(colsum.chunks_exact(3)) {
            for c in 0..3 {
                run[c] = run[c].wrapping_add(s[c]);
                p[c] = run[c];
            }
        }
        let kh = (r1 - r0) as f32;
        for c in 0..3 {
            // Gather the window sums, then convert a whole output row in one loop that the
            // compiler vectorises (the two divisions dominated when done pixel by pixel).
            for (s, &(c0, c1)) in sums.iter_mut().zip(&cols) {
                *s = prefix[c1 * 3 + c].wrapping_sub(prefix[c0 * 3 + c]);
            }
            let orow = &mut out[c * plane + i * ow..][..ow];
            for ((o, &s), &kw) in orow.iter_mut().zip(&sums).zip(&col_len) {
                *o = (s as f32 / kh / kw - 127.5) * 0.0078125;
            }
        }
    }
}

/// Adaptive pooling window of output index `i` when `len` inputs become `out` outputs.
fn window(i: usize, len: usize, out: usize) -> (usize, usize) {
    ((i * len) / out, ((i + 1) * len).div_ceil(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_a_cumulative_product() {
        // The astronaut fixture (512×512): 10 scales, as in mtcnn_golden.json.
        let s = scales(512, 512, 20.0, 0.709);
        assert_eq!(s.len(), 10);
        assert_eq!(s[1], 0.6 * 0.709);
        assert_eq!(s[9], 0.027162351627517383);
        assert_eq!(level_size(512, 512, s[0]), (308, 308));
        assert!(scales(8, 8, 20.0, 0.709).is_empty());
    }

    #[test]
    fn area_resize_averages_windows() {
        // 3×2 image, one channel pattern repeated on RGB → 2×1.
        let px = [0u8, 10, 20, 30, 40, 50];
        let data: Vec<u8> = px.iter().flat_map(|&v| [v, v, v]).collect();
        let img = RgbImage {
            width: 2,
            height: 3,
            data,
        };
        let mut out = vec![0.0; 3 * 2];
        area_resize_normalized(
            &img,
            Rect {
                x0: 0,
                y0: 0,
                x1: 2,
                y1: 3,
            },
            2,
            1,
            &mut out,
        );
        // rows [0,2) → mean(0,10,20,30) = 15; rows [1,3) → mean(20,30,40,50) = 35
        assert_eq!(out[0], (15.0 - 127.5) * 0.0078125);
        assert_eq!(out[1], (35.0 - 127.5) * 0.0078125);
    }
}
