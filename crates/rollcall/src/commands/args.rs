//! The groups of flags commands share. Each command flattens only the groups it uses, so its
//! `--help` lists what it obeys and nothing else; clap reads each flag's environment variable.
//! [`Overrides`] is what the groups add up to.

use crate::config::Overrides;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use rollcall_vision::models::EmbedderChoice;
use std::path::PathBuf;

/// Every command: the configuration file and the data directory.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Optional TOML configuration file (flags and environment override it).
    #[arg(long, env = "ROLLCALL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Holds the SQLite database, img_refs/ (reference photos) and models/ [default: ./data].
    #[arg(long, env = "ROLLCALL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Commands that open the database.
#[derive(Args, Debug, Clone, Default)]
pub struct DatabaseArgs {
    /// sqlite://FILE or mysql://USER:PASS@HOST:PORT/DB [default: SQLite in the data directory].
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

/// Commands that read, write or delete reference photos.
#[derive(Args, Debug, Clone, Default)]
pub struct PhotoStoreArgs {
    /// Where reference photos go: s3://BUCKET[/PREFIX] for any S3-compatible store (endpoint,
    /// region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for plain http) [default: DATA_DIR/img_refs].
    #[arg(long, env = "ROLLCALL_PHOTO_STORE", value_name = "URL")]
    pub photo_store: Option<String>,
}

/// Commands that read model files.
#[derive(Args, Debug, Clone, Default)]
pub struct ModelsDirArgs {
    /// Directory of the model files, used as it is [default: DATA_DIR/models, filled on first
    /// use; `rollcall models fetch --models DIR` fills another].
    #[arg(long, env = "ROLLCALL_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
}

/// Commands that run the face pipeline.
#[derive(Args, Debug, Clone, Default)]
pub struct EmbedderArgs {
    #[command(flatten)]
    pub models: ModelsDirArgs,
    /// Embedding network: FaceNet (InceptionResnetV1, vggface2), face-api (dlib's ResNet) or
    /// auto (FaceNet when its weights are there) [default: auto].
    #[arg(long, env = "ROLLCALL_EMBEDDER", value_enum)]
    pub embedder: Option<EmbedderChoice>,
    /// A FaceNet state dict (.pt) to use instead of the fetched vggface2 file.
    #[arg(long, env = "ROLLCALL_FACENET_WEIGHTS", value_name = "FILE")]
    pub facenet_weights: Option<PathBuf>,
}

/// Commands that decide whether a face matches.
#[derive(Args, Debug, Clone, Default)]
pub struct ThresholdArgs {
    /// Cosine similarity at or above which a face matches [default: derived for the gallery
    /// from --false-accept-rate].
    #[arg(long, env = "ROLLCALL_THRESHOLD", value_name = "SIMILARITY")]
    pub threshold: Option<f32>,
    /// With --threshold: how much more similar the best person must be than the next one (0:
    /// the best alone decides) [default: derived with the threshold, else 0].
    #[arg(long, env = "ROLLCALL_MARGIN", value_name = "SIMILARITY")]
    pub margin: Option<f64>,
    /// Strangers accepted as someone per attempt that the derived threshold allows, for the
    /// people registered now (0.001: one in 1,000) [default: 0.001].
    #[arg(long, env = "ROLLCALL_FALSE_ACCEPT_RATE", value_name = "RATE")]
    pub false_accept_rate: Option<f64>,
}

/// The server's own settings.
#[derive(Args, Debug, Clone, Default)]
pub struct ServerArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ROLLCALL_BIND", value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// No second check-in of a person within this many seconds [default: 300].
    #[arg(long, env = "ROLLCALL_COOLDOWN_SECS", value_name = "SECONDS")]
    pub cooldown_secs: Option<u64>,
    /// Largest accepted upload (the whole request body) [default: 10 MiB].
    #[arg(long, env = "ROLLCALL_MAX_UPLOAD_BYTES", value_name = "BYTES")]
    pub max_upload_bytes: Option<usize>,
    /// Photos analysed at the same time [default: 2].
    #[arg(long, env = "ROLLCALL_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Photos waiting for a worker before the server answers 503 [default: 8].
    #[arg(long, env = "ROLLCALL_QUEUE", value_name = "N")]
    pub queue: Option<usize>,
    /// Let clients without a key use /verify and /detect (and nothing else): only for a kiosk
    /// on a network you trust. Logged as a warning at start.
    #[arg(long, env = "ROLLCALL_ANONYMOUS_VERIFY")]
    pub anonymous_verify: bool,
    /// Mark the session cookie `Secure` (the server is reached over HTTPS, e.g. behind a TLS
    /// reverse proxy).
    #[arg(long, env = "ROLLCALL_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Delete check-ins older than this many days, at start and then hourly [default: keep all].
    #[arg(long, env = "ROLLCALL_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// How often to apply the changes other servers and the command line made to the
    /// registered people (1–60000) [default: 250].
    #[arg(long, env = "ROLLCALL_SYNC_INTERVAL_MS", value_name = "MS")]
    pub sync_interval_ms: Option<u64>,
    /// `challenge`: the kiosk page asks a head movement and sends a short sequence of frames
    /// (a photo held up to the camera cannot follow it); `off`: single photos [default: challenge].
    #[arg(long, env = "ROLLCALL_LIVENESS", value_name = "MODE")]
    pub liveness: Option<crate::liveness::Mode>,
    /// Check nobody in from a single photo: only a sequence that followed a challenge checks
    /// in (a single photo is still recognised).
    #[arg(long, env = "ROLLCALL_REQUIRE_LIVENESS")]
    pub require_liveness: bool,
    /// Ask this movement in every challenge instead of a random one: for tests only.
    #[arg(long, env = "ROLLCALL_LIVENESS_TEST_INSTRUCTION", hide = true, value_parser = parse_instruction)]
    pub liveness_test_instruction: Option<crate::liveness::Instruction>,
}

fn parse_instruction(s: &str) -> Result<crate::liveness::Instruction, String> {
    crate::liveness::Instruction::parse(s).ok_or_else(|| format!("`{s}`: turn_left or turn_right"))
}

/// Who may reach the server and how long a connection may take (`rollcall serve`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Front door")]
pub struct FrontDoorArgs {
    /// A URL people reach the server at (a reverse proxy's, a LAN name's), e.g.
    /// https://kiosk.example.org: its host is allowed and its origin counts as the server's own.
    /// Repeat or separate with commas.
    #[arg(
        long,
        env = "ROLLCALL_PUBLIC_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub public_url: Vec<String>,
    /// More host names the server answers to (besides loopback names, IP addresses, the bind
    /// address and the public URLs). Repeat or separate with commas.
    #[arg(
        long,
        env = "ROLLCALL_ALLOWED_HOSTS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// The most `image` parts one request may carry [default: 10].
    #[arg(long, env = "ROLLCALL_MAX_IMAGES", value_name = "N")]
    pub max_images: Option<usize>,
    /// Seconds a client has to send a request's headers [default: 10].
    #[arg(long, env = "ROLLCALL_HEADER_TIMEOUT_SECS", value_name = "SECONDS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's whole body; then the connection is closed
    /// [default: 30].
    #[arg(long, env = "ROLLCALL_BODY_TIMEOUT_SECS", value_name = "SECONDS")]
    pub body_timeout_secs: Option<u64>,
    /// Seconds a keep-alive connection may wait for its next request [default: 30].
    #[arg(long, env = "ROLLCALL_IDLE_TIMEOUT_SECS", value_name = "SECONDS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds within which every request is answered, counted from its headers (upload
    /// included): past them, 503 `timed_out` (a database or photo store that stopped
    /// answering) [default: 60].
    #[arg(long, env = "ROLLCALL_ANSWER_TIMEOUT_SECS", value_name = "SECONDS")]
    pub answer_timeout_secs: Option<u64>,
    /// Connections served at once; more wait in the operating system's listen queue
    /// [default: 256].
    #[arg(long, env = "ROLLCALL_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// On SIGTERM or Ctrl-C, seconds the requests under way get to finish before the server
    /// exits anyway [default: 10].
    #[arg(long, env = "ROLLCALL_SHUTDOWN_TIMEOUT_SECS", value_name = "SECONDS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        env = "ROLLCALL_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "ROLLCALL_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// The flags that may also stand before the command (`rollcall --models DIR detect …`), as
/// scripts written for earlier versions put them. A flag after the command wins.
#[derive(Args, Debug, Clone, Default)]
pub struct LeadingArgs {
    /// Optional TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the model files.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Embedding network.
    #[arg(long, value_enum)]
    pub embedder: Option<EmbedderChoice>,
    /// A FaceNet state dict (.pt).
    #[arg(long, value_name = "FILE")]
    pub facenet_weights: Option<PathBuf>,
    /// The data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database URL.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl From<&LeadingArgs> for Overrides {
    fn from(a: &LeadingArgs) -> Self {
        Overrides {
            config: a.config.clone(),
            models: a.models.clone(),
            embedder: a.embedder,
            facenet_weights: a.facenet_weights.clone(),
            data_dir: a.data_dir.clone(),
            database_url: a.database_url.clone(),
            ..Overrides::default()
        }
    }
}

/// A group of flags adds what it was given to the overrides.
pub trait Given {
    fn add_to(&self, o: &mut Overrides);
}

impl Given for CommonArgs {
    fn add_to(&self, o: &mut Overrides) {
        o.config = self.config.clone();
        o.data_dir = self.data_dir.clone();
    }
}

impl Given for DatabaseArgs {
    fn add_to(&self, o: &mut Overrides) {
        o.database_url = self.database_url.clone();
    }
}

impl Given for PhotoStoreArgs {
    fn add_to(&self, o: &mut Overrides) {
        o.photo_store = self.photo_store.clone();
    }
}

impl Given for ModelsDirArgs {
    fn add_to(&self, o: &mut Overrides) {
        o.models = self.models.clone();
    }
}

impl Given for EmbedderArgs {
    fn add_to(&self, o: &mut Overrides) {
        self.models.add_to(o);
        o.embedder = self.embedder;
        o.facenet_weights = self.facenet_weights.clone();
    }
}

impl Given for ThresholdArgs {
    fn add_to(&self, o: &mut Overrides) {
        o.threshold = self.threshold;
        o.margin = self.margin;
        o.false_accept_rate = self.false_accept_rate;
    }
}

impl Given for ServerArgs {
    fn add_to(&self, o: &mut Overrides) {
        o.bind = self.bind.clone();
        o.cooldown_secs = self.cooldown_secs;
        o.max_upload_bytes = self.max_upload_bytes;
        o.workers = self.workers;
        o.queue = self.queue;
        // An absent flag leaves the file's setting in force.
        o.anonymous_verify = self.anonymous_verify.then_some(true);
        o.secure_cookies = self.secure_cookies.then_some(true);
        o.retention_days = self.retention_days;
        o.sync_interval_ms = self.sync_interval_ms;
        o.liveness = self.liveness;
        o.require_liveness = self.require_liveness.then_some(true);
        o.liveness_instruction = self.liveness_test_instruction;
    }
}

impl Given for FrontDoorArgs {
    fn add_to(&self, o: &mut Overrides) {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        o.public_url = list(&self.public_url);
        o.allowed_hosts = list(&self.allowed_hosts);
        o.max_images = self.max_images;
        o.header_timeout_secs = self.header_timeout_secs;
        o.body_timeout_secs = self.body_timeout_secs;
        o.idle_timeout_secs = self.idle_timeout_secs;
        o.answer_timeout_secs = self.answer_timeout_secs;
        o.max_connections = self.max_connections;
        o.shutdown_timeout_secs = self.shutdown_timeout_secs;
        o.tls_cert = self.tls_cert.clone();
        o.tls_key = self.tls_key.clone();
    }
}

/// The flags given before the command, and which of the command's own settings came from the
/// environment (a flag before the command beats an environment variable, as any flag does).
#[derive(Debug, Clone, Default)]
pub struct Leading {
    pub args: LeadingArgs,
    pub from_env: Vec<String>,
}

/// The ids of the innermost command's arguments whose value clap took from the environment.
pub fn ids_from_env(matches: &ArgMatches) -> Vec<String> {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    leaf.ids()
        .filter(|id| leaf.value_source(id.as_str()) == Some(ValueSource::EnvVariable))
        .map(|id| id.as_str().to_owned())
        .collect()
}

/// The overrides of a command's flag groups, over the flags given before the command.
pub fn overrides(leading: &Leading, groups: &[&dyn Given]) -> Overrides {
    let mut given = Overrides::default();
    for group in groups {
        group.add_to(&mut given);
    }
    let l = &leading.args;
    let env = |id: &str| leading.from_env.iter().any(|e| e == id);
    if l.config.is_some() && env("config") {
        given.config = None;
    }
    if l.models.is_some() && env("models") {
        given.models = None;
    }
    if l.embedder.is_some() && env("embedder") {
        given.embedder = None;
    }
    if l.facenet_weights.is_some() && env("facenet_weights") {
        given.facenet_weights = None;
    }
    if l.data_dir.is_some() && env("data_dir") {
        given.data_dir = None;
    }
    if l.database_url.is_some() && env("database_url") {
        given.database_url = None;
    }
    given.or(Overrides::from(l))
}
