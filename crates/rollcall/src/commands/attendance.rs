//! `rollcall attendance export`: the attendance log as CSV, the same file `/attendance.csv` sends;
//! `rollcall attendance purge`: delete check-ins past a retention period, as `--retention-days` does.

use super::args::{CommonArgs, DatabaseArgs};
use super::Leading;
use crate::app::{open_store, runtime};
use crate::audit::{Actor, Entry, Target};
use crate::domain::{parse_day, DayRange, RetentionDays};
use crate::store::AttendanceFilter;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum AttendanceCommand {
    /// Write the attendance log as CSV.
    Export(ExportArgs),
    /// Delete check-ins older than a number of days (no copy is left in the SQLite files).
    Purge(PurgeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct PurgeArgs {
    /// Delete check-ins older than this many days.
    #[arg(long, value_name = "DAYS")]
    pub older_than_days: u32,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// First day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub fn run(leading: &Leading, c: AttendanceCommand) -> anyhow::Result<()> {
    match c {
        AttendanceCommand::Export(a) => export(leading, a),
        AttendanceCommand::Purge(a) => purge(leading, a),
    }
}

fn purge(leading: &Leading, a: PurgeArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    let retention = RetentionDays::new(a.older_than_days)?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let purged = crate::attendance::purge_expired(&store, retention, &Actor::cli()).await;
        store.close().await;
        println!(
            "deleted {} check-in(s) older than {} days",
            purged?,
            retention.days()
        );
        Ok(())
    })
}

fn export(leading: &Leading, a: ExportArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    let day = |field, v: Option<String>| v.map(|s| parse_day(field, &s)).transpose();
    let range = DayRange::new(day("from", a.from)?, day("to", a.to)?)?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let (since, before) = range.bounds();
        let records = store
            .attendance(AttendanceFilter {
                since,
                before,
                ..Default::default()
            })
            .await;
        if let Ok(records) = &records {
            let entry = Entry::export(&Actor::cli(), Target::ATTENDANCE, records.len());
            store.audit(&entry).await;
        }
        store.close().await;
        let records = records?;
        match a.out {
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
