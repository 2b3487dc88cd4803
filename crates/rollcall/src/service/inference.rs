//! Photo analysis off the async runtime, bounded: at most `workers` photos at a time, at most
//! `queue` more waiting; past that, [`ServiceError::Busy`] (503 with `Retry-After`).

use super::ServiceError;
use crate::domain::{Embedding, FaceChoice, ImageFormat};
use rollcall_vision::pipeline::StageTimings;
use rollcall_vision::quality::{self, FaceMeasures};
use rollcall_vision::{Detection, Face, FacePipeline, ImageError};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// A decoded photo's faces (largest first), each with its embedding when asked for.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
}

/// The one face of a photo chosen for registration: only it is measured and embedded.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub detection: Detection,
    pub embedding: Embedding,
    pub measures: FaceMeasures,
}

/// Runs photo analysis off the async runtime, bounded.
pub struct Inference {
    pipeline: Arc<FacePipeline>,
    workers: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl Inference {
    pub fn new(pipeline: Arc<FacePipeline>, workers: usize, queue: usize) -> Self {
        Inference {
            pipeline,
            workers: Arc::new(Semaphore::new(workers.max(1))),
            admitted: Arc::new(Semaphore::new(workers.max(1) + queue)),
        }
    }

    pub fn pipeline(&self) -> &FacePipeline {
        &self.pipeline
    }

    /// Decode, detect and (with `embed`) embed, timing each stage.
    pub async fn analyze(&self, bytes: Arc<[u8]>, embed: bool) -> Result<Analysis, ServiceError> {
        self.run(bytes, move |pipeline, bytes| {
            analyze_now(pipeline, bytes, embed)
        })
        .await
    }

    /// Decode, detect, pick the face `choice` names ([`super::reference::pick`]), measure its
    /// quality and embed it.
    pub async fn choose(
        &self,
        bytes: Arc<[u8]>,
        choice: FaceChoice,
    ) -> Result<Chosen, ServiceError> {
        self.run(bytes, move |pipeline, bytes| {
            choose_now(pipeline, bytes, choice)
        })
        .await
    }

    /// `work` on a worker thread once admitted (past the queue: [`ServiceError::Busy`]).
    async fn run<T: Send + 'static>(
        &self,
        bytes: Arc<[u8]>,
        work: impl FnOnce(&FacePipeline, &[u8]) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        if ImageFormat::sniff(&bytes).is_none() {
            return Err(ServiceError::Image(ImageError::Unsupported));
        }
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy)?;
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let pipeline = self.pipeline.clone();
        tokio::task::spawn_blocking(move || {
            let _permits = (admitted, worker);
            work(&pipeline, &bytes)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
    }
}

fn analyze_now(
    pipeline: &FacePipeline,
    bytes: &[u8],
    embed: bool,
) -> Result<Analysis, ServiceError> {
    let analysis = pipeline.analyze(bytes, embed)?;
    record_timings(&analysis.timings);
    Ok(Analysis {
        width: analysis.width,
        height: analysis.height,
        faces: analysis.faces,
    })
}

fn choose_now(
    pipeline: &FacePipeline,
    bytes: &[u8],
    choice: FaceChoice,
) -> Result<Chosen, ServiceError> {
    let start = Instant::now();
    let image = pipeline.decode(bytes)?;
    let decode = start.elapsed();
    let start = Instant::now();
    let mut faces = pipeline.find_faces(&image);
    let detect = start.elapsed();
    let index = super::reference::pick(&faces, image.width, image.height, choice)?;
    let detection = faces.swap_remove(index);
    let measures = quality::measure(&image, &detection);
    let start = Instant::now();
    let embedded = pipeline.embed_faces(&image, vec![detection.clone()])?;
    record_timings(&StageTimings {
        decode,
        detect,
        embed: Some(start.elapsed()),
    });
    let embedding = embedded
        .into_iter()
        .next()
        .and_then(|f| f.embedding)
        .ok_or_else(super::people::without_embedding)?;
    Ok(Chosen {
        detection,
        embedding,
        measures,
    })
}

fn record_timings(timings: &StageTimings) {
    let stages = [
        ("decode", Some(timings.decode)),
        ("detect", Some(timings.detect)),
        ("embed", timings.embed),
    ];
    for (stage, took) in stages {
        if let Some(took) = took {
            metrics::histogram!("rollcall_inference_seconds", "stage" => stage)
                .record(took.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline of the shared models (face-api), as the API tests load it.
    fn pipeline() -> Arc<FacePipeline> {
        let shared = std::env::var_os("ROLLCALL_SHARED").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
            std::path::PathBuf::from,
        );
        let models_dir = std::env::var_os("ROLLCALL_MODELS")
            .map_or_else(|| shared.join("models"), std::path::PathBuf::from);
        let config = rollcall_vision::PipelineConfig::new(rollcall_vision::models::ModelConfig {
            models_dir,
            embedder: rollcall_vision::models::EmbedderChoice::FaceApi,
            facenet_weights: None,
            fetch_missing: false,
        });
        Arc::new(FacePipeline::load(&config).expect("loading the shared models"))
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_and_503() {
        let inference = Inference::new(pipeline(), 1, 2);
        // Every admission slot (1 working + 2 waiting) is taken.
        let _held = inference
            .admitted
            .clone()
            .try_acquire_many_owned(3)
            .unwrap();
        let jpeg: Arc<[u8]> = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0].into();
        let err = inference.analyze(jpeg, true).await.unwrap_err();
        assert!(matches!(err, ServiceError::Busy), "{err}");
        use axum::response::IntoResponse;
        let response = crate::http::error::ApiError::from(err).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
    }
}
