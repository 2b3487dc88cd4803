//! Readers for the published weight files, so no Python is needed on a user's machine:
//! torch `.pt` state dicts in the legacy (pre-1.6) pickle format and in the zip format,
//! and face-api.js's weights manifest + `.bin` (uint8-quantised).

use crate::error::ModelError;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod face_api;
mod pickle;
mod torch;

/// Named tensors read from one file. Lookups name the file in their errors.
#[derive(Debug, Default)]
pub struct TensorMap {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, Tensor>,
}

impl TensorMap {
    /// The tensor `name`, or an error naming the file and the tensor.
    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
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

/// zstd frames start with this; `.pt.zst` files are read as if decompressed.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Far above any face model, far below what would exhaust memory on a decompression bomb.
const MAX_DECOMPRESSED: u64 = 2 << 30;

/// Read a torch state dict (`torch.save(model.state_dict())`), legacy or zip format.
/// Floating tensors become f32; integer scalars such as `num_batches_tracked` are skipped.
/// zstd-compressed files (`.pt.zst`) are accepted as well.
pub fn load_torch(path: &Path) -> Result<TensorMap, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_torch_bytes(&bytes, path)
}

/// The same from bytes already in memory (`path` is only used in error messages).
pub fn load_torch_bytes(bytes: &[u8], path: &Path) -> Result<TensorMap, ModelError> {
    let format_err = |reason: String| ModelError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let tensors = if bytes.starts_with(&ZSTD_MAGIC) {
        let plain = decompress(bytes).map_err(format_err)?;
        torch::parse(&plain)
    } else {
        torch::parse(bytes)
    }
    .map_err(format_err)?;
    Ok(TensorMap {
        path: path.to_path_buf(),
        tensors,
    })
}

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(bytes).map_err(|e| format!("zstd: {e}"))?;
    let mut out = Vec::new();
    decoder
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd data is corrupt or truncated: {e}"))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(format!(
            "decompresses to more than {MAX_DECOMPRESSED} bytes"
        ));
    }
    Ok(out)
}

/// Read face-api.js weights: `manifest` (JSON) names the tensors in `.bin` order.
/// Shapes and names stay as face-api gives them (TF layout: conv filters are [kh, kw, in, out]).
pub fn load_face_api(manifest: &Path, bin: &Path) -> Result<TensorMap, ModelError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ModelError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let json = read(manifest)?;
    let groups: Vec<face_api::Group> =
        serde_json::from_slice(&json).map_err(|e| ModelError::Format {
            path: manifest.to_path_buf(),
            reason: format!("not a face-api weights manifest: {e}"),
        })?;
    let bytes = read(bin)?;
    let tensors = face_api::decode(&groups, &bytes).map_err(|reason| ModelError::Format {
        path: bin.to_path_buf(),
        reason: format!("{reason} (manifest {})", manifest.display()),
    })?;
    Ok(TensorMap {
        path: bin.to_path_buf(),
        tensors,
    })
}
