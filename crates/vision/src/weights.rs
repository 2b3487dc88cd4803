//! Readers for the published weight files, so no Python is needed on a user's machine:
//! torch `.pt` state dicts in the legacy (pre-1.6) pickle format and in the zip format,
//! and face-api.js's weights manifest + `.bin` (uint8-quantised).

use crate::error::ModelError;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Named tensors read from one file. Lookups name the file in their errors.
#[derive(Debug, Default)]
pub struct TensorMap {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, Tensor>,
}

impl TensorMap {
    /// The tensor `name`, or an error naming the file and the tensor.
    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors.get(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<&Tensor, ModelError> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(ModelError::Shape {
                path: self.path.clone(),
                name: name.to_string(),
                found: t.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(t)
    }
}

/// Read a torch state dict (`torch.save(model.state_dict())`), legacy or zip format.
/// Floating tensors become f32; integer scalars such as `num_batches_tracked` are skipped.
pub fn load_torch(path: &Path) -> Result<TensorMap, ModelError> {
    let _ = path;
    todo!("weights::load_torch")
}

/// The same from bytes already in memory (`path` is only used in error messages).
pub fn load_torch_bytes(bytes: &[u8], path: &Path) -> Result<TensorMap, ModelError> {
    let _ = (bytes, path);
    todo!("weights::load_torch_bytes")
}

/// Read face-api.js weights: `manifest` (JSON) names the tensors in `.bin` order.
pub fn load_face_api(manifest: &Path, bin: &Path) -> Result<TensorMap, ModelError> {
    let _ = (manifest, bin);
    todo!("weights::load_face_api")
}
