//! Per-thread buffers kept between convolution calls.

/// Per-thread buffers of the convolution: the im2col band and the GEMM result. They are
/// kept between calls ([`Scratch::take`]): a fresh buffer costs a zero fill and page faults
/// every time, a fifth of the im2col time in detection.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) col: Vec<f32>,
    pub(super) out: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

impl Scratch {
    /// This thread's buffers, taken out while in use: a convolution that starts on the same
    /// thread meanwhile (rayon work stealing) finds none and makes its own.
    pub(super) fn take() -> ScratchGuard {
        ScratchGuard(SCRATCH.with(|s| s.take()))
    }
}

/// Puts the buffers back when dropped, keeping the larger if another call put some back.
pub(super) struct ScratchGuard(pub(super) Scratch);

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
