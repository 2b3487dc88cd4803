//! `FacePipeline`: image bytes → faces with boxes, probabilities, landmarks and embeddings.
//! Loaded once, shared by every request (`Send + Sync`); the faces of one frame are embedded as
//! one batch. [`FacePipeline::analyze`] is the road the server takes; its stages are public so
//! that `bench` and `eval` time and use the very same steps.

use crate::crop;
use crate::embedder::{Embedder, FaceApiCrop};
use crate::embedding::Embedding;
use crate::error::{ModelError, PipelineError};
use crate::image::{self, DecodeLimits, RgbImage};
use crate::models::{EmbedderKind, ModelConfig};
use crate::mtcnn::{Detection, Detector, DetectorParams};
use rayon::prelude::*;
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

/// One face of a photo: where it is and, when asked for, its embedding. The embedding is made
/// from this face's own crop and travels with it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Face {
    #[serde(flatten)]
    pub detection: Detection,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Embedding>,
}

/// Time spent in each stage of one [`FacePipeline::analyze`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimings {
    pub decode: Duration,
    /// The detector and the filter of its boxes.
    pub detect: Duration,
    /// Cropping and the embedding network, all faces together; `None` when nothing was
    /// embedded (not asked for, or no face).
    pub embed: Option<Duration>,
}

/// What [`FacePipeline::analyze`] found in one photo.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Size of the decoded image (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// Largest first, each with pixels inside the image; with embeddings when asked for.
    pub faces: Vec<Face>,
    pub timings: StageTimings,
}

pub struct FacePipeline {
    detector: Detector,
    embedder: Embedder,
    limits: DecodeLimits,
    /// Boxes added to every frame's detections (see [`with_extra_detections`]).
    ///
    /// [`with_extra_detections`]: FacePipeline::with_extra_detections
    extra_detections: Vec<Detection>,
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
            extra_detections: Vec::new(),
        })
    }

    /// For tests: every frame's detections also hold `extra`, as if the detector had found
    /// them, before the filter and everything after it. Boxes MTCNN rarely gives (one wholly
    /// outside the frame) then take the same road as real ones, through the server too.
    #[doc(hidden)]
    pub fn with_extra_detections(mut self, extra: Vec<Detection>) -> Self {
        self.extra_detections = extra;
        self
    }

    /// Decode, find the faces and (with `embed`) embed each one, timing every stage.
    pub fn analyze(&self, bytes: &[u8], embed: bool) -> Result<Analysis, PipelineError> {
        let start = Instant::now();
        let image = self.decode(bytes)?;
        let decode = start.elapsed();

        let start = Instant::now();
        let detections = self.find_faces(&image);
        let detect = start.elapsed();

        let (faces, embed_time) = if embed && !detections.is_empty() {
            let start = Instant::now();
            let faces = self.embed_faces(&image, detections)?;
            (faces, Some(start.elapsed()))
        } else {
            let faces = detections
                .into_iter()
                .map(|detection| Face {
                    detection,
                    embedding: None,
                })
                .collect();
            (faces, None)
        };
        Ok(Analysis {
            width: image.width,
            height: image.height,
            faces,
            timings: StageTimings {
                decode,
                detect,
                embed: embed_time,
            },
        })
    }

    /// Image bytes → pixels, within the pipeline's decode limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, PipelineError> {
        Ok(image::decode(bytes, self.limits)?)
    }

    /// The faces in the image that have pixels inside it, largest first. MTCNN boxes are not
    /// clipped, and one lying wholly outside the frame (or thinner than a pixel once clipped)
    /// has nothing to crop or embed.
    pub fn find_faces(&self, image: &RgbImage) -> Vec<Detection> {
        let mut detections = self.detector.detect(image);
        detections.extend(self.extra_detections.iter().cloned());
        detections.retain(|d| crop::box_int(d.bbox, image.width, image.height).is_some());
        // The detector already gives largest first; a stable sort keeps its order and places
        // any extra boxes.
        detections.sort_by(|a, b| area(b).total_cmp(&area(a)));
        detections
    }

    /// Each face with the embedding of its own crop, in the order given, one batch through the
    /// network. A face without pixels in the image (which [`find_faces`](Self::find_faces)
    /// never gives) has no crop and is left out, never given another face's embedding.
    pub fn embed_faces(
        &self,
        image: &RgbImage,
        detections: Vec<Detection>,
    ) -> Result<Vec<Face>, PipelineError> {
        // Crops are independent; a large group photo has enough of them to share out.
        let (detections, crops): (Vec<Detection>, Vec<RgbImage>) = detections
            .into_par_iter()
            .filter_map(|d| {
                let crop = self.embedder.crop(image, &d)?;
                Some((d, crop))
            })
            .unzip();
        // `embed_crops` gives exactly one embedding per crop, in order: each pairs with the
        // detection its crop was cut from.
        let embeddings = self.embedder.embed_crops(&crops)?;
        Ok(detections
            .into_iter()
            .zip(embeddings)
            .map(|(detection, embedding)| Face {
                detection,
                embedding: Some(embedding),
            })
            .collect())
    }

    /// The embedder, for its crops and its network alone (`rollcall bench`).
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Identifies the embedding model (see [`Embedder::model_id`]).
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// The embedder's starting threshold (see [`Embedder::default_threshold`]).
    pub fn default_threshold(&self) -> f32 {
        self.embedder.default_threshold()
    }

    pub fn kind(&self) -> EmbedderKind {
        self.embedder.kind()
    }
}

/// Box area of a detection.
pub fn area(d: &Detection) -> f32 {
    let [x1, y1, x2, y2] = d.bbox;
    (x2 - x1).max(0.0) * (y2 - y1).max(0.0)
}
