//! Winograd's minimal filtering F(2×2, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2016). A 2×2 output tile is computed from a
//! 4×4 input tile with 16 multiplies per input/output channel pair instead of 36:
//!
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`
//!
//! Summed over input channels, the element-wise products become 16 GEMMs
//! `M[ξ] (out × tiles) = U[ξ] (out × in) · V[ξ] (in × tiles)`, one per tile position ξ, so the
//! arithmetic still runs in `gemm`'s kernels. The transforms only add, subtract and halve, so
//! the results differ from direct convolution by rounding alone (a few ulp).

use super::activation::Activation;
use super::gemm::gemm_set;
use super::scratch::Scratch;
use super::threads::{threads, SharedOut};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Floats of transformed input and output a work unit aims for: about 512 KB, inside L2.
const UNIT_FLOATS: usize = 128 * 1024;
/// Fewest tiles worth a unit: the 16 GEMMs have this many columns.
const MIN_UNIT_TILES: usize = 64;

/// Below either bound, im2col beats Winograd: with fewer tiles than one unit's worth the 16
/// GEMMs are too narrow (Mixed_7a's 256→256 on 8×8, 16 tiles: 0.34–0.40 ms on im2col against
/// 0.59–0.74), and with little work one core does it all while im2col splits the output
/// channels between the cores (Block35's 32→32 on 17×17, 2.6 M multiply-adds: 71 µs against
/// 83). Mixed_6a's 192→192 on 17×17 (81 tiles, 96 M) is faster on Winograd in the network.
const MIN_TILES: usize = MIN_UNIT_TILES;
const MIN_MULTIPLY_ADDS: usize = 8 << 20;

/// Whether a convolution with an [n, oc, oh, ow] output from `ic` channels pays for the
/// Winograd path.
pub(super) fn pays_off(n: usize, (oc, ic): (usize, usize), (oh, ow): (usize, usize)) -> bool {
    n * oh.div_ceil(2) * ow.div_ceil(2) >= MIN_TILES
        && n * oc * ic * 9 * oh * ow >= MIN_MULTIPLY_ADDS
}

/// Make `buf` at least `len` long (its contents are overwritten before they are read).
fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// A 3×3 kernel, transformed once.
#[derive(Clone, Debug)]
pub(super) struct Winograd {
    /// `G g Gᵀ` for every (out, in) pair, as 16 row-major [out × in] matrices, one per ξ.
    u: Vec<f32>,
    oc: usize,
    ic: usize,
}

/// `G x` for a 3-vector: G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
fn g_times(a: f32, b: f32, c: f32) -> [f32; 4] {
    [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
}

/// `Bᵀ x` for a 4-vector: Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
fn bt_times(d: [f32; 4]) -> [f32; 4] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

/// `Aᵀ x` for a 4-vector: Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
fn at_times(m: [f32; 4]) -> [f32; 2] {
    [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
}

impl Winograd {
    /// From a [out, in, 3, 3] weight (BatchNorm already folded in).
    pub(super) fn new(weight: &Tensor) -> Self {
        let (oc, ic) = (weight.shape[0], weight.shape[1]);
        assert_eq!(
            &weight.shape[2..],
            &[3, 3],
            "Winograd F(2×2, 3×3) needs a 3×3 kernel"
        );
        let mut u = vec![0.0; 16 * oc * ic];
        for (pair, g) in weight.data.chunks_exact(9).enumerate() {
            // G g (4×3), one column of g at a time.
            let cols: [[f32; 4]; 3] = std::array::from_fn(|j| g_times(g[j], g[3 + j], g[6 + j]));
            for i in 0..4 {
                // Row i of (G g), times Gᵀ.
                let row = g_times(cols[0][i], cols[1][i], cols[2][i]);
                for (j, &v) in row.iter().enumerate() {
                    u[(i * 4 + j) * oc * ic + pair] = v;
                }
            }
        }
        Winograd { u, oc, ic }
    }

    /// The convolution of `x` [N, in, H, W] with zero padding `pad`, plus `bias`, then `act`.
    pub(super) fn forward(
        &self,
        x: &Tensor,
        pad: (usize, usize),
        bias: &[f32],
        act: Activation,
    ) -> Tensor {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        assert_eq!(x.shape[1], self.ic, "conv input channels");
        let (oh, ow) = (h + 2 * pad.0 - 2, w + 2 * pad.1 - 2);
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        // Tile rows per unit: cache-sized, at least MIN_UNIT_TILES columns per GEMM, and
        // enough units to keep every thread busy.
        let per_row = 16 * (self.ic + self.oc) * tw;
        let cache_rows = (UNIT_FLOATS / per_row).max(1);
        let min_rows = MIN_UNIT_TILES.div_ceil(tw);
        let balance_rows = (n * th).div_ceil(2 * threads()).max(1);
        let rows_per_unit = cache_rows.min(balance_rows).max(min_rows).min(th);
        let units_per_image = th.div_ceil(rows_per_unit);

        let mut out = vec![0.0f32; n * self.oc * oh * ow];
        let shared = SharedOut(out.as_mut_ptr());
        let in_len = self.ic * h * w;
        let run = |u: usize| {
            let (b, part) = (u / units_per_image, u % units_per_image);
            let rows = part * rows_per_unit..((part + 1) * rows_per_unit).min(th);
            let image = &x.data[b * in_len..][..in_len];
            let tiles = rows.len() * tw;
            let mut scratch = Scratch::take();
            let Scratch { col: v, out: m } = &mut scratch.0;
            grow(v, 16 * self.ic * tiles);
            grow(m, 16 * self.oc * tiles);
            self.transform_input(image, (h, w), pad, rows.clone(), tw, v);
            let (uk, mk) = (self.oc * self.ic, self.oc * tiles);
            for xi in 0..16 {
                gemm_set(
                    self.oc,
                    tiles,
                    self.ic,
                    &mut m[xi * mk..][..mk],
                    &self.u[xi * uk..][..uk],
                    &v[xi * self.ic * tiles..][..self.ic * tiles],
                );
            }
            // Output rows of this unit, in every channel.
            let (y0, y1) = (2 * rows.start, (2 * rows.end).min(oh));
            let mut block = vec![0.0f32; (y1 - y0) * ow];
            let mut half = vec![0.0f32; 8 * tw];
            let mut pair_row = vec![0.0f32; 2 * tw];
            for (o, &bias_o) in bias.iter().enumerate().take(self.oc) {
                for (r, ty) in rows.clone().enumerate() {
                    // Aᵀ M A for the tw tiles of tile row r at once: each step is a line-wise
                    // sum over tiles, which vectorises (per tile it would be 16 gathers).
                    let base = o * tiles + r * tw;
                    let plane = |xi: usize| &m[xi * mk + base..][..tw];
                    // half[i][j] = (Aᵀ M)[i][j] for i < 2, j < 4, each a line of tw values.
                    for j in 0..4 {
                        let (m0, m1, m2, m3) =
                            (plane(j), plane(4 + j), plane(8 + j), plane(12 + j));
                        let (h0, h1) = half.split_at_mut(4 * tw);
                        let (h0, h1) = (&mut h0[j * tw..][..tw], &mut h1[j * tw..][..tw]);
                        for t in 0..tw {
                            [h0[t], h1[t]] = at_times([m0[t], m1[t], m2[t], m3[t]]);
                        }
                    }
                    for (i, h) in half.chunks_exact(4 * tw).enumerate() {
                        let y = 2 * ty + i;
                        if y >= y1 {
                            break;
                        }
                        let (e0, e1, e2, e3) =
                            (&h[..tw], &h[tw..2 * tw], &h[2 * tw..3 * tw], &h[3 * tw..]);
                        for (t, pair) in pair_row.chunks_exact_mut(2).enumerate() {
                            let [a, b] = at_times([e0[t], e1[t], e2[t], e3[t]]);
                            (pair[0], pair[1]) = (a + bias_o, b + bias_o);
                        }
                        block[(y - y0) * ow..][..ow].copy_from_slice(&pair_row[..ow]);
                    }
                }
                act.apply(o, &mut block);
                // SAFETY: this unit alone owns rows y0..y1 of image b in every channel; `out`
                // outlives the parallel loop and nothing else touches it meanwhile.
                unsafe { shared.write(((b * self.oc + o) * oh + y0) * ow, &block) };
            }
        };
        let units = n * units_per_image;
        if units == 1 || threads() == 1 {
            (0..units).for_each(run);
        } else {
            (0..units).into_par_iter().for_each(run);
        }
        Tensor::new(vec![n, self.oc, oh, ow], out)
    }

    /// `V[ξ][c × tiles] = (Bᵀ d B)[ξ]` for the input tiles of tile rows `rows` of one image,
    /// into `v`. `Bᵀ d` runs over whole (zero-padded) rows at once, so that it vectorises; the
    /// `· B` step then works on each tile's four columns.
    #[allow(clippy::too_many_arguments)]
    fn transform_input(
        &self,
        image: &[f32],
        (h, w): (usize, usize),
        (ph, pw): (usize, usize),
        rows: std::ops::Range<usize>,
        tw: usize,
        v: &mut [f32],
    ) {
        let tiles = rows.len() * tw;
        let plane_stride = self.ic * tiles;
        // A tile row reads input columns −pw .. 2·tw + 2 − pw.
        let width = 2 * tw + 2;
        let mut padded = vec![0.0f32; 4 * width];
        let mut combined = vec![0.0f32; 4 * width];
        let (mut even, mut odd) = (vec![0.0f32; tw + 1], vec![0.0f32; tw + 1]);
        for (c, xc) in image.chunks_exact(h * w).enumerate() {
            for (r, ty) in rows.clone().enumerate() {
                for (i, dst) in padded.chunks_exact_mut(width).enumerate() {
                    dst.fill(0.0);
                    let y = (2 * ty + i) as isize - ph as isize;
                    if (0..h as isize).contains(&y) {
                        let src = &xc[y as usize * w..][..w];
                        let n = w.min(width - pw);
                        dst[pw..pw + n].copy_from_slice(&src[..n]);
                    }
                }
                let (p0, rest) = padded.split_at(width);
                let (p1, rest) = rest.split_at(width);
                let (p2, p3) = rest.split_at(width);
                let (e0, rest) = combined.split_at_mut(width);
                let (e1, rest) = rest.split_at_mut(width);
                let (e2, e3) = rest.split_at_mut(width);
                for x in 0..width {
                    let [a, b, c2, d] = bt_times([p0[x], p1[x], p2[x], p3[x]]);
                    (e0[x], e1[x], e2[x], e3[x]) = (a, b, c2, d);
                }
                // `· B` over the tiles of the row at once: tile tx reads e[2tx .. 2tx + 4],
                // that is even[tx], odd[tx], even[tx + 1], odd[tx + 1].
                for (i, e) in combined.chunks_exact(width).enumerate() {
                    for (t, pair) in e.chunks_exact(2).enumerate() {
                        (even[t], odd[t]) = (pair[0], pair[1]);
                    }
                    let base = (i * 4) * plane_stride + c * tiles + r * tw;
                    let (v0, rest) = v[base..].split_at_mut(plane_stride);
                    let (v1, rest) = rest.split_at_mut(plane_stride);
                    let (v2, v3) = rest.split_at_mut(plane_stride);
                    let (v0, v1, v2, v3) =
                        (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
                    for t in 0..tw {
                        [v0[t], v1[t], v2[t], v3[t]] =
                            bt_times([even[t], odd[t], even[t + 1], odd[t + 1]]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::conv::ConvPath;
    use crate::nn::relu_inplace;
    use crate::nn::testing::{conv, max_diff, values};
    use crate::nn::Activation;
    use crate::tensor::Tensor;

    #[test]
    fn winograd_path_agrees_with_direct_loops() {
        // 3×3 stride 1, 32+ channels: odd and even map sizes (partial edge tiles), padded and
        // not, batches, IRV1's Mixed_6a shape; with ReLU fused. Only the last three are large
        // enough for `forward` to choose Winograd; the others call it directly.
        let cases = [
            (conv(32, 32, 3, 3, (1, 1), (0, 0)), [1, 32, 21, 18]),
            (conv(40, 32, 3, 3, (1, 1), (1, 1)), [2, 32, 9, 12]),
            (conv(48, 36, 3, 3, (1, 1), (1, 1)), [1, 36, 17, 17]),
            (conv(256, 256, 3, 3, (1, 1), (1, 1)), [1, 256, 8, 8]),
            (conv(32, 64, 3, 3, (1, 1), (0, 0)), [3, 64, 5, 4]),
            (conv(64, 80, 3, 3, (1, 1), (0, 0)), [1, 80, 38, 38]),
            (conv(32, 32, 3, 3, (1, 1), (1, 1)), [4, 32, 17, 17]),
            (conv(192, 192, 3, 3, (1, 1), (1, 1)), [1, 192, 17, 17]),
        ];
        for (i, (c, shape)) in cases.iter().enumerate() {
            assert_eq!(
                c.plan(shape, 2) == ConvPath::Winograd,
                i >= 5,
                "case {i}: path chosen"
            );
            let x = Tensor::new(
                shape.to_vec(),
                values(shape.iter().product(), 70 + i as u64),
            );
            let mut want = c.forward_naive(&x);
            relu_inplace(&mut want);
            let got = c.forward_winograd(&x, Activation::Relu);
            // Relative to the magnitude of a sum of 9·in products of values in [-1, 1).
            let d = max_diff(&got, &want);
            assert!(d < 2e-4, "case {i}: {d}");
        }
    }
}
