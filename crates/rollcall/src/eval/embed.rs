//! Every photo of the set through the server's pipeline (decode → detect → crop → embed), once
//! each, on a bounded thread pool, with a progress bar.

use super::dataset::{Dataset, PhotoId};
use crate::subject::subject_index;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rollcall_vision::FacePipeline;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Photos between progress lines when stderr is not a terminal.
const PROGRESS_EVERY: usize = 250;

/// What the pipeline made of one photo.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PhotoOutcome {
    /// The subject's embedding (L2-normalised) and how many faces the photo held.
    Face {
        embedding: Vec<f32>,
        faces: usize,
    },
    NoFace,
    /// The file could not be read or decoded.
    Unreadable(String),
}

impl PhotoOutcome {
    pub fn embedding(&self) -> Option<&[f32]> {
        match self {
            PhotoOutcome::Face { embedding, .. } => Some(embedding),
            _ => None,
        }
    }
}

/// The outcome of every photo, indexed like the dataset (`[person][photo]`): each path is read
/// and embedded exactly once, however many pairs and probes use it.
pub struct Embeddings {
    outcomes: Vec<Vec<PhotoOutcome>>,
}

impl Embeddings {
    pub fn get(&self, (person, photo): PhotoId) -> &PhotoOutcome {
        &self.outcomes[person][photo]
    }

    pub fn embedding(&self, id: PhotoId) -> Option<&[f32]> {
        self.get(id).embedding()
    }

    /// Build from outcomes computed elsewhere (tests, or a cache).
    pub fn from_outcomes(outcomes: Vec<Vec<PhotoOutcome>>) -> Self {
        Embeddings { outcomes }
    }

    /// Read a cache written by [`Embeddings::save`]; `None` when it is missing, unreadable, or
    /// of another model or photo list (then the photos are embedded again).
    pub fn load(path: &std::path::Path, model: &str, dataset: &Dataset) -> Option<Self> {
        let text = std::fs::read(path).ok()?;
        let cache: Cache = serde_json::from_slice(&text).ok()?;
        (cache.model == model && cache.photos == photo_list(dataset)).then_some(Embeddings {
            outcomes: cache.outcomes,
        })
    }

    /// Keep the outcomes for the next run on the same photos and model.
    pub fn save(
        &self,
        path: &std::path::Path,
        model: &str,
        dataset: &Dataset,
    ) -> anyhow::Result<()> {
        let cache = Cache {
            model: model.to_owned(),
            photos: photo_list(dataset),
            outcomes: self.outcomes.clone(),
        };
        std::fs::write(path, serde_json::to_vec(&cache)?)?;
        Ok(())
    }
}

/// `eval --embeddings-cache`: the embeddings of a photo list by one model.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cache {
    model: String,
    photos: Vec<String>,
    outcomes: Vec<Vec<PhotoOutcome>>,
}

fn photo_list(dataset: &Dataset) -> Vec<String> {
    dataset
        .photo_ids()
        .map(|id| dataset.photo(id).path.display().to_string())
        .collect()
}

/// Embed every photo of `dataset` on `threads` worker threads.
pub fn embed_dataset(
    pipeline: &FacePipeline,
    dataset: &Dataset,
    threads: usize,
) -> anyhow::Result<Embeddings> {
    let ids: Vec<PhotoId> = dataset.photo_ids().collect();
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("embedding {bar:40} {pos}/{len} photos, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    // `collect` keeps the input order, so results do not depend on thread scheduling.
    let flat: Vec<PhotoOutcome> = pool.install(|| {
        ids.par_iter()
            .map(|&id| {
                let outcome = embed_photo(pipeline, &dataset.photo(id).path);
                bar.inc(1);
                // Without a terminal the bar is hidden: long runs still say how far they are.
                let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                if bar.is_hidden() && (done.is_multiple_of(PROGRESS_EVERY) || done == ids.len()) {
                    eprintln!("eval: embedded {done}/{} photos", ids.len());
                }
                outcome
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut flat = flat.into_iter();
    let outcomes = dataset
        .people
        .iter()
        .map(|p| flat.by_ref().take(p.photos.len()).collect())
        .collect();
    Ok(Embeddings { outcomes })
}

/// One photo: the same steps as the server, the subject picked by [`subject_index`] (the rule
/// registration uses too).
pub fn embed_photo(pipeline: &FacePipeline, path: &std::path::Path) -> PhotoOutcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return PhotoOutcome::Unreadable(e.to_string()),
    };
    let img = match pipeline.decode(&bytes) {
        Ok(i) => i,
        Err(e) => return PhotoOutcome::Unreadable(e.to_string()),
    };
    let mut detections = pipeline.find_faces(&img);
    let Some(subject) = subject_index(&detections, img.width, img.height) else {
        return PhotoOutcome::NoFace;
    };
    let faces = detections.len();
    let chosen = detections.swap_remove(subject);
    match pipeline.embed_faces(&img, vec![chosen]) {
        Ok(embedded) => match embedded.into_iter().next().and_then(|f| f.embedding) {
            Some(embedding) => PhotoOutcome::Face {
                embedding: embedding.into_vec(),
                faces,
            },
            None => PhotoOutcome::NoFace,
        },
        Err(e) => PhotoOutcome::Unreadable(e.to_string()),
    }
}
