//! Typed errors of the vision crate. The server maps these to HTTP statuses.

use std::path::PathBuf;

/// Why image bytes could not become pixels.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the file is not a JPEG or PNG image")]
    Unsupported,
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
    #[error("the image is {width}×{height} pixels; the limit is {max_pixels} pixels")]
    TooLarge {
        width: u64,
        height: u64,
        max_pixels: u64,
    },
    #[error("the image is empty (0 pixels)")]
    Empty,
    /// A progressive JPEG costs a pass over the whole image per scan; thousands of tiny scans
    /// in a small file can keep a decoder busy for minutes.
    #[error("the JPEG has {scans} scans; at most {max} are accepted")]
    TooManyScans { scans: usize, max: usize },
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("model file {path}: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },
    #[error("model file {path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{0}")]
    Fetch(String),
    #[error("{0}")]
    Config(String),
}

/// Why a photo could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The network gave NaN, infinite or all-zero values: a broken model file, not a bad photo.
    #[error("the embedding network gave values that are not finite")]
    NonFiniteEmbedding,
}
