//! Who is asking: the roles of people who log in, the scopes of machine keys, and the
//! [`Caller`] every request is resolved to before a handler runs.
//!
//! HTTP puts the resolved `Caller` into the request's extensions; handlers, the audit log and
//! the access rules read it from there. The CLI acts as [`Caller::Cli`]: whoever can run the
//! binary on the server's machine can already read its database.

pub mod limiter;
pub mod rules;
pub mod secret;

pub use rules::{Decision, Rule};

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a person who logs in may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Attendance and reports only.
    Viewer,
}

/// What a machine key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Check people in (a kiosk).
    Verify,
    /// Register people and add their faces (an enrolment desk or script).
    Register,
    /// Everything an admin account may do.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Verify, Scope::Register, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Verify => "verify",
            Scope::Register => "register",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "verify" => Some(Scope::Verify),
            "register" => Some(Scope::Register),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resolved identity behind one request (or one CLI run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials, or none that are valid.
    Anonymous,
    /// A person logged in with a session cookie.
    Account {
        id: i64,
        username: String,
        role: Role,
    },
    /// A machine presenting `Authorization: Bearer KEY`; `require_liveness`: its single
    /// photos check nobody in.
    Key {
        id: i64,
        name: String,
        scope: Scope,
        require_liveness: bool,
    },
    /// The command line on the server's machine.
    Cli { user: String },
}

impl Caller {
    /// Whether this caller may do everything (admin account, admin key, the CLI).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Caller::Account {
                role: Role::Admin,
                ..
            } | Caller::Key {
                scope: Scope::Admin,
                ..
            } | Caller::Cli { .. }
        )
    }

    /// Whether this caller's check-ins must answer a liveness challenge (a key made with
    /// `--require-liveness`); the server's `--require-liveness` asks it of every caller.
    pub fn requires_liveness(&self) -> bool {
        matches!(
            self,
            Caller::Key {
                require_liveness: true,
                ..
            }
        )
    }

    /// How the audit log names this caller: `account:alice`, `key:front door`, `cli:root`,
    /// `anonymous`.
    pub fn label(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".to_owned(),
            Caller::Account { username, .. } => format!("account:{username}"),
            Caller::Key { name, .. } => format!("key:{name}"),
            Caller::Cli { user } => format!("cli:{user}"),
        }
    }

    /// The CLI caller, named after the operating-system user running it: `$USER`, else
    /// `$LOGNAME`, else the numeric user id (cron and service managers often set neither).
    pub fn cli() -> Caller {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|name| !name.is_empty())
            // SAFETY: getuid(2) cannot fail and touches no memory.
            .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
        Caller::Cli { user }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_roles_scopes_and_the_cli_are_admin() {
        let account = |role| Caller::Account {
            id: 1,
            username: "a".into(),
            role,
        };
        let key = |scope| Caller::Key {
            id: 1,
            name: "k".into(),
            scope,
            require_liveness: false,
        };
        assert!(account(Role::Admin).is_admin());
        assert!(!account(Role::Viewer).is_admin());
        assert!(key(Scope::Admin).is_admin());
        assert!(!key(Scope::Verify).is_admin());
        assert!(!key(Scope::Register).is_admin());
        assert!(Caller::cli().is_admin());
        assert!(!Caller::Anonymous.is_admin());
    }

    #[test]
    fn names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        for r in [Role::Admin, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Scope::parse("root"), None);
        assert_eq!(
            Caller::Key {
                id: 2,
                name: "front door".into(),
                scope: Scope::Verify,
                require_liveness: true,
            }
            .label(),
            "key:front door"
        );
    }
}
