//! One typed [`Settings`] from, in order of precedence: what was given explicitly ([`Overrides`]:
//! the command line fills it, clap having read flags and environment variables), an optional TOML
//! file (`--config`), and defaults that work untouched. Nothing here knows about clap, so the
//! tests and other programs can make settings without a command line.

use crate::domain::Threshold;
use rollcall_vision::models::{EmbedderChoice, ModelConfig};
use rollcall_vision::PipelineConfig;
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
    pub threshold: Option<Threshold>,
    pub cooldown: Duration,
    pub max_upload_bytes: usize,
    pub workers: usize,
    pub queue: usize,
    /// Callers without credentials may use `/verify` and `/detect` (off by default).
    pub anonymous_verify: bool,
    /// The session cookie is marked `Secure`: set when the server is reached over TLS (its
    /// own, or a reverse proxy's).
    pub secure_cookies: bool,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_WORKERS: usize = 2;
pub const DEFAULT_QUEUE: usize = 8;

/// Settings given explicitly, each `None` unless given. The TOML file has the same names.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// The TOML file to read (never itself read from the file).
    #[serde(skip)]
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub models: Option<PathBuf>,
    pub embedder: Option<EmbedderChoice>,
    pub facenet_weights: Option<PathBuf>,
    pub threshold: Option<f32>,
    pub cooldown_secs: Option<u64>,
    pub max_upload_bytes: Option<usize>,
    pub workers: Option<usize>,
    pub queue: Option<usize>,
    pub anonymous_verify: Option<bool>,
    pub secure_cookies: Option<bool>,
}

impl Overrides {
    /// Read the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Each setting of `self`, else of `fallback`.
    pub fn or(self, fallback: Overrides) -> Overrides {
        Overrides {
            config: self.config.or(fallback.config),
            bind: self.bind.or(fallback.bind),
            data_dir: self.data_dir.or(fallback.data_dir),
            database_url: self.database_url.or(fallback.database_url),
            models: self.models.or(fallback.models),
            embedder: self.embedder.or(fallback.embedder),
            facenet_weights: self.facenet_weights.or(fallback.facenet_weights),
            threshold: self.threshold.or(fallback.threshold),
            cooldown_secs: self.cooldown_secs.or(fallback.cooldown_secs),
            max_upload_bytes: self.max_upload_bytes.or(fallback.max_upload_bytes),
            workers: self.workers.or(fallback.workers),
            queue: self.queue.or(fallback.queue),
            anonymous_verify: self.anonymous_verify.or(fallback.anonymous_verify),
            secure_cookies: self.secure_cookies.or(fallback.secure_cookies),
        }
    }
}

impl Settings {
    /// The settings `given` asks for, completed by its configuration file and the defaults.
    pub fn resolve(given: Overrides) -> Result<Settings, ConfigError> {
        let file = match &given.config {
            Some(path) => Overrides::from_file(path)?,
            None => Overrides::default(),
        };
        let o = given.or(file);

        let data_dir = o
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = o
            .database_url
            .unwrap_or_else(|| sqlite_url(&data_dir.join("rollcall.db")));
        // A models directory the user names is used as it is; only the default one (inside
        // the data directory) is filled by downloads on first start.
        let fetch_missing = o.models.is_none();
        let models_dir = o.models.unwrap_or_else(|| data_dir.join("models"));
        let threshold =
            o.threshold
                .map(Threshold::new)
                .transpose()
                .map_err(|e| ConfigError::Invalid {
                    setting: "threshold",
                    reason: e.to_string(),
                })?;
        let workers = o.workers.unwrap_or(DEFAULT_WORKERS);
        if workers == 0 {
            return Err(ConfigError::Invalid {
                setting: "workers",
                reason: "must be at least 1".into(),
            });
        }
        let max_upload_bytes = o.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
        if max_upload_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_upload_bytes",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Settings {
            bind: o.bind.unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            data_dir,
            database_url,
            models: ModelConfig {
                models_dir,
                embedder: o.embedder.unwrap_or(EmbedderChoice::Auto),
                facenet_weights: o.facenet_weights,
                fetch_missing,
            },
            threshold,
            cooldown: o
                .cooldown_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_COOLDOWN),
            max_upload_bytes,
            workers,
            queue: o.queue.unwrap_or(DEFAULT_QUEUE),
            anonymous_verify: o.anonymous_verify.unwrap_or(false),
            secure_cookies: o.secure_cookies.unwrap_or(false),
        })
    }

    /// The face pipeline these settings describe (default decode limits and face-api crop).
    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig::new(self.models.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_untouched() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database_url, "sqlite://./data/rollcall.db");
        assert_eq!(s.models.models_dir, PathBuf::from("./data/models"));
        assert!(s.models.fetch_missing);
        assert_eq!(s.models.embedder, EmbedderChoice::Auto);
        assert_eq!(s.threshold, None);
        assert_eq!(
            (s.workers, s.queue, s.cooldown, s.max_upload_bytes),
            (2, 8, Duration::from_secs(300), 10 * 1024 * 1024)
        );
        assert!(
            !s.anonymous_verify,
            "anonymous verify is off unless asked for"
        );
        assert!(!s.secure_cookies);
    }

    #[test]
    fn given_settings_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/rc\"\nthreshold = 0.7\nworkers = 3\nqueue = 5\nembedder = \"face-api\"\n",
        )
        .unwrap();
        let s = Settings::resolve(Overrides {
            config: Some(path),
            workers: Some(4),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/rc"));
        assert_eq!(s.database_url, "sqlite:///srv/rc/rollcall.db");
        assert_eq!(s.threshold.map(Threshold::value), Some(0.7));
        assert_eq!((s.workers, s.queue), (4, 5));
        assert_eq!(s.models.embedder, EmbedderChoice::FaceApi);
    }

    #[test]
    fn a_named_models_directory_is_not_fetched_into() {
        let s = Settings::resolve(Overrides {
            models: Some("/opt/models".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(s.models.models_dir, PathBuf::from("/opt/models"));
        assert!(!s.models.fetch_missing);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            Overrides {
                threshold: Some(1.5),
                ..Overrides::default()
            },
            Overrides {
                workers: Some(0),
                ..Overrides::default()
            },
            Overrides {
                max_upload_bytes: Some(0),
                ..Overrides::default()
            },
        ] {
            assert!(Settings::resolve(bad.clone()).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall.toml");
        for text in ["embedder = \"vgg\"\n", "colour = \"blue\"\n"] {
            std::fs::write(&path, text).unwrap();
            let given = Overrides {
                config: Some(path.clone()),
                ..Overrides::default()
            };
            assert!(Settings::resolve(given).is_err(), "{text}");
        }
    }
}
