//! P-Net, R-Net and O-Net exactly as facenet-pytorch defines them (PReLU activations, max
//! pooling with `ceil_mode`, R/O-Net features flattened in (N, W, H, C) order), built from the
//! state dicts shipped with facenet-pytorch (`pnet.pt`, `rnet.pt`, `onet.pt`).
//!
//! P-Net sees one large image per pyramid level and runs channels-first. R-Net and O-Net see a
//! batch of small crops and run channels-last ([`crate::nn::channels_last`]); they take and
//! give the same tensors as torch's modules.

use crate::error::ModelError;
use crate::nn::channels_last::{self, ConvNhwc};
use crate::nn::{softmax_channels, Activation, Conv2d, Linear, MaxPool2d, PReLU};
use crate::tensor::Tensor;
use crate::weights::{load_torch, TensorMap};
use std::path::Path;

fn conv(map: &TensorMap, name: &str, shape: [usize; 4]) -> Result<Conv2d, ModelError> {
    let w = map.get_shaped(&format!("{name}.weight"), &shape)?.clone();
    let b = map
        .get_shaped(&format!("{name}.bias"), &[shape[0]])?
        .data
        .clone();
    Ok(Conv2d::new(w, Some(b), (1, 1), (0, 0)).without_winograd())
}

fn linear(map: &TensorMap, name: &str, out: usize, inp: usize) -> Result<Linear, ModelError> {
    let w = map
        .get_shaped(&format!("{name}.weight"), &[out, inp])?
        .clone();
    let b = map
        .get_shaped(&format!("{name}.bias"), &[out])?
        .data
        .clone();
    Ok(Linear::new(w, Some(b)))
}

fn prelu(map: &TensorMap, name: &str, channels: usize) -> Result<PReLU, ModelError> {
    Ok(PReLU::new(
        map.get_shaped(&format!("{name}.weight"), &[channels])?
            .data
            .clone(),
    ))
}

/// conv → PReLU, the unit all three nets are made of.
#[derive(Clone, Debug)]
struct ConvPrelu {
    conv: Conv2d,
    prelu: PReLU,
}

impl ConvPrelu {
    fn load(map: &TensorMap, idx: &str, shape: [usize; 4]) -> Result<Self, ModelError> {
        Ok(ConvPrelu {
            conv: conv(map, &format!("conv{idx}"), shape)?,
            prelu: prelu(map, &format!("prelu{idx}"), shape[0])?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.conv
            .forward_act(x, Activation::PRelu(&self.prelu.weight))
    }
}

/// conv → PReLU over channels-last input, for the crop nets.
#[derive(Clone, Debug)]
struct ConvPreluNhwc {
    conv: ConvNhwc,
    prelu: PReLU,
}

impl ConvPreluNhwc {
    fn load(map: &TensorMap, idx: &str, shape: [usize; 4]) -> Result<Self, ModelError> {
        let ConvPrelu { conv, prelu } = ConvPrelu::load(map, idx, shape)?;
        Ok(ConvPreluNhwc {
            conv: ConvNhwc::from_conv(&conv),
            prelu,
        })
    }

    /// [N, H, W, C] → [N, H', W', C'].
    fn forward(&self, x: &Tensor) -> Tensor {
        self.conv
            .forward_act(x, Activation::PRelu(&self.prelu.weight))
    }
}

/// Channels-last [N, H, W, C] → [N, W·H·C] in torch's `permute(0, 3, 2, 1)` order.
fn flatten_whc_nhwc(x: &Tensor) -> Tensor {
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let mut out = vec![0.0f32; x.len()];
    for (src, dst) in x
        .data
        .chunks_exact(h * w * c)
        .zip(out.chunks_exact_mut(h * w * c))
    {
        for y in 0..h {
            for xx in 0..w {
                dst[(xx * h + y) * c..][..c].copy_from_slice(&src[(y * w + xx) * c..][..c]);
            }
        }
    }
    Tensor::new(vec![n, c * h * w], out)
}

/// Proposal net: fully convolutional, 12×12 receptive field, stride 2.
#[derive(Clone, Debug)]
pub struct PNet {
    c1: ConvPrelu,
    pool1: MaxPool2d,
    c2: ConvPrelu,
    c3: ConvPrelu,
    /// Face / not-face logits (softmax over channels).
    conv4_1: Conv2d,
    /// Box regression.
    conv4_2: Conv2d,
}

impl PNet {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_tensors(&load_torch(path)?)
    }

    pub fn from_tensors(m: &TensorMap) -> Result<Self, ModelError> {
        Ok(PNet {
            c1: ConvPrelu::load(m, "1", [10, 3, 3, 3])?,
            pool1: MaxPool2d::new(2, 2, 0, true),
            c2: ConvPrelu::load(m, "2", [16, 10, 3, 3])?,
            c3: ConvPrelu::load(m, "3", [32, 16, 3, 3])?,
            conv4_1: conv(m, "conv4_1", [2, 32, 1, 1])?,
            conv4_2: conv(m, "conv4_2", [4, 32, 1, 1])?,
        })
    }

    /// [N, 3, H, W] (H, W ≥ 12) → (reg [N, 4, h, w], prob [N, 2, h, w]) with
    /// h = ⌈(H−2)/2⌉ − 4, likewise w.
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let x = self.c1.forward(x);
        let x = self.pool1.forward(&x);
        let x = self.c2.forward(&x);
        let x = self.c3.forward(&x);
        let prob = softmax_channels(&self.conv4_1.forward(&x));
        (self.conv4_2.forward(&x), prob)
    }
}

/// Refinement net: 24×24 crops.
#[derive(Clone, Debug)]
pub struct RNet {
    c1: ConvPreluNhwc,
    pool1: MaxPool2d,
    c2: ConvPreluNhwc,
    pool2: MaxPool2d,
    c3: ConvPreluNhwc,
    dense4: Linear,
    prelu4: PReLU,
    dense5_1: Linear,
    dense5_2: Linear,
}

impl RNet {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_tensors(&load_torch(path)?)
    }

    pub fn from_tensors(m: &TensorMap) -> Result<Self, ModelError> {
        Ok(RNet {
            c1: ConvPreluNhwc::load(m, "1", [28, 3, 3, 3])?,
            pool1: MaxPool2d::new(3, 2, 0, true),
            c2: ConvPreluNhwc::load(m, "2", [48, 28, 3, 3])?,
            pool2: MaxPool2d::new(3, 2, 0, true),
            c3: ConvPreluNhwc::load(m, "3", [64, 48, 2, 2])?,
            dense4: linear(m, "dense4", 128, 576)?,
            prelu4: prelu(m, "prelu4", 128)?,
            dense5_1: linear(m, "dense5_1", 2, 128)?,
            dense5_2: linear(m, "dense5_2", 4, 128)?,
        })
    }

    /// [N, 3, 24, 24] → (reg [N, 4], prob [N, 2]).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let x = channels_last::to_channels_last(x);
        let x = channels_last::max_pool(&self.c1.forward(&x), self.pool1);
        let x = channels_last::max_pool(&self.c2.forward(&x), self.pool2);
        let x = flatten_whc_nhwc(&self.c3.forward(&x));
        let mut x = self.dense4.forward(&x);
        self.prelu4.forward_inplace(&mut x);
        (
            self.dense5_2.forward(&x),
            softmax_channels(&self.dense5_1.forward(&x)),
        )
    }
}

/// Output net: 48×48 crops, adds five landmarks.
#[derive(Clone, Debug)]
pub struct ONet {
    c1: ConvPreluNhwc,
    pool1: MaxPool2d,
    c2: ConvPreluNhwc,
    pool2: MaxPool2d,
    c3: ConvPreluNhwc,
    pool3: MaxPool2d,
    c4: ConvPreluNhwc,
    dense5: Linear,
    prelu5: PReLU,
    dense6_1: Linear,
    dense6_2: Linear,
    dense6_3: Linear,
}

/// O-Net outputs for a batch.
#[derive(Clone, Debug)]
pub struct ONetOutput {
    /// [N, 4]
    pub reg: Tensor,
    /// [N, 10]: x of the five points, then y, relative to the box.
    pub landmarks: Tensor,
    /// [N, 2]
    pub prob: Tensor,
}

impl ONet {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_tensors(&load_torch(path)?)
    }

    pub fn from_tensors(m: &TensorMap) -> Result<Self, ModelError> {
        Ok(ONet {
            c1: ConvPreluNhwc::load(m, "1", [32, 3, 3, 3])?,
            pool1: MaxPool2d::new(3, 2, 0, true),
            c2: ConvPreluNhwc::load(m, "2", [64, 32, 3, 3])?,
            pool2: MaxPool2d::new(3, 2, 0, true),
            c3: ConvPreluNhwc::load(m, "3", [64, 64, 3, 3])?,
            pool3: MaxPool2d::new(2, 2, 0, true),
            c4: ConvPreluNhwc::load(m, "4", [128, 64, 2, 2])?,
            dense5: linear(m, "dense5", 256, 1152)?,
            prelu5: prelu(m, "prelu5", 256)?,
            dense6_1: linear(m, "dense6_1", 2, 256)?,
            dense6_2: linear(m, "dense6_2", 4, 256)?,
            dense6_3: linear(m, "dense6_3", 10, 256)?,
        })
    }

    /// [N, 3, 48, 48] → regression, landmarks, probabilities.
    pub fn forward(&self, x: &Tensor) -> ONetOutput {
        let x = channels_last::to_channels_last(x);
        let x = channels_last::max_pool(&self.c1.forward(&x), self.pool1);
        let x = channels_last::max_pool(&self.c2.forward(&x), self.pool2);
        let x = channels_last::max_pool(&self.c3.forward(&x), self.pool3);
        let x = flatten_whc_nhwc(&self.c4.forward(&x));
        let mut x = self.dense5.forward(&x);
        self.prelu5.forward_inplace(&mut x);
        ONetOutput {
            reg: self.dense6_2.forward(&x),
            landmarks: self.dense6_3.forward(&x),
            prob: softmax_channels(&self.dense6_1.forward(&x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_is_width_height_channel() {
        // NHWC [1, 2, 2, 2]: pixel (y, x) holds channels [10y + x, 10y + x + 100].
        let data = vec![0.0, 100.0, 1.0, 101.0, 10.0, 110.0, 11.0, 111.0];
        let x = Tensor::new(vec![1, 2, 2, 2], data);
        // W outermost, then H, then C: (x0 y0), (x0 y1), (x1 y0), (x1 y1).
        let want = vec![0.0, 100.0, 10.0, 110.0, 1.0, 101.0, 11.0, 111.0];
        assert_eq!(flatten_whc_nhwc(&x).data, want);
    }
}
