//! `rollcall models fetch`: make a models directory complete, reporting each file.

use super::args::{CommonArgs, ModelsDirArgs};
use super::Leading;
use clap::{Args, Subcommand};
use rollcall_vision::fetch::{self, Fetcher, FileState, ModelFile, ModelGroup};
use std::collections::HashMap;
use std::path::Path;

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Download the model files that are missing (SHA-256 checked); exits non-zero when any
    /// file could not be had.
    Fetch(FetchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct FetchArgs {
    #[command(flatten)]
    pub models: ModelsDirArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(leading: &Leading, cmd: ModelsCommand) -> anyhow::Result<()> {
    let ModelsCommand::Fetch(a) = cmd;
    // The models directory every command uses: `--models` / `ROLLCALL_MODELS`, else the
    // configuration file's `models`, else `models/` inside the data directory.
    let settings = super::settings(leading, &[&a.common, &a.models])?;
    fetch_all(&settings.models.models_dir)
}

/// What became of one file.
enum Outcome {
    Present,
    Fetched(String),
    Failed(String),
}

fn fetch_all(dir: &Path) -> anyhow::Result<()> {
    let manifest = fetch::manifest();
    let fetcher = Fetcher::default();
    println!("models directory: {}", dir.display());
    // Whether every file of a group is in place.
    let mut complete: HashMap<ModelGroup, bool> = HashMap::new();
    for file in &manifest {
        let outcome = fetch_one(&fetcher, dir, file);
        let line = match &outcome {
            Outcome::Present => "present, verified".to_string(),
            Outcome::Fetched(source) => format!("fetched from {source}"),
            Outcome::Failed(reason) => format!("FAILED: {reason}"),
        };
        println!("  {:<50} {line}", file.rel_path);
        *complete.entry(file.group).or_insert(true) &= !matches!(outcome, Outcome::Failed(_));
    }

    let ok = |g: ModelGroup| complete.get(&g).copied().unwrap_or(false);
    let summary: Vec<String> = [ModelGroup::Mtcnn, ModelGroup::Facenet, ModelGroup::FaceApi]
        .iter()
        .map(|g| format!("{g}: {}", if ok(*g) { "ready" } else { "missing" }))
        .collect();
    println!("{}", summary.join(", "));
    if !ok(ModelGroup::Mtcnn) {
        anyhow::bail!(
            "the MTCNN detector files are missing from {}: nothing can run",
            dir.display()
        );
    }
    if !ok(ModelGroup::Facenet) && !ok(ModelGroup::FaceApi) {
        anyhow::bail!(
            "no embedder is complete in {}: neither FaceNet nor face-api",
            dir.display()
        );
    }
    if !ok(ModelGroup::Facenet) {
        // face-api works: say so, but a fetch that failed is still a failure for scripts.
        anyhow::bail!(
            "the FaceNet weights could not be fetched into {}; face-api is ready and \
             `--embedder face-api` (or `auto`) works with what is there, or give a FaceNet \
             state dict with --facenet-weights FILE",
            dir.display()
        );
    }
    if !ok(ModelGroup::FaceApi) {
        anyhow::bail!(
            "the face-api files could not be fetched into {}; FaceNet is ready",
            dir.display()
        );
    }
    Ok(())
}

/// Keep a verified file; fetch a missing or corrupt one (a corrupt file is replaced only by a
/// verified copy).
fn fetch_one(fetcher: &Fetcher, dir: &Path, file: &ModelFile) -> Outcome {
    let problem = match fetcher.state(dir, file) {
        FileState::Good => return Outcome::Present,
        FileState::Missing => None,
        FileState::Bad(reason) => Some(reason),
    };
    match (fetcher.fetch(dir, file), problem) {
        (Ok(source), None) => Outcome::Fetched(source),
        (Ok(source), Some(problem)) => {
            Outcome::Fetched(format!("{source} (the old copy: {problem})"))
        }
        (Err(e), None) => Outcome::Failed(e.to_string()),
        (Err(e), Some(problem)) => {
            Outcome::Failed(format!("the present copy is bad ({problem}); {e}"))
        }
    }
}
