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
