//! 503s in runs, not one line each. A full inference queue or a database out of reach answers
//! every request with the same 503 for as long as it lasts — hundreds a second under load — and
//! a line for each would bury everything else in the log (and fill its disk). So the first 503
//! of a code starts a *run* and gets the access line (WARN); the next ones of that code are
//! counted (and logged at DEBUG, `RUST_LOG=rollcall::access=debug` shows each); while the run
//! goes on, a WARN line every [`SUMMARY_EVERY`] says how many; once no 503 of that code has
//! come for [`QUIET`], an INFO line ends the run with its total and length (a run of one 503
//! has had its line: nothing more). So a 503 costs at most its own line, and a storm of them a
//! few lines in all. The answers
//! themselves do not change: every 503 still carries its code and `Retry-After`.

use super::access_log::TARGET;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run ends after this long without a 503 of its code.
pub const QUIET: Duration = Duration::from_secs(5);
/// While a run goes on, one line this often.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// How often the watcher of a run looks at it.
const TICK: Duration = Duration::from_millis(250);

/// The runs going on, by error code (`-` for a 503 without one: `/health`).
#[derive(Debug, Default)]
pub struct Outages {
    runs: Mutex<HashMap<&'static str, Run>>,
}

#[derive(Debug)]
struct Run {
    started: Instant,
    last: Instant,
    total: u64,
    since_line: u64,
}

impl Outages {
    /// A 503 with `code` was answered. True when it starts a run: the caller writes its line.
    /// Otherwise it is counted in the run, whose watcher writes the summaries.
    pub fn answered(self: &Arc<Self>, code: &'static str) -> bool {
        let now = Instant::now();
        let mut runs = self.lock();
        if let Some(run) = runs.get_mut(code) {
            run.total += 1;
            run.since_line += 1;
            run.last = now;
            return false;
        }
        runs.insert(
            code,
            Run {
                started: now,
                last: now,
                total: 1,
                since_line: 0,
            },
        );
        tokio::spawn(self.clone().watch(code));
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Run>> {
        // A panic elsewhere while holding it leaves counts only: keep counting.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the run's summaries, and its end once quiet.
    async fn watch(self: Arc<Self>, code: &'static str) {
        let mut last_line = Instant::now();
        loop {
            tokio::time::sleep(TICK).await;
            let mut runs = self.lock();
            let Some(run) = runs.get_mut(code) else {
                return;
            };
            let now = Instant::now();
            if now.duration_since(run.last) >= QUIET {
                let run = runs.remove(code).expect("looked up above");
                drop(runs);
                // A lone 503 has said all there is in its own line.
                if run.total == 1 {
                    return;
                }
                let secs = run.last.duration_since(run.started).as_secs_f64();
                tracing::info!(
                    target: TARGET,
                    error = %code,
                    answered = run.total,
                    secs = format_args!("{secs:.1}"),
                    "503s ended: this many answered in the run"
                );
                return;
            }
            if now.duration_since(last_line) >= SUMMARY_EVERY && run.since_line > 0 {
                let (since_line, total) = (run.since_line, run.total);
                run.since_line = 0;
                drop(runs);
                let secs = now.duration_since(last_line).as_secs_f64();
                last_line = now;
                tracing::warn!(
                    target: TARGET,
                    error = %code,
                    answered = since_line,
                    secs = format_args!("{secs:.1}"),
                    total,
                    "503s go on: this many more in the last seconds"
                );
            }
        }
    }
}
