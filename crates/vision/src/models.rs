//! Where model files live, how a user's machine gets them (`models fetch`: download with a
//! progress bar, SHA-256 check, atomic rename), and which embedder is active.

use crate::embedder::EmbedderKind;
use std::path::PathBuf;

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
            other => Err(format!("unknown embedder `{other}`: use facenet, face-api or auto")),
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

impl ModelConfig {
    pub fn resolve_kind(&self) -> EmbedderKind {
        todo!("ModelConfig::resolve_kind")
    }
}
