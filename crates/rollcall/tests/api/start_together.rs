//! Servers started at the same moment on an empty database all come up: the migrations run
//! under a lock (MySQL: a named lock; SQLite: one write transaction), so none of them applies a
//! migration another is applying.

use crate::helpers::{create_mysql_database, models_dir, mysql_server_url, pipeline, Backend};
use rollcall::app::Application;
use rollcall::config::{Overrides, Settings};
use rollcall::store::Store;
use rollcall_vision::models::EmbedderChoice;
use std::sync::Arc;

/// Servers per round, and rounds (a fresh database each); without the lock the first round
/// already fails.
const SERVERS: usize = 4;
const ROUNDS: usize = 5;

fn settings(url: &str, data_dir: &std::path::Path) -> Settings {
    Settings::resolve(Overrides {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.to_owned()),
        database_url: Some(url.to_owned()),
        models: Some(models_dir()),
        embedder: Some(EmbedderChoice::FaceApi),
        workers: Some(1),
        ..Overrides::default()
    })
    .expect("test settings")
}

/// The versions in sqlx's bookkeeping table, in order.
async fn applied_versions(store: &Store) -> Vec<i64> {
    const SQL: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await,
        Store::Mysql(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await,
    }
    .expect("reading _sqlx_migrations")
}

/// The migrations this build carries, one per file.
fn expected_versions(backend: Backend) -> Vec<i64> {
    let dir = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Mysql => "migrations/mysql",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next().unwrap().parse().unwrap()
        })
        .collect();
    versions.sort();
    versions
}

async fn servers_started_at_once_on_an_empty_database_all_come_up(backend: Backend) {
    for round in 0..ROUNDS {
        let data_dir = tempfile::tempdir().unwrap();
        let (url, mysql_db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.path().join("rollcall.db").display()),
                None,
            ),
            Backend::Mysql => {
                let name = format!("rollcall_test_{}", uuid::Uuid::new_v4().simple());
                create_mysql_database(&name).await;
                (format!("{}/{name}", mysql_server_url()), Some(name))
            }
        };
        let settings = Arc::new(settings(&url, data_dir.path()));
        let start = Arc::new(tokio::sync::Barrier::new(SERVERS));
        let builds: Vec<_> = (0..SERVERS)
            .map(|_| {
                let (settings, start) = (settings.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    Application::build_with_pipeline(&settings, pipeline()).await
                })
            })
            .collect();
        let mut apps = Vec::new();
        for (i, build) in builds.into_iter().enumerate() {
            match build.await.expect("task") {
                Ok(app) => apps.push(app),
                Err(e) => panic!("round {round}: server {i} did not come up: {e:#}"),
            }
        }
        let store = apps[0].store().clone();
        assert_eq!(
            applied_versions(&store).await,
            expected_versions(backend),
            "round {round}: each migration applied once"
        );
        for app in &apps {
            app.store().close().await;
        }
        drop(apps);
        if let Some(name) = mysql_db {
            use sqlx::Connection;
            let mut conn = sqlx::MySqlConnection::connect(&mysql_server_url())
                .await
                .unwrap();
            sqlx::query(&format!("DROP DATABASE `{name}`"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_servers_started_at_once_on_an_empty_database_all_come_up() {
    servers_started_at_once_on_an_empty_database_all_come_up(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_servers_started_at_once_on_an_empty_database_all_come_up() {
    servers_started_at_once_on_an_empty_database_all_come_up(Backend::Mysql).await
}
