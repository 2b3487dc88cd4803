//! TLS from the binary (rustls with the `ring` provider, nothing from the system) and the
//! self-signed certificate of `rollcall tls self-signed`: a kiosk tablet on a LAN needs HTTPS for
//! its camera (browsers give cameras to secure contexts only, and only localhost is one over
//! plain HTTP).

use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The acceptor for a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not go together")?;
    // The server speaks HTTP/1.1 only (its deadlines are per HTTP/1 connection).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A certificate and its private key, both PEM.
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed certificate for `names` (host names or IP addresses), valid from today for
/// two years.
pub fn self_signed(names: &[String]) -> anyhow::Result<SelfSigned> {
    use chrono::Datelike;
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).context("the names of the certificate")?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    subject.push(rcgen::DnType::OrganizationName, "rollcall (self-signed)");
    params.distinguished_name = subject;
    let today = chrono::Utc::now().date_naive();
    let day =
        |year: i32| rcgen::date_time_ymd(year, today.month() as u8, today.day().min(28) as u8);
    params.not_before = day(today.year());
    params.not_after = day(today.year() + 2);
    let key = rcgen::KeyPair::generate().context("generating a key pair")?;
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
