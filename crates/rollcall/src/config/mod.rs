//! One typed [`Settings`] from, in order of precedence: what was given explicitly ([`Overrides`]:
//! the command line fills it, clap having read flags and environment variables), an optional TOML
//! file (`--config`), and defaults that work untouched. Nothing here knows about clap, so the
//! tests and other programs can make settings without a command line.

use crate::domain::{RetentionDays, Threshold};
use crate::photo_location::PhotoLocation;
use rollcall_vision::models::{EmbedderChoice, ModelConfig};
use rollcall_vision::PipelineConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod front_door;
pub use front_door::{FrontDoor, PublicUrl, TlsFiles};

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
    /// Where reference photos go: the data directory, or an S3-compatible bucket (with the
    /// `AWS_*` environment variables read when the settings were resolved).
    pub photo_store: PhotoLocation,
    pub models: ModelConfig,
    /// `None`: derived for the gallery from `false_accept_rate`.
    pub threshold: Option<Threshold>,
    /// With a configured threshold: how much the best person must beat the runner-up by.
    pub margin: Option<f64>,
    /// Strangers accepted as someone, per attempt, that the derived threshold allows.
    pub false_accept_rate: f64,
    pub cooldown: Duration,
    pub max_upload_bytes: usize,
    pub workers: usize,
    pub queue: usize,
    /// Callers without credentials may use `/verify` and `/detect` (off by default).
    pub anonymous_verify: bool,
    /// The session cookie is marked `Secure`: set when the server is reached over TLS (its
    /// own, or a reverse proxy's).
    pub secure_cookies: bool,
    /// Check-ins older than this are purged at start and hourly; `None` keeps them all.
    pub retention: Option<RetentionDays>,
    /// How often a server applies the changes other processes made to the registered people.
    pub sync_interval: Duration,
    /// Who may reach the server, and how long a connection may take: see [`FrontDoor`].
    pub front_door: FrontDoor,
    /// Whether challenges are given (and the kiosk page records a sequence).
    pub liveness: crate::liveness::Mode,
    /// A single photo is still recognised but checks nobody in.
    pub require_liveness: bool,
    /// Every challenge asks this movement instead of a random one (tests only: a fixed
    /// instruction makes a recorded sequence fit).
    pub liveness_instruction: Option<crate::liveness::Instruction>,
}

/// The `AWS_*` environment variables (endpoint, region, credentials, `AWS_ALLOW_HTTP`), for a
/// photo store in a bucket.
fn aws_environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_WORKERS: usize = 2;
pub const DEFAULT_QUEUE: usize = 8;
pub const DEFAULT_MAX_IMAGES: usize = 10;
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 250;
/// A server that applies others' changes less often than once a minute is not following them.
pub const MAX_SYNC_INTERVAL_MS: u64 = 60_000;
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// Longer than the body timeout: a slow upload that arrives in time still gets its answer.
pub const DEFAULT_ANSWER_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;

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
    pub photo_store: Option<String>,
    pub models: Option<PathBuf>,
    pub embedder: Option<EmbedderChoice>,
    pub facenet_weights: Option<PathBuf>,
    pub threshold: Option<f32>,
    pub margin: Option<f64>,
    pub false_accept_rate: Option<f64>,
    pub cooldown_secs: Option<u64>,
    pub max_upload_bytes: Option<usize>,
    pub workers: Option<usize>,
    pub queue: Option<usize>,
    pub anonymous_verify: Option<bool>,
    pub secure_cookies: Option<bool>,
    pub retention_days: Option<u32>,
    pub sync_interval_ms: Option<u64>,
    pub public_url: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub max_images: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub answer_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub liveness: Option<crate::liveness::Mode>,
    pub require_liveness: Option<bool>,
    pub liveness_instruction: Option<crate::liveness::Instruction>,
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
            photo_store: self.photo_store.or(fallback.photo_store),
            models: self.models.or(fallback.models),
            embedder: self.embedder.or(fallback.embedder),
            facenet_weights: self.facenet_weights.or(fallback.facenet_weights),
            threshold: self.threshold.or(fallback.threshold),
            margin: self.margin.or(fallback.margin),
            false_accept_rate: self.false_accept_rate.or(fallback.false_accept_rate),
            cooldown_secs: self.cooldown_secs.or(fallback.cooldown_secs),
            max_upload_bytes: self.max_upload_bytes.or(fallback.max_upload_bytes),
            workers: self.workers.or(fallback.workers),
            queue: self.queue.or(fallback.queue),
            anonymous_verify: self.anonymous_verify.or(fallback.anonymous_verify),
            secure_cookies: self.secure_cookies.or(fallback.secure_cookies),
            retention_days: self.retention_days.or(fallback.retention_days),
            sync_interval_ms: self.sync_interval_ms.or(fallback.sync_interval_ms),
            public_url: self.public_url.or(fallback.public_url),
            allowed_hosts: self.allowed_hosts.or(fallback.allowed_hosts),
            max_images: self.max_images.or(fallback.max_images),
            header_timeout_secs: self.header_timeout_secs.or(fallback.header_timeout_secs),
            body_timeout_secs: self.body_timeout_secs.or(fallback.body_timeout_secs),
            idle_timeout_secs: self.idle_timeout_secs.or(fallback.idle_timeout_secs),
            answer_timeout_secs: self.answer_timeout_secs.or(fallback.answer_timeout_secs),
            max_connections: self.max_connections.or(fallback.max_connections),
            shutdown_timeout_secs: self
                .shutdown_timeout_secs
                .or(fallback.shutdown_timeout_secs),
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            liveness: self.liveness.or(fallback.liveness),
            require_liveness: self.require_liveness.or(fallback.require_liveness),
            liveness_instruction: self.liveness_instruction.or(fallback.liveness_instruction),
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
        let photo_store = match &o.photo_store {
            None => PhotoLocation::DataDir,
            Some(text) => PhotoLocation::parse(text, aws_environment()).map_err(|reason| {
                ConfigError::Invalid {
                    setting: "photo_store",
                    reason,
                }
            })?,
        };
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
        // A margin belongs to a threshold chosen with it: the derived rule derives its own.
        let margin = match (o.margin, threshold) {
            (None, _) => None,
            (Some(m), _) if !(0.0..=1.0).contains(&m) => {
                return Err(ConfigError::Invalid {
                    setting: "margin",
                    reason: format!(
                        "{m} is not a similarity gap between 0 and 1 (e.g. 0.02: the best person \
                         must beat the next by 0.02)"
                    ),
                });
            }
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    setting: "margin",
                    reason: "is set together with threshold (without one, both are derived from \
                             false_accept_rate)"
                        .into(),
                });
            }
            (Some(m), Some(_)) => Some(m),
        };
        let false_accept_rate = o
            .false_accept_rate
            .unwrap_or(crate::operating_point::DEFAULT_FALSE_ACCEPT_RATE);
        // 0 would ask for a threshold no face reaches, 1 for one every face passes.
        if !(false_accept_rate > 0.0 && false_accept_rate < 1.0) {
            return Err(ConfigError::Invalid {
                setting: "false_accept_rate",
                reason: format!(
                    "{false_accept_rate} is not a rate strictly between 0 and 1 (e.g. 0.001: one \
                     stranger in 1,000 attempts)"
                ),
            });
        }
        let workers = o.workers.unwrap_or(DEFAULT_WORKERS);
        if workers == 0 {
            return Err(ConfigError::Invalid {
                setting: "workers",
                reason: "must be at least 1".into(),
            });
        }
        let sync_interval = match o.sync_interval_ms {
            None => Duration::from_millis(DEFAULT_SYNC_INTERVAL_MS),
            Some(ms @ 1..=MAX_SYNC_INTERVAL_MS) => Duration::from_millis(ms),
            Some(ms) => {
                return Err(ConfigError::Invalid {
                    setting: "sync_interval_ms",
                    reason: format!(
                        "{ms} is not between 1 and {MAX_SYNC_INTERVAL_MS} milliseconds"
                    ),
                })
            }
        };
        let max_upload_bytes = o.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
        if max_upload_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_upload_bytes",
                reason: "must be at least 1".into(),
            });
        }
        let retention = o
            .retention_days
            .map(RetentionDays::new)
            .transpose()
            .map_err(|e| ConfigError::Invalid {
                setting: "retention_days",
                reason: e.to_string(),
            })?;
        let front_door = FrontDoor {
            public_urls: o
                .public_url
                .unwrap_or_default()
                .iter()
                .flat_map(|v| v.split(','))
                .filter(|v| !v.trim().is_empty())
                .map(PublicUrl::parse)
                .collect::<Result<_, _>>()
                .map_err(|reason| ConfigError::Invalid {
                    setting: "public_url",
                    reason,
                })?,
            allowed_hosts: o
                .allowed_hosts
                .unwrap_or_default()
                .iter()
                .flat_map(|v| v.split(','))
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            max_images: at_least_one("max_images", o.max_images.unwrap_or(DEFAULT_MAX_IMAGES))?,
            header_timeout: seconds(
                "header_timeout_secs",
                o.header_timeout_secs,
                DEFAULT_HEADER_TIMEOUT_SECS,
            )?,
            body_timeout: seconds(
                "body_timeout_secs",
                o.body_timeout_secs,
                DEFAULT_BODY_TIMEOUT_SECS,
            )?,
            idle_timeout: seconds(
                "idle_timeout_secs",
                o.idle_timeout_secs,
                DEFAULT_IDLE_TIMEOUT_SECS,
            )?,
            answer_timeout: seconds(
                "answer_timeout_secs",
                o.answer_timeout_secs,
                DEFAULT_ANSWER_TIMEOUT_SECS,
            )?,
            max_connections: at_least_one(
                "max_connections",
                o.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            )?,
            // Zero is allowed: stop at once, abandoning requests under way.
            shutdown_timeout: Duration::from_secs(
                o.shutdown_timeout_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            ),
            tls: match (o.tls_cert, o.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "tls_cert",
                        reason: "give both --tls-cert and --tls-key, or neither".into(),
                    })
                }
            },
        };
        Ok(Settings {
            bind: o.bind.unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            data_dir,
            database_url,
            photo_store,
            models: ModelConfig {
                models_dir,
                embedder: o.embedder.unwrap_or(EmbedderChoice::Auto),
                facenet_weights: o.facenet_weights,
                fetch_missing,
            },
            threshold,
            margin,
            false_accept_rate,
            cooldown: o
                .cooldown_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_COOLDOWN),
            max_upload_bytes,
            workers,
            queue: o.queue.unwrap_or(DEFAULT_QUEUE),
            anonymous_verify: o.anonymous_verify.unwrap_or(false),
            secure_cookies: o.secure_cookies.unwrap_or(false),
            retention,
            sync_interval,
            front_door,
            liveness: o.liveness.unwrap_or_default(),
            require_liveness: o.require_liveness.unwrap_or(false),
            liveness_instruction: o.liveness_instruction,
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

fn at_least_one(setting: &'static str, n: usize) -> Result<usize, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid {
            setting,
            reason: "must be at least 1".into(),
        });
    }
    Ok(n)
}

/// A timeout of whole seconds; zero would refuse every request, so it is refused.
fn seconds(
    setting: &'static str,
    given: Option<u64>,
    default: u64,
) -> Result<Duration, ConfigError> {
    match given.unwrap_or(default) {
        0 => Err(ConfigError::Invalid {
            setting,
            reason: "must be at least 1 second".into(),
        }),
        secs => Ok(Duration::from_secs(secs)),
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
        assert_eq!(s.retention, None, "check-ins are kept unless asked");
        assert_eq!(s.sync_interval, Duration::from_millis(250));
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
            "data_dir = \"/srv/rc\"\nthreshold = 0.7\nfalse_accept_rate = 0.002\nworkers = 3\nqueue = 5\nembedder = \"face-api\"\nretention_days = 90\n",
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
        assert_eq!(s.false_accept_rate, 0.002);
        assert_eq!((s.workers, s.queue), (4, 5));
        assert_eq!(s.models.embedder, EmbedderChoice::FaceApi);
        assert_eq!(s.retention.map(RetentionDays::days), Some(90));
    }

    #[test]
    fn liveness_challenges_by_default_and_off_from_the_file() {
        use crate::liveness::{Instruction, Mode};
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!(
            (s.liveness, s.require_liveness, s.liveness_instruction),
            (Mode::Challenge, false, None)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall.toml");
        std::fs::write(
            &path,
            "liveness = \"off\"\nrequire_liveness = true\nliveness_instruction = \"turn_left\"\n",
        )
        .unwrap();
        let s = Settings::resolve(Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(
            (s.liveness, s.require_liveness, s.liveness_instruction),
            (Mode::Off, true, Some(Instruction::TurnLeft))
        );
        std::fs::write(&path, "liveness = \"maybe\"\n").unwrap();
        let refused = Settings::resolve(Overrides {
            config: Some(path),
            ..Overrides::default()
        });
        assert!(matches!(refused, Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn the_front_door_has_defaults_and_takes_lists() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        let f = &s.front_door;
        assert_eq!(
            (f.max_images, f.max_connections, f.tls.clone()),
            (10, 256, None)
        );
        assert_eq!(
            (
                f.header_timeout,
                f.body_timeout,
                f.idle_timeout,
                f.answer_timeout,
                f.shutdown_timeout
            ),
            (
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(30),
                Duration::from_secs(60),
                Duration::from_secs(10)
            )
        );
        assert!(!f.secure_cookies());
        let s = Settings::resolve(Overrides {
            public_url: Some(vec![
                "https://Kiosk.LAN:8443/admin, http://attendance.example.org".into(),
            ]),
            allowed_hosts: Some(vec!["Desk.lan.".into(), "a,b".into()]),
            ..Overrides::default()
        })
        .unwrap();
        let f = &s.front_door;
        let origins: Vec<String> = f.public_urls.iter().map(PublicUrl::origin).collect();
        assert_eq!(
            origins,
            ["https://kiosk.lan:8443", "http://attendance.example.org"]
        );
        assert_eq!(f.allowed_hosts, ["desk.lan", "a", "b"]);
        // Behind an https:// public URL (a TLS proxy), cookies are Secure too.
        assert!(f.secure_cookies());
    }

    #[test]
    fn bad_front_door_values_are_refused() {
        for bad in [
            Overrides {
                public_url: Some(vec!["kiosk.lan".into()]),
                ..Overrides::default()
            },
            Overrides {
                public_url: Some(vec!["ftp://kiosk.lan".into()]),
                ..Overrides::default()
            },
            Overrides {
                public_url: Some(vec!["https://user@kiosk.lan".into()]),
                ..Overrides::default()
            },
            Overrides {
                max_images: Some(0),
                ..Overrides::default()
            },
            Overrides {
                header_timeout_secs: Some(0),
                ..Overrides::default()
            },
            Overrides {
                answer_timeout_secs: Some(0),
                ..Overrides::default()
            },
            Overrides {
                max_connections: Some(0),
                ..Overrides::default()
            },
            Overrides {
                tls_cert: Some("cert.pem".into()),
                ..Overrides::default()
            },
        ] {
            assert!(Settings::resolve(bad.clone()).is_err(), "{bad:?}");
        }
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
    fn a_margin_comes_with_a_threshold() {
        let s = Settings::resolve(Overrides {
            threshold: Some(0.9),
            margin: Some(0.02),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(s.margin, Some(0.02));
        let err = Settings::resolve(Overrides {
            margin: Some(0.02),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("margin") && err.contains("threshold"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            Overrides {
                threshold: Some(1.5),
                ..Overrides::default()
            },
            Overrides {
                false_accept_rate: Some(0.0),
                ..Overrides::default()
            },
            Overrides {
                false_accept_rate: Some(-0.001),
                ..Overrides::default()
            },
            Overrides {
                false_accept_rate: Some(1.0),
                ..Overrides::default()
            },
            Overrides {
                false_accept_rate: Some(f64::NAN),
                ..Overrides::default()
            },
            Overrides {
                margin: Some(0.02),
                ..Overrides::default()
            },
            Overrides {
                threshold: Some(0.9),
                margin: Some(-0.01),
                ..Overrides::default()
            },
            Overrides {
                threshold: Some(0.9),
                margin: Some(f64::NAN),
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
            Overrides {
                retention_days: Some(0),
                ..Overrides::default()
            },
            Overrides {
                sync_interval_ms: Some(0),
                ..Overrides::default()
            },
            Overrides {
                sync_interval_ms: Some(MAX_SYNC_INTERVAL_MS + 1),
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
