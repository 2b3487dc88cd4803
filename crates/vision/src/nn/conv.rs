//! 2-D convolution: the layer, and [`Conv2d::plan`], the one place that chooses how a call is
//! computed. The paths themselves live beside it: work units of im2col + GEMM
//! (`conv/units.rs`, unfolding in `conv/im2col.rs`), narrow calls (`conv/narrow.rs`), and
//! Winograd (`winograd.rs`).

mod im2col;
mod narrow;
mod units;

use super::activation::{apply_planes, Activation};
use super::threads::threads;
use super::winograd;
use crate::tensor::Tensor;
pub(super) use units::UnitPlan;

/// Multiply-adds from which a lone work unit splits its output channels between the threads.
/// IRV1's 1×1 and 1×7 convolutions on 8×8 maps (7.3 M) split: a Block17 runs its short branch
/// beside the long one, and the thread done first takes half of the long branch's next layer.
/// That pays only while the other worker is awake (see [`in_pool`](super::in_pool)).
const LONE_SPLIT_MIN_WORK: usize = 2 << 20;

/// Output columns (N·OH·OW) up to which a convolution runs "narrow": output channels as the
/// GEMM's vector dimension (IRV1's 3×3 maps: 9 columns). See [`Conv2d::forward_narrow`].
const NARROW_MAX_COLS: usize = 32;

/// How one call of [`Conv2d::forward_act`] is computed, as [`Conv2d::plan`] chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvPath {
    /// An empty batch or output: nothing to compute.
    Empty,
    /// Few output columns: output channels as the GEMM's vector dimension
    /// ([`Conv2d::forward_narrow`]).
    Narrow,
    /// 3×3 stride 1 with many channels on a large enough map: Winograd F(2×2, 3×3).
    Winograd,
    /// im2col + GEMM in one work unit, its output channels split between the threads
    /// ([`Conv2d::forward_lone_unit`]).
    LoneSplit(UnitPlan),
    /// im2col + GEMM in work units of one single-threaded GEMM each, run in parallel when
    /// there are several units and threads ([`Conv2d::forward_units`]).
    Units { plan: UnitPlan, parallel: bool },
}

/// 2-D convolution, NCHW, with bias. BatchNorm that follows a convolution is folded into
/// `weight` and `bias` at load time (see [`Conv2d::fold_batch_norm`]).
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// [out, in, kh, kw]. Set it only before the first `forward`: the narrow path caches its
    /// transpose.
    pub weight: Tensor,
    pub bias: Vec<f32>,
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    /// `weight` as [in·kh·kw, out], made on the first narrow call (only the layers that see
    /// tiny maps pay its memory).
    weight_t: std::sync::OnceLock<Vec<f32>>,
    /// `weight` transformed for Winograd's F(2×2, 3×3), made on first use by the layers that
    /// take that path (see [`Conv2d::uses_winograd`]).
    winograd: std::sync::OnceLock<winograd::Winograd>,
    /// False keeps the layer on im2col: tests of the im2col path on Winograd shapes, and
    /// MTCNN's convolutions, where Winograd loses (layers of 16–31 channels, and batches of
    /// small crops that im2col groups into one larger GEMM).
    winograd_allowed: bool,
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
            weight_t: std::sync::OnceLock::new(),
            winograd: std::sync::OnceLock::new(),
            winograd_allowed: true,
        }
    }

    /// Keep this layer on im2col + GEMM even where [`Conv2d::uses_winograd`]'s shapes match.
    pub fn without_winograd(mut self) -> Self {
        self.winograd_allowed = false;
        self
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
        self.weight_t = std::sync::OnceLock::new();
        self.winograd = std::sync::OnceLock::new();
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

    /// 3×3 stride-1 convolutions with many channels run as Winograd F(2×2, 3×3) (see
    /// `nn/winograd.rs`): 2.25× fewer multiplies, and with 32+ channels on each side its GEMMs
    /// are still large enough to run at full speed. Small maps stay on im2col (see
    /// [`winograd::pays_off`]).
    fn uses_winograd(&self, n: usize, oh: usize, ow: usize) -> bool {
        let s = &self.weight.shape;
        s[2] == 3
            && s[3] == 3
            && self.stride == (1, 1)
            && s[0] >= 32
            && s[1] >= 32
            && self.winograd_allowed
            && winograd::pays_off(n, (s[0], s[1]), (oh, ow))
    }

    /// The Winograd path, whatever the map size.
    pub(super) fn forward_winograd(&self, x: &Tensor, act: Activation) -> Tensor {
        let wino = self
            .winograd
            .get_or_init(|| winograd::Winograd::new(&self.weight));
        wino.forward(x, self.padding, &self.bias, act)
    }

    /// How a call on input of `shape` ([N, C, H, W]) runs with `threads` threads. The
    /// forward dispatches on this and nothing else; tests ask it which path a layer takes.
    pub(crate) fn plan(&self, shape: &[usize], threads: usize) -> ConvPath {
        let (n, h, w) = (shape[0], shape[2], shape[3]);
        let oc = self.weight.shape[0];
        let (oh, ow) = self.output_size(h, w);
        let out_len = oc * oh * ow;
        if n == 0 || out_len == 0 {
            return ConvPath::Empty;
        }
        if n * oh * ow <= NARROW_MAX_COLS {
            return ConvPath::Narrow;
        }
        if self.uses_winograd(n, oh, ow) {
            return ConvPath::Winograd;
        }
        let k = self.weight.len() / oc;
        let plan = UnitPlan::new(n, oh, ow, k, threads);
        let units = plan.units();
        let work = n * out_len * k;
        if units == 1 && threads > 1 && work >= LONE_SPLIT_MIN_WORK {
            // One unit (IRV1 at batch 1 on 17×17 and 8×8 maps): its output channels are split
            // between the threads, one single-threaded GEMM each on the shared columns. This
            // beats `gemm`'s own threading at these sizes, which split the few columns.
            ConvPath::LoneSplit(plan)
        } else {
            ConvPath::Units {
                plan,
                parallel: units > 1 && threads > 1,
            }
        }
    }

    /// [N, in, H, W] → [N, out, OH, OW].
    ///
    /// `out[oc × cols] = W[oc × in·kh·kw] · im2col(x)[in·kh·kw × cols] + bias`. The output
    /// columns (N·OH·OW) are cut into work units: row bands of one image when images are large
    /// (so the im2col band stays in cache), groups of whole images when they are small (so
    /// each GEMM is big enough to run at full speed). Units run in parallel, one
    /// single-threaded GEMM each; a large lone unit splits its output channels between the
    /// threads instead, and a call with few output columns runs "narrow". 1×1 stride-1
    /// convolutions read the input directly when a unit covers one image. 3×3 stride-1 layers
    /// with many channels run as Winograd. [`Conv2d::plan`] chooses.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_act(x, Activation::Identity)
    }

    /// [`forward`](Self::forward) followed by `act`, fused: each unit applies it to its own
    /// output right after its GEMM.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Tensor {
        assert_eq!(x.shape.len(), 4, "conv input must be NCHW");
        if let Activation::PRelu(slopes) = act {
            assert_eq!(slopes.len(), self.weight.shape[0], "prelu channels");
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        assert_eq!(c, self.weight.shape[1], "conv input channels");
        let oc = self.weight.shape[0];
        let (oh, ow) = self.output_size(h, w);
        match self.plan(&x.shape, threads()) {
            ConvPath::Empty => Tensor::new(vec![n, oc, oh, ow], Vec::new()),
            ConvPath::Narrow => {
                let mut y = self.forward_narrow(x, (oh, ow));
                apply_planes(&mut y, act);
                y
            }
            ConvPath::Winograd => self.forward_winograd(x, act),
            ConvPath::LoneSplit(plan) => {
                let mut out = self.bias_planes(n, oh * ow);
                self.forward_lone_unit(x, &plan, &mut out);
                // Small maps (that is what makes a lone unit): the output is still in cache.
                let mut y = Tensor::new(vec![n, oc, oh, ow], out);
                apply_planes(&mut y, act);
                y
            }
            ConvPath::Units { plan, parallel } => self.forward_units(x, &plan, parallel, act),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::{conv, max_diff, values};
    use crate::nn::{relu_inplace, PReLU};

    /// The path each kind of layer in the networks takes, on the networks' own shapes (two
    /// threads unless said): a threshold moved in `plan` or `winograd::pays_off` moves one.
    #[test]
    fn plan_chooses_the_path_of_each_kind_of_layer() {
        use ConvPath::{Empty, LoneSplit, Narrow, Winograd};
        let units = |p: ConvPath| match p {
            ConvPath::Units { parallel, .. } => Some(parallel),
            _ => None,
        };
        let lone = |p: ConvPath| matches!(p, LoneSplit(_));
        // IRV1 conv2d_2a, 3×3 32→32 on the stem's 79×79 map of a 160×160 crop: Winograd; kept
        // on im2col, row bands in parallel.
        let stem = conv(32, 32, 3, 3, (1, 1), (0, 0));
        assert_eq!(stem.plan(&[1, 32, 79, 79], 2), Winograd);
        let stem_im2col = stem.clone().without_winograd();
        assert_eq!(units(stem_im2col.plan(&[1, 32, 79, 79], 2)), Some(true));
        // IRV1 conv2d_1a, 3×3/2 3→32 on the crop: row bands in parallel.
        let first = conv(32, 3, 3, 3, (2, 2), (0, 0));
        assert_eq!(units(first.plan(&[1, 3, 160, 160], 2)), Some(true));
        // Mixed_6a's 3×3 192→192 on 17×17 (81 tiles, 96 M multiply-adds): Winograd.
        let mixed_6a = conv(192, 192, 3, 3, (1, 1), (1, 1));
        assert_eq!(mixed_6a.plan(&[1, 192, 17, 17], 2), Winograd);
        // Block35's 3×3 32→32 on 17×17: too little work for Winograd (2.7 M), one unit whose
        // channels are split between the threads.
        let block35_3x3 = conv(32, 32, 3, 3, (1, 1), (1, 1));
        assert!(lone(block35_3x3.plan(&[1, 32, 17, 17], 2)));
        // Mixed_7a's 3×3 256→256 on 8×8: too few tiles for Winograd (16), one unit split.
        let mixed_7a = conv(256, 256, 3, 3, (1, 1), (1, 1));
        assert!(lone(mixed_7a.plan(&[1, 256, 8, 8], 2)));
        // Block35's 1×1 256→32 on 17×17: at batch 1 one unit of 2.4 M multiply-adds, split;
        // on one thread that unit runs as it is; at batch 8 one unit per image, in parallel.
        let block35_1x1 = conv(32, 256, 1, 1, (1, 1), (0, 0));
        assert!(lone(block35_1x1.plan(&[1, 256, 17, 17], 2)));
        assert_eq!(units(block35_1x1.plan(&[1, 256, 17, 17], 1)), Some(false));
        assert_eq!(units(block35_1x1.plan(&[8, 256, 17, 17], 2)), Some(true));
        // Block8's 1×1 1792→192 on 3×3: narrow up to batch 3 (27 output columns); at batch 4
        // (36 columns) the four images make one unit, split.
        let block8 = conv(192, 1792, 1, 1, (1, 1), (0, 0));
        assert_eq!(block8.plan(&[1, 1792, 3, 3], 2), Narrow);
        assert_eq!(block8.plan(&[3, 1792, 3, 3], 2), Narrow);
        assert!(lone(block8.plan(&[4, 1792, 3, 3], 2)));
        // P-Net conv1, 3×3 3→10: the 288×384 first pyramid level of a 640×480 photo in row
        // bands in parallel; a 13×17 level is one small unit, run as it is.
        let pnet_conv1 = conv(10, 3, 3, 3, (1, 1), (0, 0)).without_winograd();
        assert_eq!(units(pnet_conv1.plan(&[1, 3, 288, 384], 2)), Some(true));
        assert_eq!(units(pnet_conv1.plan(&[1, 3, 13, 17], 2)), Some(false));
        // No images: nothing to compute.
        assert_eq!(stem.plan(&[0, 32, 79, 79], 2), Empty);
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
    fn narrow_and_channel_split_paths_agree_with_direct_loops() {
        // Narrow (≤ 32 output columns): IRV1-like 3×3 maps, padded, strided, 1×3, batches,
        // with enough work to split the channels between threads (odd channel counts).
        // Lone units split by channels: a 17×17 map, and a group of three 8×8 images (kept
        // on im2col: the Winograd path has its own test).
        let cases = [
            (conv(100, 256, 3, 3, (1, 1), (1, 1)), [1, 256, 3, 3]),
            (conv(37, 64, 1, 3, (1, 1), (0, 1)), [2, 64, 3, 3]),
            (conv(200, 96, 3, 3, (2, 2), (0, 0)), [1, 96, 8, 8]),
            (conv(130, 700, 1, 1, (1, 1), (0, 0)), [1, 700, 3, 3]),
            (conv(21, 5, 3, 1, (1, 1), (1, 0)), [3, 5, 3, 1]),
            (
                conv(70, 96, 3, 3, (1, 1), (1, 1)).without_winograd(),
                [1, 96, 17, 17],
            ),
            (
                conv(50, 128, 3, 3, (1, 1), (1, 1)).without_winograd(),
                [3, 128, 8, 8],
            ),
            (conv(90, 300, 1, 1, (1, 1), (0, 0)), [1, 300, 8, 8]),
        ];
        for (i, (c, shape)) in cases.iter().enumerate() {
            let x = Tensor::new(
                shape.to_vec(),
                values(shape.iter().product(), 70 + i as u64),
            );
            let (fast, naive) = (c.forward(&x), c.forward_naive(&x));
            let scale = naive.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let d = max_diff(&fast, &naive);
            assert!(d < 1e-5 * scale, "case {i}: {d} (largest {scale})");
            // Twice: the second call reuses the cached transposed weights.
            assert_eq!(c.forward(&x), fast, "case {i}: second call");
        }
    }

    #[test]
    fn fused_activations_equal_separate_passes() {
        // Banded, grouped, lone split and narrow calls; ReLU and PReLU.
        let cases = [
            (conv(10, 3, 3, 3, (1, 1), (0, 0)), [1, 3, 60, 70]),
            (conv(12, 3, 3, 3, (1, 1), (0, 0)), [37, 3, 24, 24]),
            (conv(70, 96, 3, 3, (1, 1), (1, 1)), [1, 96, 17, 17]),
            (conv(100, 256, 3, 3, (1, 1), (1, 1)), [1, 256, 3, 3]),
            (conv(6, 40, 1, 1, (1, 1), (0, 0)), [2, 40, 50, 41]),
        ];
        for (i, (c, shape)) in cases.iter().enumerate() {
            let x = Tensor::new(
                shape.to_vec(),
                values(shape.iter().product(), 90 + i as u64),
            );
            let mut relu = c.forward(&x);
            relu_inplace(&mut relu);
            assert_eq!(c.forward_act(&x, Activation::Relu), relu, "case {i}: relu");
            let prelu = PReLU::new(values(c.out_channels(), 5));
            let mut expected = c.forward(&x);
            prelu.forward_inplace(&mut expected);
            let fused = c.forward_act(&x, Activation::PRelu(&prelu.weight));
            assert_eq!(fused, expected, "case {i}: prelu");
        }
    }
}
