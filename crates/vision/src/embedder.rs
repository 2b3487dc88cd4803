//! The two embedders behind one interface: how a detected face becomes a crop, and how crops
//! become [`Embedding`]s. Which embedder and which files come from [`models`](crate::models).

use crate::crop;
use crate::embedding::Embedding;
use crate::error::{ModelError, PipelineError};
use crate::facedesc::{self, FaceDescriptorNet};
use crate::facenet::{self, InceptionResnetV1};
use crate::image::RgbImage;
use crate::models::{facenet_default_path, EmbedderKind, ResolvedModels};
use crate::mtcnn::Detection;
use crate::nn;
use crate::tensor::Tensor;
use std::path::Path;

/// How a detection becomes the face-api network's 150×150 input.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FaceApiCrop {
    /// What face-api.js does: the detection box, letterboxed into a square (`imageToSquare`).
    Box,
    /// dlib's 5-landmark similarity alignment to its mean face (size 150, padding 0.25), the
    /// crop the network was trained on.
    #[default]
    Aligned,
}

impl std::str::FromStr for FaceApiCrop {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "box" => Ok(FaceApiCrop::Box),
            "aligned" => Ok(FaceApiCrop::Aligned),
            other => Err(format!(
                "unknown face-api crop `{other}`: use box or aligned"
            )),
        }
    }
}

/// dlib's face chips: 150 pixels with 25 % padding around the mean face.
const DLIB_CHIP_PADDING: f32 = 0.25;
/// facenet-pytorch's `fixed_image_standardization`: `(x − 127.5) / 128`.
const FACENET_MEAN: f32 = 127.5;
const FACENET_DIVISOR: f32 = 128.0;

// Loaded once per process and never moved on a hot path, so the size difference is harmless.
#[allow(clippy::large_enum_variant)]
pub enum Embedder {
    Facenet {
        net: InceptionResnetV1,
        model_id: String,
    },
    FaceApi {
        net: FaceDescriptorNet,
        model_id: String,
        crop: FaceApiCrop,
    },
}

impl Embedder {
    /// Load the embedder `models` resolved to (`face_api_crop` only matters for face-api).
    pub fn load(models: &ResolvedModels, face_api_crop: FaceApiCrop) -> Result<Self, ModelError> {
        match models.kind {
            EmbedderKind::Facenet => {
                let path = models.facenet_weights.as_deref().ok_or_else(|| {
                    ModelError::Config(
                        "the FaceNet embedder was chosen but no weights file was resolved".into(),
                    )
                })?;
                Self::load_facenet(path)
            }
            EmbedderKind::FaceApi => Self::load_face_api(&models.face_api_dir, face_api_crop),
        }
    }

    /// InceptionResnetV1 from a facenet-pytorch state dict.
    pub fn load_facenet(path: &Path) -> Result<Self, ModelError> {
        Ok(Embedder::Facenet {
            net: InceptionResnetV1::load(path)?,
            model_id: facenet_model_id(path),
        })
    }

    /// face-api's recogniser from the directory holding its manifest and `.bin`.
    pub fn load_face_api(dir: &Path, crop: FaceApiCrop) -> Result<Self, ModelError> {
        // Box and aligned crops give different embeddings of the same face: a gallery built
        // with one must not be searched with the other. `-flip`: the embedding averages the
        // crop and its mirror image (see `embed_crops`), so a gallery embedded without the
        // mirror has another id and `rollcall reindex` re-embeds it.
        let model_id = match crop {
            FaceApiCrop::Aligned => "face-api-resnet128-flip",
            FaceApiCrop::Box => "face-api-resnet128-box-flip",
        };
        Ok(Embedder::FaceApi {
            net: FaceDescriptorNet::load(dir)?,
            model_id: model_id.to_string(),
            crop,
        })
    }

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
            Embedder::Facenet { .. } => facenet::EMBEDDING_DIM,
            Embedder::FaceApi { .. } => facedesc::EMBEDDING_DIM,
        }
    }

    /// Side of the square crop the network takes.
    pub fn input_size(&self) -> u32 {
        match self {
            Embedder::Facenet { .. } => facenet::INPUT_SIZE as u32,
            Embedder::FaceApi { .. } => facedesc::INPUT_SIZE as u32,
        }
    }

    /// Cosine similarity at or above which two embeddings are taken to be the same person.
    /// Starting points, calibrated on LFW with `rollcall eval` where the weights are here:
    ///
    /// - FaceNet vggface2: 0.55. The weights could not be run here; published operating points
    ///   for this very model (deepface's `Facenet512`) are unit-vector distance 1.04 (cos 0.46)
    ///   and cosine distance 0.30 (cos 0.70); 0.55 sits between them, on the strict side of the
    ///   distance figure because box crops are unaligned.
    /// - face-api: 0.962, calibrated with `rollcall eval` on half of LFW (docs/accuracy.md): in
    ///   the attendance scenario (808 enrolled, 2,022 strangers) the false-accept rate reaches
    ///   0.1 % at 0.9598; over 1,000 bootstrap draws of the probes the bound holds in 95 % of
    ///   them from 0.96195, rounded up to 0.962, so that it holds for photos other than these.
    ///   (face-api.js's own rule, Euclidean distance 0.6 on raw descriptors of norm ≈ 1.4, is
    ///   cos ≈ 0.9: far too lax for a gallery of hundreds.)
    pub fn default_threshold(&self) -> f32 {
        match self {
            Embedder::Facenet { .. } => 0.55,
            Embedder::FaceApi { .. } => 0.962,
        }
    }

    /// The network's input crop of one face (HWC RGB, `input_size`² pixels); `None` when the
    /// face's box has no pixels inside the image.
    pub fn crop(&self, image: &RgbImage, det: &Detection) -> Option<RgbImage> {
        crop::box_int(det.bbox, image.width, image.height)?;
        Some(match self {
            Embedder::Facenet { .. } => crop::box_crop(image, det, facenet::INPUT_SIZE as u32)?,
            Embedder::FaceApi {
                crop: FaceApiCrop::Box,
                ..
            } => crop::square_box_crop(image, det, facedesc::INPUT_SIZE as u32),
            Embedder::FaceApi {
                crop: FaceApiCrop::Aligned,
                ..
            } => crop::aligned_crop(image, det, facedesc::INPUT_SIZE as u32, DLIB_CHIP_PADDING),
        })
    }

    /// Embeddings of crops made by [`crop`](Self::crop), one batch: exactly one per crop, in
    /// the order given. An error when the network's output is not finite.
    pub fn embed_crops(&self, crops: &[RgbImage]) -> Result<Vec<Embedding>, PipelineError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        // One entry into the thread pool for the whole network, not one per layer.
        let out = nn::in_pool(|| match self {
            Embedder::Facenet { net, .. } => {
                net.forward(&to_batch(crops, |v| (v - FACENET_MEAN) / FACENET_DIVISOR))
            }
            Embedder::FaceApi { net, .. } => mirror_averaged(net, crops),
        });
        let embeddings: Vec<Embedding> = out
            .data
            .chunks_exact(self.dim())
            .map(|row| Embedding::new(row.to_vec()).ok_or(PipelineError::NonFiniteEmbedding))
            .collect::<Result<_, _>>()?;
        assert_eq!(embeddings.len(), crops.len(), "one embedding per crop");
        Ok(embeddings)
    }

    /// The network alone on an input batch already in its shape and range ([N, 3, S, S]), no
    /// mirror averaging: what `rollcall bench` times as the network's cost.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Embedder::Facenet { net, .. } => net.forward(x),
            Embedder::FaceApi { net, .. } => net.forward(x),
        }
    }
}

/// face-api embeddings with mirror test-time augmentation: each crop and its mirror image go
/// through the network in one batch, and the face's embedding is the normalised sum of the
/// two unit vectors. On the LFW fixtures this lifts pair accuracy from 98.7 % to 99.1 % and
/// the attendance true-accept rate at a 0.1 % false-accept rate from 28 % to 41 %
/// (docs/accuracy.md), for twice the network time. (face-api normalises its input inside the
/// network, so the crops go in as 0..255.)
fn mirror_averaged(net: &FaceDescriptorNet, crops: &[RgbImage]) -> Tensor {
    let mirrored: Vec<RgbImage> = crops.iter().map(crop::mirror).collect();
    let both: Vec<RgbImage> = crops.iter().chain(&mirrored).cloned().collect();
    let out = net.forward(&to_batch(&both, |v| v));
    let (plain, flipped) = out.data.split_at(crops.len() * facedesc::EMBEDDING_DIM);
    let sum = plain.iter().zip(flipped).map(|(a, b)| a + b).collect();
    let mut sum = Tensor::new(vec![crops.len(), facedesc::EMBEDDING_DIM], sum);
    nn::l2_normalize_rows(&mut sum);
    sum
}

/// Same-size HWC RGB crops → [N, 3, H, W] floats, `f` applied to each 0..255 value.
fn to_batch(crops: &[RgbImage], f: impl Fn(f32) -> f32) -> Tensor {
    let (w, h) = (crops[0].width as usize, crops[0].height as usize);
    let mut data = Vec::with_capacity(crops.len() * 3 * h * w);
    for crop in crops {
        assert_eq!(
            (crop.width as usize, crop.height as usize),
            (w, h),
            "crops of one batch differ in size"
        );
        for c in 0..3 {
            data.extend(crop.data.iter().skip(c).step_by(3).map(|&v| f(v as f32)));
        }
    }
    Tensor::new(vec![crops.len(), 3, h, w], data)
}

/// `facenet-vggface2` for the published vggface2 file, `facenet-<stem>` for any other.
fn facenet_model_id(path: &Path) -> String {
    let default_name = facenet_default_path(Path::new(""))
        .file_name()
        .map(|n| n.to_os_string());
    if path.file_name().map(|n| n.to_os_string()) == default_name {
        return "facenet-vggface2".to_string();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for ext in [".zst", ".pt", ".pth"] {
        stem = stem.strip_suffix(ext).unwrap_or(stem);
    }
    format!("facenet-{stem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_name_the_weights() {
        assert_eq!(
            facenet_model_id(Path::new("models/facenet/20180402-114759-vggface2.pt")),
            "facenet-vggface2"
        );
        assert_eq!(
            facenet_model_id(Path::new("/x/irv1_parity.pt.zst")),
            "facenet-irv1_parity"
        );
        assert_eq!(facenet_model_id(Path::new("casia.pth")), "facenet-casia");
    }

    #[test]
    fn batch_is_planar_rgb() {
        let crop = RgbImage {
            width: 2,
            height: 1,
            data: vec![1, 2, 3, 4, 5, 6],
        };
        let t = to_batch(&[crop.clone(), crop], |v| v * 10.0);
        assert_eq!(t.shape, vec![2, 3, 1, 2]);
        assert_eq!(&t.data[..6], &[10.0, 40.0, 20.0, 50.0, 30.0, 60.0]);
    }
}
