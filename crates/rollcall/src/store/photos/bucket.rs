//! Reference photos in an S3-compatible bucket, through the `object_store` crate:
//! `s3://BUCKET[/prefix]` keeps the photo `img_refs/<uuid>.<ext>` at the key
//! `[prefix/]img_refs/<uuid>.<ext>`.
//!
//! The endpoint, region and credentials come from the usual `AWS_*` environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`). Keys are required: without
//! them the client would ask an instance-metadata service, which a server outside a cloud does
//! not have and a misconfigured one should not silently use.
//!
//! Every request has a deadline ([`REQUEST_TIMEOUT`], a few retries within [`RETRY_WITHIN`], all
//! of it under [`OPERATION_TIMEOUT`]): a hung store fails the request that needed it, with 503,
//! instead of holding it forever.

use super::{file_name, stale, PhotoStoreError, Storage, DIR_NAME, TEMP_PREFIX};
use crate::photo_location::BucketLocation;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One HTTP request to the store, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries (of transient failures) stop this long after the first attempt.
const RETRY_WITHIN: Duration = Duration::from_secs(15);
const MAX_RETRIES: usize = 2;
/// One operation (a put, a get, a listing page by page), whatever happens inside it.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// A probe that succeeded answers `/health` for this long. `/health` is anonymous and polled,
/// and each probe is a write and a delete in the bucket (billed, on a cloud store): however
/// often it is asked, a server probes at most about once a second. A failed request to the
/// store forgets it at once, so an outage shows as soon as a request meets it.
const PROBE_TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The bucket, connected.
#[derive(Clone)]
pub struct PhotoBucket {
    inner: Arc<Inner>,
}

struct Inner {
    store: AmazonS3,
    /// `s3://BUCKET[/prefix]`, for messages.
    url: String,
    /// `[prefix/]img_refs`.
    dir: Key,
    /// When the last probe succeeded, unless a request failed since.
    probed_ok: Mutex<Option<Instant>>,
    /// One probe at a time: `/health` calls that arrive meanwhile share its answer.
    probing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PhotoBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PhotoBucket").field(&self.inner.url).finish()
    }
}

impl PhotoBucket {
    /// Connect to the bucket and write (then delete) a probe object: the start fails here,
    /// naming the flag, when the bucket is missing, the credentials are refused or the store
    /// does not answer.
    pub async fn open(location: &BucketLocation) -> Result<PhotoBucket, PhotoStoreError> {
        let url = location.url();
        let fail = |reason: String| PhotoStoreError {
            location: url.clone(),
            reason,
        };
        if location.aws_var("AWS_ACCESS_KEY_ID").is_none()
            || location.aws_var("AWS_SECRET_ACCESS_KEY").is_none()
        {
            return Err(fail(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a \
                 store other than Amazon's)"
                    .into(),
            ));
        }
        let mut builder = AmazonS3Builder::new();
        for (name, value) in location.aws_settings() {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let seconds = |d: Duration| format!("{}s", d.as_secs());
        let store = builder
            .with_bucket_name(location.bucket())
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                seconds(REQUEST_TIMEOUT),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                seconds(CONNECT_TIMEOUT),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_WITHIN,
            })
            .build()
            .map_err(|e| fail(format!("the S3 settings are not usable: {e}")))?;
        let dir = match location.prefix() {
            Some(p) => Key::from(p).join(DIR_NAME),
            None => Key::from(DIR_NAME),
        };
        let bucket = PhotoBucket {
            inner: Arc::new(Inner {
                store,
                url: url.clone(),
                dir,
                probed_ok: Mutex::new(None),
                probing: tokio::sync::Mutex::new(()),
            }),
        };
        let endpoint = location
            .aws_var("AWS_ENDPOINT_URL")
            .or(location.aws_var("AWS_ENDPOINT"))
            .unwrap_or("Amazon S3");
        bucket.write_probe().await.map_err(|e| {
            fail(match e {
                Probe::TimedOut => {
                    format!("{endpoint} did not answer within {OPERATION_TIMEOUT:?}")
                }
                Probe::Failed(object_store::Error::NotFound { .. }) => format!(
                    "the bucket `{}` does not exist at {endpoint}: create it first",
                    location.bucket()
                ),
                Probe::Failed(
                    e @ (object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }),
                ) => format!(
                    "{endpoint} refused the credentials (AWS_ACCESS_KEY_ID, \
                     AWS_SECRET_ACCESS_KEY) or their rights on the bucket: {e}"
                ),
                Probe::Failed(e) => format!(
                    "cannot write to the bucket at {endpoint} (is it running, and is \
                     AWS_ENDPOINT_URL right?): {e}"
                ),
            })
        })?;
        Ok(bucket)
    }

    /// `s3://BUCKET[/prefix]`.
    pub fn location(&self) -> &str {
        &self.inner.url
    }

    fn key(&self, name: &str) -> Key {
        self.inner.dir.clone().join(name)
    }

    /// A store error as the I/O error the services handle (a missing object is `NotFound`;
    /// anything else makes the store unavailable).
    fn io_error(&self, what: &str, e: object_store::Error) -> io::Error {
        let kind = match e {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            _ => {
                self.distrust_probe();
                io::ErrorKind::Other
            }
        };
        io::Error::new(kind, format!("{what} in {}: {e}", self.inner.url))
    }

    fn timed_out(&self, what: &str) -> io::Error {
        self.distrust_probe();
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} in {}: no answer within {OPERATION_TIMEOUT:?}",
                self.inner.url
            ),
        )
    }

    /// Write `bytes` as the photo `name` (under its final key).
    pub(super) async fn put(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let what = "writing a photo";
        let payload = PutPayload::from(bytes.to_vec());
        match tokio::time::timeout(
            OPERATION_TIMEOUT,
            self.inner.store.put(&self.key(name), payload),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(what, e)),
            Err(_) => Err(self.timed_out(what)),
        }
    }

    pub(super) async fn read(&self, image_path: &str) -> io::Result<Option<Vec<u8>>> {
        let Some(name) = file_name(image_path) else {
            return Ok(None);
        };
        let what = "reading a photo";
        let read = async {
            let got = self.inner.store.get(&self.key(name)).await?;
            got.bytes().await
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, read).await {
            Ok(Ok(bytes)) => Ok(Some(bytes.to_vec())),
            Ok(Err(object_store::Error::NotFound { .. })) => Ok(None),
            Ok(Err(e)) => Err(self.io_error(what, e)),
            Err(_) => Err(self.timed_out(what)),
        }
    }

    async fn delete(&self, name: &str) -> io::Result<()> {
        let what = "deleting a photo";
        match tokio::time::timeout(OPERATION_TIMEOUT, self.inner.store.delete(&self.key(name)))
            .await
        {
            Ok(Ok(())) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(what, e)),
            Err(_) => Err(self.timed_out(what)),
        }
    }

    /// Delete the photos of `image_paths`; failures are logged (the sweep retries them).
    pub(super) async fn remove(&self, image_paths: &[String]) {
        for p in image_paths {
            if let Some(name) = file_name(p) {
                if let Err(e) = self.delete(name).await {
                    tracing::warn!("could not delete a reference photo: {e}");
                }
            }
        }
    }

    /// Delete an object whose row never committed, from a guard's `drop` (which cannot wait):
    /// on the runtime when there is one; otherwise the sweep will.
    pub(super) fn delete_in_background(&self, name: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bucket = self.clone();
        runtime.spawn(async move {
            if let Err(e) = bucket.delete(&name).await {
                tracing::warn!("could not delete an uncommitted reference photo: {e}");
            }
        });
    }

    pub(super) async fn sweep(
        &self,
        referenced: &HashSet<String>,
        grace: Duration,
    ) -> io::Result<usize> {
        let what = "listing the photos";
        let listed = async {
            let mut all = Vec::new();
            let mut objects = self.inner.store.list(Some(&self.inner.dir));
            while let Some(meta) = objects.next().await {
                all.push(meta?);
            }
            Ok::<_, object_store::Error>(all)
        };
        let objects = match tokio::time::timeout(OPERATION_TIMEOUT, listed).await {
            Ok(Ok(objects)) => objects,
            Ok(Err(e)) => return Err(self.io_error(what, e)),
            Err(_) => return Err(self.timed_out(what)),
        };
        let now = chrono::Utc::now();
        let mut removed = 0;
        for meta in objects {
            // Only objects directly under img_refs/: nothing else is ours.
            let parts = meta.location.parts().count();
            if parts != self.inner.dir.parts().count() + 1 {
                continue;
            }
            let Some(name) = meta.location.filename() else {
                continue;
            };
            // Modified "in the future" (clocks apart): young.
            let young = match (now - meta.last_modified).to_std() {
                Ok(age) => age < grace,
                Err(_) => true,
            };
            if stale(name, young, referenced) {
                self.delete(name).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Write and delete a small temp object: what `/health` reports (a success is trusted for
    /// [`PROBE_TRUSTED_FOR`]).
    pub(super) async fn probe(&self) -> Storage {
        if self.probe_trusted() {
            return Storage::Ok;
        }
        let _one = self.inner.probing.lock().await;
        if self.probe_trusted() {
            return Storage::Ok;
        }
        match self.write_probe().await {
            Ok(()) => {
                *self.probed_ok() = Some(Instant::now());
                Storage::Ok
            }
            Err(e) => {
                let e = match e {
                    Probe::TimedOut => self.timed_out("writing a probe"),
                    Probe::Failed(e) => self.io_error("writing a probe", e),
                };
                tracing::warn!("photo store: unavailable: {e}");
                Storage::Unavailable
            }
        }
    }

    fn probed_ok(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.inner
            .probed_ok
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn probe_trusted(&self) -> bool {
        self.probed_ok()
            .is_some_and(|at| at.elapsed() < PROBE_TRUSTED_FOR)
    }

    fn distrust_probe(&self) {
        *self.probed_ok() = None;
    }

    async fn write_probe(&self) -> Result<(), Probe> {
        let name = format!("{TEMP_PREFIX}probe-{}", uuid::Uuid::new_v4());
        let key = self.key(&name);
        let written = async {
            self.inner
                .store
                .put(&key, PutPayload::from_static(b"probe"))
                .await?;
            self.inner.store.delete(&key).await
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Probe::Failed(e)),
            Err(_) => Err(Probe::TimedOut),
        }
    }
}

enum Probe {
    TimedOut,
    Failed(object_store::Error),
}
