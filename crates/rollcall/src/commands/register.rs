//! `rollcall register`: register a person from one or more photos, as `POST /register` does.

use super::args::{CommonArgs, DatabaseArgs, EmbedderArgs, PhotoStoreArgs};
use super::{read_photo, Leading};
use crate::app::{open_rollcall, runtime};
use crate::audit::Actor;
use crate::domain::{FaceChoice, PersonName};
use crate::service::Pick;
use crate::store::FaceSource;
use crate::view::UserLine;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct RegisterArgs {
    #[arg(long)]
    pub first_name: String,
    /// Leave out (or empty) for a person with one name.
    #[arg(long, default_value = "")]
    pub last_name: String,
    /// Which face of the first photo is the person, by its index in `rollcall detect`'s list
    /// (largest first); without it the photo needs one clear subject.
    #[arg(long)]
    pub face: Option<usize>,
    /// Register the face even when it already matches a registered person.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// One or more photos of the person (the first is kept as the reference photo).
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub photo_store: PhotoStoreArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: RegisterArgs) -> anyhow::Result<()> {
    let settings = super::settings(
        leading,
        &[&a.common, &a.database, &a.photo_store, &a.embedder],
    )?;
    let name = PersonName::parse(&a.first_name, &a.last_name)?;
    let photos = a
        .photos
        .iter()
        .map(|p| read_photo(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let rollcall = open_rollcall(&settings).await?;
        let choice = a.face.map_or(FaceChoice::Subject, FaceChoice::Index);
        let user = rollcall
            .register(
                &name,
                photos,
                Pick::of(choice),
                a.allow_duplicate,
                FaceSource::Cli,
                &Actor::cli(),
            )
            .await?;
        println!("{}", UserLine(&user));
        Ok(())
    })
}
