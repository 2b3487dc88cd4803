//! FaceNet's InceptionResnetV1 (Szegedy et al. 2016; Schroff et al. 2015) as facenet-pytorch
//! defines it: one struct per block, built from the state dict, BatchNorm (eps 1e-3) folded at
//! load. Input 160×160, `(x − 127.5) / 128`; output 512-d, L2-normalised.

use crate::error::ModelError;
use crate::tensor::Tensor;
use std::path::Path;

pub struct InceptionResnetV1 {
    _private: (),
}

impl InceptionResnetV1 {
    /// Load a facenet-pytorch state dict (`20180402-114759-vggface2.pt`, legacy or zip format);
    /// `logits.*` and `*.num_batches_tracked` are ignored.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let _ = path;
        todo!("InceptionResnetV1::load")
    }

    /// [N, 3, 160, 160] standardised crops → [N, 512] L2-normalised embeddings.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let _ = x;
        todo!("InceptionResnetV1::forward")
    }
}
