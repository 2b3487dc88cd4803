//! Which embedding network to run, where model files live, and how a user's machine gets them
//! (`models fetch`: download with a progress bar, SHA-256 check, atomic rename). The
//! `embedder` loads what this module resolved; this module knows nothing of
//! the networks themselves.

use crate::error::ModelError;
use crate::fetch::{self, Fetcher, ModelFile, ModelGroup};
use std::path::{Path, PathBuf};

/// Which embedding network. Serialised as the names used on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderKind {
    /// InceptionResnetV1, 512-d, 160×160 box crops (facenet-pytorch's).
    Facenet,
    /// face-api.js / dlib ResNet, 128-d, 150×150.
    FaceApi,
}

impl EmbedderKind {
    /// The files this network is loaded from (MTCNN's are needed whatever the embedder).
    pub fn files(self) -> ModelGroup {
        match self {
            EmbedderKind::Facenet => ModelGroup::Facenet,
            EmbedderKind::FaceApi => ModelGroup::FaceApi,
        }
    }
}

/// The embedder asked for on the command line / in config: a network by name, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum EmbedderChoice {
    Facenet,
    FaceApi,
    /// FaceNet when its weights are present or fetchable, otherwise face-api (said loudly).
    Auto,
}

impl EmbedderChoice {
    /// The network named, or `None` for `auto`.
    pub fn named(self) -> Option<EmbedderKind> {
        match self {
            EmbedderChoice::Facenet => Some(EmbedderKind::Facenet),
            EmbedderChoice::FaceApi => Some(EmbedderKind::FaceApi),
            EmbedderChoice::Auto => None,
        }
    }
}

impl From<EmbedderKind> for EmbedderChoice {
    fn from(kind: EmbedderKind) -> Self {
        match kind {
            EmbedderKind::Facenet => EmbedderChoice::Facenet,
            EmbedderKind::FaceApi => EmbedderChoice::FaceApi,
        }
    }
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
    /// Download missing files into `models_dir` on load. Meant for the default models directory
    /// (inside the data directory: fetched on first start); a directory the user names is used
    /// as is, and a missing file is then an error naming the `models fetch` command.
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
    ///
    /// A missing file is an error that lists every missing file and the `models fetch`
    /// command. With `fetch_missing`, missing files are downloaded into `models_dir`; a
    /// `facenet_weights` path given explicitly is never fetched into.
    pub fn prepare(&self) -> Result<ResolvedModels, ModelError> {
        self.prepare_with(&fetch::manifest(), &Fetcher::default())
    }

    /// [`prepare`](Self::prepare) with the manifest and fetcher given (tests point them at a
    /// local server).
    pub fn prepare_with(
        &self,
        manifest: &[ModelFile],
        fetcher: &Fetcher,
    ) -> Result<ResolvedModels, ModelError> {
        let facenet = self
            .facenet_weights
            .clone()
            .unwrap_or_else(|| facenet_default_path(&self.models_dir));
        let kind = match self.embedder.named() {
            Some(kind) => kind,
            None if self.facenet_weights.is_some() || facenet.is_file() => EmbedderKind::Facenet,
            None if self.fetch_missing => {
                match self.fetch_group(manifest, fetcher, ModelGroup::Facenet) {
                    Ok(()) => EmbedderKind::Facenet,
                    Err(e) => {
                        self.warn_face_api_fallback(&facenet, Some(&e));
                        EmbedderKind::FaceApi
                    }
                }
            }
            None => {
                self.warn_face_api_fallback(&facenet, None);
                EmbedderKind::FaceApi
            }
        };

        if let Some(explicit) = &self.facenet_weights {
            if kind == EmbedderKind::Facenet && !explicit.is_file() {
                return Err(ModelError::Config(format!(
                    "FaceNet weights {} not found (given with --facenet-weights / ROLLCALL_FACENET_WEIGHTS)",
                    explicit.display()
                )));
            }
        }
        // An explicit FaceNet file lies outside the models directory: never fetched into.
        let mut groups = vec![ModelGroup::Mtcnn];
        if !(kind == EmbedderKind::Facenet && self.facenet_weights.is_some()) {
            groups.push(kind.files());
        }
        if self.fetch_missing {
            for &group in &groups {
                self.fetch_group(manifest, fetcher, group)?;
            }
        }
        let missing: Vec<PathBuf> = manifest
            .iter()
            .filter(|f| groups.contains(&f.group))
            .map(|f| f.path_in(&self.models_dir))
            .filter(|p| !p.is_file())
            .collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|p| format!("\n  - {}", p.display()))
                .collect();
            return Err(ModelError::Fetch(format!(
                "model files missing:{}\nget them with `rollcall models fetch --models {}`",
                list.concat(),
                self.models_dir.display()
            )));
        }

        Ok(ResolvedModels {
            kind,
            mtcnn_dir: mtcnn_dir(&self.models_dir),
            facenet_weights: (kind == EmbedderKind::Facenet).then_some(facenet),
            face_api_dir: face_api_dir(&self.models_dir),
        })
    }

    /// Fetch the files of `group` that are missing from `models_dir` (present files are trusted
    /// here; `models fetch` checks their hashes).
    fn fetch_group(
        &self,
        manifest: &[ModelFile],
        fetcher: &Fetcher,
        group: ModelGroup,
    ) -> Result<(), ModelError> {
        let mut failures = Vec::new();
        for file in manifest.iter().filter(|f| f.group == group) {
            if file.path_in(&self.models_dir).is_file() {
                continue;
            }
            match fetcher.fetch(&self.models_dir, file) {
                Ok(source) => tracing::info!(file = %file.rel_path, %source, "model file fetched"),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Fetch(failures.join("\n")))
        }
    }

    fn warn_face_api_fallback(&self, facenet: &Path, error: Option<&ModelError>) {
        let why = match error {
            Some(e) => format!("could not be fetched ({e})"),
            None => "are missing".to_string(),
        };
        // Said once, through the log the host program set up (a library prints nothing itself).
        tracing::warn!(
            "FaceNet's weights {} {why}: using the face-api embedder, which works with the files \
             present (128-d, less accurate). For FaceNet, give a vggface2 state dict with \
             --facenet-weights FILE, or run `rollcall models fetch` where its release can be \
             downloaded; `--embedder face-api` chooses face-api without this warning.",
            facenet.display(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_parsed_by_their_names() {
        assert_eq!("facenet".parse(), Ok(EmbedderChoice::Facenet));
        assert_eq!("face-api".parse(), Ok(EmbedderChoice::FaceApi));
        assert_eq!("auto".parse(), Ok(EmbedderChoice::Auto));
        assert!("dlib".parse::<EmbedderChoice>().is_err());
        assert_eq!(EmbedderChoice::Auto.named(), None);
        for kind in [EmbedderKind::Facenet, EmbedderKind::FaceApi] {
            assert_eq!(EmbedderChoice::from(kind).named(), Some(kind));
        }
        assert_eq!(EmbedderKind::FaceApi.files(), ModelGroup::FaceApi);
        assert_eq!(EmbedderKind::Facenet.files(), ModelGroup::Facenet);
    }
}
