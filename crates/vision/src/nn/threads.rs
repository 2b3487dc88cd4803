//! How the engine uses rayon's threads: a network enters the pool once ([`in_pool`]), work is
//! split by output channels ([`channel_parts`]) and parallel parts write disjoint pieces of one
//! output buffer ([`SharedOut`]).

use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Multiply-adds below which a lone GEMM stays on one thread: splitting it costs more than
/// it saves.
pub(super) const PAR_GEMM_MIN_WORK: usize = 1 << 20;

/// The output channels `0..m` cut into one range per thread, in multiples of 16 (an AVX-512
/// register of f32) so that no part wastes a partial vector it need not.
pub(super) fn channel_parts(m: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let step = m.div_ceil(parts.max(1)).next_multiple_of(16);
    (0..m).step_by(step).map(|o| o..(o + step).min(m)).collect()
}

/// Run `f` on every part, in parallel when there are several.
pub(super) fn for_each_part(
    parts: &[std::ops::Range<usize>],
    f: impl Fn(std::ops::Range<usize>) + Sync + Send,
) {
    if parts.len() == 1 {
        f(parts[0].clone());
    } else {
        parts.par_iter().for_each(|r| f(r.clone()));
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

/// The threads of the pool the caller runs in (rayon's global pool from outside any pool).
pub(super) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// The output buffer, shared by the work units, each writing its own disjoint ranges.
pub(super) struct SharedOut(pub(super) *mut f32);

// SAFETY: units write disjoint ranges (see `Conv2d::forward`); the pointer is only used while
// the owning Vec is alive and unborrowed.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub(super) fn ptr(&self) -> *mut f32 {
        self.0
    }

    /// Copy `src` to `offset`. Caller guarantees the range is in bounds and owned by it.
    pub(super) unsafe fn write(&self, offset: usize, src: &[f32]) {
        std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(offset), src.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::{conv, values};
    use crate::nn::Activation;
    use crate::tensor::Tensor;

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
}
