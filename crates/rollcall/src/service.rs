//! What rollcall does, independent of how it is asked: register a person from photos, say who
//! is in a photo (and check them in), add a reference face, delete a person, re-embed everyone.
//! The HTTP handlers and the CLI commands are thin layers over [`Rollcall`].
//!
//! Photo analysis is CPU-bound: it runs on the blocking thread pool, at most `workers` at a
//! time, with at most `queue` more waiting; past that, [`ServiceError::Busy`].

use crate::attendance::Attendance;
use crate::domain::{Embedding, ImageFormat, Kiosk, PersonName, Threshold};
use crate::gallery::{Candidate, Gallery, LoadReport};
use crate::store::{CheckIn, NewFace, PhotoDir, Store, StoreError, UserRecord};
use rollcall_vision::pipeline::{area, StageTimings};
use rollcall_vision::{Detection, EmbedderKind, Face, FacePipeline, ImageError, PipelineError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the file is not a JPEG or PNG image")]
    UnsupportedImage,
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no face was found in the photo")]
    NoFace,
    #[error("{count} faces were found and none is clearly the largest: use a photo of one person")]
    SeveralFaces { count: usize },
    #[error("image {index}: {source}")]
    InImage {
        index: usize,
        source: Box<ServiceError>,
    },
    #[error("no user with id {0}")]
    UserNotFound(i64),
    #[error(
        "user {user_id} has embeddings of model `{theirs}` but the server runs `{ours}`: run `rollcall reindex`"
    )]
    ModelMismatch {
        user_id: i64,
        theirs: String,
        ours: String,
    },
    #[error("the server is busy analysing other photos; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reference photo: {0}")]
    Photo(#[from] std::io::Error),
    #[error("photo analysis failed: {0}")]
    Internal(String),
}

impl From<PipelineError> for ServiceError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Image(e) => ServiceError::Image(e),
            e @ PipelineError::NonFiniteEmbedding => ServiceError::Internal(e.to_string()),
        }
    }
}

impl ServiceError {
    /// The error about the photo itself, without the "image N" wrapper.
    pub fn root(&self) -> &ServiceError {
        match self {
            ServiceError::InImage { source, .. } => source.root(),
            other => other,
        }
    }
}

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
            return Err(ServiceError::UnsupportedImage);
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

/// A face good enough to register: the photo's only face, or one at least twice the area of the
/// next.
#[derive(Debug, Clone)]
pub struct ReferenceFace {
    pub format: ImageFormat,
    pub detection: Detection,
    pub embedding: Embedding,
}

/// The minimum ratio of the largest face's area to the next one's for it to be "the" person.
const DOMINANCE: f32 = 2.0;

/// One face of a verified photo.
#[derive(Debug, Clone)]
pub struct VerifiedFace {
    pub detection: Detection,
    /// The most similar registered person, matched or not.
    pub best: Option<Candidate>,
    /// `best` is at or above the threshold.
    pub matched: bool,
    /// Set when a check-in was attempted (matched faces, when recording).
    pub check_in: Option<CheckIn>,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub width: u32,
    pub height: u32,
    /// Largest first; never empty.
    pub faces: Vec<VerifiedFace>,
    pub threshold: Threshold,
    pub model: String,
}

/// What [`Rollcall::reindex`] did.
#[derive(Debug, Clone, Default)]
pub struct ReindexReport {
    pub reembedded: usize,
    pub unchanged: usize,
    /// (image_path, why) of photos that could not be re-embedded.
    pub failed: Vec<(String, String)>,
}

/// How the service behaves; from [`crate::config::Settings`].
#[derive(Debug, Clone)]
pub struct Options {
    pub threshold: Option<f32>,
    pub cooldown: Duration,
    pub workers: usize,
    pub queue: usize,
}

/// The attendance system: database, photos, gallery, face pipeline, check-in rules.
pub struct Rollcall {
    pub store: Store,
    pub photos: PhotoDir,
    pub gallery: Gallery,
    pub inference: Inference,
    pub attendance: Attendance,
    pub threshold: Threshold,
}

impl Rollcall {
    /// Load the gallery from `store` (already migrated) and clean `img_refs/` of files left by
    /// interrupted registrations and deletions.
    pub async fn open(
        store: Store,
        photos: PhotoDir,
        pipeline: Arc<FacePipeline>,
        options: &Options,
    ) -> Result<Rollcall, ServiceError> {
        let threshold = options
            .threshold
            .unwrap_or_else(|| pipeline.default_threshold());
        let threshold =
            Threshold::new(threshold).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let removed = photos.sweep(&store.all_image_paths().await?)?;
        if removed > 0 {
            tracing::info!(
                "removed {removed} reference photo file(s) left by interrupted operations"
            );
        }
        let gallery = Gallery::new(pipeline.model_id());
        let report = gallery.load(store.all_embeddings().await?);
        warn_other_models(&report, gallery.model());
        let attendance = Attendance::new(store.clone(), options.cooldown);
        Ok(Rollcall {
            inference: Inference::new(pipeline, options.workers, options.queue),
            store,
            photos,
            gallery,
            attendance,
            threshold,
        })
    }

    /// The embedding model in use.
    pub fn model(&self) -> &str {
        self.gallery.model()
    }

    pub fn embedder(&self) -> EmbedderKind {
        self.inference.pipeline().kind()
    }

    /// The face to register from one photo (errors: bad image, no face, several faces).
    pub async fn reference_face(&self, bytes: Arc<[u8]>) -> Result<ReferenceFace, ServiceError> {
        let format = ImageFormat::sniff(&bytes).ok_or(ServiceError::UnsupportedImage)?;
        let analysis = self.inference.analyze(bytes, true).await?;
        let face = dominant_face(analysis.faces)?;
        Ok(ReferenceFace {
            format,
            embedding: face.embedding.ok_or_else(without_embedding)?,
            detection: face.detection,
        })
    }

    /// Register a person from photos (the first becomes the reference photo).
    pub async fn register(
        &self,
        name: &PersonName,
        photos: Vec<Arc<[u8]>>,
    ) -> Result<UserRecord, ServiceError> {
        let mut faces = Vec::with_capacity(photos.len());
        for (i, bytes) in photos.into_iter().enumerate() {
            let face = self
                .reference_face(bytes.clone())
                .await
                .map_err(|e| match e {
                    // The first photo's errors read as the original single-photo API's did.
                    e if i == 0 => e,
                    e => ServiceError::InImage {
                        index: i + 1,
                        source: Box::new(e),
                    },
                })?;
            faces.push((bytes, face));
        }
        self.create_user(name, faces).await
    }

    /// Store a person whose reference faces were already found.
    pub async fn create_user(
        &self,
        name: &PersonName,
        faces: Vec<(Arc<[u8]>, ReferenceFace)>,
    ) -> Result<UserRecord, ServiceError> {
        let mut staged = Vec::with_capacity(faces.len());
        let mut embeddings = Vec::with_capacity(faces.len());
        for (bytes, face) in faces {
            staged.push(NewFace {
                embedding: face.embedding.to_le_bytes(),
                photo: self.photos.stage(&bytes, face.format)?,
            });
            embeddings.push(face.embedding);
        }
        let user = self
            .store
            .create_user(name, self.model(), staged, crate::attendance::now_micros())
            .await?;
        self.gallery
            .add(user.id, &user.first_name, &user.last_name, embeddings);
        metrics::counter!("rollcall_registrations_total").increment(1);
        Ok(user)
    }

    /// One more reference face for a registered person.
    pub async fn add_face(
        &self,
        user_id: i64,
        bytes: Arc<[u8]>,
    ) -> Result<UserRecord, ServiceError> {
        let user = self
            .store
            .get_user(user_id)
            .await?
            .ok_or(ServiceError::UserNotFound(user_id))?;
        if user.model != self.model() {
            return Err(ServiceError::ModelMismatch {
                user_id,
                theirs: user.model,
                ours: self.model().to_owned(),
            });
        }
        let face = self.reference_face(bytes.clone()).await?;
        let new = NewFace {
            embedding: face.embedding.to_le_bytes(),
            photo: self.photos.stage(&bytes, face.format)?,
        };
        let user = self
            .store
            .add_face(user_id, self.model(), new)
            .await?
            .ok_or(ServiceError::UserNotFound(user_id))?;
        self.gallery.add(
            user.id,
            &user.first_name,
            &user.last_name,
            vec![face.embedding],
        );
        Ok(user)
    }

    /// Delete a person, their embeddings and photos (and, with `history`, their check-ins).
    pub async fn delete_user(&self, user_id: i64, history: bool) -> Result<(), ServiceError> {
        let paths = self
            .store
            .delete_user(user_id, history)
            .await?
            .ok_or(ServiceError::UserNotFound(user_id))?;
        self.gallery.remove(user_id);
        self.photos.remove(&paths);
        Ok(())
    }

    /// Faces in a photo, without embeddings.
    pub async fn detect(&self, bytes: Arc<[u8]>) -> Result<Analysis, ServiceError> {
        self.inference.analyze(bytes, false).await
    }

    /// Who is in the photo. With `record`, every recognised person is checked in (once per
    /// cooldown). `NoFace` when there is nobody.
    pub async fn verify(
        &self,
        bytes: Arc<[u8]>,
        kiosk: Option<&Kiosk>,
        record: bool,
    ) -> Result<Verification, ServiceError> {
        let analysis = self.inference.analyze(bytes, true).await?;
        if analysis.faces.is_empty() {
            metrics::counter!("rollcall_rejections_total", "reason" => "no_face").increment(1);
            return Err(ServiceError::NoFace);
        }
        let mut faces = Vec::with_capacity(analysis.faces.len());
        let mut seen = std::collections::HashSet::new();
        for face in analysis.faces {
            let embedding = face.embedding.as_ref().ok_or_else(without_embedding)?;
            let best = self.gallery.best(embedding);
            let matched = best
                .as_ref()
                .is_some_and(|c| self.threshold.accepts(c.similarity));
            let mut check_in = None;
            if let (true, true, Some(c)) = (matched, record, &best) {
                // The same person twice in one frame is checked in once.
                if seen.insert(c.user_id) {
                    let outcome = self
                        .attendance
                        .check_in(
                            c.user_id,
                            c.similarity.0,
                            kiosk.map(Kiosk::as_str),
                            self.model(),
                        )
                        .await?;
                    if matches!(outcome, CheckIn::Recorded(_)) {
                        metrics::counter!("rollcall_checkins_total").increment(1);
                    }
                    check_in = Some(outcome);
                }
            }
            faces.push(VerifiedFace {
                detection: face.detection,
                best,
                matched,
                check_in,
            });
        }
        if faces[0].matched {
            metrics::counter!("rollcall_matches_total").increment(1);
        } else {
            metrics::counter!("rollcall_rejections_total", "reason" => "not_recognised")
                .increment(1);
        }
        Ok(Verification {
            width: analysis.width,
            height: analysis.height,
            faces,
            threshold: self.threshold,
            model: self.model().to_owned(),
        })
    }

    /// Re-embed every reference photo whose embedding is of another model, then reload the
    /// gallery. With `all`, re-embed every photo.
    pub async fn reindex(
        &self,
        all: bool,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ReindexReport, ServiceError> {
        let photos = self.store.reference_photos().await?;
        let mut report = ReindexReport::default();
        let total = photos.len();
        for (i, photo) in photos.into_iter().enumerate() {
            progress(i, total);
            if !all && photo.model == self.model() {
                report.unchanged += 1;
                continue;
            }
            let result = async {
                let path = self
                    .photos
                    .resolve(&photo.image_path)
                    .ok_or_else(|| ServiceError::Internal("not a reference photo path".into()))?;
                let bytes: Arc<[u8]> = tokio::fs::read(&path).await?.into();
                let face = self.reference_face(bytes).await?;
                self.store
                    .set_embedding(photo.owner, &face.embedding.to_le_bytes(), self.model())
                    .await?;
                Ok::<_, ServiceError>(())
            }
            .await;
            match result {
                Ok(()) => report.reembedded += 1,
                Err(e) => report.failed.push((photo.image_path, e.to_string())),
            }
        }
        progress(total, total);
        let loaded = self.gallery.load(self.store.all_embeddings().await?);
        warn_other_models(&loaded, self.model());
        Ok(report)
    }
}

/// The face to register (of faces largest first), or why there is none.
pub fn dominant_face(faces: Vec<Face>) -> Result<Face, ServiceError> {
    let count = faces.len();
    let mut faces = faces.into_iter();
    let first = faces.next().ok_or(ServiceError::NoFace)?;
    match faces.next() {
        None => Ok(first),
        Some(second) if area(&first.detection) >= DOMINANCE * area(&second.detection) => Ok(first),
        Some(_) => Err(ServiceError::SeveralFaces { count }),
    }
}

/// Faces analysed with `embed` always carry their embedding; a face without one is a bug.
fn without_embedding() -> ServiceError {
    ServiceError::Internal("a face was analysed without its embedding".into())
}

fn warn_other_models(report: &LoadReport, model: &str) {
    tracing::info!(
        "gallery: {} people, {} reference embeddings of model {model}",
        report.people,
        report.embeddings
    );
    if report.people_other_model > 0 {
        tracing::warn!(
            "{} registered people have {} embeddings of another model than {model}: they will NOT \
             be recognised until `rollcall reindex` re-embeds them from their stored photos",
            report.people_other_model,
            report.embeddings_other_model
        );
    }
    if report.unreadable > 0 {
        tracing::warn!(
            "{} stored embeddings could not be read and are ignored",
            report.unreadable
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(size: f32) -> Face {
        Face {
            detection: Detection {
                bbox: [0.0, 0.0, size, size],
                probability: 0.99,
                landmarks: [[0.0; 2]; 5],
            },
            embedding: None,
        }
    }

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

    #[test]
    fn a_dominant_face_is_twice_the_next() {
        assert!(matches!(dominant_face(vec![]), Err(ServiceError::NoFace)));
        assert_eq!(dominant_face(vec![face(10.0)]).unwrap(), face(10.0));
        assert_eq!(
            dominant_face(vec![face(100.0), face(70.0)]).unwrap(),
            face(100.0)
        );
        assert!(matches!(
            dominant_face(vec![face(100.0), face(80.0), face(10.0)]),
            Err(ServiceError::SeveralFaces { count: 3 })
        ));
    }
}
