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
