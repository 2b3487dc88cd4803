//! What rollcall does, independent of how it is asked: register a person from photos, say who
//! is in a photo (and check them in), add a reference face, delete a person, re-embed everyone.
//! The HTTP handlers and the CLI commands are thin layers over [`Rollcall`]; its fields are
//! private, and what the handlers may read has a method here.
//!
//! One module per use case: [`inference`] (photo analysis, bounded, off the async runtime),
//! [`people`] (register, add faces, delete, reindex), [`faces`] (one reference face at a time,
//! run-time settings, kiosk check-ins kept as references), [`checkin`] (verify and record),
//! [`sync`] (the gallery follows the database's change log).

mod accounts;
mod checkin;
mod faces;
mod inference;
mod liveness;
mod people;
mod reference;
mod sync;
mod user_count;

pub use accounts::{AccessError, Accounts, KeyLookup, Session, DEFAULT_SESSION_TTL};
pub use checkin::{Verification, VerifiedFace};
pub use faces::{clear_match, CLEAR_MARGIN, RUNNER_UP_GAP};
pub use inference::{Analysis, Inference};
pub use liveness::{Challenge, SequenceVerification};
pub use people::{People, ReindexReport};
pub use reference::{pick, Pick, ReferenceFace, MIN_BOX_IOU};
pub use sync::{SyncReport, SyncStatus, KEEP_CHANGES, PRUNE_EVERY};

use crate::attendance::Attendance;
use crate::audit::{AuditRecord, Entry, Page};
use crate::domain::{display_name, Threshold};
use crate::gallery::{Candidate, Gallery, LoadReport};
use crate::operating_point::{self, OperatingPoint, Rule};
use crate::quality::PoorQuality;
use crate::store::{
    AttendanceFilter, AttendanceRecord, PhotoStore, Storage, Store, StoreError, UserRecord,
};
use rollcall_vision::{Detection, EmbedderKind, FacePipeline, ImageError, PipelineError};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Not a JPEG or PNG, undecodable, or too large: what the image decoder said.
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no face was found in the photo")]
    NoFace,
    /// No face is clearly the subject ([`crate::subject::clear_subject`]); the faces are listed
    /// (largest first) for the client to choose one.
    #[error(
        "{} faces were found and none is clearly the person to register: choose one by its \
         index (`face`, or `--face` on the command line) or by `box`, or use a photo of one person",
        faces.len()
    )]
    SeveralFaces { faces: Vec<Detection> },
    /// A `face` or `box` that names none of the photo's faces.
    #[error("{reason}")]
    FaceChoice {
        reason: String,
        faces: Vec<Detection>,
    },
    #[error("{}", .0.problem.advice())]
    PoorQuality(PoorQuality),
    /// The face already matches someone registered (at or above the threshold).
    #[error(
        "this face already belongs to {} (user {}, similarity {:.3}): send allow_duplicate=true \
         (`--allow-duplicate` on the command line) to register it anyway",
        display_name(&person.first_name, &person.last_name),
        person.user_id,
        person.similarity.0
    )]
    Duplicate { person: Candidate, threshold: f32 },
    #[error("image {index}: {source}")]
    InImage {
        index: usize,
        source: Box<ServiceError>,
    },
    /// A sequence of frames that did not show a live person following the challenge.
    #[error("{}", .0.advice())]
    NotLive(crate::liveness::sequence::Refusal),
    #[error("no user with id {0}")]
    UserNotFound(i64),
    #[error("user {user_id} has no face {face_id}")]
    FaceNotFound { user_id: i64, face_id: i64 },
    /// A person keeps at least one reference face: delete the person instead.
    #[error(
        "this is the only reference face of user {0}: add another before deleting it, or delete \
         the person"
    )]
    LastFace(i64),
    /// A setting refused, naming its field.
    #[error(transparent)]
    Setting(crate::site_settings::SettingError),
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
    /// The database, or the reference photo files beside it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of the server itself (a worker that died, an embedding that is not finite).
    #[error("photo analysis failed: {0}")]
    Internal(String),
}

/// Reading or writing a reference photo: the store's photo error, wherever it happens.
impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        ServiceError::Store(StoreError::Photo(e))
    }
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

/// How the service behaves; from [`crate::config::Settings`].
#[derive(Debug, Clone)]
pub struct Options {
    /// `None`: derived from `false_accept_rate` for the gallery ([`crate::operating_point`]).
    pub threshold: Option<Threshold>,
    /// With `threshold`: how much the best person must beat the runner-up by (`None`: 0).
    pub margin: Option<f64>,
    /// The risk the derived threshold keeps: strangers accepted as someone, per attempt.
    pub false_accept_rate: f64,
    pub cooldown: Duration,
    pub workers: usize,
    pub queue: usize,
}

/// The attendance system: database, photos, gallery, face pipeline, check-in rules.
pub struct Rollcall {
    store: Store,
    photos: PhotoStore,
    gallery: Gallery,
    sync: sync::GallerySync,
    user_count: user_count::UserCount,
    inference: Inference,
    attendance: Attendance,
    /// Held from a registration's duplicate check until the gallery holds its faces.
    enrolling: tokio::sync::Mutex<()>,
}

impl Rollcall {
    /// Load the gallery from `store` (already migrated) and clean the photo store of photos
    /// left by interrupted registrations and deletions.
    pub async fn open(
        store: Store,
        photos: PhotoStore,
        pipeline: Arc<FacePipeline>,
        options: &Options,
    ) -> Result<Rollcall, ServiceError> {
        // The embedders' defaults are constants inside the valid range.
        let default = Threshold::new(pipeline.default_threshold())
            .map_err(|e| ServiceError::Internal(format!("the embedder's default {e}")))?;
        let rule = Rule {
            configured: options.threshold,
            configured_margin: options.margin.unwrap_or(0.0),
            ..Rule::for_model(pipeline.model_id(), options.false_accept_rate, default)
        };
        let removed = photos.sweep(&store.all_image_paths().await?).await?;
        if removed > 0 {
            tracing::info!(
                "removed {removed} reference photo(s) left by interrupted operations from {}",
                photos.describe()
            );
        }
        let gallery = Gallery::new(pipeline.model_id(), rule);
        // The log's head before the rows: what commits in between is applied again, harmlessly.
        let loaded_at = chrono::Utc::now();
        let head = store.gallery_head().await?;
        let mut loader = gallery.loader();
        store.for_each_embedding(|row| loader.push(row)).await?;
        let report = loader.finish();
        warn_other_models(&report, gallery.model());
        say_where_the_threshold_comes_from(&gallery);
        let attendance = Attendance::new(store.clone(), options.cooldown);
        Ok(Rollcall {
            inference: Inference::new(pipeline, options.workers, options.queue),
            store,
            photos,
            gallery,
            sync: sync::GallerySync::new(head, loaded_at),
            user_count: user_count::UserCount::default(),
            attendance,
            enrolling: tokio::sync::Mutex::new(()),
        })
    }

    /// The embedding model in use.
    pub fn model(&self) -> &str {
        self.gallery.model()
    }

    pub fn embedder(&self) -> EmbedderKind {
        self.inference.pipeline().kind()
    }

    /// The similarity a face needs to match now: derived for the people registered, unless
    /// configured.
    pub fn threshold(&self) -> Threshold {
        self.gallery.operating_point().threshold
    }

    /// The threshold in force with the risk it was derived for, its source and the gallery size.
    pub fn operating_point(&self) -> OperatingPoint {
        self.gallery.operating_point()
    }

    /// The database (for the start-up, which closes it on shutdown).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// People the gallery can recognise (those with embeddings of the model in use).
    pub fn gallery_len(&self) -> usize {
        self.gallery.len()
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>, ServiceError> {
        Ok(self.store.list_users().await?)
    }

    pub async fn get_user(&self, id: i64) -> Result<Option<UserRecord>, ServiceError> {
        Ok(self.store.get_user(id).await?)
    }

    /// The stored reference photo of a user; `None` when it is not in the store.
    pub async fn photo(&self, user: &UserRecord) -> Result<Option<Vec<u8>>, ServiceError> {
        Ok(self.photos.read(&user.image_path).await?)
    }

    /// The check-ins the filter matches.
    pub async fn attendance(
        &self,
        filter: AttendanceFilter,
    ) -> Result<Vec<AttendanceRecord>, ServiceError> {
        Ok(self.store.attendance(filter).await?)
    }

    /// Record something already done (see [`crate::audit`]: a failed write is logged at ERROR).
    pub async fn audit(&self, entry: &Entry) {
        self.store.audit(entry).await;
    }

    /// A page of the audit log, newest first.
    pub async fn audit_log(&self, page: Page) -> Result<Vec<AuditRecord>, ServiceError> {
        Ok(self.store.audit_log(page).await?)
    }

    /// Is the database answering? (`/health`)
    pub async fn ping(&self) -> Result<(), ServiceError> {
        Ok(self.store.ping().await?)
    }

    /// Can reference photos be written? (`/health`)
    pub async fn storage(&self) -> Storage {
        self.photos.probe().await
    }

    /// `sqlite` or `mysql`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Faces in a photo, without embeddings.
    pub async fn detect(&self, bytes: Arc<[u8]>) -> Result<Analysis, ServiceError> {
        self.inference.analyze(bytes, false).await
    }
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

/// The start-up log line on the threshold: how it is chosen, and what it is now.
fn say_where_the_threshold_comes_from(gallery: &Gallery) {
    let rule = gallery.rule();
    let point = gallery.operating_point();
    if rule.configured.is_some() {
        tracing::info!(
            "threshold {} and margin {} as configured",
            point.threshold,
            point.margin
        );
        return;
    }
    if rule.model.is_none() {
        tracing::warn!(
            "model {} has no impostor calibration: the threshold comes from the gallery's own \
             pairs once it holds {} of them, below that the embedder's default {}",
            gallery.model(),
            operating_point::MIN_GALLERY_PAIRS,
            rule.default
        );
    }
    tracing::info!(
        "threshold {}, margin {:.4} ({}) for at most {} false accepts per attempt with {} people, \
         {} references",
        point.threshold,
        point.margin,
        point.source.as_str(),
        point.false_accept_rate,
        point.people,
        point.references
    );
}
