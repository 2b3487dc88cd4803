//! `rollcall audit`: read the audit log, newest first, as `GET /audit` answers it.

use super::args::{CommonArgs, DatabaseArgs};
use super::Leading;
use crate::app::{open_store, runtime};
use crate::audit::{AuditRecord, Page};
use anyhow::bail;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// At most this many entries (1 to 10000).
    #[arg(long, default_value_t = Page::DEFAULT)]
    pub limit: u32,
    /// Only entries older than this id (the last id of the previous page).
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Print JSON, the shape `GET /audit` answers.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub fn run(leading: &Leading, a: AuditArgs) -> anyhow::Result<()> {
    if !(1..=Page::MAX).contains(&a.limit) {
        bail!("--limit must be from 1 to {}", Page::MAX);
    }
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let page = Page {
            limit: a.limit,
            before: a.before,
        };
        let records = store.audit_log(page).await;
        store.close().await;
        super::print_listing(records?, a.json, "the audit log is empty", |r| r, line)
    })
}

/// `#id  at  actor  action  target  from address  (detail)`; texts were cleaned of control
/// characters when recorded, so a line is one line.
fn line(r: &AuditRecord) -> String {
    let mut line = format!(
        "#{:<5} {}  {}  {}",
        r.id,
        r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.actor,
        r.action
    );
    if let Some(target) = &r.target {
        line.push_str(&format!("  {target}"));
    }
    if let Some(address) = &r.address {
        line.push_str(&format!("  from {address}"));
    }
    if let Some(detail) = &r.detail {
        line.push_str(&format!("  ({detail})"));
    }
    line
}
