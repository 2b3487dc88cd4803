//! `rollcall serve`: build the [`Application`] and serve until stopped.

use super::args::{
    CommonArgs, DatabaseArgs, EmbedderArgs, FrontDoorArgs, PhotoStoreArgs, ServerArgs,
    ThresholdArgs,
};
use super::Leading;
use crate::app::{runtime, Application};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub front_door: FrontDoorArgs,
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub photo_store: PhotoStoreArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(leading: &Leading, a: ServeArgs) -> anyhow::Result<()> {
    let settings = super::settings(
        leading,
        &[
            &a.common,
            &a.database,
            &a.photo_store,
            &a.embedder,
            &a.threshold,
            &a.server,
            &a.front_door,
        ],
    )?;
    let runtime = runtime()?;
    let served = runtime.block_on(async {
        Application::build(&settings)
            .await?
            .run_until_stopped()
            .await
    });
    // An inference abandoned at the shutdown deadline runs on a blocking thread; the process
    // does not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served
}
