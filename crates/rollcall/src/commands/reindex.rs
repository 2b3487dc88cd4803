//! `rollcall reindex`: re-embed stored reference photos with the current embedder.

use super::args::{CommonArgs, DatabaseArgs, EmbedderArgs, PhotoStoreArgs};
use super::{bar_style, Leading};
use crate::app::{open_rollcall, runtime};
use crate::audit::Actor;
use anyhow::bail;
use clap::Args;
use indicatif::ProgressBar;

#[derive(Args, Debug, Clone)]
pub struct ReindexArgs {
    /// Re-embed every photo, not only those of another model.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub photo_store: PhotoStoreArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: ReindexArgs) -> anyhow::Result<()> {
    let settings = super::settings(
        leading,
        &[&a.common, &a.database, &a.photo_store, &a.embedder],
    )?;
    runtime()?.block_on(async {
        let rollcall = open_rollcall(&settings).await?;
        let bar = ProgressBar::new(0).with_style(bar_style());
        bar.set_message("re-embedding reference photos");
        let report = rollcall
            .reindex(a.all, &Actor::cli(), |done, total| {
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
