//! The command line. Every command shares the model and storage flags ([`GlobalArgs`]); each
//! command's work lives in its own module under [`crate::commands`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "rollcall",
    version,
    about = "Face-recognition attendance: register people once, check them in from a webcam kiosk",
    long_about = "Face-recognition attendance: register people once from a photo, then check them in from a \
webcam kiosk.\n\nStart the server with `rollcall serve` and open http://127.0.0.1:8080/ (kiosk) or /admin.\n\
Everything works with no configuration: data goes to ./data (SQLite + reference photos), models are \
fetched on first start."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command understands.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Optional TOML configuration file (flags and environment override it).
    #[arg(long, global = true, env = "ROLLCALL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding the model files (fetched there when missing).
    #[arg(long, global = true, env = "ROLLCALL_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Embedding network: facenet (InceptionResnetV1, vggface2), face-api (dlib ResNet) or auto.
    #[arg(
        long,
        global = true,
        env = "ROLLCALL_EMBEDDER",
        value_name = "facenet|face-api|auto"
    )]
    pub embedder: Option<String>,
    /// A FaceNet state dict (.pt) to use instead of the fetched vggface2 file.
    #[arg(
        long,
        global = true,
        env = "ROLLCALL_FACENET_WEIGHTS",
        value_name = "FILE"
    )]
    pub facenet_weights: Option<PathBuf>,
    /// Holds the SQLite database and img_refs/ (reference photos).
    #[arg(long, global = true, env = "ROLLCALL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://FILE or mysql://USER:PASS@HOST:PORT/DB (default: SQLite in the data directory).
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server: the API, the kiosk page (/) and the admin page (/admin).
    Serve(ServeArgs),
    /// Manage model files.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Register a person from one or more photos of them.
    Register(RegisterArgs),
    /// Say who is in a photo (no attendance is recorded).
    Verify(VerifyArgs),
    /// List or delete registered people.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Read the attendance log.
    #[command(subcommand)]
    Attendance(AttendanceCommand),
    /// Re-embed every registered person from their stored photos (after a model change).
    Reindex,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Register a folder-per-person tree of photos (ROOT/<First_Last>/*.jpg) in one go.
    Enroll(EnrollArgs),
    /// Find faces in photos and print them (boxes, probabilities, landmarks, embeddings).
    Detect(DetectArgs),
    /// Measure speed and memory of each stage and print a table.
    Bench(BenchArgs),
    /// Measure recognition accuracy on a labelled folder-per-person photo set (LFW layout).
    Eval(EvalArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ROLLCALL_BIND", value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// Cosine similarity at or above which a face matches [default: the embedder's].
    #[arg(long, env = "ROLLCALL_THRESHOLD", value_name = "SIMILARITY")]
    pub threshold: Option<f32>,
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
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Download the model files that are missing (SHA-256 checked).
    Fetch,
}

#[derive(Args, Debug, Clone)]
pub struct RegisterArgs {
    #[arg(long)]
    pub first_name: String,
    #[arg(long)]
    pub last_name: String,
    /// One or more photos of the person (the first is kept as the reference photo).
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    pub photo: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List registered people.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a person, their photo and embeddings.
    Delete {
        id: i64,
        /// Also delete their attendance history.
        #[arg(long)]
        with_history: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AttendanceCommand {
    /// Write the attendance log as CSV.
    Export {
        /// First day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD), inclusive.
        #[arg(long)]
        to: Option<String>,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct EnrollArgs {
    /// ROOT/<First_Last>/<photos>
    pub root: PathBuf,
    /// Reference photos per person at most.
    #[arg(long, default_value_t = 3)]
    pub max_photos: usize,
}

#[derive(Args, Debug, Clone)]
pub struct DetectArgs {
    /// Print JSON: an array of { "image": path, "faces": [...] }.
    #[arg(long)]
    pub json: bool,
    /// Also compute each face's embedding.
    #[arg(long)]
    pub embed: bool,
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long)]
    pub json: bool,
    /// Timed runs per measurement.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Folder with single_640x480.jpg and single_1280x720.jpg (default: the shared parity images).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Folder per person: ROOT/<Person_Name>/<Person_Name>_0001.jpg
    #[arg(long)]
    pub root: PathBuf,
    /// LFW-style pairs.txt (default: ROOT/pairs.txt when present).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Where to write roc.png and scores.png.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Use at most this many people (for quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Cosine similarity at which a face is accepted (default: the embedder's default).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Reference photos per enrolled person in the attendance scenario (best-of matching).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub references: u64,
    /// How face-api crops faces: `box` (the detection box) or `aligned` (5-landmark alignment).
    #[arg(long, value_name = "box|aligned")]
    pub face_api_crop: Option<rollcall_vision::embedder::FaceApiCrop>,
    /// Worker threads for embedding photos.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Parse the command line and run the command; errors are printed, not panicked.
pub fn main() -> ExitCode {
    keep_freed_memory_for_reuse();
    let cli = Cli::parse();
    match crate::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Detection allocates and frees buffers of 1–13 MB per pyramid level. By default glibc maps
/// such buffers fresh, or trims them off the heap when they are freed, and the next frame faults
/// every page in again. Buffers below 32 MB are served from the heap here, and the heap is
/// trimmed only past 64 MB of free space. Each arena keeps its own free memory, so arenas are
/// limited to one per core (a single one made FaceNet's two threads wait on its lock). Measured
/// with `rollcall bench` in docs/performance.md ("Session 5"): face-api detection at 640×480
/// 15–17 → 9 ms, at 1280×720 46–50 → 23 ms; FaceNet peak RSS 362–409 → 320–367 MB.
fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets allocator parameters; it runs before any other thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.max(2) as libc::c_int);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        }
    }
}
