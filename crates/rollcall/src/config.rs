//! One typed [`Settings`] from, in order of precedence: command-line flags, environment variables
//! (clap reads both), an optional TOML file (`--config`), and defaults that work untouched.

use crate::cli::{GlobalArgs, ServeArgs};
use rollcall_vision::models::{EmbedderChoice, ModelConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

/// Everything a command needs to know about where things are and how to behave.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub models: ModelConfig,
    /// `None`: the embedder's default.
    pub threshold: Option<f32>,
    pub cooldown: Duration,
    pub max_upload_bytes: usize,
    pub workers: usize,
    pub queue: usize,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_WORKERS: usize = 2;
pub const DEFAULT_QUEUE: usize = 8;

/// The TOML file: the same settings, all optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub models: Option<PathBuf>,
    pub embedder: Option<String>,
    pub facenet_weights: Option<PathBuf>,
    pub threshold: Option<f32>,
    pub cooldown_secs: Option<u64>,
    pub max_upload_bytes: Option<usize>,
    pub workers: Option<usize>,
    pub queue: Option<usize>,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }
}

impl Settings {
    /// Resolve the settings of any command. `serve` carries the server-only flags; other commands
    /// still honour their environment variables and the file.
    pub fn resolve(
        global: &GlobalArgs,
        serve: Option<&ServeArgs>,
    ) -> Result<Settings, ConfigError> {
        let file = match &global.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let serve = serve.cloned().unwrap_or(ServeArgs {
            bind: None,
            threshold: env_parse("ROLLCALL_THRESHOLD")?,
            cooldown_secs: env_parse("ROLLCALL_COOLDOWN_SECS")?,
            max_upload_bytes: env_parse("ROLLCALL_MAX_UPLOAD_BYTES")?,
            workers: env_parse("ROLLCALL_WORKERS")?,
            queue: env_parse("ROLLCALL_QUEUE")?,
        });

        let data_dir = global
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = global
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir.join("rollcall.db")));
        // A models directory the user names is used as it is; only the default one (inside
        // the data directory) is filled by downloads on first start.
        let explicit_models = global.models.clone().or(file.models);
        let fetch_missing = explicit_models.is_none();
        let models_dir = explicit_models.unwrap_or_else(|| data_dir.join("models"));
        let embedder = match global.embedder.clone().or(file.embedder) {
            Some(s) => s
                .parse::<EmbedderChoice>()
                .map_err(|reason| ConfigError::Invalid {
                    setting: "embedder",
                    reason,
                })?,
            None => EmbedderChoice::Auto,
        };
        let threshold = serve.threshold.or(file.threshold);
        if let Some(t) = threshold {
            crate::domain::Threshold::new(t).map_err(|e| ConfigError::Invalid {
                setting: "threshold",
                reason: e.to_string(),
            })?;
        }
        let workers = serve.workers.or(file.workers).unwrap_or(DEFAULT_WORKERS);
        if workers == 0 {
            return Err(ConfigError::Invalid {
                setting: "workers",
                reason: "must be at least 1".into(),
            });
        }
        let max_upload_bytes = serve
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
        if max_upload_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_upload_bytes",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Settings {
            bind: serve
                .bind
                .or(file.bind)
                .unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            data_dir,
            database_url,
            models: ModelConfig {
                models_dir,
                embedder,
                facenet_weights: global.facenet_weights.clone().or(file.facenet_weights),
                fetch_missing,
            },
            threshold,
            cooldown: serve
                .cooldown_secs
                .or(file.cooldown_secs)
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_COOLDOWN),
            max_upload_bytes,
            workers,
            queue: serve.queue.or(file.queue).unwrap_or(DEFAULT_QUEUE),
        })
    }

    /// Is the database the default SQLite file (or another SQLite file)?
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

/// `sqlite://` URL of a file path.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn env_parse<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ConfigError::Invalid {
                    setting: name,
                    reason: e.to_string(),
                })
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> GlobalArgs {
        GlobalArgs {
            config: None,
            models: None,
            embedder: None,
            facenet_weights: None,
            data_dir: None,
            database_url: None,
        }
    }

    fn serve() -> ServeArgs {
        ServeArgs {
            bind: None,
            threshold: None,
            cooldown_secs: None,
            max_upload_bytes: None,
            workers: None,
            queue: None,
        }
    }

    #[test]
    fn defaults_work_untouched() {
        let s = Settings::resolve(&global(), Some(&serve())).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database_url, "sqlite://./data/rollcall.db");
        assert_eq!(s.models.models_dir, PathBuf::from("./data/models"));
        assert_eq!(s.models.embedder, EmbedderChoice::Auto);
        assert_eq!(
            (s.workers, s.queue, s.cooldown),
            (2, 8, Duration::from_secs(300))
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/rc\"\nthreshold = 0.7\nworkers = 3\nembedder = \"face-api\"\n",
        )
        .unwrap();
        let mut g = global();
        g.config = Some(path);
        let mut a = serve();
        a.workers = Some(4);
        let s = Settings::resolve(&g, Some(&a)).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/rc"));
        assert_eq!(s.database_url, "sqlite:///srv/rc/rollcall.db");
        assert_eq!(s.threshold, Some(0.7));
        assert_eq!(s.workers, 4);
        assert_eq!(s.models.embedder, EmbedderChoice::FaceApi);
    }

    #[test]
    fn bad_values_are_refused() {
        let mut a = serve();
        a.threshold = Some(1.5);
        assert!(Settings::resolve(&global(), Some(&a)).is_err());
        let mut g = global();
        g.embedder = Some("vgg".into());
        assert!(Settings::resolve(&g, Some(&serve())).is_err());
    }
}
