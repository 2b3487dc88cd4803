//! `spawn_app`: the server `rollcall serve` builds ([`Application`]) on 127.0.0.1:0 over a fresh
//! SQLite file in a temp dir, or a fresh MariaDB database (dropped afterwards), with the real
//! face pipeline (face-api weights), loaded once per test binary.

use rollcall::app::Application;
use rollcall::auth::{Role, Scope};
use rollcall::config::{Overrides, Settings};
use rollcall::domain::{KeyName, Password, Username};
use rollcall::service::{Accounts, DEFAULT_SESSION_TTL};
use rollcall::store::{PhotoLocation, Store};
use rollcall_vision::models::{EmbedderChoice, ModelConfig};
use rollcall_vision::{FacePipeline, PipelineConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use crate::shared::tcp_proxy::TcpProxy;
pub use crate::shared::{models_dir, shared_dir};

/// A photo of the shared fixtures, e.g. `faces/Tony_Blair/Tony_Blair_0001.jpg`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = shared_dir().join("fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The face pipeline with the face-api embedder, loaded once for all tests of this binary.
pub fn pipeline() -> Arc<FacePipeline> {
    static PIPELINE: OnceLock<Arc<FacePipeline>> = OnceLock::new();
    PIPELINE
        .get_or_init(|| {
            let config = PipelineConfig::new(ModelConfig {
                models_dir: models_dir(),
                embedder: EmbedderChoice::FaceApi,
                facenet_weights: None,
                fetch_missing: false,
            });
            Arc::new(FacePipeline::load(&config).unwrap_or_else(|e| {
                panic!(
                    "loading the face pipeline from {}: {e}",
                    models_dir().display()
                )
            }))
        })
        .clone()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

/// MariaDB of the test machine (`.ci/run` starts it); `ROLLCALL_TEST_MYSQL` overrides.
pub fn mysql_server_url() -> String {
    std::env::var("ROLLCALL_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Knobs of one test server.
#[derive(Debug, Clone)]
pub struct TestConfig {
    pub max_upload_bytes: usize,
    pub cooldown: Duration,
    pub workers: usize,
    pub queue: usize,
    /// `--anonymous-verify`.
    pub anonymous_verify: bool,
    pub max_images: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub answer_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    /// HTTPS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--threshold` (none: derived from the false-accept rate).
    pub threshold: Option<f32>,
    /// `--margin` (with `threshold`).
    pub margin: Option<f64>,
    /// `--liveness`, `--require-liveness`, and the instruction every challenge asks.
    pub liveness: Option<rollcall::liveness::Mode>,
    pub require_liveness: bool,
    pub liveness_instruction: Option<rollcall::liveness::Instruction>,
    /// Photos in a fresh bucket of the test S3 server ([`crate::seaweed`]) instead of the data
    /// directory.
    pub s3: bool,
    /// This photo store (wins over `s3`).
    pub photo_store: Option<PhotoLocation>,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            max_upload_bytes: 10 * 1024 * 1024,
            cooldown: Duration::from_secs(300),
            workers: 2,
            queue: 16,
            anonymous_verify: false,
            max_images: None,
            header_timeout_secs: None,
            body_timeout_secs: None,
            idle_timeout_secs: None,
            answer_timeout_secs: None,
            max_connections: None,
            tls: None,
            threshold: None,
            margin: None,
            liveness: None,
            require_liveness: false,
            liveness_instruction: None,
            s3: false,
            photo_store: None,
        }
    }
}

/// The name of the admin key every test server is given (and so the kiosk its check-ins are
/// recorded under).
pub const ADMIN_KEY_NAME: &str = "test admin";

pub struct TestApp {
    pub address: String,
    /// Sends `Authorization: Bearer <an admin key>` on every request.
    pub client: reqwest::Client,
    /// That admin key, for requests written by hand.
    pub admin_key: String,
    /// The setup link's token (no account exists when a test server starts).
    pub setup_token: Option<String>,
    pub store: Store,
    /// Shared with the [`TestApp::second_server`]s over the same data.
    pub data_dir: Arc<tempfile::TempDir>,
    /// The test database, for a second instance over the same data.
    pub database_url: String,
    /// Where the photos are: the data directory or a bucket of the test S3 server.
    pub photo_store: PhotoLocation,
    mysql_db: Option<String>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, TestConfig::default()).await
}

pub async fn spawn_app_with(backend: Backend, config: TestConfig) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (url, mysql_db) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", data_dir.path().join("rollcall.db").display()),
            None,
        ),
        Backend::Mysql => {
            let name = new_mysql_database().await;
            (format!("{}/{name}", mysql_server_url()), Some(name))
        }
    };
    spawn_on(data_dir, url, mysql_db, config).await
}

/// A server over a fresh MariaDB database that it reaches only through `proxy` (a test cuts
/// the proxy to take the database away from this server alone).
pub async fn spawn_app_behind(proxy: &TcpProxy, config: TestConfig) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let name = new_mysql_database().await;
    let url = proxy.url_through(&format!("{}/{name}", mysql_server_url()));
    spawn_on(data_dir, url, Some(name), config).await
}

/// A proxy to the MariaDB server of the tests.
pub async fn mysql_proxy() -> TcpProxy {
    let url = mysql_server_url();
    let authority = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let upstream = tokio::net::lookup_host(host_port)
        .await
        .unwrap_or_else(|e| panic!("resolving {host_port}: {e}"))
        .next()
        .unwrap_or_else(|| panic!("{host_port} resolves to nothing"));
    TcpProxy::start(upstream).await
}

async fn new_mysql_database() -> String {
    let name = format!("rollcall_test_{}", uuid::Uuid::new_v4().simple());
    create_mysql_database(&name).await;
    name
}

async fn spawn_on(
    data_dir: tempfile::TempDir,
    url: String,
    mysql_db: Option<String>,
    config: TestConfig,
) -> TestApp {
    let photo_store = match (config.photo_store, config.s3) {
        (Some(location), _) => location,
        (None, true) => {
            let server = crate::seaweed::server();
            crate::seaweed::location(&server.fresh_bucket().await, &server.endpoint)
        }
        (None, false) => PhotoLocation::DataDir,
    };
    let mut settings = Settings::resolve(Overrides {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.path().to_owned()),
        database_url: Some(url.clone()),
        models: Some(models_dir()),
        embedder: Some(EmbedderChoice::FaceApi),
        cooldown_secs: Some(config.cooldown.as_secs()),
        max_upload_bytes: Some(config.max_upload_bytes),
        workers: Some(config.workers),
        queue: Some(config.queue),
        anonymous_verify: Some(config.anonymous_verify),
        max_images: config.max_images,
        header_timeout_secs: config.header_timeout_secs,
        body_timeout_secs: config.body_timeout_secs,
        idle_timeout_secs: config.idle_timeout_secs,
        answer_timeout_secs: config.answer_timeout_secs,
        max_connections: config.max_connections,
        tls_cert: config.tls.as_ref().map(|(cert, _)| cert.clone()),
        tls_key: config.tls.as_ref().map(|(_, key)| key.clone()),
        threshold: config.threshold,
        margin: config.margin,
        liveness: config.liveness,
        require_liveness: Some(config.require_liveness),
        liveness_instruction: config.liveness_instruction,
        ..Overrides::default()
    })
    .expect("test settings");
    settings.photo_store = photo_store.clone();
    let application = Application::build_with_pipeline(&settings, pipeline())
        .await
        .expect("building the application");
    let address = format!("http://{}", application.address());
    let store = application.store().clone();
    let setup_token = application.setup_token().map(str::to_owned);
    tokio::spawn(application.run_until(std::future::pending()));
    let admin_key = create_key(&store, ADMIN_KEY_NAME, Scope::Admin).await;
    TestApp {
        address,
        client: client_with_key(&admin_key),
        admin_key,
        setup_token,
        store,
        data_dir: Arc::new(data_dir),
        database_url: url,
        photo_store,
        mysql_db,
    }
}

/// A key of `scope` made straight in the database, as `rollcall keys create` does.
pub async fn create_key(store: &Store, name: &str, scope: Scope) -> String {
    let name = KeyName::parse(name).expect("a key name");
    Accounts::new(store.clone(), DEFAULT_SESSION_TTL)
        .create_key(&name, scope, false)
        .await
        .expect("creating a key")
        .1
}

/// A client that sends `Authorization: Bearer key` on every request.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {key}").parse().expect("a header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// A client that sends the session cookie `token` on every request.
pub fn client_with_session(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("rollcall_session={token}")
        .parse()
        .expect("a header value");
    headers.insert(reqwest::header::COOKIE, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// The value of the `rollcall_session` cookie a response sets.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("rollcall_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

pub async fn create_mysql_database(name: &str) {
    use sqlx::Connection;
    let url = mysql_server_url();
    let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "MariaDB/MySQL is not reachable at {url} ({e}). The MySQL half of the API tests needs it: \
             run .ci/run, or start mariadbd and make root@127.0.0.1 log in without a password."
        )
    });
    sqlx::query(&format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut conn)
    .await
    .expect("creating the test database");
    let _ = conn.close().await;
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let Some(name) = self.mysql_db.take() else {
            return;
        };
        // Drop runs outside async code: a short-lived runtime on its own thread drops the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::MySqlConnection::connect(&mysql_server_url())
                    .await
                    .ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// A multipart part for a photo.
pub fn image_part(bytes: Vec<u8>, file_name: &str) -> reqwest::multipart::Part {
    let mime = if file_name.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    reqwest::multipart::Part::bytes(bytes)
        .file_name(file_name.to_owned())
        .mime_str(mime)
        .expect("mime")
}

pub type Form = reqwest::multipart::Form;

/// What the database and img_refs/ hold: compared before and after a refused request.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub users: Vec<(i64, String, String)>,
    pub attendance: usize,
    pub files: Vec<String>,
}

impl TestApp {
    /// A client without credentials.
    pub fn anonymous(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// A new key of `scope` (named after it).
    pub async fn key(&self, scope: Scope) -> String {
        create_key(&self.store, &format!("{scope} key"), scope).await
    }

    /// A new account (`password`: `correct horse battery`).
    pub async fn account(&self, username: &str, role: Role) {
        Accounts::new(self.store.clone(), DEFAULT_SESSION_TTL)
            .add_account(
                &Username::parse(username).expect("a username"),
                &Password::parse(PASSWORD).expect("a password"),
                role,
            )
            .await
            .expect("creating an account");
    }

    /// `POST /login`, answered.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.anonymous()
            .post(self.url("/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// A new account of `role`, logged in: a client sending its session cookie.
    pub async fn logged_in(&self, username: &str, role: Role) -> reqwest::Client {
        self.account(username, role).await;
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status(), 200, "logging in as {username}");
        client_with_session(&session_cookie(&r).expect("a session cookie"))
    }

    /// A second server over this one's database and photo directory, as a second
    /// `rollcall serve` behind the same reverse proxy (the same admin key works on both).
    /// The database belongs to the first: drop the second one first.
    pub async fn second_server(&self) -> TestApp {
        self.second_server_at(&self.database_url).await
    }

    /// A second server over this one's data, reaching the database at `database_url` (this
    /// one's, or the same database through another road: a proxy, or none).
    pub async fn second_server_at(&self, database_url: &str) -> TestApp {
        let mut settings = Settings::resolve(Overrides {
            bind: Some("127.0.0.1:0".into()),
            data_dir: Some(self.data_dir.path().to_owned()),
            database_url: Some(database_url.to_owned()),
            models: Some(models_dir()),
            embedder: Some(EmbedderChoice::FaceApi),
            ..Overrides::default()
        })
        .expect("settings of the second server");
        settings.photo_store = self.photo_store.clone();
        let application = Application::build_with_pipeline(&settings, pipeline())
            .await
            .expect("building the second server");
        let address = format!("http://{}", application.address());
        let store = application.store().clone();
        tokio::spawn(application.run_until(std::future::pending()));
        TestApp {
            address,
            client: client_with_key(&self.admin_key),
            admin_key: self.admin_key.clone(),
            setup_token: None,
            store,
            data_dir: self.data_dir.clone(),
            database_url: database_url.to_owned(),
            photo_store: self.photo_store.clone(),
            mysql_db: None,
        }
    }

    /// The test database's URL without any proxy in between.
    pub fn direct_database_url(&self) -> String {
        match &self.mysql_db {
            Some(name) => format!("{}/{name}", mysql_server_url()),
            None => self.database_url.clone(),
        }
    }

    /// A second, independent pool on the test database, as a second server process has.
    pub async fn another_pool(&self) -> Store {
        Store::connect(&self.database_url)
            .await
            .expect("connecting a second pool to the test database")
    }

    /// Run one SQL statement on the test database (to set up states the API cannot make).
    pub async fn execute(&self, sql: &str) {
        match &self.store {
            Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Store::Mysql(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_form(&self, path: &str, form: Form) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// GET `path` and read the body as JSON (whatever the status).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).await.json().await.expect("a JSON body")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, first: &str, last: &str, photo: &str) -> reqwest::Response {
        let form = Form::new()
            .text("first_name", first.to_owned())
            .text("last_name", last.to_owned())
            .part("image", image_part(fixture(photo), file_name(photo)));
        self.post_form("/register", form).await
    }

    /// Register and return the new user's id (panics unless 200).
    pub async fn register_ok(&self, first: &str, last: &str, photo: &str) -> i64 {
        let r = self.register(first, last, photo).await;
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status, 200, "register {photo}: {body}");
        body["id"].as_i64().expect("id")
    }

    pub async fn verify(&self, photo: &str) -> reqwest::Response {
        self.verify_bytes(fixture(photo), file_name(photo)).await
    }

    pub async fn verify_bytes(&self, bytes: Vec<u8>, name: &str) -> reqwest::Response {
        let form = Form::new()
            // Ignored: the check-in is recorded under the caller's key.
            .text("kiosk", "front door")
            .part("image", image_part(bytes, name));
        self.post_form("/verify", form).await
    }

    pub fn img_refs(&self) -> PathBuf {
        self.data_dir.path().join("img_refs")
    }

    /// Every file under img_refs/, temp files included.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(self.img_refs()) {
            Ok(entries) => entries
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    pub async fn snapshot(&self) -> Snapshot {
        let users = self
            .store
            .list_users()
            .await
            .expect("list users")
            .into_iter()
            .map(|u| (u.id, u.first_name, u.last_name))
            .collect();
        let attendance = self
            .store
            .attendance(Default::default())
            .await
            .expect("attendance")
            .len();
        Snapshot {
            users,
            attendance,
            files: self.stored_photos().await,
        }
    }

    /// The names of the stored photos, temp files included: files in img_refs/, or the keys
    /// under img_refs/ in the bucket (anything else in the bucket too, in full).
    pub async fn stored_photos(&self) -> Vec<String> {
        match crate::seaweed::bucket_of(&self.photo_store) {
            None => self.files(),
            Some(b) => crate::seaweed::keys(b.bucket())
                .await
                .into_iter()
                .map(|k| k.strip_prefix("img_refs/").map_or(k.clone(), str::to_owned))
                .collect(),
        }
    }
}

/// The password of [`TestApp::account`]s.
pub const PASSWORD: &str = "correct horse battery";

fn file_name(rel: &str) -> &str {
    Path::new(rel)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("photo.jpg")
}

/// Runs each listed `async fn name(app: TestApp)` once on SQLite and once on MySQL; with a
/// leading `config = EXPR;`, on servers spawned with that `TestConfig`.
#[macro_export]
macro_rules! on_both_backends {
    (config = $config:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $config).await).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app_with($crate::helpers::Backend::Mysql, $config).await).await
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Mysql).await).await
                }
            )*
        }
    };
}

/// `faces/<Name>/<file>` paths of a person's photos, sorted.
pub fn photos_of(name: &str) -> Vec<String> {
    let dir = shared_dir().join("fixtures/faces").join(name);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            format!(
                "faces/{name}/{}",
                e.expect("dir entry").file_name().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    files
}

/// Four photos of Tony Blair that face-api scores 0.97–0.98 against one another: above the
/// calibrated default threshold (0.962). Pairs of one LFW person range far lower (Tony Blair's
/// own go down to 0.89; see docs/accuracy.md); these tests are about the server's behaviour,
/// accuracy is `rollcall eval`'s job.
pub fn tony_blair() -> Vec<String> {
    ["0048", "0102", "0121", "0086"]
        .map(|n| format!("faces/Tony_Blair/Tony_Blair_{n}.jpg"))
        .to_vec()
}
