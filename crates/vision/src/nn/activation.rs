//! What follows a convolution (ReLU, PReLU, nothing), applied to NCHW planes or channels-last
//! pixels.

use crate::tensor::Tensor;

/// What follows a convolution, applied by [`Conv2d::forward_act`](super::Conv2d::forward_act) to each work unit's output
/// while it is still in cache, instead of in a separate pass over the whole tensor.
#[derive(Clone, Copy, Debug)]
pub enum Activation<'a> {
    Identity,
    /// `max(x, 0)`
    Relu,
    /// Per-output-channel slopes for negative values (PReLU).
    PRelu(&'a [f32]),
}

impl Activation<'_> {
    /// Apply to `row`, values of output channel `o`.
    pub(super) fn apply(self, o: usize, row: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                for v in row {
                    *v = max_fast(*v, 0.0);
                }
            }
            Activation::PRelu(slopes) => {
                let a = slopes[o];
                // A select, not a branch, so that it vectorises (signs are unpredictable).
                for v in row {
                    *v = if *v < 0.0 { *v * a } else { *v };
                }
            }
        }
    }

    /// Apply to channels-last values: consecutive pixels of `channels` values each, channel
    /// `o` at position `o` of every pixel.
    pub(super) fn apply_channels_last(self, channels: usize, values: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => self.apply(0, values),
            Activation::PRelu(slopes) => {
                let slopes = &slopes[..channels];
                for px in values.chunks_exact_mut(channels) {
                    // Both sides computed, then a select, as above: a slope per lane.
                    for (v, &a) in px.iter_mut().zip(slopes) {
                        let scaled = *v * a;
                        *v = if *v < 0.0 { scaled } else { *v };
                    }
                }
            }
        }
    }
}

/// `act` over every channel plane of an NCHW tensor.
pub(super) fn apply_planes(y: &mut Tensor, act: Activation) {
    if matches!(act, Activation::Identity) {
        return;
    }
    // [N, C, …]: everything after the channel axis is one channel's row ([N, C] too).
    let (c, plane) = (y.shape[1], y.shape[2..].iter().product::<usize>());
    for (i, row) in y.data.chunks_exact_mut(plane.max(1)).enumerate() {
        act.apply(i % c, row);
    }
}

/// `max(x, 0)` in place.
pub fn relu_inplace(x: &mut Tensor) {
    Activation::Relu.apply(0, &mut x.data);
}

/// The larger of two numbers by a plain comparison: one `maxps` once vectorised, where
/// `f32::max` adds NaN handling (three more instructions per value; max pooling spent most
/// of its time there). The networks never produce NaN.
#[inline(always)]
pub(super) fn max_fast(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}
