//! What an embedder makes of one face: a vector of finite values with unit length, and the
//! cosine similarity of two of them.

/// An L2-normalised face embedding. Stored as little-endian f32 bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises `values`; `None` when they are empty, not finite or all zero.
    pub fn new(values: Vec<f32>) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm == 0.0 {
            return None;
        }
        Some(Embedding(values.into_iter().map(|v| v / norm).collect()))
    }

    pub fn from_le_bytes(bytes: &[u8]) -> Option<Self> {
        let chunks = bytes.chunks_exact(4);
        if !chunks.remainder().is_empty() {
            return None;
        }
        let values = chunks
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Embedding::new(values)
    }

    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn dim(&self) -> usize {
        self.0.len()
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.0
    }

    /// Cosine similarity ([`cosine`]). Different dimensions (different models) never match.
    pub fn similarity(&self, other: &Embedding) -> Similarity {
        if self.0.len() != other.0.len() {
            return Similarity(-1.0);
        }
        Similarity(cosine(&self.0, &other.0) as f32)
    }

    /// The unit vector's values.
    pub fn values(&self) -> &[f32] {
        &self.0
    }
}

/// Cosine similarity of two unit vectors: their dot product, summed in f64 so that the order of
/// the terms (and so a SIMD or a scalar loop) cannot change the score at f32 precision.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Read-only access to the values (`len`, `iter`, indexing), never a way to un-normalise them.
impl std::ops::Deref for Embedding {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

/// Cosine similarity of two embeddings, in [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Similarity(pub f32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_and_compare() {
        let a = Embedding::new(vec![3.0, 4.0]).unwrap();
        assert_eq!(a.as_slice(), &[0.6, 0.8]);
        let b = Embedding::from_le_bytes(&a.to_le_bytes()).unwrap();
        assert_eq!(a, b);
        assert!((a.similarity(&b).0 - 1.0).abs() < 1e-6);
        let c = Embedding::new(vec![-4.0, 3.0]).unwrap();
        assert!(a.similarity(&c).0.abs() < 1e-6);
        let d = Embedding::new(vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(a.similarity(&d), Similarity(-1.0), "other dimension");
        assert!(Embedding::new(vec![0.0, 0.0]).is_none());
        assert!(Embedding::new(vec![]).is_none());
        assert!(Embedding::new(vec![1.0, f32::NAN]).is_none());
        assert!(Embedding::new(vec![1.0, f32::INFINITY]).is_none());
        assert!(Embedding::from_le_bytes(&[1, 2, 3]).is_none());
    }
}
