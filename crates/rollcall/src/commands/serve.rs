//! `rollcall serve`: build the [`Application`] and serve until stopped.

use super::args::{CommonArgs, DatabaseArgs, EmbedderArgs, ServerArgs, ThresholdArgs};
use super::Leading;
use crate::app::{runtime, Application};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: ServeArgs) -> anyhow::Result<()> {
    let settings = super::settings(
        leading,
        &[&a.common, &a.database, &a.embedder, &a.threshold, &a.server],
    )?;
    runtime()?.block_on(async {
        Application::build(&settings)
            .await?
            .run_until_stopped()
            .await
    })
}
