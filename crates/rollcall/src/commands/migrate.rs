//! `rollcall migrate`: create or upgrade the database schema, then exit.

use super::args::{CommonArgs, DatabaseArgs};
use super::Leading;
use crate::app::{open_store, runtime};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub fn run(leading: &Leading, a: MigrateArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        println!("the {} database is up to date", store.backend());
        store.close().await;
        Ok(())
    })
}
