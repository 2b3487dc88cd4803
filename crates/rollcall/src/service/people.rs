//! Registered people: register from photos, add a reference face, delete, re-embed.
//! A person's rows and photos are all-or-nothing: photos are staged, the rows committed, then
//! the photos kept (a crash in between leaves photos the next start sweeps).

use super::{warn_other_models, Pick, ReferenceFace, Rollcall, ServiceError};
use crate::audit::{Action, Actor, Entry, Target};
use crate::domain::{FaceChoice, ImageFormat, PersonName};
use crate::store::{FaceSource, FacesAdded, NewFace, PhotoStore, StagedPhoto, Store, UserRecord};
use rollcall_vision::image::strip_metadata;
use std::sync::Arc;

/// What [`Rollcall::reindex`] did.
#[derive(Debug, Clone, Default)]
pub struct ReindexReport {
    pub reembedded: usize,
    pub unchanged: usize,
    /// (image_path, why) of photos that could not be re-embedded.
    pub failed: Vec<(String, String)>,
}

impl Rollcall {
    /// Register a person from photos (the first becomes the reference photo), on behalf of `by`.
    /// `first` picks the face of the first photo; every other photo needs a clear subject. A
    /// face that already matches someone is refused unless `allow_duplicate`.
    pub async fn register(
        &self,
        name: &PersonName,
        photos: Vec<Arc<[u8]>>,
        first: Pick,
        allow_duplicate: bool,
        source: FaceSource,
        by: &Actor,
    ) -> Result<UserRecord, ServiceError> {
        let faces = self.reference_faces(photos, first).await?;
        // One registration at a time from the duplicate check to the gallery holding the new
        // faces: two requests with one face would both pass the check otherwise.
        let _one_at_a_time = self.enrolling.lock().await;
        let duplicates = self.duplicates_among(&faces, None, allow_duplicate)?;
        self.create_user(name, faces, &duplicates, source, by).await
    }

    /// The reference face of every photo, or the first error (naming the photo from the second
    /// on): nothing is stored before every photo passed.
    async fn reference_faces(
        &self,
        photos: Vec<Arc<[u8]>>,
        first: Pick,
    ) -> Result<Vec<(Arc<[u8]>, ReferenceFace)>, ServiceError> {
        let mut faces = Vec::with_capacity(photos.len());
        for (i, bytes) in photos.into_iter().enumerate() {
            let pick = if i == 0 { first } else { Pick::SUBJECT };
            let face = self
                .reference_face(bytes.clone(), pick)
                .await
                .map_err(|e| in_image(i, e))?;
            faces.push((bytes, face));
        }
        Ok(faces)
    }

    /// The people the faces already match, other than `owner` ([`Rollcall::duplicate_of`]): a
    /// 409 for the first unless `allow_duplicate`, else their ids for the audit entry. Called
    /// under `enrolling`, so that it sees every registration before it.
    fn duplicates_among(
        &self,
        faces: &[(Arc<[u8]>, ReferenceFace)],
        owner: Option<i64>,
        allow_duplicate: bool,
    ) -> Result<Vec<i64>, ServiceError> {
        let mut duplicates = Vec::new();
        for (i, (_, face)) in faces.iter().enumerate() {
            if let Some(dup) = self
                .duplicate_of(&face.embedding, owner, allow_duplicate)
                .map_err(|e| in_image(i, e))?
            {
                duplicates.push(dup.user_id);
            }
        }
        Ok(duplicates)
    }

    /// Store a person whose reference faces were already found; the audit entry (never their
    /// name: see [`crate::audit`]) commits with them, and says whose faces they matched when
    /// duplicates were allowed.
    pub async fn create_user(
        &self,
        name: &PersonName,
        faces: Vec<(Arc<[u8]>, ReferenceFace)>,
        duplicates_of: &[i64],
        source: FaceSource,
        by: &Actor,
    ) -> Result<UserRecord, ServiceError> {
        let mut detail = format!("{} face(s)", faces.len());
        if let Some(ids) = duplicates_text(duplicates_of) {
            detail.push_str(&format!("; {ids}"));
        }
        let audit = Entry::new(by, Action::Register).detail(detail);
        let staged = self.stage_faces(faces, source).await?;
        let written = image_paths(&staged);
        let created = self
            .store
            .create_user(
                name,
                self.model(),
                staged,
                crate::attendance::now_micros(),
                audit,
            )
            .await;
        let user = self.unless_failed(created, &written).await?;
        self.follow_own_change().await;
        metrics::counter!("rollcall_registrations_total").increment(1);
        Ok(user)
    }

    /// More reference faces for a registered person, all or none (the first photo's face as
    /// `pick` says, the others' clear subject): refused when one matches someone else (unless
    /// `allow_duplicate`), as it would make them answer for that person.
    pub async fn add_faces(
        &self,
        user_id: i64,
        photos: Vec<Arc<[u8]>>,
        pick: Pick,
        allow_duplicate: bool,
        source: FaceSource,
        by: &Actor,
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
        let faces = self.reference_faces(photos, pick).await?;
        let _one_at_a_time = self.enrolling.lock().await;
        let duplicates = self.duplicates_among(&faces, Some(user_id), allow_duplicate)?;
        match self
            .keep_faces(user_id, faces, &duplicates, source, None, by)
            .await?
        {
            FacesAdded::Added(user) => Ok(user),
            // No cap was asked for, so never `AtCap`.
            FacesAdded::NoUser | FacesAdded::AtCap => Err(ServiceError::UserNotFound(user_id)),
        }
    }

    /// Store reference faces already found for a person (all or none), with the audit entry.
    pub(super) async fn keep_faces(
        &self,
        user_id: i64,
        faces: Vec<(Arc<[u8]>, ReferenceFace)>,
        duplicates: &[i64],
        source: FaceSource,
        cap: Option<i64>,
        by: &Actor,
    ) -> Result<FacesAdded, ServiceError> {
        let mut audit = Entry::new(by, Action::AddFace).target(Target::user(user_id));
        let mut details = Vec::new();
        if faces.len() > 1 {
            details.push(format!("{} face(s)", faces.len()));
        }
        if source == FaceSource::Kiosk {
            details.push("from a kiosk check-in".to_owned());
        }
        details.extend(duplicates_text(duplicates));
        if !details.is_empty() {
            audit = audit.detail(details.join("; "));
        }
        let staged = self.stage_faces(faces, source).await?;
        let written = image_paths(&staged);
        let added = self
            .store
            .add_faces(
                user_id,
                self.model(),
                staged,
                cap,
                crate::attendance::now_micros(),
                &audit,
            )
            .await;
        let added = self.unless_failed(added, &written).await?;
        match added {
            FacesAdded::Added(_) => self.follow_own_change().await,
            // Nothing was stored: the photos go now, not in the background.
            FacesAdded::NoUser | FacesAdded::AtCap => self.photos.discard(&written).await,
        }
        Ok(added)
    }

    /// What the store answered; when it failed, the photos staged for it are deleted before
    /// the error is answered (a rolled-back row leaves no photo behind, even in a bucket).
    async fn unless_failed<T>(
        &self,
        result: Result<T, crate::store::StoreError>,
        written: &[String],
    ) -> Result<T, ServiceError> {
        match result {
            Ok(t) => Ok(t),
            // The rows may exist: their photos stay (see `StoreError::CommitUnknown`).
            Err(e @ crate::store::StoreError::CommitUnknown(_)) => Err(e.into()),
            Err(e) => {
                self.photos.discard(written).await;
                Err(e.into())
            }
        }
    }

    /// Each face's photo staged (without its metadata), with its embedding: all or none.
    async fn stage_faces(
        &self,
        faces: Vec<(Arc<[u8]>, ReferenceFace)>,
        source: FaceSource,
    ) -> Result<Vec<NewFace>, ServiceError> {
        let mut staged = Vec::with_capacity(faces.len());
        for (bytes, face) in faces {
            match self.stage_photo(&bytes, face.format).await {
                Ok(photo) => staged.push(NewFace {
                    embedding: face.embedding.to_le_bytes(),
                    photo,
                    face_box: face.detection.bbox,
                    source,
                }),
                Err(e) => {
                    let written = image_paths(&staged);
                    drop(staged);
                    self.photos.discard(&written).await;
                    return Err(e);
                }
            }
        }
        Ok(staged)
    }

    /// Write a reference photo where no row names it yet, without its metadata (GPS position,
    /// device, times, thumbnails, comments): only what shows the picture is kept.
    async fn stage_photo(
        &self,
        bytes: &[u8],
        format: ImageFormat,
    ) -> Result<StagedPhoto, ServiceError> {
        let clean = strip_metadata(bytes)?;
        Ok(self.photos.stage(&clean, format).await?)
    }

    /// Delete a person, their embeddings and photos (and, with `history`, their check-ins).
    pub async fn delete_user(
        &self,
        user_id: i64,
        history: bool,
        by: &Actor,
    ) -> Result<(), ServiceError> {
        People::new(self.store.clone(), self.photos.clone())
            .delete(user_id, history, by)
            .await?
            .ok_or(ServiceError::UserNotFound(user_id))?;
        // Ids are never reused (AUTOINCREMENT, AUTO_INCREMENT): taking the person out now is
        // right whatever the log holds, and does not wait for the database.
        self.gallery.remove(user_id);
        self.follow_own_change().await;
        Ok(())
    }

    /// Re-embed every reference photo whose embedding is of another model, then reload the
    /// gallery. With `all`, re-embed every photo. Recorded once, when done.
    pub async fn reindex(
        &self,
        all: bool,
        by: &Actor,
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
                let bytes: Arc<[u8]> = self
                    .photos
                    .read(&photo.image_path)
                    .await?
                    .ok_or_else(|| {
                        std::io::Error::new(std::io::ErrorKind::NotFound, "not in the photo store")
                    })?
                    .into();
                // The photo was accepted when registered: only its face is needed again, the
                // one chosen then (a group photo's subject may not be it).
                let pick = Pick {
                    choice: photo.face_box.map_or(FaceChoice::Subject, FaceChoice::Box),
                    check_quality: false,
                };
                let face = self.reference_face(bytes, pick).await?;
                self.store
                    .set_embedding(
                        photo.user_id,
                        photo.owner,
                        &face.embedding.to_le_bytes(),
                        self.model(),
                    )
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
        let detail = format!(
            "{}re-embedded {}, unchanged {}, failed {}",
            if all { "all: " } else { "" },
            report.reembedded,
            report.unchanged,
            report.failed.len()
        );
        self.store
            .audit(&Entry::new(by, Action::Reindex).detail(detail))
            .await;
        let loaded = self.reload_gallery().await?;
        warn_other_models(&loaded, self.model());
        Ok(report)
    }
}

/// Registered people in the database and their photos, without the face models: what the
/// commands that only manage people need.
pub struct People {
    store: Store,
    photos: PhotoStore,
}

impl People {
    pub fn new(store: Store, photos: PhotoStore) -> Self {
        People { store, photos }
    }

    /// Delete a person's rows (and, with `history`, their check-ins) in one transaction, then
    /// their photos: a crash between the two leaves photos that the next start sweeps, never
    /// a row without its photo. The audit entry commits with the rows. `None` when there is no
    /// such person.
    pub async fn delete(
        &self,
        user_id: i64,
        history: bool,
        by: &Actor,
    ) -> Result<Option<()>, ServiceError> {
        let mut audit = Entry::new(by, Action::DeleteUser).target(Target::user(user_id));
        if history {
            audit = audit.detail("with history");
        }
        let Some(paths) = self.store.delete_user(user_id, history, &audit).await? else {
            return Ok(None);
        };
        self.photos.remove(&paths).await;
        Ok(Some(()))
    }
}

/// The `image_path`s the staged faces' rows will store.
fn image_paths(faces: &[NewFace]) -> Vec<String> {
    faces
        .iter()
        .map(|f| f.photo.image_path().to_owned())
        .collect()
}

/// `duplicate of user:1, user:2 allowed` for the audit entry, when there were any.
fn duplicates_text(ids: &[i64]) -> Option<String> {
    if ids.is_empty() {
        return None;
    }
    let mut ids: Vec<String> = ids.iter().map(|id| format!("user:{id}")).collect();
    ids.dedup();
    Some(format!("duplicate of {} allowed", ids.join(", ")))
}

/// Faces analysed with `embed` always carry their embedding; a face without one is a bug.
pub(super) fn without_embedding() -> ServiceError {
    ServiceError::Internal("a face was analysed without its embedding".into())
}

/// An error about the `i`-th photo (from 0) of a request: the first photo's read as the original
/// single-photo API's did, the others name the photo.
fn in_image(i: usize, e: ServiceError) -> ServiceError {
    if i == 0 {
        e
    } else {
        ServiceError::InImage {
            index: i + 1,
            source: Box::new(e),
        }
    }
}
