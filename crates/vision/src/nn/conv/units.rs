//! im2col + GEMM in work units: how a call's output columns are cut ([`UnitPlan`]), the units
//! run one single-threaded GEMM each ([`Conv2d::forward_units`]), and a lone unit splits its
//! output channels between the threads ([`Conv2d::forward_lone_unit`]).

use super::Conv2d;
use crate::nn::activation::Activation;
use crate::nn::gemm::{gemm_acc, gemm_acc_raw};
use crate::nn::scratch::Scratch;
use crate::nn::threads::{channel_parts, for_each_part, threads, SharedOut};
use crate::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;

/// im2col band size aimed for, in floats: about 256 KB, well inside L2.
const BAND_FLOATS: usize = 64 * 1024;
/// Fewest output columns worth one GEMM call.
const MIN_UNIT_COLS: usize = 512;

/// How a convolution's output columns are cut into work units: either row bands of single
/// images (`items_per_unit == 1`) or groups of whole images (`rows_per_unit == oh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnitPlan {
    n: usize,
    oh: usize,
    rows_per_unit: usize,
    items_per_unit: usize,
}

impl UnitPlan {
    pub(crate) fn new(n: usize, oh: usize, ow: usize, k: usize, threads: usize) -> Self {
        let plane = oh * ow;
        let cache_cols = (BAND_FLOATS / k.max(1)).max(MIN_UNIT_COLS);
        let balance_cols = (n * plane).div_ceil(2 * threads).max(MIN_UNIT_COLS);
        let target = cache_cols.min(balance_cols);
        let (rows_per_unit, items_per_unit) = if plane > target {
            ((target / ow).clamp(1, oh), 1)
        } else {
            // As many groups as the target size asks for, then images dealt out evenly (9
            // O-Net crops of 8×8 make groups of 5 and 4, not 8 and 1).
            let groups = n.div_ceil((target / plane).clamp(1, n));
            (oh, n.div_ceil(groups))
        };
        UnitPlan {
            n,
            oh,
            rows_per_unit,
            items_per_unit,
        }
    }

    fn bands(&self) -> usize {
        self.oh.div_ceil(self.rows_per_unit)
    }

    pub(crate) fn units(&self) -> usize {
        self.n.div_ceil(self.items_per_unit) * self.bands()
    }

    /// Images and output rows of unit `u`.
    pub(crate) fn unit(&self, u: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (g, band) = (u / self.bands(), u % self.bands());
        let items = g * self.items_per_unit..((g + 1) * self.items_per_unit).min(self.n);
        let rows = band * self.rows_per_unit..((band + 1) * self.rows_per_unit).min(self.oh);
        (items, rows)
    }
}

impl Conv2d {
    /// The output as its bias, [N, oc, plane]: single-image units accumulate onto it in place.
    pub(super) fn bias_planes(&self, n: usize, plane: usize) -> Vec<f32> {
        let out_len = self.weight.shape[0] * plane;
        let mut out = Vec::with_capacity(n * out_len);
        for _ in 0..n {
            for &b in &self.bias {
                out.extend(std::iter::repeat_n(b, plane));
            }
        }
        out
    }

    /// The units of `plan`, in parallel or one after the other on this thread, then `act` on
    /// each unit's output while it is in cache.
    pub(super) fn forward_units(
        &self,
        x: &Tensor,
        plan: &UnitPlan,
        parallel: bool,
        act: Activation,
    ) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let oc = self.weight.shape[0];
        let (oh, ow) = self.output_size(h, w);
        let (in_len, out_len) = (c * h * w, oc * oh * ow);
        let plane = oh * ow;
        let mut out = self.bias_planes(n, plane);
        let k = self.weight.len() / oc;
        let shared = SharedOut(out.as_mut_ptr());
        let run = |u: usize, scratch: &mut Scratch, par: Parallelism| {
            let (items, rows) = plan.unit(u);
            let band = rows.len() * ow;
            let cols = items.len() * band;
            let (rhs, rhs_rs) = self.columns(
                &x.data,
                in_len,
                h,
                w,
                oh,
                ow,
                items.clone(),
                rows.clone(),
                &mut scratch.col,
            );
            if items.len() == 1 {
                // SAFETY: unit `u` owns output rows `rows` of image `items.start` in every
                // channel: the oc×band view at row stride `plane` below. Units own disjoint
                // views, `out` outlives the loop and nothing else touches it meanwhile.
                unsafe {
                    let dst = shared.0.add(items.start * out_len + rows.start * ow);
                    gemm_acc_raw(
                        oc,
                        band,
                        k,
                        dst,
                        plane,
                        &self.weight.data,
                        k,
                        rhs,
                        rhs_rs,
                        par,
                    );
                    for o in 0..oc {
                        act.apply(o, std::slice::from_raw_parts_mut(dst.add(o * plane), band));
                    }
                }
                return;
            }
            // Several images: GEMM into a bias-filled block, then scatter it.
            scratch.out.clear();
            for &b in &self.bias {
                scratch.out.extend(std::iter::repeat_n(b, cols));
            }
            gemm_acc(
                oc,
                cols,
                k,
                &mut scratch.out,
                cols,
                &self.weight.data,
                k,
                rhs,
                rhs_rs,
                par,
            );
            for (o, row) in scratch.out.chunks_exact_mut(cols).enumerate() {
                act.apply(o, row);
            }
            for (j, b) in items.enumerate() {
                for o in 0..oc {
                    let src = &scratch.out[o * cols + j * band..][..band];
                    // SAFETY: as above, image `b` rows `rows` belong to this unit only.
                    unsafe { shared.write(b * out_len + o * plane + rows.start * ow, src) };
                }
            }
        };
        let units = plan.units();
        if parallel {
            (0..units)
                .into_par_iter()
                .for_each_init(Scratch::take, |scratch, u| {
                    run(u, &mut scratch.0, Parallelism::None)
                });
        } else {
            let mut scratch = Scratch::take();
            for u in 0..units {
                run(u, &mut scratch.0, Parallelism::None);
            }
        }
        Tensor::new(vec![n, oc, oh, ow], out)
    }

    /// The whole call as one unit, its output channels split between the threads. `out`
    /// holds the bias.
    pub(super) fn forward_lone_unit(&self, x: &Tensor, plan: &UnitPlan, out: &mut [f32]) {
        let (h, w) = (x.shape[2], x.shape[3]);
        let oc = self.weight.shape[0];
        let k = self.weight.len() / oc;
        let (oh, ow) = self.output_size(h, w);
        let (plane, in_len) = (oh * ow, x.len() / x.shape[0].max(1));
        let (items, rows) = plan.unit(0);
        let band = rows.len() * ow;
        let cols = items.len() * band;
        let mut scratch = Scratch::take();
        let (rhs, rhs_rs) = self.columns(
            &x.data,
            in_len,
            h,
            w,
            oh,
            ow,
            items.clone(),
            rows.clone(),
            &mut scratch.0.col,
        );
        let parts = channel_parts(oc, threads());
        // Several images: GEMM into a bias-filled [oc × cols] block, scattered afterwards.
        let mut block = Vec::new();
        let (dst_slice, dst_rs) = if items.len() == 1 {
            let start = items.start * oc * plane + rows.start * ow;
            (&mut out[start..], plane)
        } else {
            for &b in &self.bias {
                block.extend(std::iter::repeat_n(b, cols));
            }
            (&mut block[..], cols)
        };
        assert!(
            dst_slice.len() >= (oc - 1) * dst_rs + cols,
            "lone unit view"
        );
        let dst = SharedOut(dst_slice.as_mut_ptr());
        for_each_part(&parts, |o| {
            // SAFETY: part `o` writes rows `o` of the oc×band view at `dst` (row stride
            // `dst_rs`), which lies inside `out` (or `block`); parts own disjoint rows, and the
            // buffer outlives this call and is not otherwise touched meanwhile.
            unsafe {
                gemm_acc_raw(
                    o.len(),
                    cols,
                    k,
                    dst.ptr().add(o.start * dst_rs),
                    dst_rs,
                    &self.weight.data[o.start * k..],
                    k,
                    rhs,
                    rhs_rs,
                    Parallelism::None,
                )
            }
        });
        if items.len() > 1 {
            for (j, b) in items.enumerate() {
                for o in 0..oc {
                    let src = &block[o * cols + j * band..][..band];
                    let start = b * oc * plane + o * plane + rows.start * ow;
                    out[start..start + band].copy_from_slice(src);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::{conv, max_diff, values};

    #[test]
    fn unit_plans_cover_every_output_column_once() {
        for (n, oh, ow, k) in [
            (1, 287, 383, 27),
            (151, 22, 22, 27),
            (1, 17, 17, 896),
            (8, 8, 8, 2304),
            (3, 5, 1000, 9),
        ] {
            let plan = UnitPlan::new(n, oh, ow, k, 2);
            let mut seen = vec![0u8; n * oh];
            for u in 0..plan.units() {
                let (items, rows) = plan.unit(u);
                assert!(items.len() <= plan.items_per_unit && rows.len() <= plan.rows_per_unit);
                for b in items {
                    for r in rows.clone() {
                        seen[b * oh + r] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{n}×{oh}×{ow}");
        }
    }

    #[test]
    fn row_bands_and_image_groups_agree_with_direct_loops() {
        // (conv, input shape): one large image cut into row bands (3×3, padded 3×3 and 1×7,
        // 1×1 and strided), and batches of small images grouped into units.
        let cases = [
            (conv(10, 3, 3, 3, (1, 1), (0, 0)), [1, 3, 60, 70]),
            (conv(10, 4, 3, 3, (1, 1), (1, 1)), [1, 4, 90, 70]),
            (conv(6, 5, 7, 1, (1, 1), (3, 0)), [1, 5, 80, 60]),
            (conv(6, 40, 1, 1, (1, 1), (0, 0)), [2, 40, 50, 41]),
            (conv(7, 5, 3, 3, (2, 2), (1, 1)), [1, 5, 81, 77]),
            (conv(16, 8, 3, 3, (1, 1), (1, 1)), [9, 8, 12, 12]),
            (conv(12, 3, 3, 3, (1, 1), (0, 0)), [37, 3, 24, 24]),
            (conv(5, 9, 1, 1, (1, 1), (0, 0)), [23, 9, 6, 6]),
        ];
        for (i, (c, shape)) in cases.iter().enumerate() {
            let x = Tensor::new(
                shape.to_vec(),
                values(shape.iter().product(), 40 + i as u64),
            );
            let d = max_diff(&c.forward(&x), &c.forward_naive(&x));
            assert!(d < 1e-4, "case {i}: {d}");
        }
    }
}
