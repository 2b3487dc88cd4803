//! `rollcall admin add|reset-password|list`: accounts, on the database directly (no server, no
//! face models). A password is read from standard input, one line, never from the command line
//! (where `ps` and the shell history would show it).

use super::args::{CommonArgs, DatabaseArgs};
use super::Leading;
use crate::app::{open_store, runtime};
use crate::audit::{Action, Actor, Entry, Target};
use crate::auth::Role;
use crate::domain::{Password, Username};
use crate::service::{Accounts, DEFAULT_SESSION_TTL};
use crate::view::AccountLine;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an account; its password is read from standard input (one line).
    Add(AddArgs),
    /// Set a new password (read from standard input) and end the account's sessions.
    ResetPassword(ResetArgs),
    /// List the accounts.
    List(ListArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AddArgs {
    /// Letters, digits, `.`, `_` or `-` (kept in lower case).
    pub name: String,
    /// `admin` (everything) or `viewer` (attendance and reports only).
    #[arg(long, default_value = "admin", value_parser = parse_role)]
    pub role: Role,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ResetArgs {
    pub name: String,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("`{s}`: use admin or viewer"))
}

pub fn run(leading: &Leading, c: AdminCommand) -> anyhow::Result<()> {
    match c {
        AdminCommand::Add(a) => add(leading, a),
        AdminCommand::ResetPassword(a) => reset(leading, a),
        AdminCommand::List(a) => list(leading, a),
    }
}

fn add(leading: &Leading, a: AddArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    let username = Username::parse(&a.name)?;
    let password = read_password(&format!("password for {username}: "))?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let accounts = Accounts::new(store.clone(), DEFAULT_SESSION_TTL);
        let created = accounts.add_account(&username, &password, a.role).await;
        if let Ok(account) = &created {
            let entry = Entry::new(&Actor::cli(), Action::AccountChanged)
                .target(Target::account(&account.username))
                .detail(format!("created, role {}", account.role));
            store.audit(&entry).await;
        }
        store.close().await;
        let account = created?;
        println!(
            "created the {} account `{}`",
            account.role, account.username
        );
        Ok(())
    })
}

fn reset(leading: &Leading, a: ResetArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    let username = Username::parse(&a.name)?;
    let password = read_password(&format!("new password for {username}: "))?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let accounts = Accounts::new(store.clone(), DEFAULT_SESSION_TTL);
        let done = accounts.reset_password(&username, &password).await;
        if done.is_ok() {
            let entry = Entry::new(&Actor::cli(), Action::AccountChanged)
                .target(Target::account(username.as_str()))
                .detail("password reset");
            store.audit(&entry).await;
        }
        store.close().await;
        done?;
        println!("set a new password for `{username}` and ended its sessions");
        Ok(())
    })
}

fn list(leading: &Leading, a: ListArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&a.common, &a.database])?;
    runtime()?.block_on(async {
        let store = open_store(&settings).await?;
        let accounts = store.list_accounts().await;
        store.close().await;
        let accounts = accounts?;
        if accounts.is_empty() {
            println!("no account exists: `rollcall admin add NAME` creates one");
        }
        for account in &accounts {
            println!("{}", AccountLine(account));
        }
        Ok(())
    })
}

/// One line of standard input as a new password (a prompt on stderr, without echo, when it is
/// a terminal).
fn read_password(prompt: &str) -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    {
        let _quiet = terminal.then(NoEcho::new);
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
    }
    if terminal {
        eprintln!();
    }
    let typed = line.strip_suffix('\n').unwrap_or(&line);
    let typed = typed.strip_suffix('\r').unwrap_or(typed);
    if typed.is_empty() {
        bail!("no password on standard input (give it as one line)");
    }
    Ok(Password::parse(typed)?)
}

/// Terminal echo off while it lives (Unix; elsewhere a no-op).
struct NoEcho {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl NoEcho {
    fn new() -> NoEcho {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios the call itself filled in.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return NoEcho { saved: None };
                }
                let saved = t;
                t.c_lflag &= !libc::ECHO;
                libc::tcsetattr(0, libc::TCSANOW, &t);
                NoEcho { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        NoEcho {}
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings tcgetattr returned.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}
