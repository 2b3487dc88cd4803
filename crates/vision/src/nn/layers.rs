//! Layers with weights or settings other than convolution: fully connected, PReLU, max pooling.

use super::activation::{apply_planes, max_fast, Activation};
use super::gemm::gemm_acc_rhs_t;
use super::threads::{threads, PAR_GEMM_MIN_WORK};
use crate::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;

/// Fully connected layer, torch layout: `weight` [out, in], `y = x·Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Vec<f32>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Vec<f32>>) -> Self {
        assert_eq!(weight.shape.len(), 2, "linear weight must be [out, in]");
        let out = weight.shape[0];
        let bias = bias.unwrap_or_else(|| vec![0.0; out]);
        assert_eq!(bias.len(), out, "linear bias length");
        Linear { weight, bias }
    }

    /// [N, in] (or any [N, …] whose trailing dims multiply to `in`) → [N, out].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (out_f, in_f) = (self.weight.shape[0], self.weight.shape[1]);
        let n = x.shape.first().copied().unwrap_or(0);
        assert_eq!(x.len(), n * in_f, "linear input features");
        let mut y = Vec::with_capacity(n * out_f);
        for _ in 0..n {
            y.extend_from_slice(&self.bias);
        }
        let par = if threads() > 1 && n * out_f * in_f >= PAR_GEMM_MIN_WORK {
            Parallelism::Rayon(threads())
        } else {
            Parallelism::None
        };
        gemm_acc_rhs_t(n, out_f, in_f, &mut y, &x.data, &self.weight.data, par);
        Tensor::new(vec![n, out_f], y)
    }
}

/// Parametric ReLU with one slope per channel (dimension 1): `max(0,x) + a_c·min(0,x)`.
#[derive(Clone, Debug)]
pub struct PReLU {
    pub weight: Vec<f32>,
}

impl PReLU {
    pub fn new(weight: Vec<f32>) -> Self {
        PReLU { weight }
    }

    /// In place on [N, C, …].
    pub fn forward_inplace(&self, x: &mut Tensor) {
        assert_eq!(x.shape[1], self.weight.len(), "prelu channels");
        apply_planes(x, Activation::PRelu(&self.weight));
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = x.clone();
        self.forward_inplace(&mut y);
        y
    }
}

/// Max pooling, NCHW, torch semantics: padding counts as −∞; with `ceil_mode` the last window
/// may hang over the edge but must start inside the (left-padded) input.
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub ceil_mode: bool,
}

impl MaxPool2d {
    pub fn new(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> Self {
        MaxPool2d {
            kernel,
            stride,
            padding,
            ceil_mode,
        }
    }

    /// torch's `pooling_output_shape`.
    pub fn output_len(&self, len: usize) -> usize {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        assert!(len + 2 * p >= k, "pool input {len} smaller than kernel {k}");
        let span = len + 2 * p - k;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= len + p {
            out -= 1;
        }
        out
    }

    /// The input range `[start, end)` each output index pools along an axis of `len`, with
    /// the padding cut off.
    pub fn windows(&self, len: usize) -> Vec<(usize, usize)> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        (0..self.output_len(len))
            .map(|o| ((o * s).saturating_sub(p), (o * s + k - p).min(len)))
            .collect()
    }

    /// Separable: the max over a window's rows first (whole rows, vectorised), then over its
    /// columns. Planes run in parallel when there are many. (NaN inputs are not propagated as
    /// torch would; the networks never produce them.)
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (self.output_len(h), self.output_len(w));
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (rows, cols) = (self.windows(h), self.windows(w));
        // Output columns whose window lies wholly inside the row (padding 0).
        let full = if w >= k { ((w - k) / s + 1).min(ow) } else { 0 };
        let mut out = vec![0.0f32; n * c * oh * ow];
        let pool_plane = |rowmax: &mut Vec<f32>, (plane, op): (&[f32], &mut [f32])| {
            rowmax.resize(w, 0.0);
            for (orow, &(y0, y1)) in op.chunks_exact_mut(ow).zip(&rows) {
                rowmax.copy_from_slice(&plane[y0 * w..(y0 + 1) * w]);
                for r in y0 + 1..y1 {
                    for (m, &v) in rowmax.iter_mut().zip(&plane[r * w..(r + 1) * w]) {
                        *m = max_fast(*m, v);
                    }
                }
                // Whole windows of the networks' 2×2/2 and 3×3/2 pools in straight loops
                // (no per-window dispatch, so they vectorise); edges and others below.
                let done = match (k, s) {
                    (2, 2) if p == 0 => {
                        for (o, pair) in orow[..full].iter_mut().zip(rowmax.chunks_exact(2)) {
                            *o = max_fast(pair[0], pair[1]);
                        }
                        full
                    }
                    (3, 2) if p == 0 => {
                        let r = &rowmax[..2 * full + 1];
                        for (j, o) in orow[..full].iter_mut().enumerate() {
                            *o = max_fast(max_fast(r[2 * j], r[2 * j + 1]), r[2 * j + 2]);
                        }
                        full
                    }
                    _ => 0,
                };
                for (o, &(x0, x1)) in orow.iter_mut().zip(&cols).skip(done) {
                    *o = match rowmax[x0..x1] {
                        [a, b] => max_fast(a, b),
                        [a, b, c] => max_fast(max_fast(a, b), c),
                        ref win => win.iter().fold(f32::NEG_INFINITY, |m, &v| max_fast(m, v)),
                    };
                }
            }
        };
        if x.len() >= 1 << 18 && threads() > 1 {
            x.data
                .par_chunks_exact(h * w)
                .zip(out.par_chunks_exact_mut(oh * ow))
                .for_each_init(Vec::new, |rowmax, pair| pool_plane(rowmax, pair));
        } else {
            let mut rowmax = Vec::new();
            for pair in x
                .data
                .chunks_exact(h * w)
                .zip(out.chunks_exact_mut(oh * ow))
            {
                pool_plane(&mut rowmax, pair);
            }
        }
        Tensor::new(vec![n, c, oh, ow], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::values;

    #[test]
    fn linear_matches_definition() {
        let l = Linear::new(
            Tensor::new(vec![3, 4], values(12, 1)),
            Some(vec![0.5, -1.0, 2.0]),
        );
        let x = Tensor::new(vec![2, 4], values(8, 2));
        let y = l.forward(&x);
        for b in 0..2 {
            for o in 0..3 {
                let e: f32 = l.bias[o]
                    + (0..4)
                        .map(|i| x.data[b * 4 + i] * l.weight.data[o * 4 + i])
                        .sum::<f32>();
                assert!((y.data[b * 3 + o] - e).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn maxpool_ceil_mode_sizes_match_torch() {
        // torch: MaxPool2d(2,2,ceil_mode=True) on 7 → 4; MaxPool2d(3,2,ceil_mode=True) on 22 → 11, on 10 → 5.
        assert_eq!(MaxPool2d::new(2, 2, 0, true).output_len(7), 4);
        assert_eq!(MaxPool2d::new(3, 2, 0, true).output_len(22), 11);
        assert_eq!(MaxPool2d::new(3, 2, 0, true).output_len(10), 5);
        assert_eq!(MaxPool2d::new(3, 2, 0, false).output_len(10), 4);
        assert_eq!(MaxPool2d::new(3, 2, 1, false).output_len(8), 4);
        let x = Tensor::new(vec![1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let y = MaxPool2d::new(2, 2, 0, true).forward(&x);
        assert_eq!(y.shape, vec![1, 1, 2, 2]);
        assert_eq!(y.data, vec![5.0, 6.0, 8.0, 9.0]);
    }

    #[test]
    fn maxpool_matches_brute_force() {
        for (k, s, p, ceil, h, w) in [
            (2, 2, 0, true, 7, 9),
            (3, 2, 0, true, 22, 21),
            (3, 2, 1, false, 8, 11),
            (3, 1, 1, false, 5, 5),
        ] {
            let pool = MaxPool2d::new(k, s, p, ceil);
            let x = Tensor::new(vec![2, 3, h, w], values(2 * 3 * h * w, 5));
            let y = pool.forward(&x);
            let (oh, ow) = (pool.output_len(h), pool.output_len(w));
            for plane in 0..6 {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut m = f32::NEG_INFINITY;
                        for dy in 0..k {
                            for dx in 0..k {
                                let (iy, ix) = (
                                    (oy * s + dy) as isize - p as isize,
                                    (ox * s + dx) as isize - p as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    m = m
                                        .max(x.data[plane * h * w + iy as usize * w + ix as usize]);
                                }
                            }
                        }
                        assert_eq!(y.data[(plane * oh + oy) * ow + ox], m);
                    }
                }
            }
        }
    }

    #[test]
    fn prelu_scales_negatives_by_their_channels_slope() {
        let mut x = Tensor::new(vec![1, 2, 1, 2], vec![-1.0, 2.0, -4.0, 3.0]);
        PReLU::new(vec![0.5, 0.25]).forward_inplace(&mut x);
        assert_eq!(x.data, vec![-0.5, 2.0, -1.0, 3.0]);
    }
}
