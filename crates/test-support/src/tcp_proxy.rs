//! A TCP proxy a test controls, between a server and its database: [`TcpProxy::cut`] takes
//! the database away from that server alone (every connection through the proxy is closed and
//! new ones are closed as soon as they are accepted) while the database itself keeps running
//! for everyone else; [`TcpProxy::restore`] lets connections through again.
//!
//! [`TcpProxy::stall_at_commit`] is a database that stops answering, without closing anything
//! (a hung server, a network that drops packets), as a transaction ends: from the next `COMMIT`
//! on, connections stay open and nothing passes either way until [`TcpProxy::restore`].
//!
//! [`TcpProxy::cut_after_commit`] cuts at the worst moment for the client: the next `COMMIT`
//! a client sends (MySQL's text protocol) reaches the database, and the connection is closed
//! before the answer gets back, so the client cannot know whether its transaction committed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the bytes it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Cut,
    /// Open until a client's `COMMIT` has gone through; then [`Mode::Cut`].
    CutAfterCommit,
    /// Connections are kept (and accepted) but no byte passes.
    Stall,
    /// Open until a client sends a `COMMIT`; then [`Mode::Stall`], that `COMMIT` held too.
    StallAtCommit,
}

/// A proxy on `127.0.0.1:<ephemeral>` to one upstream address. It stops with its runtime, or
/// when dropped.
pub struct TcpProxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listen on an ephemeral loopback port and forward each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy on loopback");
        let address = listener.local_addr().expect("the proxy's address");
        let (mode, watching) = watch::channel(Mode::Open);
        let mode_for_conns = mode.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                counted.fetch_add(1, Ordering::Relaxed);
                if *watching.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                tokio::spawn(forward(
                    client,
                    upstream,
                    mode_for_conns.clone(),
                    watching.clone(),
                ));
            }
        });
        TcpProxy {
            address,
            mode,
            accepted,
            task,
        }
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The database URL `url` (`mysql://user@host:port/db`) rewritten to go through the proxy.
    pub fn url_through(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let credentials = authority
            .rsplit_once('@')
            .map_or(String::new(), |(c, _)| format!("{c}@"));
        format!("{scheme}://{credentials}{}/{path}", self.address)
    }

    /// Close every connection through the proxy and refuse new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Stall as the next `COMMIT` comes by, holding it: a transaction that hangs at its end.
    pub fn stall_at_commit(&self) {
        self.mode.send_replace(Mode::StallAtCommit);
    }

    /// Let connections through again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }

    /// Cut as soon as the next `COMMIT` has been passed on to the database, before its answer
    /// reaches the client.
    pub fn cut_after_commit(&self) {
        self.mode.send_replace(Mode::CutAfterCommit);
    }

    /// Is the proxy cut now (after a [`Self::cut_after_commit`], once the commit went by)?
    pub fn is_cut(&self) -> bool {
        *self.mode.borrow() == Mode::Cut
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Cut);
        self.task.abort();
    }
}

/// Copy both ways until either side closes or the proxy is cut; dropping both streams closes
/// them.
async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    mut watching: watch::Receiver<Mode>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    // Set once this connection has sent a COMMIT in CutAfterCommit mode: the next bytes from
    // the database (the commit's answer) are not passed on, and everything is cut.
    let mut commit_sent = false;
    loop {
        if *watching.borrow() == Mode::Stall && !passes(&mut watching).await {
            return;
        }
        tokio::select! {
            changed = watching.changed() => {
                if changed.is_err() || *watching.borrow() == Mode::Cut {
                    return;
                }
            }
            n = client_read.read(&mut up) => {
                let Ok(n) = n else { return };
                if n == 0 {
                    return;
                }
                if !passes(&mut watching).await {
                    return;
                }
                let bytes = &up[..n];
                if *watching.borrow() == Mode::CutAfterCommit && is_commit(bytes) {
                    commit_sent = true;
                }
                if *watching.borrow() == Mode::StallAtCommit && is_commit(bytes) {
                    mode.send_replace(Mode::Stall);
                    if !passes(&mut watching).await {
                        return;
                    }
                }
                if server_write.write_all(bytes).await.is_err() {
                    return;
                }
            }
            n = server_read.read(&mut down) => {
                let Ok(n) = n else { return };
                if n == 0 {
                    return;
                }
                if commit_sent || *watching.borrow() == Mode::Cut {
                    mode.send_replace(Mode::Cut);
                    return;
                }
                if !passes(&mut watching).await {
                    return;
                }
                if client_write.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Bytes read may be passed on: at once, or once a stall is over; `false` when the proxy is
/// cut (or gone) meanwhile.
async fn passes(watching: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *watching.borrow_and_update() {
            Mode::Cut => return false,
            Mode::Stall => {}
            Mode::Open | Mode::CutAfterCommit | Mode::StallAtCommit => return true,
        }
        if watching.changed().await.is_err() {
            return false;
        }
    }
}

/// A MySQL text-protocol packet (`COM_QUERY`, 0x03) whose statement is `COMMIT`.
fn is_commit(bytes: &[u8]) -> bool {
    // 3 bytes of length, 1 of sequence, then the command byte and the statement.
    bytes.len() >= 5
        && bytes[4] == 0x03
        && bytes[5..]
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"COMMIT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_packet_is_told_from_other_statements() {
        let packet = |sql: &[u8]| {
            let mut p = vec![(sql.len() + 1) as u8, 0, 0, 0, 0x03];
            p.extend_from_slice(sql);
            p
        };
        assert!(is_commit(&packet(b"COMMIT")));
        assert!(is_commit(&packet(b"commit")));
        assert!(!is_commit(&packet(b"SELECT 1")));
        assert!(!is_commit(&packet(b"ROLLBACK")));
        assert!(!is_commit(&[0x03]));
    }

    #[test]
    fn urls_are_rewritten_to_the_proxy() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let proxy = TcpProxy::start("127.0.0.1:3306".parse().unwrap()).await;
            let port = proxy.address().port();
            assert_eq!(
                proxy.url_through("mysql://root@127.0.0.1:3306/rollcall_x"),
                format!("mysql://root@127.0.0.1:{port}/rollcall_x")
            );
            assert_eq!(
                proxy.url_through("mysql://u:p@db:3306/d?ssl-mode=disabled"),
                format!("mysql://u:p@127.0.0.1:{port}/d?ssl-mode=disabled")
            );
        });
    }
}
