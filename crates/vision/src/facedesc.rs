//! The face descriptor network of face-api.js (dlib's ResNet-34-style `dlib_face_recognition_resnet_model_v1`):
//! 150×150 RGB → 128-d. Weights from face-api's uint8-quantised manifest.

use crate::error::ModelError;
use crate::tensor::Tensor;
use std::path::Path;

pub struct FaceDescriptorNet {
    _private: (),
}

impl FaceDescriptorNet {
    /// Load `face_recognition_model-weights_manifest.json` and its `.bin` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let _ = dir;
        todo!("FaceDescriptorNet::load")
    }

    /// [N, 3, 150, 150] RGB in 0..255 (normalisation happens inside, as face-api does) → [N, 128],
    /// L2-normalised.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let _ = x;
        todo!("FaceDescriptorNet::forward")
    }
}
