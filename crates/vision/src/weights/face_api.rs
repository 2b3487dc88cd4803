//! face-api.js (tfjs) weights: a JSON manifest of named tensors and one `.bin` holding them
//! back to back, usually uint8-quantised.

use super::torch::f16_to_f32;
use crate::tensor::Tensor;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
pub(crate) struct Group {
    weights: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    scale: Option<f64>,
    min: Option<f64>,
}

/// Cut `bin` into the manifest's tensors; the byte counts must add up exactly.
pub(crate) fn decode(groups: &[Group], bin: &[u8]) -> Result<BTreeMap<String, Tensor>, String> {
    let mut out = BTreeMap::new();
    let mut pos = 0usize;
    for e in groups.iter().flat_map(|g| &g.weights) {
        let n = e
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("`{}`: shape overflows", e.name))?;
        let (width, kind) = match (&e.quantization, e.dtype.as_str()) {
            (None, "float32") => (4, Kind::F32),
            (Some(q), "float32") => match (q.dtype.as_str(), q.scale, q.min) {
                ("uint8", Some(scale), Some(min)) => (1, Kind::Affine { scale, min }),
                ("uint16", Some(scale), Some(min)) => (2, Kind::Affine { scale, min }),
                ("float16", _, _) => (2, Kind::F16),
                (d, _, _) => return Err(format!("`{}`: unsupported quantisation {d}", e.name)),
            },
            (_, d) => return Err(format!("`{}`: unsupported dtype {d}", e.name)),
        };
        let len = n
            .checked_mul(width)
            .ok_or_else(|| format!("`{}`: shape overflows", e.name))?;
        let raw = pos
            .checked_add(len)
            .and_then(|end| bin.get(pos..end))
            .ok_or_else(|| {
                format!(
                    "ends inside `{}` ({} bytes, the manifest needs more)",
                    e.name,
                    bin.len()
                )
            })?;
        pos += len;
        let data: Vec<f32> = match kind {
            Kind::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Kind::F16 => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            // tfjs computes min + scale·q in f64 (JavaScript numbers) and stores it as f32.
            Kind::Affine { scale, min } if width == 1 => raw
                .iter()
                .map(|&q| (min + scale * q as f64) as f32)
                .collect(),
            Kind::Affine { scale, min } => raw
                .chunks_exact(2)
                .map(|c| (min + scale * u16::from_le_bytes([c[0], c[1]]) as f64) as f32)
                .collect(),
        };
        if out
            .insert(e.name.clone(), Tensor::new(e.shape.clone(), data))
            .is_some()
        {
            return Err(format!("the manifest names `{}` twice", e.name));
        }
    }
    if pos != bin.len() {
        return Err(format!("{} bytes, the manifest describes {pos}", bin.len()));
    }
    Ok(out)
}

enum Kind {
    F32,
    F16,
    Affine { scale: f64, min: f64 },
}
