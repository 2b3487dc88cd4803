//! The command line: the tree of commands and the flags that may stand before them. Each
//! command's own flags and its work live in its module under [`crate::commands`]; this module
//! only assembles the tree and dispatches.

use crate::commands::args::LeadingArgs;
use crate::commands::{self, Leading};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "rollcall",
    version,
    about = "Face-recognition attendance: register people once, check them in from a webcam kiosk",
    long_about = "Face-recognition attendance: register people once from a photo, then check them in from a \
webcam kiosk.\n\nStart the server with `rollcall serve` and open http://127.0.0.1:8080/ (kiosk) or /admin.\n\
Everything works with no configuration: data goes to ./data (SQLite + reference photos), models are \
fetched on first start. `rollcall COMMAND --help` lists the flags each command obeys."
)]
pub struct Cli {
    /// Flags that may also stand before the command (the command's own flags win).
    #[command(flatten, next_help_heading = "Flags accepted before the command")]
    pub leading: LeadingArgs,
    #[command(subcommand)]
    pub command: Command,
}

// One value per process, parsed once: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server: the API, the kiosk page (/) and the admin page (/admin).
    Serve(commands::serve::ServeArgs),
    /// Manage model files.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// Register a person from one or more photos of them.
    Register(commands::register::RegisterArgs),
    /// Say who is in a photo (no attendance is recorded); exits 1 when the largest face is not
    /// recognised.
    Verify(commands::verify::VerifyArgs),
    /// List or delete registered people.
    #[command(subcommand)]
    Users(commands::users::UsersCommand),
    /// Accounts of the people who log in to the admin page (works without the server).
    #[command(subcommand)]
    Admin(commands::admin::AdminCommand),
    /// Keys for machines (kiosks, scripts): `Authorization: Bearer KEY`.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Read the attendance log.
    #[command(subcommand)]
    Attendance(commands::attendance::AttendanceCommand),
    /// Read the audit log: who registered, deleted, exported, logged in…, newest first.
    Audit(commands::audit::AuditArgs),
    /// Re-embed every registered person from their stored photos (after a model change).
    Reindex(commands::reindex::ReindexArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(commands::migrate::MigrateArgs),
    /// Register a folder-per-person tree of photos (ROOT/<First_Last>/*.jpg) in one go.
    Enroll(commands::enroll::EnrollArgs),
    /// Find faces in photos and print them (boxes, probabilities, landmarks, embeddings).
    Detect(commands::detect::DetectArgs),
    /// Measure speed and memory of each stage and print a table.
    Bench(commands::bench::BenchArgs),
    /// Certificates for serving HTTPS from the binary.
    #[command(subcommand)]
    Tls(commands::tls::TlsCommand),
    /// Measure recognition accuracy on a labelled folder-per-person photo set (LFW layout).
    Eval(commands::eval::EvalArgs),
    /// Measure the liveness check (APCER, BPCER) on sequences made from a labelled photo set.
    EvalLiveness(commands::eval_liveness::EvalLivenessArgs),
}

/// Parse the command line and run the command; errors are printed, not panicked.
pub fn run() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let leading = Leading {
        args: cli.leading,
        from_env: commands::args::ids_from_env(&matches),
    };
    let result = match cli.command {
        Command::Serve(a) => commands::serve::run(&leading, a),
        Command::Models(c) => commands::models::run(&leading, c),
        Command::Register(a) => commands::register::run(&leading, a),
        Command::Verify(a) => commands::verify::run(&leading, a),
        Command::Users(c) => commands::users::run(&leading, c),
        Command::Admin(c) => commands::admin::run(&leading, c),
        Command::Keys(c) => commands::keys::run(&leading, c),
        Command::Attendance(c) => commands::attendance::run(&leading, c),
        Command::Audit(a) => commands::audit::run(&leading, a),
        Command::Reindex(a) => commands::reindex::run(&leading, a),
        Command::Migrate(a) => commands::migrate::run(&leading, a),
        Command::Enroll(a) => commands::enroll::run(&leading, a),
        Command::Detect(a) => commands::detect::run(&leading, a),
        Command::Bench(a) => commands::bench::run(&leading, a),
        Command::Eval(a) => commands::eval::run(&leading, a),
        Command::EvalLiveness(a) => commands::eval_liveness::run(&leading, a),
        Command::Tls(c) => commands::tls::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
