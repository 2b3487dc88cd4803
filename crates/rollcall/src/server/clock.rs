//! The deadlines of one connection. A connection is always in one phase, each with its own
//! deadline: reading a request's headers (from accept, or from the first byte after an idle
//! spell), reading its body (from the end of its headers), handling it (no deadline: inference
//! has its own queue), or idle between requests. The accept loop closes the connection when
//! the deadline of its phase passes.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a keep-alive connection
//! is idle, which would make the idle timeout and the header timeout one number.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long each phase may last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Headers { since: Instant },
    Body { since: Instant },
    Handling,
    Idle { since: Instant },
}

pub struct Clock {
    timeouts: Timeouts,
    /// The phase, and how many requests have started (a late guard must not end a newer one).
    phase: Mutex<(Phase, u64)>,
    changed: Notify,
}

impl Clock {
    /// A connection just accepted: its first request's headers are due.
    pub fn new(timeouts: Timeouts) -> Clock {
        Clock {
            timeouts,
            phase: Mutex::new((
                Phase::Headers {
                    since: Instant::now(),
                },
                0,
            )),
            changed: Notify::new(),
        }
    }

    /// Change the phase if `update` says so, and wake whoever waits on the deadline.
    fn update(&self, update: impl FnOnce(&mut Phase, &mut u64) -> bool) {
        let mut state = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let (phase, started) = &mut *state;
        if update(phase, started) {
            drop(state);
            self.changed.notify_one();
        }
    }

    fn phase(&self) -> Phase {
        self.phase.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// A request's headers are in; its body (if any) is due. The guard marks its end.
    pub fn request_started(self: &Arc<Self>, has_body: bool) -> RequestGuard {
        let mut number = 0;
        self.update(|phase, started| {
            *started += 1;
            number = *started;
            *phase = if has_body {
                Phase::Body {
                    since: Instant::now(),
                }
            } else {
                Phase::Handling
            };
            true
        });
        RequestGuard {
            clock: self.clone(),
            number,
        }
    }

    fn body_done(&self) {
        self.update(|phase, _| {
            let body = matches!(phase, Phase::Body { .. });
            if body {
                *phase = Phase::Handling;
            }
            body
        });
    }

    /// Bytes came in: an idle connection is now reading a request's headers.
    fn bytes_read(&self) {
        self.update(|phase, _| {
            let idle = matches!(phase, Phase::Idle { .. });
            if idle {
                *phase = Phase::Headers {
                    since: Instant::now(),
                };
            }
            idle
        });
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Headers { since } => Some(since + self.timeouts.header),
            Phase::Body { since } => Some(since + self.timeouts.body),
            Phase::Idle { since } => Some(since + self.timeouts.idle),
            Phase::Handling => None,
        }
    }

    /// Completes when the deadline of the current phase has passed.
    pub async fn expired(&self) {
        loop {
            match self.deadline() {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }

    /// What took too long, for the log.
    pub fn overdue(&self) -> &'static str {
        match self.phase() {
            Phase::Headers { .. } => "the request's headers took too long",
            Phase::Body { .. } => "the request's body took too long",
            Phase::Idle { .. } => "idle too long",
            Phase::Handling => "handling",
        }
    }
}

/// Held by a request from its headers until its answer has been sent (or dropped).
pub struct RequestGuard {
    clock: Arc<Clock>,
    number: u64,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.clock.update(|phase, started| {
            let latest = *started == self.number;
            if latest {
                *phase = Phase::Idle {
                    since: Instant::now(),
                };
            }
            latest
        });
    }
}

/// The socket, noting when an idle connection starts sending again.
pub struct TrackedIo<T> {
    inner: T,
    clock: Arc<Clock>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, clock: Arc<Clock>) -> Self {
        TrackedIo { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that tells the clock when it has all arrived.
pub struct TimedBody<B> {
    inner: B,
    clock: Arc<Clock>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, clock: Arc<Clock>) -> Self {
        TimedBody { inner, clock }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TimedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A multipart reader stops at the closing boundary without asking for the end, so
        // the end is also read from the body's own account after each frame.
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.clock.body_done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds its request's guard until it has been sent.
pub struct GuardedBody<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B> GuardedBody<B> {
    pub fn new(inner: B, guard: RequestGuard) -> Self {
        GuardedBody {
            inner,
            _guard: guard,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for GuardedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
