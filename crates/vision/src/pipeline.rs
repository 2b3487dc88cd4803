//! `FacePipeline`: image bytes → faces with boxes, probabilities, landmarks and embeddings.
//! Loaded once, shared by every request (`Send + Sync`); the faces of one frame are embedded as
//! one batch.

use crate::embedder::Embedder;
use crate::error::{ModelError, PipelineError};
use crate::image::DecodeLimits;
use crate::models::ModelConfig;
use crate::mtcnn::{Detection, Detector};

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub models: ModelConfig,
    pub limits: DecodeLimits,
}

/// One face of a photo: where it is and, when asked for, its embedding.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Face {
    #[serde(flatten)]
    pub detection: Detection,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

pub struct FacePipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    pub limits: DecodeLimits,
}

impl FacePipeline {
    pub fn load(config: &PipelineConfig) -> Result<Self, ModelError> {
        let _ = config;
        todo!("FacePipeline::load")
    }

    /// Faces found in the photo, largest first, without embeddings.
    pub fn detect(&self, bytes: &[u8]) -> Result<Vec<Detection>, PipelineError> {
        let _ = bytes;
        todo!("FacePipeline::detect")
    }

    /// Faces found in the photo, largest first, each with its embedding.
    pub fn analyze(&self, bytes: &[u8]) -> Result<Vec<Face>, PipelineError> {
        let _ = bytes;
        todo!("FacePipeline::analyze")
    }

    /// Identifies the embedding model (see [`Embedder::model_id`]).
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }
}
