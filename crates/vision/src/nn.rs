//! The layers the networks are built from. Each holds its (BatchNorm-folded) weights and has a
//! `forward`. Convolution is im2col + GEMM (the `gemm` crate); this is the hot path of the whole
//! crate. Figures and the reasons for the choices are in `docs/engine.md`.

pub mod channels_last;
mod winograd;

use crate::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Multiply-adds below which a lone GEMM stays on one thread: splitting it costs more than
/// it saves.
const PAR_GEMM_MIN_WORK: usize = 1 << 20;

/// Multiply-adds from which a lone work unit splits its output channels between the threads.
/// IRV1's 1×1 and 1×7 convolutions on 8×8 maps (7.3 M) split: a Block17 runs its short branch
/// beside the long one, and the thread done first takes half of the long branch's next layer.
/// That pays only while the other worker is awake (see [`in_pool`]); with workers that slept
/// between layers, 8 M was the better threshold.
const LONE_SPLIT_MIN_WORK: usize = 2 << 20;

/// Output columns (N·OH·OW) up to which a convolution runs "narrow": output channels as the
/// GEMM's vector dimension (IRV1's 3×3 maps: 9 columns). See [`Conv2d::forward_narrow`].
const NARROW_MAX_COLS: usize = 32;

/// The output channels `0..m` cut into one range per thread, in multiples of 16 (an AVX-512
/// register of f32) so that no part wastes a partial vector it need not.
fn channel_parts(m: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let step = m.div_ceil(parts.max(1)).next_multiple_of(16);
    (0..m).step_by(step).map(|o| o..(o + step).min(m)).collect()
}

/// Run `f` on every part, in parallel when there are several.
fn for_each_part(
    parts: &[std::ops::Range<usize>],
    f: impl Fn(std::ops::Range<usize>) + Sync + Send,
) {
    if parts.len() == 1 {
        f(parts[0].clone());
    } else {
        parts.par_iter().for_each(|r| f(r.clone()));
    }
}

/// `dst[m×n] += lhs[m×k] · rhs[k×n]`, all row-major with the given row strides.
#[allow(clippy::too_many_arguments)]
fn gemm_acc(
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
unsafe fn gemm_acc_raw(
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
fn gemm_set(m: usize, n: usize, k: usize, dst: &mut [f32], lhs: &[f32], rhs: &[f32]) {
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
fn gemm_acc_rhs_t(
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

/// Run `f` on one of rayon's pool threads while the caller waits. A network entered from
/// outside the pool (the server's request threads, the bench's main thread) would otherwise
/// hand each parallel layer to the pool and sleep until it is done: a cross-thread wake-up per
/// layer, about 130 of them in an IRV1 forward. Inside the pool, `f` runs directly.
///
/// While `f` runs, another worker is kept awake polling for its parallel work, so that a
/// layer's second half starts at once instead of after a wake-up.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let done = AtomicBool::new(false);
    rayon::scope(|s| {
        if threads() > 1 {
            s.spawn(|_| poll_for_work(&done));
        }
        let result = f();
        done.store(true, Ordering::Release);
        result
    })
}

/// How long a polling worker goes without finding work before it gives up and sleeps.
const POLL_IDLE_LIMIT: Duration = Duration::from_millis(1);

/// Runs pool work as it appears until `done` is set, or until none has appeared for
/// [`POLL_IDLE_LIMIT`]. The limit is what keeps concurrent networks safe: a worker waiting for
/// its own stolen job may pick up another network's poller, which then blocks that worker
/// until the other network is done; two such pollers could wait on each other, but only until
/// both have been idle for the limit.
fn poll_for_work(done: &AtomicBool) {
    let mut last_work = Instant::now();
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            last_work = Instant::now();
        } else if last_work.elapsed() > POLL_IDLE_LIMIT {
            return;
        } else {
            std::hint::spin_loop();
        }
    }
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// im2col band size aimed for, in floats: about 256 KB, well inside L2.
const BAND_FLOATS: usize = 64 * 1024;
/// Fewest output columns worth one GEMM call.
const MIN_UNIT_COLS: usize = 512;

/// How a convolution's output columns are cut into work units: either row bands of single
/// images (`items_per_unit == 1`) or groups of whole images (`rows_per_unit == oh`).
struct UnitPlan {
    n: usize,
    oh: usize,
    rows_per_unit: usize,
    items_per_unit: usize,
}

impl UnitPlan {
    fn new(n: usize, oh: usize, ow: usize, k: usize, threads: usize) -> Self {
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

    fn units(&self) -> usize {
        self.n.div_ceil(self.items_per_unit) * self.bands()
    }

    /// Images and output rows of unit `u`.
    fn unit(&self, u: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (g, band) = (u / self.bands(), u % self.bands());
        let items = g * self.items_per_unit..((g + 1) * self.items_per_unit).min(self.n);
        let rows = band * self.rows_per_unit..((band + 1) * self.rows_per_unit).min(self.oh);
        (items, rows)
    }
}

/// Per-thread buffers of the convolution: the im2col band and the GEMM result. They are
/// kept between calls ([`Scratch::take`]): a fresh buffer costs a zero fill and page faults
/// every time, which was a fifth of the im2col time in detection.
#[derive(Default)]
struct Scratch {
    col: Vec<f32>,
    out: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

impl Scratch {
    /// This thread's buffers, taken out while in use: a convolution that starts on the same
    /// thread meanwhile (rayon work stealing) finds none and makes its own.
    fn take() -> ScratchGuard {
        ScratchGuard(SCRATCH.with(|s| s.take()))
    }
}

/// Puts the buffers back when dropped, keeping the larger if another call put some back.
struct ScratchGuard(Scratch);

impl Drop for ScratchGuard {
    fn drop(&mut self) {
        let mine = std::mem::take(&mut self.0);
        SCRATCH.with(|s| {
            let other = s.take();
            s.set(Scratch {
                col: larger(mine.col, other.col),
                out: larger(mine.out, other.out),
            });
        });
    }
}

fn larger(a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    if a.capacity() >= b.capacity() {
        a
    } else {
        b
    }
}

/// `act` over every channel plane of an NCHW tensor.
fn apply_planes(y: &mut Tensor, act: Activation) {
    if matches!(act, Activation::Identity) {
        return;
    }
    // [N, C, …]: everything after the channel axis is one channel's row ([N, C] too).
    let (c, plane) = (y.shape[1], y.shape[2..].iter().product::<usize>());
    for (i, row) in y.data.chunks_exact_mut(plane.max(1)).enumerate() {
        act.apply(i % c, row);
    }
}

/// The output buffer, shared by the work units, each writing its own disjoint ranges.
struct SharedOut(*mut f32);

// SAFETY: units write disjoint ranges (see `Conv2d::forward`); the pointer is only used while
// the owning Vec is alive and unborrowed.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn ptr(&self) -> *mut f32 {
        self.0
    }

    /// Copy `src` to `offset`. Caller guarantees the range is in bounds and owned by it.
    unsafe fn write(&self, offset: usize, src: &[f32]) {
        std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(offset), src.len());
    }
}

/// What follows a convolution, applied by [`Conv2d::forward_act`] to each work unit's output
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
    fn apply(self, o: usize, row: &mut [f32]) {
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
    fn apply_channels_last(self, channels: usize, values: &mut [f32]) {
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
    /// False keeps the layer on im2col (tests of the im2col path on Winograd shapes, and
    /// MTCNN's convolutions: O-Net's 48×48 crop batches were faster on im2col, 17–19 ms against
    /// 19–20 for 32 crops on one thread, before R-Net and O-Net went channels-last).
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
    fn forward_winograd(&self, x: &Tensor, act: Activation) -> Tensor {
        let wino = self
            .winograd
            .get_or_init(|| winograd::Winograd::new(&self.weight));
        wino.forward(x, self.padding, &self.bias, act)
    }

    fn is_pointwise(&self) -> bool {
        self.weight.shape[2] == 1
            && self.weight.shape[3] == 1
            && self.stride == (1, 1)
            && self.padding == (0, 0)
    }

    /// [N, in, H, W] → [N, out, OH, OW].
    ///
    /// `out[oc × cols] = W[oc × in·kh·kw] · im2col(x)[in·kh·kw × cols] + bias`. The output
    /// columns (N·OH·OW) are cut into work units: row bands of one image when images are large
    /// (so the im2col band stays in cache), groups of whole images when they are small (so
    /// each GEMM is big enough to run at full speed). Units run in parallel, one
    /// single-threaded GEMM each; a large lone unit splits its output channels between the
    /// threads instead, and a call with few output columns runs "narrow". 1×1 stride-1
    /// convolutions read the input directly when a unit covers one image.
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
        let (in_len, out_len) = (c * h * w, oc * oh * ow);
        let plane = oh * ow;
        if n > 0 && out_len > 0 && n * plane <= NARROW_MAX_COLS {
            let mut y = self.forward_narrow(x, (oh, ow));
            apply_planes(&mut y, act);
            return y;
        }
        if self.uses_winograd(n, oh, ow) && out_len > 0 {
            return self.forward_winograd(x, act);
        }
        // The output starts as the bias; single-image units accumulate onto it in place.
        let mut out = Vec::with_capacity(n * out_len);
        for _ in 0..n {
            for &b in &self.bias {
                out.extend(std::iter::repeat_n(b, plane));
            }
        }
        if n == 0 || out_len == 0 {
            return Tensor::new(vec![n, oc, oh, ow], out);
        }
        let k = self.weight.len() / oc;
        let plan = UnitPlan::new(n, oh, ow, k, threads());
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
        let work = n * out_len * k;
        if units == 1 && threads() > 1 && work >= LONE_SPLIT_MIN_WORK {
            // One unit (IRV1 at batch 1 on 17×17 and 8×8 maps): its output channels are split
            // between the threads, one single-threaded GEMM each on the shared columns. This
            // beats `gemm`'s own threading at these sizes, which split the few columns.
            self.forward_lone_unit(x, &plan, &mut out);
            // Small maps (that is what makes a lone unit): the output is still in cache.
            let mut y = Tensor::new(vec![n, oc, oh, ow], out);
            apply_planes(&mut y, act);
            return y;
        } else if units == 1 || threads() == 1 {
            let mut scratch = Scratch::take();
            for u in 0..units {
                run(u, &mut scratch.0, Parallelism::None);
            }
        } else {
            (0..units)
                .into_par_iter()
                .for_each_init(Scratch::take, |scratch, u| {
                    run(u, &mut scratch.0, Parallelism::None)
                });
        }
        Tensor::new(vec![n, oc, oh, ow], out)
    }

    /// The whole call as one unit, its output channels split between the threads. `out`
    /// holds the bias.
    fn forward_lone_unit(&self, x: &Tensor, plan: &UnitPlan, out: &mut [f32]) {
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

    /// Few output columns: `out_t[cols × oc] = im2col(x)ᵀ · Wᵀ`, output channels as the
    /// GEMM's vector dimension, then transposed into NCHW. Vectorising over 9 pixels (IRV1's
    /// 3×3 maps) would waste most of each AVX-512 register; over 192–1792 channels nothing is
    /// wasted, and the weights are read in the layout the kernel wants (2.5× faster: 139 →
    /// 54 µs for 192×1792 · 1792×9 on one core). Channels are split between the threads.
    fn forward_narrow(&self, x: &Tensor, (oh, ow): (usize, usize)) -> Tensor {
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

    /// The GEMM right-hand side of a unit (output rows `rows` of images `items`) and its row
    /// stride: the input itself for a whole image under a 1×1 convolution, else im2col into
    /// `col`.
    #[allow(clippy::too_many_arguments)]
    fn columns<'a>(
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
            // again. Handling the border per patch row instead cost more than the GEMM on
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

/// Fully connected layer, torch layout: `weight` [out, in], `y = x·Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Vec<f32>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Vec<f32>>) -> Self {
        assert_eq!(weight.shape.len(), 2, "linear weight must be [out, in]");
        let out = weight.shape[0];
        let bias = bias.unwrap_or_else(|| vec![0.0; out]);
        assert_eq!(bias.len(), out, "linear bias length");
        Linear { weight, bias }
    }

    /// [N, in] (or any [N, …] whose trailing dims multiply to `in`) → [N, out].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (out_f, in_f) = (self.weight.shape[0], self.weight.shape[1]);
        let n = x.shape.first().copied().unwrap_or(0);
        assert_eq!(x.len(), n * in_f, "linear input features");
        let mut y = Vec::with_capacity(n * out_f);
        for _ in 0..n {
            y.extend_from_slice(&self.bias);
        }
        let par = if threads() > 1 && n * out_f * in_f >= PAR_GEMM_MIN_WORK {
            Parallelism::Rayon(threads())
        } else {
            Parallelism::None
        };
        gemm_acc_rhs_t(n, out_f, in_f, &mut y, &x.data, &self.weight.data, par);
        Tensor::new(vec![n, out_f], y)
    }
}

/// Parametric ReLU with one slope per channel (dimension 1): `max(0,x) + a_c·min(0,x)`.
#[derive(Clone, Debug)]
pub struct PReLU {
    pub weight: Vec<f32>,
}

impl PReLU {
    pub fn new(weight: Vec<f32>) -> Self {
        PReLU { weight }
    }

    /// In place on [N, C, …].
    pub fn forward_inplace(&self, x: &mut Tensor) {
        assert_eq!(x.shape[1], self.weight.len(), "prelu channels");
        apply_planes(x, Activation::PRelu(&self.weight));
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut y = x.clone();
        self.forward_inplace(&mut y);
        y
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
fn max_fast(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// Max pooling, NCHW, torch semantics: padding counts as −∞; with `ceil_mode` the last window
/// may hang over the edge but must start inside the (left-padded) input.
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub ceil_mode: bool,
}

impl MaxPool2d {
    pub fn new(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> Self {
        MaxPool2d {
            kernel,
            stride,
            padding,
            ceil_mode,
        }
    }

    /// torch's `pooling_output_shape`.
    pub fn output_len(&self, len: usize) -> usize {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        assert!(len + 2 * p >= k, "pool input {len} smaller than kernel {k}");
        let span = len + 2 * p - k;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= len + p {
            out -= 1;
        }
        out
    }

    /// The input range `[start, end)` each output index pools along an axis of `len`, with
    /// the padding cut off.
    pub fn windows(&self, len: usize) -> Vec<(usize, usize)> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        (0..self.output_len(len))
            .map(|o| ((o * s).saturating_sub(p), (o * s + k - p).min(len)))
            .collect()
    }

    /// Separable: the max over a window's rows first (whole rows, vectorised), then over its
    /// columns. Planes run in parallel when there are many. (NaN inputs are not propagated as
    /// torch would; the networks never produce them.)
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (oh, ow) = (self.output_len(h), self.output_len(w));
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let (rows, cols) = (self.windows(h), self.windows(w));
        // Output columns whose window lies wholly inside the row (padding 0).
        let full = if w >= k { ((w - k) / s + 1).min(ow) } else { 0 };
        let mut out = vec![0.0f32; n * c * oh * ow];
        let pool_plane = |rowmax: &mut Vec<f32>, (plane, op): (&[f32], &mut [f32])| {
            rowmax.resize(w, 0.0);
            for (orow, &(y0, y1)) in op.chunks_exact_mut(ow).zip(&rows) {
                rowmax.copy_from_slice(&plane[y0 * w..(y0 + 1) * w]);
                for r in y0 + 1..y1 {
                    for (m, &v) in rowmax.iter_mut().zip(&plane[r * w..(r + 1) * w]) {
                        *m = max_fast(*m, v);
                    }
                }
                // Whole windows of the networks' 2×2/2 and 3×3/2 pools in straight loops
                // (no per-window dispatch, so they vectorise); edges and others below.
                let done = match (k, s) {
                    (2, 2) if p == 0 => {
                        for (o, pair) in orow[..full].iter_mut().zip(rowmax.chunks_exact(2)) {
                            *o = max_fast(pair[0], pair[1]);
                        }
                        full
                    }
                    (3, 2) if p == 0 => {
                        let r = &rowmax[..2 * full + 1];
                        for (j, o) in orow[..full].iter_mut().enumerate() {
                            *o = max_fast(max_fast(r[2 * j], r[2 * j + 1]), r[2 * j + 2]);
                        }
                        full
                    }
                    _ => 0,
                };
                for (o, &(x0, x1)) in orow.iter_mut().zip(&cols).skip(done) {
                    *o = match rowmax[x0..x1] {
                        [a, b] => max_fast(a, b),
                        [a, b, c] => max_fast(max_fast(a, b), c),
                        ref win => win.iter().fold(f32::NEG_INFINITY, |m, &v| max_fast(m, v)),
                    };
                }
            }
        };
        if x.len() >= 1 << 18 && threads() > 1 {
            x.data
                .par_chunks_exact(h * w)
                .zip(out.par_chunks_exact_mut(oh * ow))
                .for_each_init(Vec::new, |rowmax, pair| pool_plane(rowmax, pair));
        } else {
            let mut rowmax = Vec::new();
            for pair in x
                .data
                .chunks_exact(h * w)
                .zip(out.chunks_exact_mut(oh * ow))
            {
                pool_plane(&mut rowmax, pair);
            }
        }
        Tensor::new(vec![n, c, oh, ow], out)
    }
}

/// Softmax over dimension 1 of [N, C, …] (torch's `Softmax(dim=1)`).
pub fn softmax_channels(x: &Tensor) -> Tensor {
    let (n, c) = (x.shape[0], x.shape[1]);
    let inner: usize = x.shape[2..].iter().product();
    let mut y = x.clone();
    for b in 0..n {
        let item = &mut y.data[b * c * inner..(b + 1) * c * inner];
        for i in 0..inner {
            let mut m = f32::NEG_INFINITY;
            for ch in 0..c {
                m = m.max(item[ch * inner + i]);
            }
            let mut sum = 0.0f32;
            for ch in 0..c {
                let e = (item[ch * inner + i] - m).exp();
                item[ch * inner + i] = e;
                sum += e;
            }
            for ch in 0..c {
                item[ch * inner + i] /= sum;
            }
        }
    }
    y
}

// ---- Pooling and tensor plumbing for the embedding networks. ----

/// Average pooling without padding, floor mode (TF's 'valid'): `kernel`×`kernel` windows every
/// `stride` pixels, windows that would run past the edge dropped.
pub fn avg_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    assert!(
        h >= kernel && w >= kernel,
        "pooling window {kernel} larger than the {h}×{w} input"
    );
    let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    let area = (kernel * kernel) as f32;
    let mut out = Tensor::zeros(vec![n, c, oh, ow]);
    for (plane, out_plane) in x
        .data
        .chunks_exact(h * w)
        .zip(out.data.chunks_exact_mut(oh * ow))
    {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = (oy * stride, ox * stride);
                let sum: f32 = (y0..y0 + kernel)
                    .flat_map(|y| &plane[y * w + x0..y * w + x0 + kernel])
                    .sum();
                out_plane[oy * ow + ox] = sum / area;
            }
        }
    }
    out
}

/// Mean over each channel's H×W plane: [N, C, H, W] → [N, C].
pub fn global_avg_pool(x: &Tensor) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let area = (h * w) as f32;
    let data = x
        .data
        .chunks_exact(h * w)
        .map(|plane| plane.iter().sum::<f32>() / area)
        .collect();
    Tensor::new(vec![n, c], data)
}

/// Concatenate NCHW tensors along the channel axis (all with the same N, H, W).
pub fn cat_channels(parts: &[&Tensor]) -> Tensor {
    let (n, h, w) = (parts[0].shape[0], parts[0].shape[2], parts[0].shape[3]);
    let c: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut data = Vec::with_capacity(n * c * h * w);
    for b in 0..n {
        for p in parts {
            assert_eq!(
                (p.shape[0], p.shape[2], p.shape[3]),
                (n, h, w),
                "cat_channels shapes"
            );
            let item = p.shape[1] * h * w;
            data.extend_from_slice(&p.data[b * item..(b + 1) * item]);
        }
    }
    Tensor::new(vec![n, c, h, w], data)
}

/// Divide each row of an [N, D] tensor by `max(‖row‖₂, 1e-12)`, as
/// `torch.nn.functional.normalize` does.
pub fn l2_normalize_rows(x: &mut Tensor) {
    let d = x.shape[1..].iter().product::<usize>().max(1);
    for row in x.data.chunks_exact_mut(d) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for v in row {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod embedder_layer_tests {
    use super::*;

    #[test]
    fn avg_pool_drops_the_ragged_edge() {
        // 3×3 input, 2×2/2 pooling: one window, the last row and column are dropped (TF 'valid').
        let x = Tensor::new(vec![1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let y = avg_pool2d(&x, 2, 2);
        assert_eq!(y.shape, vec![1, 1, 1, 1]);
        assert_eq!(y.data, vec![(1.0 + 2.0 + 4.0 + 5.0) / 4.0]);
    }

    #[test]
    fn cat_channels_interleaves_per_item() {
        let a = Tensor::new(vec![2, 1, 1, 1], vec![1.0, 2.0]);
        let b = Tensor::new(vec![2, 2, 1, 1], vec![10.0, 11.0, 20.0, 21.0]);
        let y = cat_channels(&[&a, &b]);
        assert_eq!(y.shape, vec![2, 3, 1, 1]);
        assert_eq!(y.data, vec![1.0, 10.0, 11.0, 2.0, 20.0, 21.0]);
    }

    #[test]
    fn global_pool_and_normalise() {
        let x = Tensor::new(vec![1, 2, 1, 2], vec![1.0, 5.0, 4.0, 2.0]);
        let mut y = global_avg_pool(&x);
        assert_eq!(
            (y.shape.clone(), y.data.clone()),
            (vec![1, 2], vec![3.0, 3.0])
        );
        l2_normalize_rows(&mut y);
        let expected = 1.0 / 2f32.sqrt();
        assert!(y.data.iter().all(|v| (v - expected).abs() < 1e-7));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn conv(
        oc: usize,
        ic: usize,
        kh: usize,
        kw: usize,
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Conv2d {
        let w = Tensor::new(vec![oc, ic, kh, kw], values(oc * ic * kh * kw, 7));
        Conv2d::new(w, Some(values(oc, 9)), stride, pad)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.shape, b.shape);
        a.data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Networks entered from several threads at once, as the server's requests do: every one
    /// finishes (pollers of different networks must not wait on each other for good) and gives
    /// the result it gives alone.
    #[test]
    fn concurrent_networks_finish_with_their_serial_results() {
        use std::sync::{mpsc, Arc};
        // Big enough to cut into row bands, to split lone units by channels (above
        // `LONE_SPLIT_MIN_WORK`) and to run two branches concurrently, like IRV1's blocks.
        let stem = Arc::new(conv(32, 16, 3, 3, (1, 1), (1, 1)));
        let branches = Arc::new((
            conv(64, 32, 1, 1, (1, 1), (0, 0)),
            conv(64, 32, 3, 3, (1, 1), (1, 1)),
        ));
        let x = Arc::new(Tensor::new(vec![1, 16, 24, 24], values(16 * 24 * 24, 3)));
        let run = {
            let (stem, branches, x) = (stem.clone(), branches.clone(), x.clone());
            move || {
                in_pool(|| {
                    let y = stem.forward_act(&x, Activation::Relu);
                    let (a, b) = rayon::join(|| branches.0.forward(&y), || branches.1.forward(&y));
                    [a.data, b.data].concat()
                })
            }
        };
        let expected = run();
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let (run, expected, tx) = (run.clone(), expected.clone(), tx.clone());
            std::thread::spawn(move || {
                let same = (0..100).all(|_| run() == expected);
                tx.send(same).unwrap();
            });
        }
        for _ in 0..4 {
            let same = rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .expect("a network entered concurrently never finished");
            assert!(same, "a concurrent forward differed from the serial one");
        }
    }

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
            let (oh, ow) = c.output_size(shape[2], shape[3]);
            assert_eq!(
                c.uses_winograd(shape[0], oh, ow),
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

    #[test]
    fn channel_parts_cover_the_channels_in_vector_multiples() {
        for (m, parts) in [(100, 2), (16, 2), (1792, 2), (37, 3), (5, 1), (70, 4)] {
            let ranges = channel_parts(m, parts);
            assert!(ranges.len() <= parts.max(1));
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(ranges.last().unwrap().end, m);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(pair[0].len() % 16, 0);
            }
        }
    }

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
    fn linear_matches_definition() {
        let l = Linear::new(
            Tensor::new(vec![3, 4], values(12, 1)),
            Some(vec![0.5, -1.0, 2.0]),
        );
        let x = Tensor::new(vec![2, 4], values(8, 2));
        let y = l.forward(&x);
        for b in 0..2 {
            for o in 0..3 {
                let e: f32 = l.bias[o]
                    + (0..4)
                        .map(|i| x.data[b * 4 + i] * l.weight.data[o * 4 + i])
                        .sum::<f32>();
                assert!((y.data[b * 3 + o] - e).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn maxpool_ceil_mode_sizes_match_torch() {
        // torch: MaxPool2d(2,2,ceil_mode=True) on 7 → 4; MaxPool2d(3,2,ceil_mode=True) on 22 → 11, on 10 → 5.
        assert_eq!(MaxPool2d::new(2, 2, 0, true).output_len(7), 4);
        assert_eq!(MaxPool2d::new(3, 2, 0, true).output_len(22), 11);
        assert_eq!(MaxPool2d::new(3, 2, 0, true).output_len(10), 5);
        assert_eq!(MaxPool2d::new(3, 2, 0, false).output_len(10), 4);
        assert_eq!(MaxPool2d::new(3, 2, 1, false).output_len(8), 4);
        let x = Tensor::new(vec![1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let y = MaxPool2d::new(2, 2, 0, true).forward(&x);
        assert_eq!(y.shape, vec![1, 1, 2, 2]);
        assert_eq!(y.data, vec![5.0, 6.0, 8.0, 9.0]);
    }

    #[test]
    fn maxpool_matches_brute_force() {
        for (k, s, p, ceil, h, w) in [
            (2, 2, 0, true, 7, 9),
            (3, 2, 0, true, 22, 21),
            (3, 2, 1, false, 8, 11),
            (3, 1, 1, false, 5, 5),
        ] {
            let pool = MaxPool2d::new(k, s, p, ceil);
            let x = Tensor::new(vec![2, 3, h, w], values(2 * 3 * h * w, 5));
            let y = pool.forward(&x);
            let (oh, ow) = (pool.output_len(h), pool.output_len(w));
            for plane in 0..6 {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut m = f32::NEG_INFINITY;
                        for dy in 0..k {
                            for dx in 0..k {
                                let (iy, ix) = (
                                    (oy * s + dy) as isize - p as isize,
                                    (ox * s + dx) as isize - p as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    m = m
                                        .max(x.data[plane * h * w + iy as usize * w + ix as usize]);
                                }
                            }
                        }
                        assert_eq!(y.data[(plane * oh + oy) * ow + ox], m);
                    }
                }
            }
        }
    }

    #[test]
    fn prelu_and_softmax() {
        let mut x = Tensor::new(vec![1, 2, 1, 2], vec![-1.0, 2.0, -4.0, 3.0]);
        PReLU::new(vec![0.5, 0.25]).forward_inplace(&mut x);
        assert_eq!(x.data, vec![-0.5, 2.0, -1.0, 3.0]);
        let s = softmax_channels(&x);
        for i in 0..2 {
            assert!((s.data[i] + s.data[2 + i] - 1.0).abs() < 1e-6);
        }
        assert!(s.data[0] > s.data[2]);
    }
}
