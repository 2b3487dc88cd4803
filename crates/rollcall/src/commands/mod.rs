//! One module per command, each with its flags (`…Args`) and its `run`; [`args`] holds the flag
//! groups they share. Every command resolves its [`Settings`](crate::config::Settings) and
//! opens what it needs through [`crate::app`], the start-up the server uses.

pub mod admin;
pub mod args;
pub mod attendance;
pub mod audit;
pub mod bench;
pub mod bench_gallery;
pub mod detect;
pub mod enroll;
pub mod eval;
pub mod eval_liveness;
pub mod keys;
pub mod migrate;
pub mod models;
pub mod register;
pub mod reindex;
pub mod serve;
pub mod tls;
pub mod users;
pub mod verify;

pub use args::Leading;

use crate::config::Settings;
use anyhow::Context;
use args::Given;
use indicatif::ProgressStyle;
use std::path::Path;
use std::sync::Arc;

/// The settings of a command from its flag groups (and the flags before it), with logging set
/// up to stderr.
fn settings(leading: &Leading, groups: &[&dyn Given]) -> anyhow::Result<Settings> {
    crate::app::init_tracing();
    Ok(Settings::resolve(args::overrides(leading, groups))?)
}

fn read_photo(path: &Path) -> anyhow::Result<Arc<[u8]>> {
    Ok(std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {wide_msg:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A listing on stdout, as `users list`, `keys list` and `audit` print theirs: pretty JSON of
/// every item's `json` form with `--json`; else one `line` each, or `empty` when there is none.
fn print_listing<T, J: serde::Serialize>(
    items: Vec<T>,
    as_json: bool,
    empty: &str,
    json: impl Fn(T) -> J,
    line: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if as_json {
        let items: Vec<J> = items.into_iter().map(json).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if items.is_empty() {
        println!("{empty}");
    } else {
        for item in &items {
            println!("{}", line(item));
        }
    }
    Ok(())
}
