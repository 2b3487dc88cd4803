//! MTCNN face detection (Zhang et al. 2016) exactly as facenet-pytorch 2.6.0 runs it:
//! image pyramid → P-Net → NMS → R-Net → NMS → O-Net → landmarks → "Min" NMS.
//!
//! [`pyramid`] makes the net inputs, [`nets`] holds the three networks, [`boxes`] the box
//! arithmetic between stages and [`nms`] the two suppressions. The speed comes from running
//! the pyramid levels in parallel, each later stage as one (channels-last) batch, and area
//! resizes from one summed-area table of the image.

pub mod boxes;
pub mod nets;
pub mod nms;
pub mod pyramid;

use crate::error::ModelError;
use crate::image::RgbImage;
use crate::tensor::Tensor;
use boxes::Candidate;
use nets::{ONet, PNet, RNet};
use pyramid::{AreaResizer, Rect};
use rayon::prelude::*;
use std::path::Path;

/// One detected face, in the coordinates of the decoded image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Detection {
    /// [x1, y1, x2, y2], floats, not clipped to the image (as facenet-pytorch returns them).
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub probability: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner (image left/right).
    pub landmarks: [[f32; 2]; 5],
}

/// facenet-pytorch's MTCNN parameters.
#[derive(Clone, Debug)]
pub struct DetectorParams {
    pub min_face_size: f32,
    pub thresholds: [f32; 3],
    pub factor: f64,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        }
    }
}

/// NMS thresholds fixed by facenet-pytorch: per pyramid level, over all levels, after R-Net,
/// and the final "Min" overlap.
const NMS_PER_SCALE: f64 = 0.5;
const NMS_ALL_SCALES: f64 = 0.7;
const NMS_STAGE2: f64 = 0.7;
const NMS_FINAL_MIN: f32 = 0.7;

/// The three networks and the detection procedure. `Send + Sync`; load once.
pub struct Detector {
    pub pnet: PNet,
    pub rnet: RNet,
    pub onet: ONet,
    pub params: DetectorParams,
}

impl Detector {
    /// Load `pnet.pt`, `rnet.pt`, `onet.pt` from `dir`.
    pub fn load(dir: &Path, params: DetectorParams) -> Result<Self, ModelError> {
        Ok(Detector {
            pnet: PNet::load(&dir.join("pnet.pt"))?,
            rnet: RNet::load(&dir.join("rnet.pt"))?,
            onet: ONet::load(&dir.join("onet.pt"))?,
            params,
        })
    }

    /// All faces, sorted by box area, largest first (facenet-pytorch's `select_largest`).
    /// An image too small for one pyramid level (min side < 20 px by default) has no faces.
    pub fn detect(&self, image: &RgbImage) -> Vec<Detection> {
        let mut faces = crate::nn::in_pool(|| {
            // Summed once here, resized from by every pyramid level and crop.
            let source = AreaResizer::new(image);
            let stage1 = self.stage1(&source);
            let stage2 = self.stage2(&source, &stage1);
            self.stage3(&source, &stage2)
        });
        // numpy's argsort(area)[::-1]: ascending (stable here), then reversed.
        let area = |d: &Detection| (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]);
        faces.sort_by(|a, b| area(a).total_cmp(&area(b)));
        faces.reverse();
        faces
    }

    /// P-Net over the pyramid: candidates per level (NMS 0.5), all levels (NMS 0.7), then
    /// regression without +1 and `rerec`.
    pub fn stage1(&self, source: &AreaResizer) -> Vec<Candidate> {
        let scales = pyramid::scales(
            source.width(),
            source.height(),
            self.params.min_face_size,
            self.params.factor,
        );
        let per_scale: Vec<Vec<(Candidate, [f32; 4])>> = scales
            .par_iter()
            .map(|&s| self.pnet_level(source, s))
            .collect();
        let all: Vec<(Candidate, [f32; 4])> = per_scale.into_iter().flatten().collect();
        let bxs: Vec<[f32; 4]> = all.iter().map(|(c, _)| c.bbox).collect();
        let scores: Vec<f32> = all.iter().map(|(c, _)| c.score).collect();
        nms::nms_iou(&bxs, &scores, NMS_ALL_SCALES)
            .into_iter()
            .map(|i| {
                let (c, reg) = all[i];
                Candidate {
                    bbox: boxes::rerec(boxes::regress_stage1(c.bbox, reg)),
                    score: c.score,
                }
            })
            .collect()
    }

    /// One pyramid level: resize, P-Net, candidates in row-major map order, NMS 0.5.
    fn pnet_level(&self, source: &AreaResizer, scale: f64) -> Vec<(Candidate, [f32; 4])> {
        let (hs, ws) = pyramid::level_size(source.width(), source.height(), scale);
        let mut input = vec![0.0f32; 3 * hs * ws];
        let full = Rect {
            x0: 0,
            y0: 0,
            x1: source.width() as usize,
            y1: source.height() as usize,
        };
        source.resize_normalized(full, hs, ws, &mut input);
        let (reg, prob) = self.pnet.forward(&Tensor::new(vec![1, 3, hs, ws], input));
        let (mh, mw) = (prob.shape[2], prob.shape[3]);
        let plane = mh * mw;
        let face = &prob.data[plane..2 * plane];
        let scale32 = scale as f32;
        let mut found = Vec::new();
        for (i, &p) in face.iter().enumerate() {
            if p >= self.params.thresholds[0] {
                let (iy, ix) = (i / mw, i % mw);
                let r = std::array::from_fn(|k| reg.data[k * plane + i]);
                found.push((
                    Candidate {
                        bbox: boxes::pnet_box(ix, iy, scale32),
                        score: p,
                    },
                    r,
                ));
            }
        }
        let bxs: Vec<[f32; 4]> = found.iter().map(|(c, _)| c.bbox).collect();
        let scores: Vec<f32> = found.iter().map(|(c, _)| c.score).collect();
        nms::nms_iou(&bxs, &scores, NMS_PER_SCALE)
            .into_iter()
            .map(|i| found[i])
            .collect()
    }

    /// R-Net on all stage-1 boxes as one batch: keep prob > threshold (the score becomes
    /// R-Net's), NMS 0.7, regression with +1, `rerec`.
    pub fn stage2(&self, source: &AreaResizer, cands: &[Candidate]) -> Vec<Candidate> {
        let (batch, kept) = crop_batch(source, cands, 24);
        if kept.is_empty() {
            return Vec::new();
        }
        let (reg, prob) = self.rnet.forward(&batch);
        let mut pass = Vec::new();
        for (row, &ci) in kept.iter().enumerate() {
            let score = prob.data[row * 2 + 1];
            if score > self.params.thresholds[1] {
                let r: [f32; 4] = std::array::from_fn(|k| reg.data[row * 4 + k]);
                pass.push((
                    Candidate {
                        bbox: cands[ci].bbox,
                        score,
                    },
                    r,
                ));
            }
        }
        let bxs: Vec<[f32; 4]> = pass.iter().map(|(c, _)| c.bbox).collect();
        let scores: Vec<f32> = pass.iter().map(|(c, _)| c.score).collect();
        nms::nms_iou(&bxs, &scores, NMS_STAGE2)
            .into_iter()
            .map(|i| {
                let (c, r) = pass[i];
                Candidate {
                    bbox: boxes::rerec(boxes::bbreg(c.bbox, r)),
                    score: c.score,
                }
            })
            .collect()
    }

    /// O-Net on all stage-2 boxes as one batch: keep prob > threshold, landmarks from the
    /// stage-2 box, regression with +1 (no `rerec`), then the "Min" NMS.
    pub fn stage3(&self, source: &AreaResizer, cands: &[Candidate]) -> Vec<Detection> {
        let (batch, kept) = crop_batch(source, cands, 48);
        if kept.is_empty() {
            return Vec::new();
        }
        let out = self.onet.forward(&batch);
        let mut dets = Vec::new();
        for (row, &ci) in kept.iter().enumerate() {
            let score = out.prob.data[row * 2 + 1];
            if score > self.params.thresholds[2] {
                let b = cands[ci].bbox;
                let r: [f32; 4] = std::array::from_fn(|k| out.reg.data[row * 4 + k]);
                dets.push(Detection {
                    bbox: boxes::bbreg(b, r),
                    probability: score,
                    landmarks: boxes::landmarks(b, &out.landmarks.data[row * 10..row * 10 + 10]),
                });
            }
        }
        let bxs: Vec<[f32; 4]> = dets.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = dets.iter().map(|d| d.probability).collect();
        nms::nms_min(&bxs, &scores, NMS_FINAL_MIN)
            .into_iter()
            .map(|i| dets[i].clone())
            .collect()
    }
}

/// The crops of `cands` resized to `size`×`size` and normalised, as one [N, 3, size, size]
/// batch, and the index of the candidate behind each row (boxes wholly outside the image
/// are skipped).
fn crop_batch(source: &AreaResizer, cands: &[Candidate], size: usize) -> (Tensor, Vec<usize>) {
    let (width, height) = (source.width(), source.height());
    let (rects, kept): (Vec<Rect>, Vec<usize>) = cands
        .iter()
        .enumerate()
        .filter_map(|(i, c)| boxes::crop_rect(c.bbox, width, height).map(|r| (r, i)))
        .unzip();
    let item = 3 * size * size;
    let mut data = vec![0.0f32; rects.len() * item];
    data.par_chunks_mut(item.max(1))
        .zip(rects.par_iter())
        .for_each(|(out, &r)| source.resize_normalized(r, size, size, out));
    (Tensor::new(vec![rects.len(), 3, size, size], data), kept)
}
