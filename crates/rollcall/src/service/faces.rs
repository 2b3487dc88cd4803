//! A person's reference faces one by one (list, photo, delete), the settings an admin changes at
//! run time, and a kiosk check-in kept as one more reference when it was beyond doubt.

use super::{Pick, Rollcall, ServiceError, Verification};
use crate::audit::{Action, Actor, Entry, Target};
use crate::site_settings::SiteSettings;
use crate::store::{CheckIn, FaceDeletion, FaceRecord, FaceSource, FacesAdded, UserRecord};
use std::sync::Arc;

/// A kiosk frame is clearly its person when its similarity clears the threshold by this share
/// of what lies above the threshold (`t + CLEAR_MARGIN × (1 − t)`): a frame barely accepted
/// stored as a reference would pull the person's references towards whoever it might be.
pub const CLEAR_MARGIN: f32 = 0.25;

/// …and beats every other person by at least this much, or the margin rule's margin when that
/// is larger (a look-alike close behind is doubt).
pub const RUNNER_UP_GAP: f32 = 0.02;

/// Is `similarity` to the best person a clear enough match to keep the frame as a reference,
/// under a rule of `threshold` and `margin`?
pub fn clear_match(similarity: f32, threshold: f32, margin: f32, runner_up: Option<f32>) -> bool {
    similarity >= threshold + CLEAR_MARGIN * (1.0 - threshold)
        && runner_up.is_none_or(|other| similarity - other >= RUNNER_UP_GAP.max(margin))
}

impl Rollcall {
    /// A person's reference faces, face 0 (the `users` row's) first.
    pub async fn faces_of(&self, user_id: i64) -> Result<Vec<FaceRecord>, ServiceError> {
        self.store
            .faces_of(user_id)
            .await?
            .ok_or(ServiceError::UserNotFound(user_id))
    }

    /// The photo of one reference face; `None` when it is not in the store.
    pub async fn face_photo(
        &self,
        user_id: i64,
        face_id: i64,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        let faces = self.faces_of(user_id).await?;
        let face = faces
            .iter()
            .find(|f| f.id == face_id)
            .ok_or(ServiceError::FaceNotFound { user_id, face_id })?;
        Ok(self.photos.read(&face.image_path).await?)
    }

    /// Delete one reference face (never the last one); face 0 is replaced by the oldest other.
    /// The photo file goes once the rows have committed; the gallery and the threshold follow.
    pub async fn delete_face(
        &self,
        user_id: i64,
        face_id: i64,
        by: &Actor,
    ) -> Result<UserRecord, ServiceError> {
        let audit = Entry::new(by, Action::DeleteFace)
            .target(Target::user(user_id))
            .detail(format!("face {face_id}"));
        match self.store.delete_face(user_id, face_id, &audit).await? {
            FaceDeletion::NoUser => return Err(ServiceError::UserNotFound(user_id)),
            FaceDeletion::NoFace => return Err(ServiceError::FaceNotFound { user_id, face_id }),
            FaceDeletion::LastFace => return Err(ServiceError::LastFace(user_id)),
            FaceDeletion::Deleted { image_path } => self.photos.remove(&[image_path]).await,
        }
        self.follow_own_change().await;
        self.store
            .get_user(user_id)
            .await?
            .ok_or(ServiceError::UserNotFound(user_id))
    }

    /// The settings in force (defaults for those never changed).
    pub async fn site_settings(&self) -> Result<SiteSettings, ServiceError> {
        Ok(SiteSettings::from_stored(&self.store.settings().await?))
    }

    /// Apply a JSON object of settings: all or none, each change audited with its old and new
    /// value in the same transaction.
    pub async fn change_settings(
        &self,
        patch: &serde_json::Value,
        by: &Actor,
    ) -> Result<SiteSettings, ServiceError> {
        let current = self.site_settings().await?;
        let (next, changes) = current.apply(patch).map_err(ServiceError::Setting)?;
        if changes.is_empty() {
            return Ok(next);
        }
        let audits: Vec<Entry> = changes
            .iter()
            .map(|c| {
                Entry::new(by, Action::SettingChanged)
                    .target(format!("setting:{}", c.name))
                    .detail(format!("{} → {}", c.old, c.new))
            })
            .collect();
        let stored: Vec<(&str, String)> = changes.iter().map(|c| (c.name, c.new.clone())).collect();
        self.store.set_settings(&stored, &audits).await?;
        Ok(next)
    }

    /// After a check-in: keep the frame's face as one more reference of the person when the
    /// setting allows it, the check-in was recorded with a clear margin, the person is under the
    /// cap and the face passes registration's quality checks. Never fails the check-in: a
    /// failure is logged and answered as `false`.
    pub async fn offer_kiosk_reference(
        &self,
        verification: &Verification,
        frame: Arc<[u8]>,
        by: &Actor,
    ) -> bool {
        match self.kiosk_reference(verification, frame, by).await {
            Ok(added) => added,
            Err(e) => {
                tracing::warn!("a kiosk check-in was not kept as a reference: {e}");
                false
            }
        }
    }

    async fn kiosk_reference(
        &self,
        v: &Verification,
        frame: Arc<[u8]>,
        by: &Actor,
    ) -> Result<bool, ServiceError> {
        let top = &v.faces[0];
        let (Some(best), true, Some(CheckIn::Recorded(_))) =
            (&top.best, top.matched, &top.check_in)
        else {
            return Ok(false);
        };
        let threshold = v.operating_point.threshold.value();
        let margin = v.operating_point.margin as f32;
        // Cheap refusals first: the frame's own scores, then the settings and the count.
        if !clear_match(best.similarity.0, threshold, margin, None) {
            return Ok(false);
        }
        let settings = self.site_settings().await?;
        if !settings.kiosk_adds_references {
            return Ok(false);
        }
        let Some(user) = self.store.get_user(best.user_id).await? else {
            return Ok(false);
        };
        // Checked again, under the person's lock, where the face is written: this early look
        // only spares the embedding work when the person is known to be full.
        let cap = i64::from(settings.max_references_per_person);
        if user.faces >= cap {
            return Ok(false);
        }
        // Registration's rules: the photo's clear subject, good enough to register.
        let face = match self.reference_face(frame.clone(), Pick::SUBJECT).await {
            Ok(face) => face,
            Err(ServiceError::Store(e)) => return Err(e.into()),
            Err(_) => return Ok(false),
        };
        let Some(again) = self.gallery.best(&face.embedding) else {
            return Ok(false);
        };
        let runner_up = self.gallery.runner_up(&face.embedding, again.user_id);
        if again.user_id != best.user_id
            || !clear_match(
                again.similarity.0,
                threshold,
                margin,
                runner_up.map(|s| s.0),
            )
        {
            return Ok(false);
        }
        let added = self
            .keep_faces(
                best.user_id,
                vec![(frame, face)],
                &[],
                FaceSource::Kiosk,
                Some(cap),
                by,
            )
            .await?;
        Ok(matches!(added, FacesAdded::Added(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_match_clears_the_threshold_by_a_margin_and_the_runner_up_by_a_gap() {
        // t = 0.96: the margin asks for 0.96 + 0.25 × 0.04 = 0.97.
        assert!(clear_match(0.975, 0.96, 0.0, None));
        assert!(!clear_match(0.965, 0.96, 0.0, None), "accepted, but barely");
        assert!(clear_match(0.975, 0.96, 0.0, Some(0.95)));
        assert!(
            !clear_match(0.975, 0.96, 0.0, Some(0.96)),
            "a look-alike close behind"
        );
        // Under a margin rule of 0.03, the gap asked is the rule's.
        assert!(!clear_match(0.975, 0.96, 0.03, Some(0.95)));
        assert!(clear_match(0.975, 0.96, 0.03, Some(0.944)));
    }
}
