//! The layers the networks are built from. Each holds its (BatchNorm-folded) weights and has a
//! `forward`. Convolution is im2col + GEMM (the `gemm` crate); this is the hot path of the whole
//! crate. Figures and the reasons for the choices are in `docs/engine.md`.

use crate::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;

/// Output columns (`oh·ow` summed over the items of one chunk) below which a batch is convolved
/// item by item in parallel instead of handing the whole core budget to one GEMM: small GEMMs
/// do not split well across threads.
const PAR_GEMM_MIN_WORK: usize = 1 << 21;

/// `dst[m×n] += lhs[m×k] · rhs[k×n]`, all row-major with the given row strides.
///
/// # Safety contract (checked by the callers' slice lengths)
/// `dst` holds `m` rows of `dst_rs` (≥ n), `lhs` `m` rows of `lhs_rs` (≥ k), `rhs` `k` rows of
/// `rhs_rs` (≥ n).
#[allow(clippy::too_many_arguments)]
fn gemm_acc(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n, "gemm dst too short");
    if k == 0 {
        return;
    }
    assert!(lhs.len() >= (m - 1) * lhs_rs + k, "gemm lhs too short");
    assert!(rhs.len() >= (k - 1) * rhs_rs + n, "gemm rhs too short");
    // SAFETY: the asserts above keep every access of the m×n, m×k and k×n strided views inside
    // the slices; `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            true,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `dst[m×n] += lhs[m×k] · rhsᵀ` where `rhs` is `n×k` row-major (a torch `Linear` weight).
#[allow(clippy::too_many_arguments)]
fn gemm_acc_rhs_t(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    rhs_t: &[f32],
    par: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        dst.len() >= m * n && lhs.len() >= m * k && rhs_t.len() >= n * k,
        "linear gemm sizes"
    );
    // SAFETY: sizes checked above; rhs element (kk, j) is rhs_t[j·k + kk] (row stride 1,
    // column stride k), inside `rhs_t`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs_t.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// 2-D convolution, NCHW, with bias. BatchNorm that follows a convolution is folded into
/// `weight` and `bias` at load time (see [`Conv2d::fold_batch_norm`]).
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// [out, in, kh, kw]
    pub weight: Tensor,
    pub bias: Vec<f32>,
    pub stride: (usize, usize),
    pub padding: (usize, usize),
}

impl Conv2d {
    pub fn new(
        weight: Tensor,
        bias: Option<Vec<f32>>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        assert_eq!(
            weight.shape.len(),
            4,
            "conv weight must be [out, in, kh, kw]"
        );
        let out = weight.shape[0];
        let bias = bias.unwrap_or_else(|| vec![0.0; out]);
        assert_eq!(bias.len(), out, "conv bias length");
        assert!(stride.0 > 0 && stride.1 > 0, "conv stride must be positive");
        Conv2d {
            bias,
            weight,
            stride,
            padding,
        }
    }

    /// Fold `y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta` into the weights.
    pub fn fold_batch_norm(
        &mut self,
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f32,
    ) {
        let out = self.weight.shape[0];
        let per_out = self.weight.len() / out;
        for o in 0..out {
            let s = gamma[o] / (var[o] + eps).sqrt();
            for w in &mut self.weight.data[o * per_out..(o + 1) * per_out] {
                *w *= s;
            }
            self.bias[o] = (self.bias[o] - mean[o]) * s + beta[o];
        }
    }

    pub fn out_channels(&self) -> usize {
        self.weight.shape[0]
    }

    /// Output spatial size for an `h`×`w` input.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let (kh, kw) = (self.weight.shape[2], self.weight.shape[3]);
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        assert!(
            h + 2 * ph >= kh && w + 2 * pw >= kw,
            "conv input {h}×{w} smaller than kernel {kh}×{kw}"
        );
        ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1)
    }

    fn is_pointwise(&self) -> bool {
        self.weight.shape[2] == 1
            && self.weight.shape[3] == 1
            && self.stride == (1, 1)
            && self.padding == (0, 0)
    }

    /// [N, in, H, W] → [N, out, OH, OW].
    ///
    /// Per item: `out[oc × OH·OW] = W[oc × in·kh·kw] · im2col(x)[in·kh·kw × OH·OW]`, the output
    /// pre-filled with the bias. 1×1 stride-1 convolutions use the input as the im2col matrix.
    /// Large items get a multi-threaded GEMM; batches of small items are spread over threads,
    /// one single-threaded GEMM per item.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        assert_eq!(x.shape.len(), 4, "conv input must be NCHW");
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oc, ic, kh, kw) = (
            self.weight.shape[0],
            self.weight.shape[1],
            self.weight.shape[2],
            self.weight.shape[3],
        );
        assert_eq!(c, ic, "conv input channels");
        let (oh, ow) = self.output_size(h, w);
        let (in_len, out_len) = (c * h * w, oc * oh * ow);
        let k = ic * kh * kw;
        let mut out = vec![0.0f32; n * out_len];
        if n == 0 || out_len == 0 {
            return Tensor::new(vec![n, oc, oh, ow], out);
        }
        let work = out_len * k;
        let run = |xb: &[f32], ob: &mut [f32], col: &mut Vec<f32>, par: Parallelism| {
            for (o, row) in ob.chunks_exact_mut(oh * ow).enumerate() {
                row.fill(self.bias[o]);
            }
            let rhs: &[f32] = if self.is_pointwise() {
                xb
            } else {
                col.resize(k * oh * ow, 0.0);
                self.im2col(xb, h, w, oh, ow, col);
                col
            };
            gemm_acc(
                oc,
                oh * ow,
                k,
                ob,
                oh * ow,
                &self.weight.data,
                k,
                rhs,
                oh * ow,
                par,
            );
        };
        if n == 1 || work >= PAR_GEMM_MIN_WORK || threads() == 1 {
            let par = if threads() > 1 && work >= PAR_GEMM_MIN_WORK / 8 {
                Parallelism::Rayon(threads())
            } else {
                Parallelism::None
            };
            let mut col = Vec::new();
            for (xb, ob) in x
                .data
                .chunks_exact(in_len)
                .zip(out.chunks_exact_mut(out_len))
            {
                run(xb, ob, &mut col, par);
            }
        } else {
            x.data
                .par_chunks_exact(in_len)
                .zip(out.par_chunks_exact_mut(out_len))
                .for_each_init(Vec::new, |col, (xb, ob)| {
                    run(xb, ob, col, Parallelism::None)
                });
        }
        Tensor::new(vec![n, oc, oh, ow], out)
    }

    /// Unfold one CHW item into `col[(c·kh + ky)·kw + kx][oy·ow + ox]`, zeros where the kernel
    /// hangs over the padding.
    fn im2col(&self, x: &[f32], h: usize, w: usize, oh: usize, ow: usize, col: &mut [f32]) {
        let (ic, kh, kw) = (
            self.weight.shape[1],
            self.weight.shape[2],
            self.weight.shape[3],
        );
        let (sh, sw) = self.stride;
        let (ph, pw) = (self.padding.0 as isize, self.padding.1 as isize);
        let plane = oh * ow;
        for c in 0..ic {
            let xc = &x[c * h * w..(c + 1) * h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let dst = &mut col[((c * kh + ky) * kw + kx) * plane..][..plane];
                    // Output columns whose input column lies inside the image: [ox0, ox1).
                    let first_in = kx as isize - pw;
                    let ox0 = if first_in >= 0 {
                        0
                    } else {
                        ((-first_in) as usize).div_ceil(sw)
                    };
                    let ox1 = if (w as isize) <= first_in {
                        0
                    } else {
                        ((w as isize - first_in) as usize).div_ceil(sw).min(ow)
                    };
                    for (oy, drow) in dst.chunks_exact_mut(ow).enumerate() {
                        let iy = (oy * sh + ky) as isize - ph;
                        if iy < 0 || iy >= h as isize || ox0 >= ox1 {
                            drow.fill(0.0);
                            continue;
                        }
                        let src = &xc[iy as usize * w..(iy as usize + 1) * w];
                        drow[..ox0].fill(0.0);
                        drow[ox1..].fill(0.0);
                        let ix0 = (ox0 * sw) as isize + first_in;
                        if sw == 1 {
                            let s = ix0 as usize;
                            drow[ox0..ox1].copy_from_slice(&src[s..s + (ox1 - ox0)]);
                        } else {
                            for (i, d) in drow[ox0..ox1].iter_mut().enumerate() {
                                *d = src[ix0 as usize + i * sw];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Direct loops, no GEMM: the reference the fast path is tested (and benchmarked) against.
    pub fn forward_naive(&self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oc, ic, kh, kw) = (
            self.weight.shape[0],
            self.weight.shape[1],
            self.weight.shape[2],
            self.weight.shape[3],
        );
        assert_eq!(c, ic, "conv input channels");
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        let (oh, ow) = self.output_size(h, w);
        let mut out = Tensor::zeros(vec![n, oc, oh, ow]);
        for b in 0..n {
            for o in 0..oc {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = self.bias[o];
                        for i in 0..ic {
                            for ky in 0..kh {
                                let iy = (y * sh + ky) as isize - ph as isize;
                                if iy < 0 || iy >= h as isize {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let ix = (xo * sw + kx) as isize - pw as isize;
                                    if ix < 0 || ix >= w as isize {
                                        continue;
                                    }
                                    acc += x.data
                                        [((b * c + i) * h + iy as usize) * w + ix as usize]
                                        * self.weight.data[((o * ic + i) * kh + ky) * kw + kx];
                                }
                            }
                        }
                        out.data[((b * oc + o) * oh + y) * ow + xo] = acc;
                    }
                }
            }
        }
        out
    }
}

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
        let par = if threads() > 1 && n * out_f * in_f >= PAR_GEMM_MIN_WORK / 8 {
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
        let c = x.shape[1];
        assert_eq!(c, self.weight.len(), "prelu channels");
        let inner: usize = x.shape[2..].iter().product();
        for (i, chunk) in x.data.chunks_exact_mut(inner.max(1)).enumerate() {
            let a = self.weight[i % c];
            for v in chunk {
                if *v < 0.0 {
                    *v *= a;
                }
            }
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = x.clone();
        self.forward_inplace(&mut y);
        y
    }
}

/// `max(x, 0)` in place.
pub fn relu_inplace(x: &mut Tensor) {
    for v in &mut x.data {
        *v = v.max(0.0);
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

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (self.output_len(h), self.output_len(w));
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let mut out = vec![0.0f32; n * c * oh * ow];
        for (plane, op) in x
            .data
            .chunks_exact(h * w)
            .zip(out.chunks_exact_mut(oh * ow))
        {
            for oy in 0..oh {
                let y0 = (oy * s).saturating_sub(p);
                let y1 = (oy * s + k - p).min(h);
                for ox in 0..ow {
                    let x0 = (ox * s).saturating_sub(p);
                    let x1 = (ox * s + k - p).min(w);
                    let mut m = f32::NEG_INFINITY;
                    for row in plane[y0 * w..y1 * w].chunks_exact(w) {
                        for &v in &row[x0..x1] {
                            // torch propagates NaN through max pooling.
                            if v > m || v.is_nan() {
                                m = v;
                            }
                        }
                    }
                    op[oy * ow + ox] = m;
                }
            }
        }
        Tensor::new(vec![n, c, oh, ow], out)
    }
}

/// Softmax over dimension 1 of [N, C, …] (torch's `Softmax(dim=1)`).
pub fn softmax_channels(x: &Tensor) -> Tensor {
    let (n, c) = (x.shape[0], x.shape[1]);
    let inner: usize = x.shape[2..].iter().product();
    let mut y = x.clone();
    for b in 0..n {
        let item = &mut y.data[b * c * inner..(b + 1) * c * inner];
        for i in 0..inner {
            let mut m = f32::NEG_INFINITY;
            for ch in 0..c {
                m = m.max(item[ch * inner + i]);
            }
            let mut sum = 0.0f32;
            for ch in 0..c {
                let e = (item[ch * inner + i] - m).exp();
                item[ch * inner + i] = e;
                sum += e;
            }
            for ch in 0..c {
                item[ch * inner + i] /= sum;
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn conv(
        oc: usize,
        ic: usize,
        kh: usize,
        kw: usize,
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Conv2d {
        let w = Tensor::new(vec![oc, ic, kh, kw], values(oc * ic * kh * kw, 7));
        Conv2d::new(w, Some(values(oc, 9)), stride, pad)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.shape, b.shape);
        a.data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn gemm_conv_matches_direct_loops() {
        let cases = [
            (8, 3, 3, 3, (1, 1), (0, 0), 1, 13, 17),
            (6, 5, 3, 3, (2, 2), (1, 1), 3, 11, 10),
            (4, 7, 1, 1, (1, 1), (0, 0), 2, 9, 9),
            (5, 4, 1, 7, (1, 1), (0, 3), 2, 8, 9),
            (5, 4, 7, 1, (1, 1), (3, 0), 1, 8, 9),
            (3, 2, 2, 2, (1, 1), (0, 0), 5, 3, 3),
            (4, 3, 1, 1, (2, 2), (0, 0), 1, 7, 7),
        ];
        for (i, &(oc, ic, kh, kw, s, p, n, h, w)) in cases.iter().enumerate() {
            let c = conv(oc, ic, kh, kw, s, p);
            let x = Tensor::new(vec![n, ic, h, w], values(n * ic * h * w, i as u64));
            let d = max_diff(&c.forward(&x), &c.forward_naive(&x));
            assert!(d < 1e-5, "case {i}: {d}");
        }
    }

    #[test]
    fn large_batch_takes_the_parallel_path_and_agrees() {
        let c = conv(16, 8, 3, 3, (1, 1), (1, 1));
        let x = Tensor::new(vec![9, 8, 12, 12], values(9 * 8 * 144, 3));
        assert!(max_diff(&c.forward(&x), &c.forward_naive(&x)) < 1e-5);
    }

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
    fn prelu_and_softmax() {
        let mut x = Tensor::new(vec![1, 2, 1, 2], vec![-1.0, 2.0, -4.0, 3.0]);
        PReLU::new(vec![0.5, 0.25]).forward_inplace(&mut x);
        assert_eq!(x.data, vec![-0.5, 2.0, -1.0, 3.0]);
        let s = softmax_channels(&x);
        for i in 0..2 {
            assert!((s.data[i] + s.data[2 + i] - 1.0).abs() < 1e-6);
        }
        assert!(s.data[0] > s.data[2]);
    }
}
