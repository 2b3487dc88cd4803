//! `FacePipeline`: image bytes → faces with boxes, probabilities, landmarks and embeddings.
//! Loaded once, shared by every request (`Send + Sync`); the faces of one frame are embedded as
//! one batch.

use crate::crop;
use crate::embedder::{Embedder, FaceApiCrop};
use crate::error::{ModelError, PipelineError};
use crate::image::{self, DecodeLimits, RgbImage};
use crate::models::ModelConfig;
use crate::mtcnn::{Detection, Detector, DetectorParams};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub models: ModelConfig,
    pub limits: DecodeLimits,
    /// How faces are cropped for the face-api embedder (ignored by FaceNet).
    pub face_api_crop: FaceApiCrop,
}

impl PipelineConfig {
    /// Default decode limits and face-api crop.
    pub fn new(models: ModelConfig) -> Self {
        PipelineConfig {
            models,
            limits: DecodeLimits::default(),
            face_api_crop: FaceApiCrop::default(),
        }
    }
}

/// One face of a photo: where it is and, when asked for, its embedding.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Face {
    #[serde(flatten)]
    pub detection: Detection,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
}

/// Time spent in each stage of one [`FacePipeline::analyze_timed`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimings {
    pub decode: Duration,
    pub detect: Duration,
    /// Cropping and the embedding network, all faces together.
    pub embed: Duration,
}

pub struct FacePipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    pub limits: DecodeLimits,
}

// The server shares one pipeline between all requests.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FacePipeline>();
};

impl FacePipeline {
    /// Resolve the models (see [`ModelConfig::prepare`]) and load the detector and embedder.
    pub fn load(config: &PipelineConfig) -> Result<Self, ModelError> {
        let models = config.models.prepare()?;
        let detector = Detector::load(&models.mtcnn_dir, DetectorParams::default())?;
        let embedder = Embedder::load(&models, config.face_api_crop)?;
        Ok(FacePipeline {
            detector,
            embedder,
            limits: config.limits,
        })
    }

    /// Faces found in the photo, largest first, without embeddings.
    pub fn detect(&self, bytes: &[u8]) -> Result<Vec<Detection>, PipelineError> {
        Ok(self.find_faces(&self.decode(bytes)?))
    }

    /// Faces found in the photo, largest first, each with its embedding.
    pub fn analyze(&self, bytes: &[u8]) -> Result<Vec<Face>, PipelineError> {
        Ok(self.analyze_image(&self.decode(bytes)?))
    }

    /// [`analyze`](Self::analyze) on pixels already decoded.
    pub fn analyze_image(&self, image: &RgbImage) -> Vec<Face> {
        self.analyze_image_timed(image).0
    }

    /// [`analyze`](Self::analyze), with the time each stage took (for the server's metrics).
    pub fn analyze_timed(&self, bytes: &[u8]) -> Result<(Vec<Face>, StageTimings), PipelineError> {
        let start = Instant::now();
        let image = self.decode(bytes)?;
        let decode = start.elapsed();
        let (faces, timings) = self.analyze_image_timed(&image);
        Ok((faces, StageTimings { decode, ..timings }))
    }

    fn analyze_image_timed(&self, image: &RgbImage) -> (Vec<Face>, StageTimings) {
        let start = Instant::now();
        let detections = self.find_faces(image);
        let detect = start.elapsed();

        let start = Instant::now();
        let embeddings = self.embedder.embed_faces(image, &detections);
        let embed = start.elapsed();

        let faces = detections
            .into_iter()
            .zip(embeddings)
            .map(|(detection, embedding)| Face {
                detection,
                embedding: Some(embedding),
            })
            .collect();
        (
            faces,
            StageTimings {
                decode: Duration::ZERO,
                detect,
                embed,
            },
        )
    }

    /// The detector's faces that have pixels inside the image: MTCNN boxes are not clipped, and
    /// one lying wholly outside the frame (or thinner than a pixel once clipped) has nothing to
    /// crop or embed.
    fn find_faces(&self, image: &RgbImage) -> Vec<Detection> {
        let mut detections = self.detector.detect(image);
        detections.retain(|d| crop::box_int(d.bbox, image.width, image.height).is_some());
        detections
    }

    /// Identifies the embedding model (see [`Embedder::model_id`]).
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    fn decode(&self, bytes: &[u8]) -> Result<RgbImage, PipelineError> {
        Ok(image::decode(bytes, self.limits)?)
    }
}
