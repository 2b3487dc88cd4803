//! Who may call which route: [`RULES`], the one table of method + route → [`Rule`], and the
//! middleware [`authorize`] that resolves every request's [`Caller`] (a bearer key, else the
//! session cookie, else anonymous), checks the route's rule and hands the caller on to the
//! handler as an extension.
//!
//! Fail closed: a route missing from the table is refused for everyone (403, logged), and a
//! method the table does not list for a route is answered 405 here, before any handler. The API
//! tests walk every route of the router and check it has a rule, and docs/api.md's table is
//! checked against this one.

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::auth::{Caller, Decision, Rule};
use crate::service::KeyLookup;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rollcall_session";

/// Every route of the router with its rule. HEAD follows GET.
pub const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/", Rule::Public),
    ("GET", "/admin", Rule::Public),
    ("GET", "/assets/{*path}", Rule::Public),
    ("GET", "/health", Rule::Public),
    ("GET", "/openapi.json", Rule::Public),
    ("POST", "/login", Rule::Public),
    ("POST", "/logout", Rule::Public),
    ("GET", "/me", Rule::Public),
    ("POST", "/setup", Rule::Public),
    ("POST", "/verify", Rule::Verify),
    ("POST", "/verify/challenge", Rule::Verify),
    ("POST", "/detect", Rule::Verify),
    ("POST", "/register", Rule::Register),
    ("POST", "/users/{id}/faces", Rule::Register),
    ("GET", "/users", Rule::Reports),
    ("GET", "/users/{id}", Rule::Reports),
    ("GET", "/users/{id}/photo", Rule::Reports),
    ("GET", "/users/{id}/faces", Rule::Reports),
    ("GET", "/users/{id}/faces/{face}/photo", Rule::Reports),
    ("GET", "/attendance", Rule::Reports),
    ("GET", "/attendance.csv", Rule::Reports),
    ("GET", "/attendance/summary", Rule::Reports),
    ("GET", "/attendance/daily", Rule::Reports),
    ("DELETE", "/users/{id}", Rule::Admin),
    ("DELETE", "/users/{id}/faces/{face}", Rule::Admin),
    ("GET", "/settings", Rule::Admin),
    ("PUT", "/settings", Rule::Admin),
    ("GET", "/metrics", Rule::Admin),
    ("GET", "/keys", Rule::Admin),
    ("POST", "/keys", Rule::Admin),
    ("DELETE", "/keys/{id}", Rule::Admin),
    ("GET", "/audit", Rule::Admin),
    ("GET", "/audit.csv", Rule::Admin),
];

/// The rule of `method route`; `Err(methods)` with the methods the table has for the route
/// when it lacks this one (empty when the route is not in the table at all).
pub fn rule_of(method: &Method, route: &str) -> Result<Rule, Vec<&'static str>> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let mut others = Vec::new();
    for &(m, r, rule) in RULES {
        if r == route {
            if m == method {
                return Ok(rule);
            }
            others.push(m);
        }
    }
    Err(others)
}

/// The client's address, as the connection gives it (a reverse proxy's own, behind one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    pub fn label(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// What the credentials of a request come to.
enum Presented {
    Caller(Caller),
    /// A key that is malformed, unknown or revoked, or an `Authorization` of another scheme.
    BadKey,
}

async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Presented, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default().trim();
        let key = match value.split_once(' ') {
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
            _ => return Ok(Presented::BadKey),
        };
        return Ok(match state.accounts.key_caller(key).await? {
            KeyLookup::Valid(caller) => Presented::Caller(caller),
            KeyLookup::Refused => Presented::BadKey,
        });
    }
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        if let Some(caller) = state.accounts.session_caller(token).await? {
            return Ok(Presented::Caller(caller));
        }
    }
    Ok(Presented::Caller(Caller::Anonymous))
}

pub fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// Middleware (a route layer, so the matched route is known): resolve the caller, apply the
/// route's rule, and put the [`Caller`] and [`ClientAddress`] into the request's extensions.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let rule = match rule_of(request.method(), &route) {
        Ok(rule) => rule,
        Err(others) if others.is_empty() => {
            tracing::error!("no access rule for {} {route}: refused", request.method());
            return ApiError::new(ErrorCode::Forbidden, "this route has no access rule")
                .into_response();
        }
        Err(mut others) => {
            if others.contains(&"GET") {
                others.push("HEAD");
            }
            let allow = others.join(",");
            let mut answer = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} {route}: this route answers {allow}", request.method()),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                answer.headers_mut().insert(header::ALLOW, v);
            }
            return answer;
        }
    };
    let presented = match resolve(&state, request.headers()).await {
        Ok(p) => p,
        // Public routes answer without the database (a health check while it is down).
        Err(_) if rule == Rule::Public => Presented::Caller(Caller::Anonymous),
        Err(e) => return e.into_response(),
    };
    let caller = match presented {
        Presented::Caller(c) => c,
        Presented::BadKey => {
            return unauthorized("the key is not valid: unknown, revoked or malformed")
                .into_response()
        }
    };
    match rule.check(&caller, state.anonymous_verify) {
        Decision::Allow => {}
        Decision::Unauthorized => {
            return unauthorized(
                "log in, or send a key with `Authorization: Bearer KEY` (see docs/api.md)",
            )
            .into_response()
        }
        Decision::Forbidden => {
            let mut refused = ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "{} may not call {} {route} (it needs the `{}` rule)",
                    caller.label(),
                    request.method(),
                    rule.as_str()
                ),
            )
            .into_response();
            // The access log names the kind of caller refused.
            refused.extensions_mut().insert(caller);
            return refused;
        }
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    request.extensions_mut().insert(ClientAddress(address));
    request.extensions_mut().insert(caller.clone());
    let mut response = next.run(request).await;
    // For the access log, which sits outside this layer.
    response.extensions_mut().insert(caller);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const API_DOC: &str = include_str!("../../../../docs/api.md");

    /// `(METHOD, route, rule)` rows of the table under `### Who may call what` in docs/api.md.
    fn documented_rules() -> BTreeSet<(String, String, String)> {
        let section = API_DOC
            .split("\n### ")
            .find(|s| s.starts_with("Who may call what\n"))
            .and_then(|s| s.split("\n## ").next())
            .expect("docs/api.md has a `### Who may call what` section");
        section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let (method, route) = cells[1]
                    .trim_matches('`')
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("no `METHOD route` in {line}"));
                (method.to_owned(), route.to_owned(), cells[2].to_owned())
            })
            .collect()
    }

    #[test]
    fn docs_list_the_same_rules_as_the_code() {
        let code: BTreeSet<(String, String, String)> = RULES
            .iter()
            .map(|(m, r, rule)| ((*m).to_owned(), (*r).to_owned(), rule.as_str().to_owned()))
            .collect();
        let docs = documented_rules();
        let only_code: Vec<_> = code.difference(&docs).collect();
        let only_docs: Vec<_> = docs.difference(&code).collect();
        assert!(
            only_code.is_empty() && only_docs.is_empty(),
            "docs/api.md's `Who may call what` differs from http::access::RULES:\n\
             only in the code: {only_code:?}\nonly in the docs: {only_docs:?}"
        );
    }

    #[test]
    fn each_route_and_method_has_one_rule() {
        let mut seen = BTreeSet::new();
        for (m, r, _) in RULES {
            assert!(seen.insert((m, r)), "{m} {r} is listed twice");
        }
    }

    #[test]
    fn head_follows_get_and_missing_methods_are_named() {
        assert_eq!(rule_of(&Method::HEAD, "/users"), Ok(Rule::Reports));
        assert_eq!(
            rule_of(&Method::PUT, "/users/{id}"),
            Err(vec!["GET", "DELETE"])
        );
        assert_eq!(rule_of(&Method::GET, "/nowhere"), Err(vec![]));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; rollcall_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "rollcall"), None);
    }
}
