//! MTCNN face detection (Zhang et al. 2016) exactly as facenet-pytorch 2.6.0 runs it:
//! image pyramid → P-Net → NMS → R-Net → NMS → O-Net → landmarks → "Min" NMS.

use crate::error::ModelError;
use crate::image::RgbImage;
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
        DetectorParams { min_face_size: 20.0, thresholds: [0.6, 0.7, 0.7], factor: 0.709 }
    }
}

/// The three networks and the detection procedure. `Send + Sync`; load once.
pub struct Detector {
    _private: (),
}

impl Detector {
    /// Load `pnet.pt`, `rnet.pt`, `onet.pt` from `dir`.
    pub fn load(dir: &Path, params: DetectorParams) -> Result<Self, ModelError> {
        let _ = (dir, params);
        todo!("Detector::load")
    }

    /// All faces, sorted by box area, largest first (facenet-pytorch's `select_largest`).
    pub fn detect(&self, image: &RgbImage) -> Vec<Detection> {
        let _ = image;
        todo!("Detector::detect")
    }
}
