//! The accept loop in place of `axum::serve`: HTTP/1.1 (over TLS when configured) with the
//! limits `axum::serve` lacks — a deadline for a request's headers, for its body and for an idle
//! keep-alive connection, a cap on connections served at once, and a shutdown that lets requests
//! under way finish but not for longer than a deadline.
//!
//! A connection over the cap is not accepted until one closes: it waits in the operating
//! system's listen queue (and is refused by the kernel once that is full), which costs the server
//! nothing, where accepting and closing it would cost a file descriptor and a handshake each.

mod clock;
pub mod tls;

use axum::extract::ConnectInfo;
use axum::Router;
use clock::{Clock, GuardedBody, TimedBody, TrackedIo};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

pub use clock::Timeouts;

/// How the server treats its connections.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeouts: Timeouts,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

/// Serve `router` on `listener` until `stop` completes; then stop accepting, let the requests
/// under way finish within `limits.shutdown_timeout`, and drop whatever is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (shutdown, shutting_down) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        // Wait for a free place before accepting, so excess clients wait in the listen queue.
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Reap finished connections so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let tls = tls.clone();
        let timeouts = limits.timeouts.clone();
        let shutting_down = shutting_down.clone();
        connections.spawn(async move {
            connection(stream, remote, router, tls, timeouts, shutting_down).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = shutdown.send(true);
    while connections.try_join_next().is_some() {}
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            "waiting up to {:?} for {open} open connection(s) to finish",
            limits.shutdown_timeout
        );
    }
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} connection(s) still open after {:?}: closing them",
            connections.len(),
            limits.shutdown_timeout
        );
        connections.shutdown().await;
    }
}

/// One connection: the TLS handshake if any, then HTTP/1.1 until the client closes, a deadline
/// passes, or the server shuts down.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeouts: Timeouts,
    shutting_down: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(Clock::new(timeouts));
    let io = TrackedIo::new(stream, clock.clone());
    match tls {
        None => http(io, remote, router, clock, shutting_down).await,
        Some(acceptor) => {
            // The handshake is bounded by the header deadline (the clock starts at accept).
            let handshake = tokio::select! {
                done = acceptor.accept(io) => done,
                () = clock.expired() => return,
            };
            match handshake {
                Ok(io) => http(io, remote, router, clock, shutting_down).await,
                Err(e) => tracing::debug!("TLS handshake with {remote} failed: {e}"),
            }
        }
    }
}

async fn http<I>(
    io: I,
    remote: SocketAddr,
    router: Router,
    clock: Arc<Clock>,
    mut shutting_down: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service_clock = clock.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = service_clock.request_started(!request.body().is_end_stream());
        let body_clock = service_clock.clone();
        let mut request =
            request.map(|body| axum::body::Body::new(TimedBody::new(body, body_clock)));
        let router = router.clone();
        async move {
            // Handlers that record who asked (the audit log) read the peer's address here.
            request.extensions_mut().insert(ConnectInfo(remote));
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| GuardedBody::new(body, guard)))
        }
    });
    // hyper's own header timeout is off: the clock keeps every deadline of the connection.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut graceful = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!("connection from {remote}: {e}");
                }
                return;
            }
            () = clock.expired() => {
                tracing::debug!("closing the connection from {remote}: {}", clock.overdue());
                return;
            }
            _ = shutting_down.changed(), if !graceful => {
                // Finish the request under way (if any), then close.
                graceful = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
