//! `rollcall users list|delete`.

use super::args::{CommonArgs, DatabaseArgs, PhotoStoreArgs};
use super::Leading;
use crate::app::{open_photos, open_store, runtime};
use crate::audit::Actor;
use crate::service::People;
use crate::view::{UserJson, UserLine};
use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List registered people.
    List(ListArgs),
    /// Delete a person, their photos and embeddings.
    Delete(DeleteArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Print JSON, the shape `GET /users` answers.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DeleteArgs {
    pub id: i64,
    /// Also delete their attendance history.
    #[arg(long)]
    pub with_history: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub photo_store: PhotoStoreArgs,
}

pub fn run(leading: &Leading, c: UsersCommand) -> anyhow::Result<()> {
    match c {
        UsersCommand::List(a) => list(leading, a),
        UsersCommand::Delete(a) => delete(leading, a),
    }
}

fn list(leading: &Leading, a: ListArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let users = store.list_users().await;
        store.close().await;
        super::print_listing(
            users?,
            a.json,
            "nobody is registered",
            UserJson::from,
            |user| UserLine(user).to_string(),
        )
    })
}

fn delete(leading: &Leading, a: DeleteArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database, &a.photo_store])?;
    runtime()?.block_on(async {
        let photos = open_photos(&settings).await?;
        let store = open_store(&settings).await?;
        let people = People::new(store.clone(), photos);
        let deleted = people.delete(a.id, a.with_history, &Actor::cli()).await;
        store.close().await;
        if deleted?.is_none() {
            bail!("no user with id {}", a.id);
        }
        println!(
            "deleted user {}{}",
            a.id,
            if a.with_history {
                " and their attendance history"
            } else {
                ""
            }
        );
        Ok(())
    })
}
