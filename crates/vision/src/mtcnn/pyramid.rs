//! The image pyramid and torch's `interpolate(mode='area')`, which feeds every net: P-Net gets
//! the whole image at each scale, R-Net and O-Net get box crops resized to 24 and 48.
//!
//! One detection makes a dozen pyramid levels and up to a few hundred crops of the same image,
//! so [`AreaResizer`] sums the image once (a summed-area table) and every window sum after that
//! is four lookups. Very large images, whose table would cost more memory than it saves time,
//! are resized directly from their pixels ([`area_resize_normalized`]); both give the same bits.

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
            for (s, &(c0, c1)) in sums.iter_mut().zip(&cols) {
                *s = prefix[c1 * 3 + c].wrapping_sub(prefix[c0 * 3 + c]);
            }
            normalize_row(&sums, kh, &col_len, &mut out[c * plane + i * ow..][..ow]);
        }
    }
}

/// One output row from its window sums: torch's area mean (in f32, divided by the row count,
/// then by the column count: two roundings, which matter for the last bit), then the nets'
/// `(x − 127.5)·0.0078125`. One loop over the row, which the compiler vectorises (the two
/// divisions dominated when done pixel by pixel). Both resize paths end here, so they agree
/// bit for bit.
fn normalize_row(sums: &[u32], kh: f32, col_len: &[f32], out: &mut [f32]) {
    for ((o, &s), &kw) in out.iter_mut().zip(sums).zip(col_len) {
        *o = (s as f32 / kh / kw - 127.5) * 0.0078125;
    }
}

/// Largest image (in pixels) given a summed-area table: 12 bytes per pixel, 48 MB at this size.
/// Above it (photos straight off a phone) the resizes read the pixels directly.
const SUMMED_AREA_MAX_PIXELS: usize = 4_000_000;

/// The area resizes of one image, from a summed-area table when the image is small enough.
pub enum AreaResizer<'a> {
    Summed(SummedArea),
    Direct(&'a RgbImage),
}

impl<'a> AreaResizer<'a> {
    pub fn new(image: &'a RgbImage) -> Self {
        if (image.width as usize) * (image.height as usize) <= SUMMED_AREA_MAX_PIXELS {
            AreaResizer::Summed(SummedArea::new(image))
        } else {
            AreaResizer::Direct(image)
        }
    }

    pub fn width(&self) -> u32 {
        match self {
            AreaResizer::Summed(t) => t.width as u32,
            AreaResizer::Direct(image) => image.width,
        }
    }

    pub fn height(&self) -> u32 {
        match self {
            AreaResizer::Summed(t) => t.height as u32,
            AreaResizer::Direct(image) => image.height,
        }
    }

    /// [`area_resize_normalized`] of `rect`, whichever way this resizer holds the image.
    pub fn resize_normalized(&self, rect: Rect, oh: usize, ow: usize, out: &mut [f32]) {
        match self {
            AreaResizer::Summed(t) => t.resize_normalized(rect, oh, ow, out),
            AreaResizer::Direct(image) => area_resize_normalized(image, rect, oh, ow, out),
        }
    }
}

/// Summed-area table of an RGB image: entry `(y·(W+1) + x)·3 + c` is the sum of channel `c`
/// over rows `< y` and columns `< x`. Entries wrap (u32); a window's sum, a difference of four,
/// is still exact whenever the true sum fits in u32 (255 × 4 M pixels does).
pub struct SummedArea {
    width: usize,
    height: usize,
    sums: Vec<u32>,
}

impl SummedArea {
    pub fn new(image: &RgbImage) -> Self {
        let (width, height) = (image.width as usize, image.height as usize);
        let stride = (width + 1) * 3;
        let mut sums = vec![0u32; (height + 1) * stride];
        // `max(1)`: an image without columns has no rows of pixels to sum (and chunks of zero
        // would panic); its table is all zeros.
        for (y, px_row) in image.data.chunks_exact((width * 3).max(1)).enumerate() {
            let (above, rest) = sums.split_at_mut((y + 1) * stride);
            let (above, row) = (&above[y * stride..], &mut rest[..stride]);
            // Running sums along the row in registers (three short dependency chains), then the
            // row above added in a second, vectorised pass.
            let mut run = [0u32; 3];
            for (s, p) in row[3..].chunks_exact_mut(3).zip(px_row.chunks_exact(3)) {
                for c in 0..3 {
                    run[c] = run[c].wrapping_add(p[c] as u32);
                    s[c] = run[c];
                }
            }
            for (s, &a) in row.iter_mut().zip(above) {
                *s = s.wrapping_add(a);
            }
        }
        SummedArea {
            width,
            height,
            sums,
        }
    }

    /// Same contract and the same arithmetic as [`area_resize_normalized`]: the window sums are
    /// the same integers, divided the same way.
    pub fn resize_normalized(&self, rect: Rect, oh: usize, ow: usize, out: &mut [f32]) {
        let (h, w) = (rect.y1 - rect.y0, rect.x1 - rect.x0);
        assert!(h > 0 && w > 0 && oh > 0 && ow > 0, "empty area resize");
        assert!(
            rect.x1 <= self.width && rect.y1 <= self.height,
            "area resize outside the image"
        );
        assert_eq!(out.len(), 3 * oh * ow, "area resize output size");
        let stride = (self.width + 1) * 3;
        // Per output column: offsets of its window's left and right table columns.
        let cols: Vec<(usize, usize)> = (0..ow)
            .map(|j| window(j, w, ow))
            .map(|(c0, c1)| ((rect.x0 + c0) * 3, (rect.x0 + c1) * 3))
            .collect();
        let col_len: Vec<f32> = cols.iter().map(|&(a, b)| ((b - a) / 3) as f32).collect();
        let mut sums = vec![0u32; ow];
        let plane = oh * ow;
        for i in 0..oh {
            let (r0, r1) = window(i, h, oh);
            let top = &self.sums[(rect.y0 + r0) * stride..][..stride];
            let bottom = &self.sums[(rect.y0 + r1) * stride..][..stride];
            let kh = (r1 - r0) as f32;
            for c in 0..3 {
                for (s, &(a, b)) in sums.iter_mut().zip(&cols) {
                    let lower = bottom[b + c].wrapping_sub(bottom[a + c]);
                    *s = lower.wrapping_sub(top[b + c].wrapping_sub(top[a + c]));
                }
                normalize_row(&sums, kh, &col_len, &mut out[c * plane + i * ow..][..ow]);
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

    /// Deterministic pixels with the full 0..=255 range.
    fn noise_image(width: u32, height: u32, seed: u32) -> RgbImage {
        let mut state = seed;
        let data = (0..width * height * 3)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        RgbImage::from_raw(width, height, data).unwrap()
    }

    #[test]
    fn summed_area_resize_equals_the_direct_one_bit_for_bit() {
        let image = noise_image(97, 61, 7);
        let table = SummedArea::new(&image);
        let rects = [
            Rect {
                x0: 0,
                y0: 0,
                x1: 97,
                y1: 61,
            },
            Rect {
                x0: 5,
                y0: 3,
                x1: 40,
                y1: 59,
            },
            Rect {
                x0: 96,
                y0: 60,
                x1: 97,
                y1: 61,
            },
            Rect {
                x0: 10,
                y0: 0,
                x1: 97,
                y1: 7,
            },
        ];
        // Shrinking (pyramid levels), enlarging (small boxes to 24/48), odd ratios.
        for rect in rects {
            for (oh, ow) in [(24, 24), (48, 48), (7, 13), (59, 3), (1, 1), (61, 97)] {
                let mut direct = vec![0.0; 3 * oh * ow];
                let mut summed = vec![1.0; 3 * oh * ow];
                area_resize_normalized(&image, rect, oh, ow, &mut direct);
                table.resize_normalized(rect, oh, ow, &mut summed);
                let same = direct
                    .iter()
                    .zip(&summed)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{rect:?} → {oh}×{ow}");
            }
        }
    }

    #[test]
    fn empty_images_get_an_empty_table() {
        for (w, h) in [(0, 5), (5, 0), (0, 0)] {
            let image = RgbImage::from_raw(w, h, Vec::new()).unwrap();
            let resizer = AreaResizer::new(&image);
            assert_eq!((resizer.width(), resizer.height()), (w, h));
        }
    }

    #[test]
    fn large_images_are_resized_directly() {
        let small = noise_image(64, 48, 1);
        assert!(matches!(AreaResizer::new(&small), AreaResizer::Summed(_)));
        let side = (SUMMED_AREA_MAX_PIXELS as f64).sqrt() as u32 + 1;
        let large = RgbImage::from_raw(side, side, vec![0; (side * side * 3) as usize]).unwrap();
        let resizer = AreaResizer::new(&large);
        assert!(matches!(resizer, AreaResizer::Direct(_)));
        assert_eq!((resizer.width(), resizer.height()), (side, side));
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
