//! Inputs and helpers shared by the engine's unit tests.

use super::Conv2d;
use crate::tensor::Tensor;

/// Deterministic pseudo-random values in [-1, 1).
pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
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

/// A convolution with pseudo-random weights and bias.
pub(super) fn conv(
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

/// The largest element-wise difference of two tensors of one shape.
pub(super) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
