//! `rollcall models fetch`: make a models directory complete, reporting each file.

use crate::cli::{GlobalArgs, ModelsCommand};
use crate::config;
use rollcall_vision::fetch::{self, Fetcher, FileState, ModelFile, ModelGroup};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn run(global: &GlobalArgs, cmd: ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Fetch => fetch_all(&models_dir(global)?),
    }
}

/// The models directory every command uses: `--models` / `ROLLCALL_MODELS`, else the
/// configuration file's `models`, else `models/` inside the data directory (see
/// [`config::Settings`]).
pub fn models_dir(global: &GlobalArgs) -> anyhow::Result<PathBuf> {
    Ok(config::Settings::resolve(global, None)?.models.models_dir)
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
        eprintln!("note: FaceNet is unavailable; `--embedder auto` will use face-api");
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
