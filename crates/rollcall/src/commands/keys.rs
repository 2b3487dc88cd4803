//! `rollcall keys create|list|revoke`: machine keys, on the database directly. `create` prints
//! the key alone on standard output (`KEY=$(rollcall keys create …)`), once: only its SHA-256
//! is stored.

use super::args::{CommonArgs, DatabaseArgs};
use super::Leading;
use crate::app::{open_store, runtime};
use crate::audit::{Action, Actor, Entry, Target};
use crate::auth::Scope;
use crate::domain::KeyName;
use crate::service::{Accounts, DEFAULT_SESSION_TTL};
use crate::view::{KeyJson, KeyLine};
use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key and print it (once) on standard output.
    Create(CreateArgs),
    /// List the keys: id, scope, name, created, last used, revoked.
    List(ListArgs),
    /// Revoke a key: it stops working at once and stays listed.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// What the key is for; a kiosk's check-ins are recorded under this name.
    #[arg(long)]
    pub name: String,
    /// `verify` (a kiosk), `register` (an enrolment desk) or `admin` (everything).
    #[arg(long, value_parser = parse_scope)]
    pub scope: Scope,
    /// A single photo sent with this key is recognised but checks nobody in: the kiosk's
    /// check-ins must answer a liveness challenge (the server's `--require-liveness` asks it
    /// of every key).
    #[arg(long)]
    pub require_liveness: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Print JSON, the shape `GET /keys` answers.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RevokeArgs {
    pub id: i64,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).ok_or_else(|| format!("`{s}`: use verify, register or admin"))
}

pub fn run(leading: &Leading, c: KeysCommand) -> anyhow::Result<()> {
    match c {
        KeysCommand::Create(a) => create(leading, a),
        KeysCommand::List(a) => list(leading, a),
        KeysCommand::Revoke(a) => revoke(leading, a),
    }
}

fn create(leading: &Leading, a: CreateArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    let name = KeyName::parse(&a.name)?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let accounts = Accounts::new(store.clone(), DEFAULT_SESSION_TTL);
        let created = accounts
            .create_key(&name, a.scope, a.require_liveness)
            .await;
        if let Ok((record, _)) = &created {
            let entry = Entry::key_created(
                &Actor::cli(),
                record.id,
                record.scope,
                &record.name,
                record.require_liveness,
            );
            store.audit(&entry).await;
        }
        store.close().await;
        let (record, key) = created?;
        eprintln!(
            "created {} key {} `{}`{}: store it now, it is not shown again",
            record.scope,
            record.id,
            record.name,
            if record.require_liveness {
                " (liveness required)"
            } else {
                ""
            }
        );
        println!("{key}");
        Ok(())
    })
}

fn list(leading: &Leading, a: ListArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let keys = store.list_keys().await;
        store.close().await;
        super::print_listing(
            keys?,
            a.json,
            "no key exists: `rollcall keys create --name NAME --scope SCOPE` makes one",
            KeyJson::from,
            |key| KeyLine(key).to_string(),
        )
    })
}

fn revoke(leading: &Leading, a: RevokeArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let revoked = store.revoke_key(a.id, chrono::Utc::now()).await;
        if let Ok(Some(key)) = &revoked {
            let entry = Entry::new(&Actor::cli(), Action::KeyRevoked).target(Target::key(key.id));
            store.audit(&entry).await;
        }
        store.close().await;
        match revoked? {
            Some(key) => println!("revoked key {} `{}`", key.id, key.name),
            None => bail!("no key with id {}", a.id),
        }
        Ok(())
    })
}
