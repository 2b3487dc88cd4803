//! The face descriptor network of face-api.js (dlib's ResNet-34-style `dlib_face_recognition_resnet_model_v1`):
//! 150×150 RGB → 128-d. Weights from face-api's uint8-quantised manifest.
//!
//! A port of `faceRecognitionNet/FaceRecognitionNet.ts` and its `convLayer.ts`,
//! `residualLayer.ts`, `scaleLayer.ts`: every convolution is conv + bias → per-channel scale
//! layer (`x · weights + biases`, folded into the convolution at load) → optional ReLU. The
//! stride-2 convolutions are TF 'valid' (no padding at all), the stride-1 3×3 ones TF 'same',
//! which for stride 1 and an odd kernel is a symmetric 1-pixel padding, so plain [`Conv2d`]
//! padding reproduces both exactly.
//!
//! Spatial sizes: 150 → 72 (7×7/2) → 35 (max pool 3/2) → 17 → 8 → 3, padded to 4 → 1, padded
//! to 2 → global mean → fc 256 → 128.

use crate::error::ModelError;
use crate::nn::{
    avg_pool2d, global_avg_pool, l2_normalize_rows, relu_inplace, Conv2d, Linear, MaxPool2d,
};
use crate::tensor::Tensor;
use crate::weights::{self, TensorMap};
use std::path::Path;

/// Descriptor size.
pub const EMBEDDING_DIM: usize = 128;
/// Side of the square input.
pub const INPUT_SIZE: usize = 150;
/// The file names face-api.js loads.
pub const MANIFEST_FILE: &str = "face_recognition_model-weights_manifest.json";
pub const BIN_FILE: &str = "face_recognition_model.bin";

/// `FaceRecognitionNet.forwardInput`: `normalize(x, meanRgb).div(255)`.
const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];
const INPUT_DIVISOR: f32 = 255.0;

/// `convLayer.ts`: conv (+ bias) → scale layer → ReLU when `relu`.
struct ConvLayer {
    conv: Conv2d,
    relu: bool,
}

impl ConvLayer {
    /// Read `{prefix}/conv/filters` ([kh, kw, in, out], TF layout), `{prefix}/conv/bias` and
    /// `{prefix}/scale/{weights,biases}`; fold the scale layer into the convolution.
    fn load(
        w: &TensorMap,
        prefix: &str,
        (cin, cout, k): (usize, usize, usize),
        stride: usize,
        relu: bool,
    ) -> Result<Self, ModelError> {
        let filters = w.get_shaped(&format!("{prefix}/conv/filters"), &[k, k, cin, cout])?;
        let bias = &w.get_shaped(&format!("{prefix}/conv/bias"), &[cout])?.data;
        let scale_w = &w
            .get_shaped(&format!("{prefix}/scale/weights"), &[cout])?
            .data;
        let scale_b = &w
            .get_shaped(&format!("{prefix}/scale/biases"), &[cout])?
            .data;

        // [kh, kw, in, out] → [out, in, kh, kw], scaled per output channel.
        let mut weight = Tensor::zeros(vec![cout, cin, k, k]);
        for ky in 0..k {
            for kx in 0..k {
                for i in 0..cin {
                    for (o, sw) in scale_w.iter().enumerate() {
                        weight.data[((o * cin + i) * k + ky) * k + kx] =
                            filters.data[((ky * k + kx) * cin + i) * cout + o] * sw;
                    }
                }
            }
        }
        let bias = (0..cout)
            .map(|o| bias[o] * scale_w[o] + scale_b[o])
            .collect();
        // Stride 2 is 'valid'; stride 1 is 'same' (k = 3: one pixel each side).
        let pad = if stride == 1 { k / 2 } else { 0 };
        Ok(ConvLayer {
            conv: Conv2d::new(weight, Some(bias), (stride, stride), (pad, pad)),
            relu,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = self.conv.forward(x);
        if self.relu {
            relu_inplace(&mut y);
        }
        y
    }
}

/// `residualLayer.ts`: `relu(conv2(conv1(x)) + shortcut(x))`. A downsampling layer has a
/// stride-2 'valid' conv1 and a shortcut that is a 2×2/2 average pool, zero-padded in channels
/// when the width doubles; when the pool's grid is one larger than the conv's (odd sizes), the
/// conv output gets a zero row at the bottom and a zero column at the right, exactly as the TS
/// concatenates them.
struct ResidualLayer {
    conv1: ConvLayer,
    conv2: ConvLayer,
    down: bool,
}

impl ResidualLayer {
    fn load(
        w: &TensorMap,
        prefix: &str,
        (cin, cout): (usize, usize),
        down: bool,
    ) -> Result<Self, ModelError> {
        let stride = if down { 2 } else { 1 };
        Ok(ResidualLayer {
            conv1: ConvLayer::load(w, &format!("{prefix}/conv1"), (cin, cout, 3), stride, true)?,
            conv2: ConvLayer::load(w, &format!("{prefix}/conv2"), (cout, cout, 3), 1, false)?,
            down,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let out = self.conv2.forward(&self.conv1.forward(x));
        let mut out = if self.down {
            let pooled = avg_pool2d(x, 2, 2);
            let out = pad_bottom_right(&out, pooled.shape[2], pooled.shape[3]);
            add_channel_padded(out, &pooled)
        } else {
            add_channel_padded(out, x)
        };
        relu_inplace(&mut out);
        out
    }
}

/// Grow [N, C, h, w] to [N, C, h2, w2] (h2 ≥ h, w2 ≥ w) with zeros at the bottom and right.
fn pad_bottom_right(x: &Tensor, h2: usize, w2: usize) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    if (h, w) == (h2, w2) {
        return x.clone();
    }
    assert!(h2 >= h && w2 >= w, "pad_bottom_right can only grow");
    let mut out = Tensor::zeros(vec![n, c, h2, w2]);
    for (src, dst) in x
        .data
        .chunks_exact(h * w)
        .zip(out.data.chunks_exact_mut(h2 * w2))
    {
        for y in 0..h {
            dst[y * w2..y * w2 + w].copy_from_slice(&src[y * w..(y + 1) * w]);
        }
    }
    out
}

/// `out + shortcut`, where `shortcut` may have fewer channels than `out` (the missing ones are
/// zeros: `concat([pooled, zeros], 3)` in the TS).
fn add_channel_padded(mut out: Tensor, shortcut: &Tensor) -> Tensor {
    let (n, c, h, w) = (out.shape[0], out.shape[1], out.shape[2], out.shape[3]);
    let cs = shortcut.shape[1];
    assert_eq!(
        (shortcut.shape[0], shortcut.shape[2], shortcut.shape[3]),
        (n, h, w),
        "shortcut shape"
    );
    assert!(cs <= c, "shortcut has more channels than the residual");
    for b in 0..n {
        let dst = &mut out.data[b * c * h * w..(b * c + cs) * h * w];
        let src = &shortcut.data[b * cs * h * w..(b + 1) * cs * h * w];
        for (o, s) in dst.iter_mut().zip(src) {
            *o += s;
        }
    }
    out
}

pub struct FaceDescriptorNet {
    conv32_down: ConvLayer,
    /// conv32_1 … conv256_down_out, in forward order.
    layers: Vec<ResidualLayer>,
    /// `fc`: 256 → 128, no bias (stored [in, out] by face-api, [out, in] here).
    fc: Linear,
}

/// The residual layers of `FaceRecognitionNet.forwardInput`: (name, in, out, downsampling).
const LAYERS: [(&str, usize, usize, bool); 14] = [
    ("conv32_1", 32, 32, false),
    ("conv32_2", 32, 32, false),
    ("conv32_3", 32, 32, false),
    ("conv64_down", 32, 64, true),
    ("conv64_1", 64, 64, false),
    ("conv64_2", 64, 64, false),
    ("conv64_3", 64, 64, false),
    ("conv128_down", 64, 128, true),
    ("conv128_1", 128, 128, false),
    ("conv128_2", 128, 128, false),
    ("conv256_down", 128, 256, true),
    ("conv256_1", 256, 256, false),
    ("conv256_2", 256, 256, false),
    ("conv256_down_out", 256, 256, true),
];

impl FaceDescriptorNet {
    /// Load `face_recognition_model-weights_manifest.json` and its `.bin` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        Self::from_tensors(&weights::load_face_api(
            &dir.join(MANIFEST_FILE),
            &dir.join(BIN_FILE),
        )?)
    }

    /// Build the network from face-api tensors already read (TF layouts, as in the manifest).
    pub fn from_tensors(w: &TensorMap) -> Result<Self, ModelError> {
        let conv32_down = ConvLayer::load(w, "conv32_down", (3, 32, 7), 2, true)?;
        let layers = LAYERS
            .iter()
            .map(|&(name, cin, cout, down)| ResidualLayer::load(w, name, (cin, cout), down))
            .collect::<Result<_, _>>()?;
        let fc = w.get_shaped("fc", &[256, EMBEDDING_DIM])?;
        // [in, out] → [out, in]
        let mut weight = Tensor::zeros(vec![EMBEDDING_DIM, 256]);
        for i in 0..256 {
            for o in 0..EMBEDDING_DIM {
                weight.data[o * 256 + i] = fc.data[i * EMBEDDING_DIM + o];
            }
        }
        Ok(FaceDescriptorNet {
            conv32_down,
            layers,
            fc: Linear::new(weight, None),
        })
    }

    /// [N, 3, 150, 150] RGB in 0..255 (normalisation happens inside, as face-api does) → [N, 128],
    /// L2-normalised.
    ///
    /// face-api.js returns the raw descriptor (its norm is not 1) and compares with Euclidean
    /// distance; rollcall compares every embedder with cosine similarity, so the output is
    /// normalised here. The direction is unchanged, so nothing is lost.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut d = self.forward_raw(x);
        l2_normalize_rows(&mut d);
        d
    }

    /// The descriptor exactly as face-api.js computes it (not normalised), [N, 128].
    pub fn forward_raw(&self, x: &Tensor) -> Tensor {
        assert_eq!(x.shape.len(), 4, "FaceDescriptorNet expects [N, 3, H, W]");
        assert_eq!(x.shape[1], 3, "FaceDescriptorNet expects 3 channels");
        let plane = x.shape[2] * x.shape[3];
        let mut input = x.clone();
        for (i, v) in input.data.iter_mut().enumerate() {
            *v = (*v - MEAN_RGB[(i / plane) % 3]) / INPUT_DIVISOR;
        }
        let mut y = self.conv32_down.forward(&input);
        y = MaxPool2d::new(3, 2, 0, false).forward(&y);
        for layer in &self.layers {
            y = layer.forward(&y);
        }
        self.fc.forward(&global_avg_pool(&y))
    }
}
