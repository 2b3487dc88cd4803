//! The audit log's vocabulary: who ([`Actor`]) did what ([`Action`]) to what (a target such as
//! `user:12`), when and from which address, as one [`Entry`] per event; and the log read back
//! ([`AuditRecord`]) as JSON or CSV.
//!
//! What an entry may hold is decided here, once: the caller's label, an action word, a target
//! that names people by id only (a deleted person must leave no trace, so never their name),
//! and a short detail (counts, flags). Never photos, embeddings, passwords or keys: no
//! constructor takes them, and every text is cut short and stripped of control characters.
//!
//! When an entry is written (see `store::audit`): the changes to people (register, add a face,
//! delete) write their entry in the same transaction as the change, so neither exists without
//! the other. Everything else (exports, reindex, logins, keys) is recorded right after it
//! happened; if that write fails the action stands and the entry is logged at ERROR instead,
//! so it is never lost silently.

use crate::auth::{Caller, Scope};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Declares [`Action`] and [`Action::ALL`] from one list (docs/api.md documents each word).
macro_rules! actions {
    ($($(#[doc = $doc:literal])* $variant:ident => $word:literal,)*) => {
        /// What was done.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Action {
            pub const ALL: &[Action] = &[$(Action::$variant,)*];

            /// The word stored in the `action` column.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $word,)*
                }
            }

            pub fn parse(s: &str) -> Option<Action> {
                match s {
                    $($word => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    /// A person registered (`POST /register`, `rollcall register`, `rollcall enroll`).
    Register => "register",
    /// A reference face added to a person.
    AddFace => "add_face",
    /// One reference face of a person deleted (detail `face N`).
    DeleteFace => "delete_face",
    /// A person deleted (detail `with history` when their check-ins went too).
    DeleteUser => "delete_user",
    /// Reference photos re-embedded (`rollcall reindex`).
    Reindex => "reindex",
    /// A CSV export of the attendance log or of this log.
    Export => "export",
    /// A machine key created.
    KeyCreated => "key_created",
    /// A machine key revoked.
    KeyRevoked => "key_revoked",
    /// A person logged in.
    Login => "login",
    /// A login refused (the target names the account tried).
    LoginFailed => "login_failed",
    Logout => "logout",
    /// The first admin account created from the setup link.
    Setup => "setup",
    /// An account created or its password reset.
    AccountChanged => "account_changed",
    /// A setting changed.
    SettingChanged => "setting_changed",
    /// Old check-ins purged.
    Purge => "purge",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest actor, target or detail kept (in characters); longer ones are cut.
pub const MAX_TEXT: usize = 200;

/// Who acted and from where: the caller's label and the client's address (none for the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    label: String,
    address: Option<IpAddr>,
}

impl Actor {
    pub fn new(caller: &Caller, address: Option<IpAddr>) -> Actor {
        Actor {
            label: clean(&caller.label()),
            address,
        }
    }

    /// The command line on the server's machine.
    pub fn cli() -> Actor {
        Actor::new(&Caller::cli(), None)
    }

    /// The server acting on its own (`server:retention`), not for any request.
    pub fn server(task: &str) -> Actor {
        Actor {
            label: clean(&format!("server:{task}")),
            address: None,
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }
}

/// What an entry is about.
pub struct Target;

impl Target {
    pub fn user(id: i64) -> String {
        format!("user:{id}")
    }

    pub fn key(id: i64) -> String {
        format!("key:{id}")
    }

    pub fn account(username: &str) -> String {
        format!("account:{username}")
    }

    pub const ATTENDANCE: &'static str = "attendance";
    pub const AUDIT_LOG: &'static str = "audit";
}

/// One event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: Action,
    pub target: Option<String>,
    pub detail: Option<String>,
}

impl Entry {
    /// `actor` did `action`, now.
    pub fn new(actor: &Actor, action: Action) -> Entry {
        use chrono::SubsecRound;
        Entry {
            // What MySQL's DATETIME(6) keeps, so an entry reads back equal.
            at: Utc::now().trunc_subsecs(6),
            actor: actor.clone(),
            action,
            target: None,
            detail: None,
        }
    }

    /// A CSV export of `rows` rows of `what` ([`Target::ATTENDANCE`], [`Target::AUDIT_LOG`]).
    pub fn export(actor: &Actor, what: &str, rows: usize) -> Entry {
        Entry::new(actor, Action::Export)
            .target(what)
            .detail(format!("{rows} row(s)"))
    }

    /// A new machine key: its id, scope and name (never the key itself).
    /// The key's scope, whether it requires liveness of its check-ins, and its name.
    pub fn key_created(
        actor: &Actor,
        id: i64,
        scope: Scope,
        name: &str,
        require_liveness: bool,
    ) -> Entry {
        let liveness = if require_liveness {
            ", liveness required"
        } else {
            ""
        };
        Entry::new(actor, Action::KeyCreated)
            .target(Target::key(id))
            .detail(format!("{scope}{liveness}: {name}"))
    }

    pub fn target(mut self, target: impl AsRef<str>) -> Entry {
        self.target = Some(clean(target.as_ref()));
        self
    }

    pub fn detail(mut self, detail: impl AsRef<str>) -> Entry {
        self.detail = Some(clean(detail.as_ref()));
        self
    }

    /// The address as stored.
    pub fn address(&self) -> Option<String> {
        self.actor.address.map(|a| a.to_string())
    }
}

/// The entry as one log line, for when it could not be written to the database.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} by {}",
            self.at.to_rfc3339(),
            self.action,
            self.actor.label
        )?;
        if let Some(target) = &self.target {
            write!(f, " on {target}")?;
        }
        if let Some(address) = self.actor.address {
            write!(f, " from {address}")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// At most [`MAX_TEXT`] characters, control characters (line breaks, ANSI escapes, bidi
/// overrides) replaced, so that no entry can forge another line or hide what it says.
fn clean(text: &str) -> String {
    text.chars()
        .take(MAX_TEXT)
        .map(|c| {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// One row of the log, read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `account:NAME`, `key:NAME`, `cli:USER` or `anonymous`.
    #[schema(example = "account:alice")]
    pub actor: String,
    /// One of the words of the audit vocabulary in docs/api.md.
    #[schema(example = "delete_user")]
    pub action: String,
    #[schema(example = "user:12")]
    pub target: Option<String>,
    /// The client's IP address; null for the command line.
    #[schema(example = "127.0.0.1")]
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// Which page of the log to read: at most `limit` rows older than the row `before` (an id),
/// newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub before: Option<i64>,
}

impl Page {
    /// The largest page one request may ask for.
    pub const MAX: u32 = 10_000;
    pub const DEFAULT: u32 = 100;
}

pub const CSV_HEADER: [&str; 7] = ["id", "at", "actor", "action", "target", "address", "detail"];

/// The log as CSV with a header row; every cell neutralised against formula injection.
pub fn write_csv<W: std::io::Write>(records: &[AuditRecord], out: W) -> csv::Result<()> {
    let mut w = crate::csvsafe::Writer::new(out);
    w.row(CSV_HEADER)?;
    for r in records {
        w.row([
            r.id.to_string(),
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            r.actor.clone(),
            r.action.clone(),
            r.target.clone().unwrap_or_default(),
            r.address.clone().unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_are_distinct() {
        for &a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        let mut words: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), Action::ALL.len());
        assert_eq!(Action::parse("drop_table"), None);
    }

    #[test]
    fn texts_are_cut_short_and_cannot_forge_lines() {
        let caller = Caller::Key {
            id: 3,
            name: "door\n2026-01-01 login by account:admin\u{1b}[2J\u{202E}".into(),
            scope: Scope::Verify,
            require_liveness: false,
        };
        let actor = Actor::new(&caller, None);
        assert!(
            !actor.label().contains(['\n', '\u{1b}', '\u{202E}']),
            "{actor:?}"
        );
        assert!(actor.label().starts_with("key:door"));
        let entry = Entry::new(&actor, Action::LoginFailed).target("x".repeat(10_000));
        assert_eq!(entry.target.unwrap().chars().count(), MAX_TEXT);
    }

    #[test]
    fn the_csv_export_neutralises_formula_cells() {
        let record = AuditRecord {
            id: 1,
            at: Utc::now(),
            actor: "=HYPERLINK(\"http://x\")".into(),
            action: "login_failed".into(),
            target: Some("account:@evil".into()),
            address: None,
            detail: Some("-1+2".into()),
        };
        let mut out = Vec::new();
        write_csv(&[record], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{row}");
        assert!(row.contains(",account:@evil,"), "{row}");
        assert!(row.ends_with(",,'-1+2"), "{row}");
    }
}
