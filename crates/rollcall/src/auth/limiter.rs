//! Failed logins counted per account and per client address over a sliding window: past the
//! limit, further attempts are refused until the oldest failure leaves the window, whether or
//! not the password would be right, so guessing costs time however many addresses try one
//! account or however many accounts one address tries.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`] before attempts are refused.
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked names and addresses, the ones with no recent failure are dropped.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// `Some(wait)` when any of `subjects` (an account name, an address) has used up its
    /// failures: the time until it may try again.
    pub fn blocked(&self, subjects: &[&str], now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        subjects
            .iter()
            .filter_map(|s| {
                let times = map.get_mut(*s)?;
                prune(times, now);
                (times.len() >= MAX_FAILURES)
                    .then(|| times.front().map(|t| WINDOW.saturating_sub(now - *t)))
                    .flatten()
            })
            .max()
    }

    /// Count one failure against each of `subjects`.
    pub fn failed(&self, subjects: &[&str], now: Instant) {
        let mut map = self.lock();
        if map.len() > MAX_TRACKED {
            map.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
        }
        for s in subjects {
            let times = map.entry((*s).to_owned()).or_default();
            prune(times, now);
            times.push_back(now);
        }
    }

    /// A successful login clears its account's failures (its address keeps its own count, so a
    /// valid account cannot be used to reset an address that is guessing others).
    pub fn succeeded(&self, subject: &str) {
        self.lock().remove(subject);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves counts that are still counts.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_until_the_first_leaves_the_window() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(l.blocked(&["user:a", "addr:1"], t0), None, "attempt {i}");
            l.failed(&["user:a", "addr:1"], t0 + Duration::from_secs(i as u64));
        }
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            l.blocked(&["user:a"], later),
            Some(WINDOW - Duration::from_secs(60))
        );
        assert!(l.blocked(&["user:b", "addr:1"], later).is_some());
        assert_eq!(l.blocked(&["user:b", "addr:2"], later), None);
        assert_eq!(l.blocked(&["user:a"], t0 + WINDOW), None);
        l.succeeded("user:a");
        assert!(l.blocked(&["addr:1"], later).is_some());
    }
}
