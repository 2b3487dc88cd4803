//! A log writer that keeps what it is given, for tests that count the lines a server logs
//! (hand `move || capture.clone()` to `tracing_subscriber::fmt().with_writer`).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything logged to it, as text; clones share the same buffer.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.buffer())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forget what was logged so far.
    pub fn clear(&self) {
        self.buffer().clear();
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // Bytes only: a writer that panicked leaves nothing half-done worth refusing.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
