//! The two checks every request passes before anything else (auth included): the `Host` it
//! names must be one the server answers to (421 `host_not_allowed`), and a state-changing
//! request must not come from a page of another origin (403 `cross_origin`).
//!
//! Hosts: DNS rebinding points a name the attacker owns at the server's address, so that the
//! victim's browser sends the attacker's page's requests to the server as same-origin ones; the
//! `Host` header still carries the attacker's name. Refusing unknown names defeats it. An IP
//! literal cannot be rebound (the browser's origin *is* the address), so any IP literal is
//! allowed, and so are loopback names, the bind address's name, the public URLs' hosts and
//! `--allowed-hosts`. A request without `Host` (HTTP/1.0) names no host to check and passes.
//!
//! Origins: a browser says where a request comes from in `Sec-Fetch-Site` (every current
//! browser) or `Origin`. Unsafe methods from another site, or from a sibling subdomain
//! (`same-site`), are refused; requests without either header come from no browser page (curl,
//! a script with a key) and pass: forging a request is a browser attack.

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::config::FrontDoor;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// The names and origins the server knows as its own.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Allowed host names besides loopback names and IP literals: lower case, no port.
    names: Vec<String>,
    /// Origins (`scheme://host[:port]`) that count as the server's own besides the one the
    /// request's `Host` names.
    origins: Vec<String>,
    /// The scheme the server itself speaks.
    scheme: &'static str,
}

impl Gate {
    /// The gate of a server listening on `bind` (`host:port`) behind `front_door`.
    pub fn new(bind: &str, front_door: &FrontDoor) -> Gate {
        let mut names: Vec<String> = front_door.allowed_hosts.clone();
        if let Some((host, _)) = split_host(bind) {
            names.push(host);
        }
        names.extend(front_door.public_urls.iter().map(|u| u.host.clone()));
        names.sort();
        names.dedup();
        Gate {
            names,
            origins: front_door.public_urls.iter().map(|u| u.origin()).collect(),
            scheme: if front_door.tls.is_some() {
                "https"
            } else {
                "http"
            },
        }
    }

    /// Whether the server answers to `host` (a `Host` header's value).
    pub fn allows_host(&self, host: &str) -> bool {
        let Some((name, _)) = split_host(host) else {
            return false;
        };
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }

    /// Whether `origin` (an `Origin` header's value) is the server's own, for a request whose
    /// `Host` is `host`.
    pub fn is_own_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let same_as_host = host.is_some_and(|host| {
            normalise(&origin)
                == normalise(&format!("{}://{}", self.scheme, host.to_ascii_lowercase()))
        });
        same_as_host
            || self
                .origins
                .iter()
                .any(|o| normalise(o) == normalise(&origin))
    }
}

/// `host` (lower case, trailing dot dropped; an IPv6 address keeps its brackets) and the port
/// of `host[:port]`, or `None` when it is no such thing.
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    let authority: axum::http::uri::Authority = text.trim().parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some((host, authority.port_u16()))
}

/// An origin with its scheme's default port written out, for comparing.
fn normalise(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let (host, port) = split_host(rest)?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some((scheme.to_owned(), host, port.unwrap_or(default)))
}

/// Middleware: 421 `host_not_allowed` for a `Host` the server does not answer to.
pub async fn allowed_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).map(|h| h.to_str());
    match host {
        None => next.run(request).await,
        Some(Ok(host)) if state.gate.allows_host(host) => next.run(request).await,
        Some(host) => {
            let shown = host.unwrap_or("(not text)");
            tracing::info!(host = shown, "refused a request for a host not allowed");
            ApiError::new(
                ErrorCode::HostNotAllowed,
                format!(
                    "this server does not answer to the host `{}`; its administrator can add it \
                     with --public-url or --allowed-hosts",
                    shown.chars().take(100).collect::<String>()
                ),
            )
            .into_response()
        }
    }
}

/// Middleware: 403 `cross_origin` for a state-changing request a page of another origin sent.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    let refused = match text("sec-fetch-site") {
        // `none`: the user typed it or used a bookmark; `same-origin`: our own page.
        Some(site) => {
            let site = site.trim().to_ascii_lowercase();
            (site != "same-origin" && site != "none").then(|| format!("Sec-Fetch-Site: {site}"))
        }
        None => match text(header::ORIGIN.as_str()) {
            Some(origin)
                if !state
                    .gate
                    .is_own_origin(origin, text(header::HOST.as_str())) =>
            {
                Some(format!(
                    "Origin: {}",
                    origin.chars().take(100).collect::<String>()
                ))
            }
            _ => None,
        },
    };
    match refused {
        None => next.run(request).await,
        Some(why) => {
            tracing::info!(
                method = %request.method(),
                path = request.uri().path(),
                "refused a cross-origin request ({why})"
            );
            ApiError::new(
                ErrorCode::CrossOrigin,
                format!(
                    "{} {} came from a page of another origin ({why}); it is refused",
                    request.method(),
                    request.uri().path()
                ),
            )
            .into_response()
        }
    }
}

/// Methods that change nothing (a GET that changed something would be the bug to fix).
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};

    fn gate(bind: &str, public: &[&str], hosts: &[&str]) -> Gate {
        let settings = Settings::resolve(Overrides {
            bind: Some(bind.into()),
            public_url: Some(public.iter().map(|s| s.to_string()).collect()),
            allowed_hosts: Some(hosts.iter().map(|s| s.to_string()).collect()),
            ..Overrides::default()
        })
        .unwrap();
        Gate::new(&settings.bind, &settings.front_door)
    }

    #[test]
    fn loopback_names_ip_literals_and_configured_names_are_allowed() {
        let g = gate(
            "kiosk.lan:8080",
            &["https://Attendance.Example.org"],
            &["desk.lan"],
        );
        for host in [
            "localhost",
            "localhost:9999",
            "LOCALHOST.",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.20",
            "[fe80::1]",
            "kiosk.lan:8080",
            "kiosk.lan",
            "attendance.example.org",
            "attendance.example.org:443",
            "desk.lan:1",
        ] {
            assert!(g.allows_host(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "kiosk.lan.attacker.example",
            "localhost.attacker.example",
            "user@localhost",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert!(!g.allows_host(host), "{host}");
        }
    }

    #[test]
    fn an_origin_is_own_when_it_matches_the_host_or_a_public_url() {
        let g = gate("127.0.0.1:8080", &["https://kiosk.lan:8443"], &[]);
        assert!(g.is_own_origin("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(g.is_own_origin("http://localhost", Some("localhost:80")));
        assert!(g.is_own_origin("https://kiosk.lan:8443", Some("127.0.0.1:8080")));
        assert!(!g.is_own_origin("http://evil.example", Some("127.0.0.1:8080")));
        assert!(!g.is_own_origin("http://127.0.0.1:8081", Some("127.0.0.1:8080")));
        assert!(!g.is_own_origin("https://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!g.is_own_origin("null", Some("127.0.0.1:8080")));
        assert!(!g.is_own_origin("http://127.0.0.1:8080", None));
    }
}
