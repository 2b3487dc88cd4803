//! rollcall-vision: image bytes → faces → aligned crops → embeddings.
//!
//! The data flows through the modules in this order:
//! [`image`] (decode with limits, EXIF orientation) → [`mtcnn`] (P-Net, R-Net, O-Net: boxes,
//! probabilities, landmarks) → [`crop`] (facenet-pytorch's box crop, landmark alignment) →
//! [`facenet`] / [`facedesc`] behind [`embedder`] ([`embedding`]s) → [`pipeline`] (all of it
//! behind one `Send + Sync` API, the only road the server takes).
//! [`quality`] measures how usable a detected face is as a reference (size, sharpness, light,
//! pose). [`weights`] reads the published weight files, [`nn`] holds the layers the networks are built
//! from, [`models`] knows which embedder to run, where model files live and how to fetch them.

pub mod crop;
pub mod embedder;
pub mod embedding;
pub mod error;
pub mod facedesc;
pub mod facenet;
pub mod fetch;
pub mod image;
pub mod models;
pub mod mtcnn;
pub mod nn;
pub mod pipeline;
pub mod quality;
pub mod tensor;
pub mod weights;

pub use embedder::Embedder;
pub use embedding::{Embedding, Similarity};
pub use error::{ImageError, ModelError, PipelineError};
pub use image::{DecodeLimits, RgbImage};
pub use models::{EmbedderChoice, EmbedderKind};
pub use mtcnn::{Detection, Detector};
pub use pipeline::{Analysis, Face, FacePipeline, PipelineConfig, StageTimings};
pub use tensor::Tensor;
