//! `rollcall register`: register a person from one or more photos, as `POST /register` does.

use super::args::{CommonArgs, DatabaseArgs, EmbedderArgs};
use super::{read_photo, Leading};
use crate::app::{open_rollcall, runtime};
use crate::audit::Actor;
use crate::domain::PersonName;
use crate::view::UserLine;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct RegisterArgs {
    #[arg(long)]
    pub first_name: String,
    #[arg(long)]
    pub last_name: String,
    /// One or more photos of the person (the first is kept as the reference photo).
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: RegisterArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database, &a.embedder])?;
    let name = PersonName::parse(&a.first_name, &a.last_name)?;
    let photos = a
        .photos
        .iter()
        .map(|p| read_photo(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let rollcall = open_rollcall(&settings).await?;
        let user = rollcall.register(&name, photos, &Actor::cli()).await?;
        println!("{}", UserLine(&user));
        Ok(())
    })
}
