//! Unfolding the input into the GEMM's right-hand side (im2col), for a unit's output rows.

use super::Conv2d;

impl Conv2d {
    /// A 1×1 stride-1 convolution without padding: its input already is its im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.weight.shape[2] == 1
            && self.weight.shape[3] == 1
            && self.stride == (1, 1)
            && self.padding == (0, 0)
    }

    /// The GEMM right-hand side of a unit (output rows `rows` of images `items`) and its row
    /// stride: the input itself for a whole image under a 1×1 convolution, else im2col into
    /// `col`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn columns<'a>(
        &self,
        x: &'a [f32],
        in_len: usize,
        h: usize,
        w: usize,
        oh: usize,
        ow: usize,
        items: std::ops::Range<usize>,
        rows: std::ops::Range<usize>,
        col: &'a mut Vec<f32>,
    ) -> (&'a [f32], usize) {
        // A whole image's input already is its im2col matrix; a band of it is copied anyway,
        // because GEMM packs a contiguous band much faster than a strided one.
        if self.is_pointwise() && items.len() == 1 && rows.len() == oh {
            return (&x[items.start * in_len..], oh * ow);
        }
        let k = self.weight.len() / self.weight.shape[0];
        let band = rows.len() * ow;
        let cols = items.len() * band;
        // Every value is written below; only grow (a zero fill), never shrink.
        if col.len() < k * cols {
            col.resize(k * cols, 0.0);
        }
        for (j, b) in items.enumerate() {
            self.im2col(
                &x[b * in_len..][..in_len],
                h,
                w,
                ow,
                rows.clone(),
                &mut col[j * band..],
                cols,
            );
        }
        (col, cols)
    }

    /// Unfold output rows `rows` of one CHW image: `col[((c·kh + ky)·kw + kx)·col_rs + p]`
    /// for band position p, zeros where the kernel hangs over the padding.
    #[allow(clippy::too_many_arguments)]
    fn im2col(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        ow: usize,
        rows: std::ops::Range<usize>,
        col: &mut [f32],
        col_rs: usize,
    ) {
        let (ic, kh, kw) = (
            self.weight.shape[1],
            self.weight.shape[2],
            self.weight.shape[3],
        );
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        if (sh, sw) == (1, 1) {
            if (ph, pw) == (0, 0) {
                // All of MTCNN: every patch row is a plain slice of an input row.
                im2col_valid(x, ic, (h, w), (kh, kw), ow, rows, col, col_rs);
                return;
            }
            // Padded (IRV1's 1×7, 7×1, 1×3, 3×1 on small maps): copy the input rows this band
            // reads into zero-bordered planes once, then every patch row is a plain slice
            // again. Handling the border per patch row instead costs more than the GEMM on
            // 8×8 maps (7 168 short rows for a 1×7 over 128 channels).
            let (band_rows, pad_w) = (rows.len() + kh - 1, w + 2 * pw);
            let mut padded = vec![0.0f32; ic * band_rows * pad_w];
            for (xc, pc) in x
                .chunks_exact(h * w)
                .zip(padded.chunks_exact_mut(band_rows * pad_w))
            {
                for (r, prow) in pc.chunks_exact_mut(pad_w).enumerate() {
                    let y = (rows.start + r) as isize - ph as isize;
                    if (0..h as isize).contains(&y) {
                        prow[pw..pw + w].copy_from_slice(&xc[y as usize * w..][..w]);
                    }
                }
            }
            let band = 0..rows.len();
            im2col_valid(
                &padded,
                ic,
                (band_rows, pad_w),
                (kh, kw),
                ow,
                band,
                col,
                col_rs,
            );
            return;
        }
        let (ph, pw) = (ph as isize, pw as isize);
        let band = rows.len() * ow;
        for c in 0..ic {
            let xc = &x[c * h * w..(c + 1) * h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let dst = &mut col[((c * kh + ky) * kw + kx) * col_rs..][..band];
                    // Output columns whose input column lies inside the image: [ox0, ox1).
                    let first_in = kx as isize - pw;
                    let ox0 = if first_in >= 0 {
                        0
                    } else {
                        ((-first_in) as usize).div_ceil(sw)
                    };
                    let ox1 = if (w as isize) <= first_in {
                        0
                    } else {
                        ((w as isize - first_in) as usize).div_ceil(sw).min(ow)
                    };
                    for (oy, drow) in rows.clone().zip(dst.chunks_exact_mut(ow)) {
                        let iy = (oy * sh + ky) as isize - ph;
                        if iy < 0 || iy >= h as isize || ox0 >= ox1 {
                            drow.fill(0.0);
                            continue;
                        }
                        let src = &xc[iy as usize * w..(iy as usize + 1) * w];
                        drow[..ox0].fill(0.0);
                        drow[ox1..].fill(0.0);
                        let ix0 = (ox0 * sw) as isize + first_in;
                        if sw == 1 {
                            let s = ix0 as usize;
                            drow[ox0..ox1].copy_from_slice(&src[s..s + (ox1 - ox0)]);
                        } else {
                            for (i, d) in drow[ox0..ox1].iter_mut().enumerate() {
                                *d = src[ix0 as usize + i * sw];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// im2col of a stride-1 convolution without padding, output rows `rows` of one CHW image of
/// `h`×`w`: every patch row is a slice of an input row. With a kernel one column wide, the
/// band's rows are consecutive in the input too, and the whole band is one copy.
#[allow(clippy::too_many_arguments)]
fn im2col_valid(
    x: &[f32],
    ic: usize,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    ow: usize,
    rows: std::ops::Range<usize>,
    col: &mut [f32],
    col_rs: usize,
) {
    let band = rows.len() * ow;
    for (c, xc) in x.chunks_exact(h * w).take(ic).enumerate() {
        for ky in 0..kh {
            for kx in 0..kw {
                let dst = &mut col[((c * kh + ky) * kw + kx) * col_rs..][..band];
                if ow == w {
                    dst.copy_from_slice(&xc[(rows.start + ky) * w..][..band]);
                    continue;
                }
                for (oy, drow) in rows.clone().zip(dst.chunks_exact_mut(ow)) {
                    let start = (oy + ky) * w + kx;
                    for (d, &v) in drow.iter_mut().zip(&xc[start..start + ow]) {
                        *d = v;
                    }
                }
            }
        }
    }
}
