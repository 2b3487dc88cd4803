//! Who may call what: the five kinds of route ([`Rule`]) and the one decision every request gets
//! ([`Rule::check`]). Which route has which rule is `http::access::RULES`.

use super::{Caller, Role, Scope};

/// The access rule of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Anyone: the pages, their assets, health, the API document, logging in and out.
    Public,
    /// Recognising faces (`/verify`, `/detect`): verify and admin keys, admin accounts; nobody
    /// anonymous unless the server runs with `--anonymous-verify`.
    Verify,
    /// Registering people and adding faces: register and admin keys, admin accounts.
    Register,
    /// Reading people and attendance: viewer and admin accounts, admin keys.
    Reports,
    /// Everything else that changes or exposes the system: admin accounts and admin keys.
    Admin,
}

/// What a request with a given caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No (valid) credentials: 401.
    Unauthorized,
    /// Credentials that do not reach this route: 403.
    Forbidden,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::Public,
        Rule::Verify,
        Rule::Register,
        Rule::Reports,
        Rule::Admin,
    ];

    /// The rule's name in docs/api.md's table.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Public => "public",
            Rule::Verify => "verify",
            Rule::Register => "register",
            Rule::Reports => "reports",
            Rule::Admin => "admin",
        }
    }

    /// May `caller` call a route with this rule? `anonymous_verify` opens [`Rule::Verify`] (and
    /// nothing else) to callers without credentials.
    pub fn check(self, caller: &Caller, anonymous_verify: bool) -> Decision {
        let allowed = match (self, caller) {
            (Rule::Public, _) => true,
            (_, Caller::Cli { .. }) => true,
            (Rule::Verify, Caller::Anonymous) => anonymous_verify,
            (_, Caller::Anonymous) => false,
            (_, Caller::Account { role, .. }) => match self {
                Rule::Reports => true,
                _ => *role == Role::Admin,
            },
            (_, Caller::Key { scope, .. }) => matches!(
                (self, scope),
                (_, Scope::Admin)
                    | (Rule::Verify, Scope::Verify)
                    | (Rule::Register, Scope::Register)
            ),
        };
        match (allowed, caller) {
            (true, _) => Decision::Allow,
            (false, Caller::Anonymous) => Decision::Unauthorized,
            (false, _) => Decision::Forbidden,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(role: Role) -> Caller {
        Caller::Account {
            id: 1,
            username: "a".into(),
            role,
        }
    }

    fn key(scope: Scope) -> Caller {
        Caller::Key {
            id: 1,
            name: "k".into(),
            scope,
            require_liveness: false,
        }
    }

    #[test]
    fn the_matrix_of_the_issue() {
        use Decision::{Allow as A, Forbidden as F, Unauthorized as U};
        let callers = [
            Caller::Anonymous,
            account(Role::Viewer),
            account(Role::Admin),
            key(Scope::Verify),
            key(Scope::Register),
            key(Scope::Admin),
        ];
        let expected: [(Rule, [Decision; 6]); 5] = [
            (Rule::Public, [A, A, A, A, A, A]),
            (Rule::Verify, [U, F, A, A, F, A]),
            (Rule::Register, [U, F, A, F, A, A]),
            (Rule::Reports, [U, A, A, F, F, A]),
            (Rule::Admin, [U, F, A, F, F, A]),
        ];
        for (rule, row) in expected {
            for (caller, want) in callers.iter().zip(row) {
                assert_eq!(rule.check(caller, false), want, "{rule:?} {caller:?}");
            }
            assert_eq!(rule.check(&Caller::cli(), false), A);
        }
    }

    #[test]
    fn anonymous_verify_opens_verify_only() {
        for rule in Rule::ALL {
            let want = if matches!(rule, Rule::Public | Rule::Verify) {
                Decision::Allow
            } else {
                Decision::Unauthorized
            };
            assert_eq!(rule.check(&Caller::Anonymous, true), want, "{rule:?}");
        }
        // It opens nothing to callers who have credentials but not the right ones.
        assert_eq!(
            Rule::Verify.check(&account(Role::Viewer), true),
            Decision::Forbidden
        );
    }
}
