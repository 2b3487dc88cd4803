//! Start-up: settings → data directory → database (migrated) → face pipeline → [`Rollcall`] →
//! router on a bound listener. `rollcall serve`, the commands that open the database and the
//! test harness all start here, so what runs in production is what the tests run.

use crate::config::Settings;
use crate::domain::RetentionDays;
use crate::http::{app, AppState};
use crate::server;
use crate::service::{Options, Rollcall};
use crate::store::{PhotoStore, Store};
use anyhow::Context;
use rollcall_vision::FacePipeline;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A server bound to its port, not yet serving.
pub struct Application {
    listener: tokio::net::TcpListener,
    address: SocketAddr,
    state: AppState,
    /// The first-run setup token, while no account exists.
    setup_token: Option<String>,
    retention: Option<RetentionDays>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: server::Limits,
    sync_interval: Duration,
}

impl Application {
    /// Open everything `settings` names (loading the face models) and bind the listener.
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let pipeline = load_pipeline(settings).await?;
        Self::build_with_pipeline(settings, pipeline).await
    }

    /// [`build`](Self::build) with a face pipeline already loaded: the tests load theirs once
    /// for many servers.
    pub async fn build_with_pipeline(
        settings: &Settings,
        pipeline: Arc<FacePipeline>,
    ) -> anyhow::Result<Application> {
        let front_door = &settings.front_door;
        // A bad certificate stops the start, before the models load into a server nobody reaches.
        let tls = front_door
            .tls
            .as_ref()
            .map(|files| server::tls::acceptor(&files.cert, &files.key))
            .transpose()?;
        let rollcall = open_rollcall_with(settings, pipeline).await?;
        if let Some(retention) = settings.retention {
            crate::attendance::purge_expired(rollcall.store(), retention, &retention_actor())
                .await
                .context("deleting check-ins past the retention period")?;
        }
        let listener = tokio::net::TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let address = listener.local_addr()?;
        let mut state =
            AppState::new(Arc::new(rollcall), settings.max_upload_bytes).with_front_door(settings);
        state.anonymous_verify = settings.anonymous_verify;
        state.liveness = settings.liveness;
        state.require_liveness = settings.require_liveness;
        state.liveness_instruction = settings.liveness_instruction;
        let setup_token = state.accounts.open_setup().await?;
        let limits = server::Limits {
            timeouts: server::Timeouts {
                header: front_door.header_timeout,
                body: front_door.body_timeout,
                idle: front_door.idle_timeout,
            },
            max_connections: front_door.max_connections,
            shutdown_timeout: front_door.shutdown_timeout,
        };
        Ok(Application {
            listener,
            address,
            state,
            setup_token,
            retention: settings.retention,
            tls,
            limits,
            sync_interval: settings.sync_interval,
        })
    }

    /// The port bound (useful with `--bind 127.0.0.1:0`).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The token of the setup link (`/admin#setup=TOKEN`) when no account existed at start.
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_deref()
    }

    /// The database the server uses (the tests inspect it).
    pub fn store(&self) -> &Store {
        self.state.rollcall.store()
    }

    /// Serve until SIGINT or SIGTERM, then finish the requests under way (within the shutdown
    /// deadline) and close the database.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serve until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let rollcall = self.state.rollcall.clone();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "rollcall listening on {scheme}://{addr}/ (kiosk), {scheme}://{addr}/admin; model {}, threshold {}",
            rollcall.model(),
            rollcall.threshold(),
            addr = self.address,
        );
        if self.state.anonymous_verify {
            tracing::warn!(
                "--anonymous-verify is ON: anyone who can reach http://{}/ may call /verify and \
                 /detect without a key (and check people in). Use it only on a network you trust.",
                self.address
            );
        }
        if let Some(token) = &self.setup_token {
            tracing::warn!(
                "no account exists yet: create the first admin at http://{}/admin#setup={token} \
                 (this link works once; or run `rollcall admin add NAME`)",
                self.address
            );
        }
        // Histograms are drained into their buckets by upkeep; without it they only grow.
        let metrics = self.state.metrics.clone();
        let upkeep = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                metrics.run_upkeep();
            }
        });
        // The start-up purged already; then once an hour.
        let purge = self.retention.map(|retention| {
            let store = rollcall.store().clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(crate::attendance::PURGE_EVERY);
                every.tick().await;
                loop {
                    every.tick().await;
                    if let Err(e) =
                        crate::attendance::purge_expired(&store, retention, &retention_actor())
                            .await
                    {
                        tracing::warn!("retention: {e}");
                    }
                }
            })
        });
        let sync = tokio::spawn(follow_the_database(rollcall.clone(), self.sync_interval));
        let router = app(self.state);
        server::serve(self.listener, router, self.tls, self.limits, stop).await;
        sync.abort();
        upkeep.abort();
        if let Some(purge) = purge {
            purge.abort();
        }
        // Requests abandoned at the deadline may still hold a connection: do not wait for them.
        let _ = tokio::time::timeout(Duration::from_secs(2), rollcall.store().close()).await;
        Ok(())
    }
}

/// Keep the gallery in step with the changes other servers and the command line make: a pass
/// every `interval` (a slow pass delays the next rather than piling up), the log pruned now
/// and then.
async fn follow_the_database(rollcall: Arc<Rollcall>, interval: Duration) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = tokio::time::Instant::now();
    rollcall.prune_gallery_log().await;
    loop {
        every.tick().await;
        // Failures are logged once by the pass itself; the gallery keeps serving.
        let _ = rollcall.sync_gallery().await;
        if pruned.elapsed() >= crate::service::PRUNE_EVERY {
            rollcall.prune_gallery_log().await;
            pruned = tokio::time::Instant::now();
        }
    }
}

/// Who the audit log names for `--retention-days`' purges.
fn retention_actor() -> crate::audit::Actor {
    crate::audit::Actor::server("retention")
}

/// Load the face pipeline the settings name, off the async runtime.
pub async fn load_pipeline(settings: &Settings) -> anyhow::Result<Arc<FacePipeline>> {
    let config = settings.pipeline_config();
    let pipeline = tokio::task::spawn_blocking(move || FacePipeline::load(&config))
        .await?
        .context("loading the face models")?;
    Ok(Arc::new(pipeline))
}

/// Open the database (creating and migrating it) and load the face pipeline.
pub async fn open_rollcall(settings: &Settings) -> anyhow::Result<Rollcall> {
    let pipeline = load_pipeline(settings).await?;
    open_rollcall_with(settings, pipeline).await
}

async fn open_rollcall_with(
    settings: &Settings,
    pipeline: Arc<FacePipeline>,
) -> anyhow::Result<Rollcall> {
    let photos = open_photos(settings).await?;
    let store = open_store(settings).await?;
    let options = Options {
        threshold: settings.threshold,
        margin: settings.margin,
        false_accept_rate: settings.false_accept_rate,
        cooldown: settings.cooldown,
        workers: settings.workers,
        queue: settings.queue,
    };
    Ok(Rollcall::open(store, photos, pipeline, &options).await?)
}

/// Open the photo store `--photo-store` names (the data directory by default): a bucket that
/// is missing, refuses the credentials or does not answer stops the command here.
pub async fn open_photos(settings: &Settings) -> anyhow::Result<PhotoStore> {
    let photos = PhotoStore::open(&settings.photo_store, &settings.data_dir).await?;
    tracing::info!("reference photos in {}", photos.describe());
    Ok(photos)
}

/// Open the database only (commands that need no face model), applying pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    crate::store::private::create_dir(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let store = Store::connect(&settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!(explain_connect_error(&settings.database_url, &e)))?;
    store.migrate().await?;
    Ok(store)
}

/// One line a person can act on, for the ways opening a database usually fails.
fn explain_connect_error(url: &str, e: &crate::store::StoreError) -> String {
    let shown = redact(url);
    let text = e.to_string();
    if text.contains("Unknown database") {
        let db = url
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        format!(
            "the database `{db}` does not exist on {shown}: create it first \
             (CREATE DATABASE {db} CHARACTER SET utf8mb4)"
        )
    } else if text.contains("pool timed out") || text.contains("Connection refused") {
        format!("cannot reach the database server of {shown}: is it running, and is the host and port right?")
    } else if text.contains("Access denied") {
        format!("the database server of {shown} refused the user name or password")
    } else {
        format!("opening the {shown} database: {text}")
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The tokio runtime the CLI commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// What is logged when `RUST_LOG` does not say.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// Log to stderr, in colour only on a terminal (a log file or a pipe gets plain text);
/// `RUST_LOG` overrides the default level.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("mysql://root:secret@db:3306/rc"),
            "mysql://root:***@db:3306/rc"
        );
        assert_eq!(
            super::redact("sqlite://./data/rollcall.db"),
            "sqlite://./data/rollcall.db"
        );
    }
}
