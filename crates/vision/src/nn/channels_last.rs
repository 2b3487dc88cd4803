//! Channels-last (NHWC) convolution and max pooling, for R-Net and O-Net: a batch of a few
//! hundred 24×24 or 48×48 crops.
//!
//! In NCHW their planes are tiny (22×22 down to 3×3), so every im2col row, pooling row and
//! output plane is a few dozen floats, and the time went to per-row overhead: copies too short
//! for `memcpy`, a scatter of each GEMM block back into planes, pooling loops of 11 outputs.
//! Channels-last, a pixel's channels are contiguous: an im2col row is `kh` runs of `kw·C`
//! floats, the GEMM writes `[pixels × oc]`, which already is the NHWC output, and pooling
//! takes the maximum of whole channel vectors.

use super::activation::{max_fast, Activation};
use super::gemm::gemm_acc;
use super::threads::threads;
use super::{Conv2d, MaxPool2d};
use crate::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;

/// Output pixels per work unit: enough for an efficient GEMM, few enough that the im2col rows
/// (up to 576 floats for O-Net) stay in L2.
const UNIT_PIXELS: usize = 256;

/// A stride-1, unpadded convolution over NHWC input (all MTCNN needs), weights reordered at load
/// to `[kh·kw·C × oc]` so that the GEMM reads them as stored.
#[derive(Clone, Debug)]
pub struct ConvNhwc {
    /// `weight[((ky·kw + kx)·ic + c)·oc + o]`
    weight: Vec<f32>,
    bias: Vec<f32>,
    ic: usize,
    oc: usize,
    kh: usize,
    kw: usize,
}

impl ConvNhwc {
    /// The same convolution as `conv` (which must have stride 1 and no padding).
    pub fn from_conv(conv: &Conv2d) -> Self {
        assert_eq!(conv.stride, (1, 1), "channels-last convolution is stride 1");
        assert_eq!(
            conv.padding,
            (0, 0),
            "channels-last convolution is unpadded"
        );
        let s = &conv.weight.shape;
        let (oc, ic, kh, kw) = (s[0], s[1], s[2], s[3]);
        let mut weight = vec![0.0f32; oc * ic * kh * kw];
        for o in 0..oc {
            for c in 0..ic {
                for ky in 0..kh {
                    for kx in 0..kw {
                        weight[((ky * kw + kx) * ic + c) * oc + o] =
                            conv.weight.data[((o * ic + c) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        ConvNhwc {
            weight,
            bias: conv.bias.clone(),
            ic,
            oc,
            kh,
            kw,
        }
    }

    /// [N, H, W, C] → [N, H−kh+1, W−kw+1, oc], then `act` (per output channel).
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Tensor {
        assert_eq!(x.shape.len(), 4, "channels-last input must be NHWC");
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        assert_eq!(c, self.ic, "channels-last input channels");
        assert!(
            h >= self.kh && w >= self.kw,
            "input smaller than the kernel"
        );
        if let Activation::PRelu(slopes) = act {
            assert_eq!(slopes.len(), self.oc, "prelu channels");
        }
        let (oh, ow) = (h - self.kh + 1, w - self.kw + 1);
        let (oc, k) = (self.oc, self.kh * self.kw * c);
        let pixels = n * oh * ow;
        let mut out = Vec::with_capacity(pixels * oc);
        for _ in 0..pixels {
            out.extend_from_slice(&self.bias);
        }
        let run = |(u, dst): (usize, &mut [f32]), col: &mut Vec<f32>| {
            let first = u * UNIT_PIXELS;
            let count = dst.len() / oc;
            col.resize(count * k, 0.0);
            // One im2col row per output pixel: for each kernel row, `kw·C` contiguous floats.
            let run_len = self.kw * c;
            for (p, row) in col.chunks_exact_mut(k).enumerate() {
                let pixel = first + p;
                let (b, rest) = (pixel / (oh * ow), pixel % (oh * ow));
                let (oy, ox) = (rest / ow, rest % ow);
                for (ky, dst_run) in row.chunks_exact_mut(run_len).enumerate() {
                    let start = ((b * h + oy + ky) * w + ox) * c;
                    copy_short(dst_run, &x.data[start..start + run_len]);
                }
            }
            gemm_acc(
                count,
                oc,
                k,
                dst,
                oc,
                col,
                k,
                &self.weight,
                oc,
                Parallelism::None,
            );
            act.apply_channels_last(oc, dst);
        };
        let unit_len = UNIT_PIXELS * oc.max(1);
        if threads() > 1 && pixels > UNIT_PIXELS {
            out.par_chunks_mut(unit_len)
                .enumerate()
                .for_each_init(Vec::new, |col, unit| run(unit, col));
        } else {
            let mut col = Vec::new();
            for unit in out.chunks_mut(unit_len).enumerate() {
                run(unit, &mut col);
            }
        }
        Tensor::new(vec![n, oh, ow, oc], out)
    }
}

/// Copy a run of a few dozen floats inline: the compiler would call `memcpy` for a plain
/// `copy_from_slice`, and the call costs more than the copy at these lengths.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d8, s8) in (&mut d).zip(&mut s) {
        let d8: &mut [f32; 8] = d8.try_into().unwrap();
        *d8 = s8.try_into().unwrap();
    }
    for (a, &b) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *a = b;
    }
}

/// Max pooling over NHWC with torch's window rules (`MaxPool2d::output_len`): the maximum of
/// whole channel vectors, one output pixel at a time.
pub fn max_pool(x: &Tensor, pool: MaxPool2d) -> Tensor {
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let (oh, ow) = (pool.output_len(h), pool.output_len(w));
    let (rows, cols) = (pool.windows(h), pool.windows(w));
    let mut out = vec![0.0f32; n * oh * ow * c];
    let pool_image = |(b, dst): (usize, &mut [f32])| {
        let image = &x.data[b * h * w * c..][..h * w * c];
        for (orow, &(y0, y1)) in dst.chunks_exact_mut(ow * c).zip(&rows) {
            for (opx, &(x0, x1)) in orow.chunks_exact_mut(c).zip(&cols) {
                opx.fill(f32::NEG_INFINITY);
                for y in y0..y1 {
                    let line = &image[(y * w + x0) * c..(y * w + x1) * c];
                    for px in line.chunks_exact(c) {
                        for (m, &v) in opx.iter_mut().zip(px) {
                            *m = max_fast(*m, v);
                        }
                    }
                }
            }
        }
    };
    let image_len = oh * ow * c;
    if image_len == 0 {
        return Tensor::new(vec![n, oh, ow, c], out);
    }
    if threads() > 1 && x.len() >= 1 << 16 {
        out.par_chunks_mut(image_len)
            .enumerate()
            .for_each(pool_image);
    } else {
        out.chunks_mut(image_len).enumerate().for_each(pool_image);
    }
    Tensor::new(vec![n, oh, ow, c], out)
}

/// [N, C, H, W] → [N, H, W, C].
pub fn to_channels_last(x: &Tensor) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let plane = h * w;
    let mut out = vec![0.0f32; x.len()];
    for (src, dst) in x
        .data
        .chunks_exact(c * plane)
        .zip(out.chunks_exact_mut(c * plane))
    {
        for (p, px) in dst.chunks_exact_mut(c).enumerate() {
            for (ch, v) in px.iter_mut().enumerate() {
                *v = src[ch * plane + p];
            }
        }
    }
    Tensor::new(vec![n, h, w, c], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [N, H, W, C] → [N, C, H, W].
    fn to_channels_first(x: &Tensor) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let mut out = vec![0.0f32; x.len()];
        for b in 0..n {
            for y in 0..h {
                for xx in 0..w {
                    for ch in 0..c {
                        out[((b * c + ch) * h + y) * w + xx] =
                            x.data[((b * h + y) * w + xx) * c + ch];
                    }
                }
            }
        }
        Tensor::new(vec![n, c, h, w], out)
    }

    fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// What an activation does to value `v` of output channel `o`.
    type ValueMap<'a> = &'a dyn Fn(f32, usize) -> f32;

    #[test]
    fn convolution_matches_the_channels_first_one() {
        // R-Net's and O-Net's shapes, with more pixels than one unit and a ragged last unit.
        for (n, c, hw, oc, kernel) in [(7, 3, 24, 28, 3), (5, 28, 11, 48, 3), (3, 64, 4, 128, 2)] {
            let weight = Tensor::new(
                vec![oc, c, kernel, kernel],
                pseudo_random(oc * c * kernel * kernel, 1),
            );
            let bias = pseudo_random(oc, 2);
            let conv = Conv2d::new(weight, Some(bias), (1, 1), (0, 0));
            let slopes = pseudo_random(oc, 3);
            let x = Tensor::new(vec![n, c, hw, hw], pseudo_random(n * c * hw * hw, 4));
            let plain = conv.forward_naive(&x);
            let plane = (hw - kernel + 1).pow(2);
            let acts: [(Activation, ValueMap); 3] = [
                (Activation::PRelu(&slopes), &|v, o| {
                    if v < 0.0 {
                        v * slopes[o]
                    } else {
                        v
                    }
                }),
                (Activation::Relu, &|v, _| v.max(0.0)),
                (Activation::Identity, &|v, _| v),
            ];
            for (act, reference) in acts {
                let mut want = plain.clone();
                for (i, v) in want.data.iter_mut().enumerate() {
                    *v = reference(*v, i / plane % oc);
                }
                let got = ConvNhwc::from_conv(&conv).forward_act(&to_channels_last(&x), act);
                let got = to_channels_first(&got);
                assert_eq!(got.shape, want.shape);
                let worst = got
                    .data
                    .iter()
                    .zip(&want.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst < 1e-4,
                    "{n}×{c}×{hw}² → {oc}, {act:?}: off by {worst}"
                );
            }
        }
    }

    #[test]
    fn pooling_matches_the_channels_first_one() {
        // Ceil-mode windows that hang over the edge (22 → 11, 9 → 4, 3 → 2) and an even split.
        for (hw, pool) in [
            (22, MaxPool2d::new(3, 2, 0, true)),
            (9, MaxPool2d::new(3, 2, 0, true)),
            (3, MaxPool2d::new(2, 2, 0, true)),
            (8, MaxPool2d::new(2, 2, 0, false)),
        ] {
            let (n, c) = (3, 5);
            let x = Tensor::new(vec![n, c, hw, hw], pseudo_random(n * c * hw * hw, 9));
            let want = pool.forward(&x);
            let got = to_channels_first(&max_pool(&to_channels_last(&x), pool));
            assert_eq!(got, want, "{hw}² pooled by {pool:?}");
        }
    }
}
