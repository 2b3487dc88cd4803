//! The layers the networks are built from. Each holds its (BatchNorm-folded) weights and has a
//! `forward`. Convolution is im2col + GEMM; this is the hot path of the whole crate.

use crate::tensor::Tensor;

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
    pub fn new(weight: Tensor, bias: Option<Vec<f32>>, stride: (usize, usize), padding: (usize, usize)) -> Self {
        let out = weight.shape[0];
        Conv2d { bias: bias.unwrap_or_else(|| vec![0.0; out]), weight, stride, padding }
    }

    /// Fold `y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta` into the weights.
    pub fn fold_batch_norm(&mut self, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f32) {
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

    /// Reference implementation (direct loops). Correct, slow; to be replaced by im2col + GEMM.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oc, ic, kh, kw) = (self.weight.shape[0], self.weight.shape[1], self.weight.shape[2], self.weight.shape[3]);
        assert_eq!(c, ic, "conv input channels");
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        let oh = (h + 2 * ph - kh) / sh + 1;
        let ow = (w + 2 * pw - kw) / sw + 1;
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
                                    acc += x.data[((b * c + i) * h + iy as usize) * w + ix as usize]
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

// ---- Pooling and tensor plumbing for the embedding networks (appended by the embedder branch;
// free functions so they cannot collide with the detector's layer structs). ----

/// Max pooling without padding; windows that would run past the edge are dropped (torch's
/// default floor mode, TF's 'valid').
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Tensor {
    pool2d(x, kernel, stride, |window| {
        window.fold(f32::NEG_INFINITY, f32::max)
    })
}

/// Average pooling without padding, floor mode (TF's 'valid').
pub fn avg_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Tensor {
    let area = (kernel * kernel) as f32;
    pool2d(x, kernel, stride, |window| window.sum::<f32>() / area)
}

fn pool2d(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    reduce: impl Fn(&mut dyn Iterator<Item = f32>) -> f32,
) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    assert!(
        h >= kernel && w >= kernel,
        "pooling window {kernel} larger than the {h}×{w} input"
    );
    let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    let mut out = Tensor::zeros(vec![n, c, oh, ow]);
    for (plane, out_plane) in x
        .data
        .chunks_exact(h * w)
        .zip(out.data.chunks_exact_mut(oh * ow))
    {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = (oy * stride, ox * stride);
                let mut window = (y0..y0 + kernel)
                    .flat_map(|y| plane[y * w + x0..y * w + x0 + kernel].iter().copied());
                out_plane[oy * ow + ox] = reduce(&mut window);
            }
        }
    }
    out
}

/// Mean over each channel's H×W plane: [N, C, H, W] → [N, C, 1, 1].
pub fn global_avg_pool(x: &Tensor) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let area = (h * w) as f32;
    let data = x
        .data
        .chunks_exact(h * w)
        .map(|plane| plane.iter().sum::<f32>() / area)
        .collect();
    Tensor::new(vec![n, c, 1, 1], data)
}

/// `max(x, 0)` in place.
pub fn relu_inplace(x: &mut Tensor) {
    for v in &mut x.data {
        *v = v.max(0.0);
    }
}

/// Concatenate NCHW tensors along the channel axis (all with the same N, H, W).
pub fn cat_channels(parts: &[&Tensor]) -> Tensor {
    let (n, h, w) = (parts[0].shape[0], parts[0].shape[2], parts[0].shape[3]);
    let c: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut data = Vec::with_capacity(n * c * h * w);
    for b in 0..n {
        for p in parts {
            assert_eq!(
                (p.shape[0], p.shape[2], p.shape[3]),
                (n, h, w),
                "cat_channels shapes"
            );
            let item = p.shape[1] * h * w;
            data.extend_from_slice(&p.data[b * item..(b + 1) * item]);
        }
    }
    Tensor::new(vec![n, c, h, w], data)
}

/// Divide each row of an [N, D] (or [N, D, 1, 1]) tensor by `max(‖row‖₂, 1e-12)`, as
/// `torch.nn.functional.normalize` does.
pub fn l2_normalize_rows(x: &mut Tensor) {
    let d = x.shape[1..].iter().product::<usize>().max(1);
    for row in x.data.chunks_exact_mut(d) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for v in row {
            *v /= norm;
        }
    }
}
