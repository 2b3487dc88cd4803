//! `rollcall enroll`: register a folder-per-person tree (ROOT/<First_Last>/*.jpg) in one go.

use super::args::{CommonArgs, DatabaseArgs, EmbedderArgs, PhotoStoreArgs};
use super::{bar_style, read_photo, Leading};
use crate::app::{open_rollcall, runtime};
use crate::audit::Actor;
use crate::domain::{ImageFormat, PersonName};
use crate::service::{Pick, ReferenceFace, Rollcall};
use crate::store::FaceSource;
use anyhow::{bail, Context};
use clap::Args;
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct EnrollArgs {
    /// ROOT/<First_Last>/<photos>
    pub root: PathBuf,
    /// Reference photos per person at most.
    #[arg(long, default_value_t = 3)]
    pub max_photos: usize,
    /// Register a person even when a face of theirs already matches someone registered
    /// (without it such a person is skipped, so a second run adds nobody twice).
    #[arg(long)]
    pub allow_duplicate: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub photo_store: PhotoStoreArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: EnrollArgs) -> anyhow::Result<()> {
    let settings = super::settings(
        leading,
        &[&a.common, &a.database, &a.photo_store, &a.embedder],
    )?;
    if a.max_photos == 0 {
        bail!("--max-photos must be at least 1");
    }
    let mut people: Vec<PathBuf> = std::fs::read_dir(&a.root)
        .with_context(|| format!("reading {}", a.root.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    runtime()?.block_on(async {
        let rollcall = open_rollcall(&settings).await?;
        let bar = ProgressBar::new(people.len() as u64).with_style(bar_style());
        bar.set_message("enrolling");
        let mut registered = 0;
        let mut photos_used = 0;
        let mut skipped: Vec<(PathBuf, String)> = Vec::new();
        for dir in &people {
            let folder = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            bar.set_message(folder.clone());
            let person = Person {
                dir,
                folder: &folder,
                max: a.max_photos,
                allow_duplicate: a.allow_duplicate,
            };
            match enroll_person(&rollcall, person, &mut skipped).await {
                Ok(Some(n)) => {
                    registered += 1;
                    photos_used += n;
                }
                Ok(None) => {}
                Err(e) => skipped.push((dir.clone(), format!("{e:#}"))),
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        println!(
            "registered {registered} of {} people from {photos_used} photo(s); {} skipped",
            people.len(),
            skipped.len()
        );
        for (path, why) in &skipped {
            println!("  skipped {}: {why}", path.display());
        }
        Ok(())
    })
}

/// Photos of one person's folder, sorted by name.
fn photos_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| ImageFormat::from_extension(&e.to_string_lossy()))
                    .is_some()
        })
        .collect();
    photos.sort();
    Ok(photos)
}

/// One folder to enrol, and how.
struct Person<'a> {
    dir: &'a Path,
    folder: &'a str,
    /// Reference photos at most.
    max: usize,
    allow_duplicate: bool,
}

/// Register one folder's person from up to `max` photos with a clear face. `None` when none had,
/// or when a face of theirs already belongs to someone registered (a second run, or the same
/// person under two folders) and duplicates are not allowed.
async fn enroll_person(
    rollcall: &Rollcall,
    p: Person<'_>,
    skipped: &mut Vec<(PathBuf, String)>,
) -> anyhow::Result<Option<usize>> {
    let folder = p.folder;
    let name = PersonName::from_folder_name(folder)
        .with_context(|| format!("folder name `{folder}` is not First_Last"))?;
    let mut faces: Vec<(Arc<[u8]>, ReferenceFace)> = Vec::new();
    let mut duplicates_of = Vec::new();
    for photo in photos_in(p.dir)? {
        if faces.len() == p.max {
            break;
        }
        let bytes = read_photo(&photo)?;
        let face = match rollcall.reference_face(bytes.clone(), Pick::SUBJECT).await {
            Ok(face) => face,
            Err(e) => {
                skipped.push((photo, e.to_string()));
                continue;
            }
        };
        match rollcall.duplicate_of(&face.embedding, None, p.allow_duplicate) {
            Ok(Some(other)) => duplicates_of.push(other.user_id),
            Ok(None) => {}
            Err(e) => {
                skipped.push((p.dir.to_owned(), e.to_string()));
                return Ok(None);
            }
        }
        faces.push((bytes, face));
    }
    if faces.is_empty() {
        skipped.push((p.dir.to_owned(), "no photo with one clear face".into()));
        return Ok(None);
    }
    let n = faces.len();
    rollcall
        .create_user(&name, faces, &duplicates_of, FaceSource::Cli, &Actor::cli())
        .await?;
    Ok(Some(n))
}
