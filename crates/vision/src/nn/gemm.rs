//! Row-major matrix products on the `gemm` crate, with their bounds checked. (The narrow
//! convolution path calls `gemm::gemm` itself, with the strides of its transposed layout.)

use gemm::Parallelism;

/// `dst[m×n] += lhs[m×k] · rhs[k×n]`, all row-major with the given row strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_acc(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n, "gemm dst too short");
    // SAFETY: `dst` covers the m×n strided view (checked above) and, borrowed mutably, aliases
    // nothing else.
    unsafe {
        gemm_acc_raw(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_rs,
            lhs,
            lhs_rs,
            rhs,
            rhs_rs,
            par,
        )
    }
}

/// [`gemm_acc`] into a raw destination.
///
/// # Safety
/// `dst` must be valid for reads and writes of the m×n view with row stride `dst_rs`, and no
/// other thread may access those elements during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_acc_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    // SAFETY: passed on from the caller.
    unsafe { gemm_raw(m, n, k, dst, dst_rs, true, lhs, lhs_rs, rhs, rhs_rs, par) }
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]`, all contiguous row-major, on this thread.
pub(super) fn gemm_set(m: usize, n: usize, k: usize, dst: &mut [f32], lhs: &[f32], rhs: &[f32]) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= m * n, "gemm dst too short");
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    // SAFETY: `dst` covers the contiguous m×n view (checked above) and, borrowed mutably,
    // aliases nothing else.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            n,
            false,
            lhs,
            k,
            rhs,
            n,
            Parallelism::None,
        )
    }
}

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, row-major with the given row strides: the one call
/// into `gemm` for both [`gemm_acc_raw`] (`accumulate`) and [`gemm_set`].
///
/// # Safety
/// As [`gemm_acc_raw`] (`dst` is only written when not accumulating).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    par: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(lhs.len() >= (m - 1) * lhs_rs + k, "gemm lhs too short");
    assert!(rhs.len() >= (k - 1) * rhs_rs + n, "gemm rhs too short");
    // SAFETY: the asserts keep the lhs and rhs views inside their slices; the caller vouches
    // for `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `dst[m×n] += lhs[m×k] · rhsᵀ` where `rhs` is `n×k` row-major (a torch `Linear` weight).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_acc_rhs_t(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    rhs_t: &[f32],
    par: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        dst.len() >= m * n && lhs.len() >= m * k && rhs_t.len() >= n * k,
        "linear gemm sizes"
    );
    // SAFETY: sizes checked above; rhs element (kk, j) is rhs_t[j·k + kk] (row stride 1,
    // column stride k), inside `rhs_t`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs_t.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}
