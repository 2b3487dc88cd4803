//! Narrow calls: few output columns, so the output channels are the GEMM's vector dimension.

use super::Conv2d;
use crate::nn::scratch::Scratch;
use crate::nn::threads::{channel_parts, for_each_part, threads, SharedOut, PAR_GEMM_MIN_WORK};
use crate::tensor::Tensor;
use gemm::Parallelism;

impl Conv2d {
    /// Few output columns: `out_t[cols × oc] = im2col(x)ᵀ · Wᵀ`, output channels as the
    /// GEMM's vector dimension, then transposed into NCHW. Vectorising over 9 pixels (IRV1's
    /// 3×3 maps) would waste most of each AVX-512 register; over 192–1792 channels nothing is
    /// wasted, and the weights are read in the layout the kernel wants (54 µs against
    /// 139 for 192×1792 · 1792×9 on one core). Channels are split between the threads.
    pub(super) fn forward_narrow(&self, x: &Tensor, (oh, ow): (usize, usize)) -> Tensor {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        let oc = self.weight.shape[0];
        let k = self.weight.len() / oc;
        let plane = oh * ow;
        let cols = n * plane;
        let wt = self.weight_t.get_or_init(|| {
            let mut t = vec![0.0f32; k * oc];
            for (o, row) in self.weight.data.chunks_exact(k).enumerate() {
                for (kk, &v) in row.iter().enumerate() {
                    t[kk * oc + o] = v;
                }
            }
            t
        });
        let mut scratch = Scratch::take();
        let (rhs, rhs_rs) = self.columns(
            &x.data,
            x.len() / n,
            h,
            w,
            oh,
            ow,
            0..n,
            0..oh,
            &mut scratch.0.col,
        );
        // [cols × oc], each row the bias to start from.
        let mut out_t = Vec::with_capacity(cols * oc);
        for _ in 0..cols {
            out_t.extend_from_slice(&self.bias);
        }
        let parts = if threads() > 1 && cols * oc * k >= PAR_GEMM_MIN_WORK {
            channel_parts(oc, threads())
        } else {
            channel_parts(oc, 1)
        };
        let dst = SharedOut(out_t.as_mut_ptr());
        for_each_part(&parts, |o| {
            // SAFETY: dst(i, j) = out_t[j·oc + o.start + i] for i < o.len(), j < cols: inside
            // `out_t`, columns `o` of it, disjoint between parts; lhs(i, kk) =
            // wt[kk·oc + o.start + i] and rhs(kk, j) = rhs[kk·rhs_rs + j] lie inside their
            // slices (k·oc values; `columns` returns k rows of `rhs_rs` ≥ cols).
            unsafe {
                gemm::gemm(
                    o.len(),
                    cols,
                    k,
                    dst.ptr().add(o.start),
                    oc as isize,
                    1,
                    true,
                    wt.as_ptr().add(o.start),
                    oc as isize,
                    1,
                    rhs.as_ptr(),
                    1,
                    rhs_rs as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            }
        });
        let mut out = vec![0.0f32; n * oc * plane];
        for b in 0..n {
            for (p, row) in out_t[b * plane * oc..(b + 1) * plane * oc]
                .chunks_exact(oc)
                .enumerate()
            {
                for (o, &v) in row.iter().enumerate() {
                    out[(b * oc + o) * plane + p] = v;
                }
            }
        }
        Tensor::new(vec![n, oc, oh, ow], out)
    }
}
