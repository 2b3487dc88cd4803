//! The front door's settings: the names the server answers to, its limits on slow or numerous
//! clients, and TLS.

use std::path::PathBuf;
use std::time::Duration;

/// The server's front door: which names it answers to, its limits on slow or numerous clients,
/// and TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontDoor {
    /// The URLs people type to reach the server (a reverse proxy's, a LAN name's): their
    /// hosts are allowed and their origins count as the server's own.
    pub public_urls: Vec<PublicUrl>,
    /// More host names the server answers to (lower case, no port).
    pub allowed_hosts: Vec<String>,
    /// The most `image` parts one request may carry.
    pub max_images: usize,
    /// A request's headers must be complete this long after the connection opened or its
    /// previous request was answered and a first byte came.
    pub header_timeout: Duration,
    /// A request's whole body must have arrived this long after its headers.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request under way is closed after this long.
    pub idle_timeout: Duration,
    /// Every request is answered within this long of its headers (its upload included): a
    /// database or photo store that stops answering gets 503 `timed_out`, not a request
    /// that waits forever.
    pub answer_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// After SIGTERM, requests under way get this long to finish before the process exits.
    pub shutdown_timeout: Duration,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl FrontDoor {
    /// Session cookies must be `Secure`: the binary serves HTTPS, or people reach it through an
    /// `https://` public URL (a TLS reverse proxy).
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some() || self.public_urls.iter().any(|u| u.scheme == "https")
    }
}

/// A URL people reach the server at, reduced to what the front door compares: its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower case; an IPv6 address keeps its brackets.
    pub host: String,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
}

impl PublicUrl {
    pub fn parse(text: &str) -> Result<PublicUrl, String> {
        let uri: axum::http::Uri = text
            .trim()
            .parse()
            .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => {
                return Err(format!(
                    "`{text}`: the URL must start with http:// or https://"
                ))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{text}`: the URL names no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("`{text}`: the URL must not hold a user name"));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("`{text}`: the URL names no host"));
        }
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(PublicUrl {
            scheme: scheme.to_owned(),
            host,
            port,
        })
    }

    /// `scheme://host[:port]`, the port left out when it is the scheme's default (as browsers
    /// write an `Origin`).
    pub fn origin(&self) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}
