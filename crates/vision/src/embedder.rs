//! The two embedders behind one interface: how a detected face becomes a crop, and how crops
//! become L2-normalised embeddings.

use crate::facedesc::FaceDescriptorNet;
use crate::facenet::InceptionResnetV1;
use crate::image::RgbImage;
use crate::mtcnn::Detection;

/// Which embedding network. Serialised as the names used on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbedderKind {
    /// InceptionResnetV1, 512-d, 160×160 box crops (facenet-pytorch's).
    Facenet,
    /// face-api.js / dlib ResNet, 128-d, 150×150.
    FaceApi,
}

pub enum Embedder {
    Facenet {
        net: InceptionResnetV1,
        model_id: String,
    },
    FaceApi {
        net: FaceDescriptorNet,
        model_id: String,
    },
}

impl Embedder {
    pub fn kind(&self) -> EmbedderKind {
        match self {
            Embedder::Facenet { .. } => EmbedderKind::Facenet,
            Embedder::FaceApi { .. } => EmbedderKind::FaceApi,
        }
    }

    /// Identifies the weights: embeddings with different ids must never be compared.
    pub fn model_id(&self) -> &str {
        match self {
            Embedder::Facenet { model_id, .. } | Embedder::FaceApi { model_id, .. } => model_id,
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Embedder::Facenet { .. } => 512,
            Embedder::FaceApi { .. } => 128,
        }
    }

    /// Embeddings of the faces `dets` of `image`, one batch, in the order given.
    pub fn embed_faces(&self, image: &RgbImage, dets: &[Detection]) -> Vec<Vec<f32>> {
        let _ = (image, dets);
        todo!("Embedder::embed_faces")
    }
}
