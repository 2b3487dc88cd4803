//! Where model files live, how a user's machine gets them (`models fetch`: download with a
//! progress bar, SHA-256 check, atomic rename), and which embedder is active.

use crate::embedder::EmbedderKind;
use crate::error::ModelError;
use std::path::{Path, PathBuf};

/// The embedder asked for on the command line / in config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderChoice {
    Facenet,
    FaceApi,
    /// FaceNet when its weights are present or fetchable, otherwise face-api (said loudly).
    Auto,
}

impl std::str::FromStr for EmbedderChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "facenet" => Ok(EmbedderChoice::Facenet),
            "face-api" => Ok(EmbedderChoice::FaceApi),
            "auto" => Ok(EmbedderChoice::Auto),
            other => Err(format!(
                "unknown embedder `{other}`: use facenet, face-api or auto"
            )),
        }
    }
}

/// Where the models are and which to use.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Holds `mtcnn/{pnet,rnet,onet}.pt`, `face-api/…`, `facenet/20180402-114759-vggface2.pt`.
    pub models_dir: PathBuf,
    pub embedder: EmbedderChoice,
    /// A FaceNet state dict to use instead of the fetched vggface2 file.
    pub facenet_weights: Option<PathBuf>,
    /// Download missing files on load.
    pub fetch_missing: bool,
}

/// Where each model file lives inside a models directory.
pub fn mtcnn_dir(models_dir: &Path) -> PathBuf {
    models_dir.join("mtcnn")
}

pub fn face_api_dir(models_dir: &Path) -> PathBuf {
    models_dir.join("face-api")
}

pub fn facenet_default_path(models_dir: &Path) -> PathBuf {
    models_dir
        .join("facenet")
        .join("20180402-114759-vggface2.pt")
}

/// The files a pipeline loads, after the embedder choice is resolved (and, with
/// `fetch_missing`, after missing files were downloaded).
#[derive(Clone, Debug)]
pub struct ResolvedModels {
    pub kind: EmbedderKind,
    pub mtcnn_dir: PathBuf,
    /// Set when `kind` is FaceNet.
    pub facenet_weights: Option<PathBuf>,
    pub face_api_dir: PathBuf,
}

impl ModelConfig {
    /// Resolve `auto`, check the files exist (fetching them first when `fetch_missing`).
    pub fn prepare(&self) -> Result<ResolvedModels, ModelError> {
        // First cut: no fetching yet; `auto` picks FaceNet only when its file is present.
        let facenet = self
            .facenet_weights
            .clone()
            .unwrap_or_else(|| facenet_default_path(&self.models_dir));
        let kind = match self.embedder {
            EmbedderChoice::Facenet => EmbedderKind::Facenet,
            EmbedderChoice::FaceApi => EmbedderKind::FaceApi,
            EmbedderChoice::Auto if facenet.exists() => EmbedderKind::Facenet,
            EmbedderChoice::Auto => EmbedderKind::FaceApi,
        };
        Ok(ResolvedModels {
            kind,
            mtcnn_dir: mtcnn_dir(&self.models_dir),
            facenet_weights: (kind == EmbedderKind::Facenet).then_some(facenet),
            face_api_dir: face_api_dir(&self.models_dir),
        })
    }
}
