//! Multipart forms read whole (they are bounded by the upload limit) and then asked for typed
//! fields, so that "missing" and "empty" are told apart the same way for every route.

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::domain::FaceChoice;
use crate::store::FaceSource;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::StatusCode;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Fields whose content is a file; every other field is text.
const FILE_FIELDS: &[&str] = &["image"];

#[derive(Debug, Default)]
pub struct Form {
    texts: HashMap<String, String>,
    files: HashMap<String, Vec<Arc<[u8]>>>,
    /// Text fields sent more than once.
    repeated: HashSet<String>,
}

impl Form {
    /// Read the whole form within the state's limits: its size, and at most `max_images`
    /// `image` parts (the next one is refused before it is read, so before any inference).
    pub async fn read(
        multipart: Result<Multipart, MultipartRejection>,
        state: &AppState,
    ) -> Result<Form, ApiError> {
        Form::read_up_to(multipart, state, state.max_images).await
    }

    /// [`Form::read`] with its own cap on `image` parts (a sequence of frames takes more).
    pub async fn read_up_to(
        multipart: Result<Multipart, MultipartRejection>,
        state: &AppState,
        max_images: usize,
    ) -> Result<Form, ApiError> {
        let limit = state.max_upload_bytes;
        let too_large = |e: axum::extract::multipart::MultipartError| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::from(e)
            }
        };
        let mut multipart = multipart?;
        let mut form = Form::default();
        while let Some(field) = multipart.next_field().await.map_err(too_large)? {
            let name = field.name().unwrap_or_default().to_owned();
            let is_file = field.file_name().is_some();
            if FILE_FIELDS.contains(&name.as_str())
                && form.files.get(&name).map_or(0, Vec::len) >= max_images
            {
                return Err(ApiError::new(
                    ErrorCode::TooManyImages,
                    format!("at most {max_images} `{name}` parts are taken in one request"),
                ));
            }
            let bytes = field.bytes().await.map_err(too_large)?;
            if FILE_FIELDS.contains(&name.as_str()) {
                form.files
                    .entry(name)
                    .or_default()
                    .push(bytes.to_vec().into());
            } else if is_file {
                // A file under another name (a photo sent as `photo`) is ignored like any
                // unknown field, so the route reports the `image` it lacks rather than bad text.
                continue;
            } else {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::bad_request(format!("`{name}` is not UTF-8 text")))?;
                // The first value of a repeated text field counts, except where
                // [`Form::single_text`] refuses the repetition.
                match form.texts.entry(name) {
                    Entry::Occupied(first) => {
                        form.repeated.insert(first.key().clone());
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(text);
                    }
                }
            }
        }
        Ok(form)
    }

    /// A text field that must be present (it may still be blank: the domain types decide).
    pub fn text(&self, name: &str) -> Result<&str, ApiError> {
        self.texts
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::missing_field(name))
    }

    pub fn optional_text(&self, name: &str) -> Option<&str> {
        self.texts.get(name).map(String::as_str)
    }

    /// A text field that may be absent but, where it chooses something, must be sent once.
    pub fn single_text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        if self.repeated.contains(name) {
            return Err(ApiError::bad_request(format!(
                "`{name}` was sent more than once: send it once"
            )));
        }
        Ok(self.optional_text(name))
    }

    /// A yes/no field: `true`/`1` or `false`/`0` (absent or empty: false); anything else is refused.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.single_text(name)?.map(str::trim) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name}=`{other}`: use true or false"
            ))),
        }
    }

    /// The face to register: `face=<index>` or `box=x1,y1,x2,y2`, each at most once.
    pub fn face_choice(&self) -> Result<FaceChoice, ApiError> {
        Ok(FaceChoice::parse(
            self.single_text("face")?,
            self.single_text("box")?,
        )?)
    }

    /// Where the photos came from, as the client says: `upload` (the default) or `webcam`.
    /// `kiosk` and `cli` are the server's own words, never a client's.
    pub fn source(&self) -> Result<FaceSource, ApiError> {
        match self.single_text("source")?.map(str::trim) {
            None | Some("" | "upload") => Ok(FaceSource::Upload),
            Some("webcam") => Ok(FaceSource::Webcam),
            Some(other) => Err(ApiError::bad_request(format!(
                "source=`{other}`: use upload or webcam"
            ))),
        }
    }

    /// Every `image` part, at least one, none empty.
    pub fn images(&self) -> Result<Vec<Arc<[u8]>>, ApiError> {
        let images = self.files.get("image").cloned().unwrap_or_default();
        if images.is_empty() {
            return Err(ApiError::missing_field("image"));
        }
        if images.iter().any(|b| b.is_empty()) {
            return Err(ApiError::empty_field("image"));
        }
        Ok(images)
    }

    /// Exactly one `image` part.
    pub fn image(&self) -> Result<Arc<[u8]>, ApiError> {
        let mut images = self.images()?;
        if images.len() > 1 {
            return Err(ApiError::bad_request("send one `image` part"));
        }
        Ok(images.remove(0))
    }
}
