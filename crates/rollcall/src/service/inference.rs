//! Photo analysis off the async runtime, bounded: at most `workers` photos at a time, at most
//! `queue` more waiting; past that, [`ServiceError::Busy`] (503 with `Retry-After`).

use super::ServiceError;
use crate::domain::ImageFormat;
use rollcall_vision::pipeline::StageTimings;
use rollcall_vision::{Face, FacePipeline, ImageError};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A decoded photo's faces (largest first), each with its embedding when asked for.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
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
            analyze_now(&pipeline, &bytes, embed)
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
