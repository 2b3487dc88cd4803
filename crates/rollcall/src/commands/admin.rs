//! Commands that work on the database directly: register, verify, users, attendance, reindex,
//! migrate, enroll. Each resolves the settings, opens what it needs and calls the same
//! [`crate::service::Rollcall`] the server uses.

use super::serve::{init_tracing, open, open_store, runtime};
use crate::cli::*;
use crate::config::Settings;
use crate::domain::{DayRange, ImageFormat, PersonName};
use crate::http::users::UserJson;
use crate::service::{ReferenceFace, Rollcall};
use crate::store::{AttendanceFilter, PhotoDir, UserRecord};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn settings(g: &GlobalArgs) -> anyhow::Result<Settings> {
    init_tracing();
    Ok(Settings::resolve(g, None)?)
}

fn read_photo(path: &Path) -> anyhow::Result<Arc<[u8]>> {
    Ok(std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into())
}

fn print_user(u: &UserRecord) {
    println!(
        "{:>5}  {} {}  ({} face{}, model {}, registered {})",
        u.id,
        u.first_name,
        u.last_name,
        u.faces,
        if u.faces == 1 { "" } else { "s" },
        u.model,
        u.created_at.format("%Y-%m-%d %H:%M")
    );
}

pub fn register(g: &GlobalArgs, a: RegisterArgs) -> anyhow::Result<()> {
    let settings = settings(g)?;
    let name = PersonName::parse(&a.first_name, &a.last_name)?;
    let photos = a
        .photos
        .iter()
        .map(|p| read_photo(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let rollcall = open(&settings).await?;
        let user = rollcall.register(&name, photos).await?;
        print_user(&user);
        Ok(())
    })
}

pub fn verify(g: &GlobalArgs, a: VerifyArgs) -> anyhow::Result<()> {
    let settings = settings(g)?;
    let photo = read_photo(&a.photo)?;
    runtime()?.block_on(async {
        let rollcall = open(&settings).await?;
        let v = rollcall.verify(photo, None, false).await?;
        if a.json {
            let faces: Vec<_> = v
                .faces
                .iter()
                .map(crate::http::recognition::FaceJson::from)
                .collect();
            let out = serde_json::json!({
                "threshold": v.threshold.value(),
                "model": v.model,
                "faces": faces,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            for (i, f) in v.faces.iter().enumerate() {
                let [x1, y1, x2, y2] = f.detection.bbox;
                let who = match (&f.best, f.matched) {
                    (Some(c), true) => format!(
                        "{} {} (id {}, similarity {:.3})",
                        c.first_name, c.last_name, c.user_id, c.similarity.0
                    ),
                    (Some(c), false) => {
                        format!("unknown (closest similarity {:.3})", c.similarity.0)
                    }
                    (None, _) => "unknown (nobody registered)".to_owned(),
                };
                println!(
                    "face {}: [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}]  {who}",
                    i + 1
                );
            }
            println!("threshold {}, model {}", v.threshold, v.model);
        }
        if !v.faces[0].matched {
            bail!("the largest face is not recognised");
        }
        Ok(())
    })
}

pub fn users(g: &GlobalArgs, c: UsersCommand) -> anyhow::Result<()> {
    let settings = settings(g)?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        match c {
            UsersCommand::List { json } => {
                let users = store.list_users().await?;
                if json {
                    let users: Vec<UserJson> = users.into_iter().map(UserJson::from).collect();
                    println!("{}", serde_json::to_string_pretty(&users)?);
                } else if users.is_empty() {
                    println!("nobody is registered");
                } else {
                    users.iter().for_each(print_user);
                }
            }
            UsersCommand::Delete { id, with_history } => {
                let Some(paths) = store.delete_user(id, with_history).await? else {
                    bail!("no user with id {id}");
                };
                PhotoDir::new(&settings.data_dir).remove(&paths);
                println!(
                    "deleted user {id}{}",
                    if with_history {
                        " and their attendance history"
                    } else {
                        ""
                    }
                );
            }
        }
        store.close().await;
        Ok(())
    })
}

pub fn attendance(g: &GlobalArgs, c: AttendanceCommand) -> anyhow::Result<()> {
    let settings = settings(g)?;
    let AttendanceCommand::Export { from, to, out } = c;
    let day = |field, v: Option<String>| v.map(|s| crate::domain::parse_day(field, &s)).transpose();
    let range = DayRange::new(day("from", from)?, day("to", to)?)?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let (since, before) = range.bounds();
        let records = store
            .attendance(AttendanceFilter {
                since,
                before,
                ..Default::default()
            })
            .await?;
        store.close().await;
        match out {
            Some(path) => {
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                crate::attendance::write_csv(&records, std::io::BufWriter::new(file))?;
                eprintln!("wrote {} check-ins to {}", records.len(), path.display());
            }
            None => crate::attendance::write_csv(&records, std::io::stdout().lock())?,
        }
        Ok(())
    })
}

pub fn reindex(g: &GlobalArgs) -> anyhow::Result<()> {
    let settings = settings(g)?;
    runtime()?.block_on(async {
        let rollcall = open(&settings).await?;
        let bar = ProgressBar::new(0).with_style(bar_style());
        bar.set_message("re-embedding reference photos");
        let report = rollcall
            .reindex(false, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await?;
        bar.finish_and_clear();
        println!(
            "re-embedded {} photo(s) with {}; {} already up to date",
            report.reembedded,
            rollcall.model(),
            report.unchanged
        );
        for (path, why) in &report.failed {
            println!("  could not re-embed {path}: {why}");
        }
        if !report.failed.is_empty() {
            bail!("{} photo(s) could not be re-embedded", report.failed.len());
        }
        Ok(())
    })
}

pub fn migrate(g: &GlobalArgs) -> anyhow::Result<()> {
    let settings = settings(g)?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        println!("the {} database is up to date", store.backend());
        store.close().await;
        Ok(())
    })
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {wide_msg:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
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

pub fn enroll(g: &GlobalArgs, a: EnrollArgs) -> anyhow::Result<()> {
    let settings = settings(g)?;
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
        let rollcall = open(&settings).await?;
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
            match enroll_person(&rollcall, dir, &folder, a.max_photos, &mut skipped).await {
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

/// Register one folder's person from up to `max` photos with a clear face. `None` when none had.
async fn enroll_person(
    rollcall: &Rollcall,
    dir: &Path,
    folder: &str,
    max: usize,
    skipped: &mut Vec<(PathBuf, String)>,
) -> anyhow::Result<Option<usize>> {
    let name = PersonName::from_folder_name(folder)
        .with_context(|| format!("folder name `{folder}` is not First_Last"))?;
    let mut faces: Vec<(Arc<[u8]>, ReferenceFace)> = Vec::new();
    for photo in photos_in(dir)? {
        if faces.len() == max {
            break;
        }
        let bytes = read_photo(&photo)?;
        match rollcall.reference_face(bytes.clone()).await {
            Ok(face) => faces.push((bytes, face)),
            Err(e) => skipped.push((photo, e.to_string())),
        }
    }
    if faces.is_empty() {
        skipped.push((dir.to_owned(), "no photo with one clear face".into()));
        return Ok(None);
    }
    let n = faces.len();
    rollcall.create_user(&name, faces).await?;
    Ok(Some(n))
}
