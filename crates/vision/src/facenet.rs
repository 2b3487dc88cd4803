//! FaceNet's InceptionResnetV1 (Szegedy et al. 2016; Schroff et al. 2015) as facenet-pytorch
//! defines it: one struct per block, built from the state dict, BatchNorm (eps 1e-3) folded at
//! load. Input 160×160, `(x − 127.5) / 128`; output 512-d, L2-normalised.
//!
//! Spatial sizes for a 160×160 input: 160 → 79 (conv2d_1a) → 77 → 77 → 38 (maxpool_3a) → 38 →
//! 36 → 17 (conv2d_4b, 256 ch) → 8 (mixed_6a, 896 ch) → 3 (mixed_7a, 1792 ch) → 1 (avgpool).

use crate::error::ModelError;
use crate::nn::{
    cat_channels, global_avg_pool, in_pool, l2_normalize_rows, relu_inplace, Activation, Conv2d,
    Linear, MaxPool2d,
};
use crate::tensor::Tensor;
use crate::weights::{self, TensorMap};
use std::path::Path;

/// facenet-pytorch builds every BatchNorm with `eps=0.001` (TensorFlow's default, since the
/// weights were converted from David Sandberg's TF model).
const BN_EPS: f32 = 1e-3;

/// Embedding size.
pub const EMBEDDING_DIM: usize = 512;
/// Side of the square input crop.
pub const INPUT_SIZE: usize = 160;

/// Fold the BatchNorm at `{prefix}` (weight, bias, running_mean, running_var) into `conv`.
fn fold_bn(conv: &mut Conv2d, w: &TensorMap, prefix: &str) -> Result<(), ModelError> {
    let out = conv.weight.shape[0];
    let param = |name: &str| -> Result<&[f32], ModelError> {
        Ok(&w.get_shaped(&format!("{prefix}.{name}"), &[out])?.data)
    };
    let (gamma, beta, mean, var) = (
        param("weight")?,
        param("bias")?,
        param("running_mean")?,
        param("running_var")?,
    );
    conv.fold_batch_norm(gamma, beta, mean, var, BN_EPS);
    Ok(())
}

/// Convolution without bias → BatchNorm → ReLU (`{prefix}.conv`, `{prefix}.bn`).
struct BasicConv2d {
    conv: Conv2d,
}

impl BasicConv2d {
    fn load(
        w: &TensorMap,
        prefix: &str,
        (cin, cout): (usize, usize),
        kernel: (usize, usize),
        stride: usize,
        padding: (usize, usize),
    ) -> Result<Self, ModelError> {
        let weight = w
            .get_shaped(
                &format!("{prefix}.conv.weight"),
                &[cout, cin, kernel.0, kernel.1],
            )?
            .clone();
        let mut conv = Conv2d::new(weight, None, (stride, stride), padding);
        fold_bn(&mut conv, w, &format!("{prefix}.bn"))?;
        Ok(BasicConv2d { conv })
    }

    /// A square kernel, stride 1.
    fn square(
        w: &TensorMap,
        prefix: &str,
        channels: (usize, usize),
        k: usize,
        pad: usize,
    ) -> Result<Self, ModelError> {
        Self::load(w, prefix, channels, (k, k), 1, (pad, pad))
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.conv.forward_act(x, Activation::Relu)
    }
}

/// Run a `nn.Sequential` of BasicConv2d.
fn chain(layers: &[BasicConv2d], x: &Tensor) -> Tensor {
    let (first, rest) = layers
        .split_first()
        .expect("a branch has at least one layer");
    rest.iter()
        .fold(first.forward(x), |y, layer| layer.forward(&y))
}

/// The 1×1 "up" projection (with bias) that closes every residual block.
fn load_up(w: &TensorMap, prefix: &str, (cin, cout): (usize, usize)) -> Result<Conv2d, ModelError> {
    let weight = w
        .get_shaped(&format!("{prefix}.conv2d.weight"), &[cout, cin, 1, 1])?
        .clone();
    let bias = w
        .get_shaped(&format!("{prefix}.conv2d.bias"), &[cout])?
        .data
        .clone();
    Ok(Conv2d::new(weight, Some(bias), (1, 1), (0, 0)))
}

/// `relu?(x + scale · up(branches))`: the Inception-ResNet shortcut.
fn residual(x: &Tensor, up: &Conv2d, branches: &[&Tensor], scale: f32, relu: bool) -> Tensor {
    let mut out = up.forward(&cat_channels(branches));
    for (o, &xi) in out.data.iter_mut().zip(&x.data) {
        *o = *o * scale + xi;
    }
    if relu {
        relu_inplace(&mut out);
    }
    out
}

// At batch 1 the late maps are small (17×17 down to 3×3) and every convolution is short, so
// the independent branches of a block run concurrently (`rayon::join`) on top of the channel
// split inside each convolution: fewer moments where one core waits for the other.

/// Inception-ResNet-A, 35×35 grid in the paper (17×17 here), 256 channels.
struct Block35 {
    branch0: BasicConv2d,
    branch1: [BasicConv2d; 2],
    branch2: [BasicConv2d; 3],
    conv2d: Conv2d,
    scale: f32,
}

impl Block35 {
    fn load(w: &TensorMap, p: &str, scale: f32) -> Result<Self, ModelError> {
        Ok(Block35 {
            branch0: BasicConv2d::square(w, &format!("{p}.branch0"), (256, 32), 1, 0)?,
            branch1: [
                BasicConv2d::square(w, &format!("{p}.branch1.0"), (256, 32), 1, 0)?,
                BasicConv2d::square(w, &format!("{p}.branch1.1"), (32, 32), 3, 1)?,
            ],
            branch2: [
                BasicConv2d::square(w, &format!("{p}.branch2.0"), (256, 32), 1, 0)?,
                BasicConv2d::square(w, &format!("{p}.branch2.1"), (32, 32), 3, 1)?,
                BasicConv2d::square(w, &format!("{p}.branch2.2"), (32, 32), 3, 1)?,
            ],
            conv2d: load_up(w, p, (96, 256))?,
            scale,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        // Branch 2 costs about as much as branches 0 and 1 together.
        let ((x0, x1), x2) = rayon::join(
            || rayon::join(|| self.branch0.forward(x), || chain(&self.branch1, x)),
            || chain(&self.branch2, x),
        );
        residual(x, &self.conv2d, &[&x0, &x1, &x2], self.scale, true)
    }
}

/// Inception-ResNet-B, 896 channels, factorised 1×7 / 7×1 convolutions.
struct Block17 {
    branch0: BasicConv2d,
    branch1: [BasicConv2d; 3],
    conv2d: Conv2d,
    scale: f32,
}

impl Block17 {
    fn load(w: &TensorMap, p: &str, scale: f32) -> Result<Self, ModelError> {
        Ok(Block17 {
            branch0: BasicConv2d::square(w, &format!("{p}.branch0"), (896, 128), 1, 0)?,
            branch1: [
                BasicConv2d::square(w, &format!("{p}.branch1.0"), (896, 128), 1, 0)?,
                BasicConv2d::load(w, &format!("{p}.branch1.1"), (128, 128), (1, 7), 1, (0, 3))?,
                BasicConv2d::load(w, &format!("{p}.branch1.2"), (128, 128), (7, 1), 1, (3, 0))?,
            ],
            conv2d: load_up(w, p, (256, 896))?,
            scale,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (x0, x1) = rayon::join(|| self.branch0.forward(x), || chain(&self.branch1, x));
        residual(x, &self.conv2d, &[&x0, &x1], self.scale, true)
    }
}

/// Inception-ResNet-C, 1792 channels, factorised 1×3 / 3×1 convolutions. The network's last
/// block has scale 1 and no ReLU.
struct Block8 {
    branch0: BasicConv2d,
    branch1: [BasicConv2d; 3],
    conv2d: Conv2d,
    scale: f32,
    relu: bool,
}

impl Block8 {
    fn load(w: &TensorMap, p: &str, scale: f32, relu: bool) -> Result<Self, ModelError> {
        Ok(Block8 {
            branch0: BasicConv2d::square(w, &format!("{p}.branch0"), (1792, 192), 1, 0)?,
            branch1: [
                BasicConv2d::square(w, &format!("{p}.branch1.0"), (1792, 192), 1, 0)?,
                BasicConv2d::load(w, &format!("{p}.branch1.1"), (192, 192), (1, 3), 1, (0, 1))?,
                BasicConv2d::load(w, &format!("{p}.branch1.2"), (192, 192), (3, 1), 1, (1, 0))?,
            ],
            conv2d: load_up(w, p, (384, 1792))?,
            scale,
            relu,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (x0, x1) = rayon::join(|| self.branch0.forward(x), || chain(&self.branch1, x));
        residual(x, &self.conv2d, &[&x0, &x1], self.scale, self.relu)
    }
}

/// Reduction-A: 256 → 896 channels, 17×17 → 8×8.
struct Mixed6a {
    branch0: BasicConv2d,
    branch1: [BasicConv2d; 3],
}

impl Mixed6a {
    fn load(w: &TensorMap, p: &str) -> Result<Self, ModelError> {
        Ok(Mixed6a {
            branch0: BasicConv2d::load(w, &format!("{p}.branch0"), (256, 384), (3, 3), 2, (0, 0))?,
            branch1: [
                BasicConv2d::square(w, &format!("{p}.branch1.0"), (256, 192), 1, 0)?,
                BasicConv2d::square(w, &format!("{p}.branch1.1"), (192, 192), 3, 1)?,
                BasicConv2d::load(w, &format!("{p}.branch1.2"), (192, 256), (3, 3), 2, (0, 0))?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let ((x0, x2), x1) = rayon::join(
            || {
                rayon::join(
                    || self.branch0.forward(x),
                    || MaxPool2d::new(3, 2, 0, false).forward(x),
                )
            },
            || chain(&self.branch1, x),
        );
        cat_channels(&[&x0, &x1, &x2])
    }
}

/// Reduction-B: 896 → 1792 channels, 8×8 → 3×3.
struct Mixed7a {
    branch0: [BasicConv2d; 2],
    branch1: [BasicConv2d; 2],
    branch2: [BasicConv2d; 3],
}

impl Mixed7a {
    fn load(w: &TensorMap, p: &str) -> Result<Self, ModelError> {
        let down = |name: &str, channels| {
            BasicConv2d::load(w, &format!("{p}.{name}"), channels, (3, 3), 2, (0, 0))
        };
        Ok(Mixed7a {
            branch0: [
                BasicConv2d::square(w, &format!("{p}.branch0.0"), (896, 256), 1, 0)?,
                down("branch0.1", (256, 384))?,
            ],
            branch1: [
                BasicConv2d::square(w, &format!("{p}.branch1.0"), (896, 256), 1, 0)?,
                down("branch1.1", (256, 256))?,
            ],
            branch2: [
                BasicConv2d::square(w, &format!("{p}.branch2.0"), (896, 256), 1, 0)?,
                BasicConv2d::square(w, &format!("{p}.branch2.1"), (256, 256), 3, 1)?,
                down("branch2.2", (256, 256))?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let ((x0, x1), (x2, x3)) = rayon::join(
            || rayon::join(|| chain(&self.branch0, x), || chain(&self.branch1, x)),
            || {
                rayon::join(
                    || chain(&self.branch2, x),
                    || MaxPool2d::new(3, 2, 0, false).forward(x),
                )
            },
        );
        cat_channels(&[&x0, &x1, &x2, &x3])
    }
}

pub struct InceptionResnetV1 {
    conv2d_1a: BasicConv2d,
    conv2d_2a: BasicConv2d,
    conv2d_2b: BasicConv2d,
    conv2d_3b: BasicConv2d,
    conv2d_4a: BasicConv2d,
    conv2d_4b: BasicConv2d,
    repeat_1: Vec<Block35>,
    mixed_6a: Mixed6a,
    repeat_2: Vec<Block17>,
    mixed_7a: Mixed7a,
    repeat_3: Vec<Block8>,
    block8: Block8,
    /// `last_linear` (1792 → 512, no bias) with `last_bn` folded in.
    last_linear: Linear,
}

impl InceptionResnetV1 {
    /// Load a facenet-pytorch state dict (`20180402-114759-vggface2.pt`, legacy or zip format);
    /// `logits.*` and `*.num_batches_tracked` are ignored.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_tensors(&weights::load_torch(path)?)
    }

    /// Build the network from a state dict already read. Every tensor is checked for its shape,
    /// so a foreign file fails here, naming the first tensor that is missing or wrong.
    pub fn from_tensors(w: &TensorMap) -> Result<Self, ModelError> {
        let stem = |name: &str, channels, k, stride| {
            BasicConv2d::load(w, name, channels, (k, k), stride, (0, 0))
        };
        let conv2d_1a = stem("conv2d_1a", (3, 32), 3, 2)?;
        let conv2d_2a = stem("conv2d_2a", (32, 32), 3, 1)?;
        let conv2d_2b = BasicConv2d::square(w, "conv2d_2b", (32, 64), 3, 1)?;
        let conv2d_3b = stem("conv2d_3b", (64, 80), 1, 1)?;
        let conv2d_4a = stem("conv2d_4a", (80, 192), 3, 1)?;
        let conv2d_4b = stem("conv2d_4b", (192, 256), 3, 2)?;
        let repeat_1 = (0..5)
            .map(|i| Block35::load(w, &format!("repeat_1.{i}"), 0.17))
            .collect::<Result<_, _>>()?;
        let mixed_6a = Mixed6a::load(w, "mixed_6a")?;
        let repeat_2 = (0..10)
            .map(|i| Block17::load(w, &format!("repeat_2.{i}"), 0.10))
            .collect::<Result<_, _>>()?;
        let mixed_7a = Mixed7a::load(w, "mixed_7a")?;
        let repeat_3 = (0..5)
            .map(|i| Block8::load(w, &format!("repeat_3.{i}"), 0.20, true))
            .collect::<Result<_, _>>()?;
        let block8 = Block8::load(w, "block8", 1.0, false)?;

        // Fold last_bn through a 1×1 convolution view of the same [512, 1792] matrix.
        let linear = w.get_shaped("last_linear.weight", &[EMBEDDING_DIM, 1792])?;
        let mut folded = Conv2d::new(
            Tensor::new(vec![EMBEDDING_DIM, 1792, 1, 1], linear.data.clone()),
            None,
            (1, 1),
            (0, 0),
        );
        fold_bn(&mut folded, w, "last_bn")?;
        let last_linear = Linear::new(
            Tensor::new(vec![EMBEDDING_DIM, 1792], folded.weight.data),
            Some(folded.bias),
        );

        Ok(InceptionResnetV1 {
            conv2d_1a,
            conv2d_2a,
            conv2d_2b,
            conv2d_3b,
            conv2d_4a,
            conv2d_4b,
            repeat_1,
            mixed_6a,
            repeat_2,
            mixed_7a,
            repeat_3,
            block8,
            last_linear,
        })
    }

    /// [N, 3, 160, 160] standardised crops → [N, 512] L2-normalised embeddings.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        in_pool(|| self.forward_inspect(x, |_, _| {}))
    }

    /// [`forward`](Self::forward), handing each named stage's output to `inspect` on the way:
    /// `conv2d_1a`, `conv2d_2a`, `conv2d_2b`, `maxpool_3a`, `conv2d_3b`, `conv2d_4a`,
    /// `conv2d_4b`, `repeat_1`, `mixed_6a`, `repeat_2`, `mixed_7a`, `repeat_3`, `block8`,
    /// `before_last_linear` ([N, 1792]), `pre_l2norm` ([N, 512]). For parity tests and debugging.
    pub fn forward_inspect(&self, x: &Tensor, mut inspect: impl FnMut(&str, &Tensor)) -> Tensor {
        assert_eq!(x.shape.len(), 4, "InceptionResnetV1 expects [N, 3, H, W]");
        assert_eq!(x.shape[1], 3, "InceptionResnetV1 expects 3 channels");
        let mut stage = |name: &str, t: Tensor| {
            inspect(name, &t);
            t
        };
        let mut y = stage("conv2d_1a", self.conv2d_1a.forward(x));
        y = stage("conv2d_2a", self.conv2d_2a.forward(&y));
        y = stage("conv2d_2b", self.conv2d_2b.forward(&y));
        y = stage("maxpool_3a", MaxPool2d::new(3, 2, 0, false).forward(&y));
        y = stage("conv2d_3b", self.conv2d_3b.forward(&y));
        y = stage("conv2d_4a", self.conv2d_4a.forward(&y));
        y = stage("conv2d_4b", self.conv2d_4b.forward(&y));
        y = stage(
            "repeat_1",
            self.repeat_1.iter().fold(y, |y, b| b.forward(&y)),
        );
        y = stage("mixed_6a", self.mixed_6a.forward(&y));
        y = stage(
            "repeat_2",
            self.repeat_2.iter().fold(y, |y, b| b.forward(&y)),
        );
        y = stage("mixed_7a", self.mixed_7a.forward(&y));
        y = stage(
            "repeat_3",
            self.repeat_3.iter().fold(y, |y, b| b.forward(&y)),
        );
        y = stage("block8", self.block8.forward(&y));
        // Dropout is the identity at inference.
        let pooled = stage("before_last_linear", global_avg_pool(&y));
        let mut z = stage("pre_l2norm", self.last_linear.forward(&pooled));
        l2_normalize_rows(&mut z);
        z
    }
}
