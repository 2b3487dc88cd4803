//! `rollcall tls self-signed`: a certificate for serving HTTPS on a LAN without a CA.

use crate::server::tls::self_signed;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug, Clone)]
pub enum TlsCommand {
    /// Write a self-signed certificate (cert.pem) and its private key (key.pem, mode 0600) for
    /// `rollcall serve --tls-cert --tls-key`.
    SelfSigned(SelfSignedArgs),
}

#[derive(Args, Debug, Clone)]
pub struct SelfSignedArgs {
    /// A host name or IP address the certificate is for (repeat for more), e.g. kiosk.lan.
    #[arg(long = "name", value_name = "NAME", required = true)]
    pub names: Vec<String>,
    /// The directory to write cert.pem and key.pem into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace cert.pem and key.pem if they exist.
    #[arg(long)]
    pub force: bool,
}

pub fn run(command: TlsCommand) -> anyhow::Result<()> {
    match command {
        TlsCommand::SelfSigned(a) => write_self_signed(&a),
    }
}

fn write_self_signed(a: &SelfSignedArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let cert_path = a.out.join("cert.pem");
    let key_path = a.out.join("key.pem");
    for path in [&cert_path, &key_path] {
        if path.exists() && !a.force {
            anyhow::bail!(
                "{} exists: choose another --out, or replace it with --force",
                path.display()
            );
        }
    }
    let pair = self_signed(&a.names)?;
    write_file(&key_path, pair.key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, pair.cert_pem.as_bytes(), 0o644)?;
    let first = &a.names[0];
    let host = if first.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{first}]")
    } else {
        first.clone()
    };
    println!(
        "wrote {} (certificate for {}) and {} (its private key, readable by you only)",
        cert_path.display(),
        a.names.join(", "),
        key_path.display()
    );
    println!("serve HTTPS with it:");
    println!(
        "  rollcall serve --bind 0.0.0.0:8443 --tls-cert {} --tls-key {} --public-url https://{host}:8443",
        cert_path.display(),
        key_path.display()
    );
    println!(
        "then make the kiosk's browser trust {} (install it as a certificate on the tablet) and open https://{host}:8443/",
        cert_path.display()
    );
    Ok(())
}

/// Write `bytes` to `path` with `mode` whatever the umask (the key must never be readable by
/// others, even for a moment).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let file = options
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        // An existing file keeps its old mode through open: set it.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        write_all(file, path, bytes)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let file = options
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        write_all(file, path, bytes)
    }
}

fn write_all(mut file: std::fs::File, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
