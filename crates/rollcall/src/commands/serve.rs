//! `rollcall serve`, and the start-up every database command shares: settings → data directory
//! → database (migrated) → face pipeline → [`Rollcall`].

use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::Settings;
use crate::http::{app, AppState};
use crate::service::{Options, Rollcall};
use crate::store::{PhotoDir, Store};
use anyhow::Context;
use rollcall_vision::{FacePipeline, PipelineConfig};
use std::sync::Arc;
use std::time::Duration;

pub fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let settings = Settings::resolve(global, Some(&args))?;
    runtime()?.block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let rollcall = Arc::new(open(&settings).await?);
    let state = AppState::new(rollcall.clone(), settings.max_upload_bytes);
    // Histograms are drained into their buckets by upkeep; without it they only grow.
    let metrics = state.metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            metrics.run_upkeep();
        }
    });
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "rollcall listening on http://{addr}/ (kiosk), http://{addr}/admin; model {}, threshold {}",
        rollcall.model(),
        rollcall.threshold
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    rollcall.store.close().await;
    Ok(())
}

/// Open the database (creating and migrating it) and load the face pipeline.
pub async fn open(settings: &Settings) -> anyhow::Result<Rollcall> {
    let store = open_store(settings).await?;
    let config = PipelineConfig::new(settings.models.clone());
    let pipeline = tokio::task::spawn_blocking(move || FacePipeline::load(&config))
        .await?
        .context("loading the face models")?;
    let options = Options {
        threshold: settings.threshold,
        cooldown: settings.cooldown,
        workers: settings.workers,
        queue: settings.queue,
    };
    let photos = PhotoDir::new(&settings.data_dir);
    Ok(Rollcall::open(store, photos, Arc::new(pipeline), &options).await?)
}

/// Open the database only (commands that need no face model), applying pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("opening the {} database", redact(&settings.database_url)))?;
    store.migrate().await?;
    Ok(store)
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

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Log to stderr; `RUST_LOG` overrides the default level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
