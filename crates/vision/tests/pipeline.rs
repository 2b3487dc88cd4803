//! `FacePipeline` end to end: bytes in, faces with embeddings out.

mod common;

use common::{max_abs_diff, models_dir, parity_dir, read_npy, shared_dir};
use rollcall_vision::embedder::FaceApiCrop;
use rollcall_vision::models::{EmbedderChoice, EmbedderKind, ModelConfig};
use rollcall_vision::{FacePipeline, PipelineConfig, PipelineError};
use std::sync::OnceLock;

fn config(embedder: EmbedderChoice, facenet_weights: Option<std::path::PathBuf>) -> PipelineConfig {
    PipelineConfig::new(ModelConfig {
        models_dir: models_dir(),
        embedder,
        facenet_weights,
        fetch_missing: false,
    })
}

fn face_api() -> &'static FacePipeline {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        FacePipeline::load(&config(EmbedderChoice::FaceApi, None)).expect("face-api pipeline")
    })
}

fn image(name: &str) -> Vec<u8> {
    let path = parity_dir().join("images").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_unit(embedding: &[f32], dim: usize) {
    assert_eq!(embedding.len(), dim);
    assert!(embedding.iter().all(|v| v.is_finite()));
    let norm = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

#[test]
fn one_face_in_a_portrait() {
    let p = face_api();
    assert_eq!(p.embedder.kind(), EmbedderKind::FaceApi);
    assert_eq!(p.model_id(), "face-api-resnet128-flip");
    let faces = p.analyze(&image("single_640x480.jpg")).expect("analyze");
    assert_eq!(faces.len(), 1);
    assert!(faces[0].detection.probability > 0.99);
    assert_unit(faces[0].embedding.as_deref().expect("embedding"), 128);
}

#[test]
fn several_faces_in_a_group_photo_largest_first_embedded_as_one_batch() {
    let p = face_api();
    let bytes = image("sample4.jpg");
    let faces = p.analyze(&bytes).expect("analyze");
    assert_eq!(faces.len(), 5, "sample4.jpg has 5 faces");
    let area = |b: [f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    for pair in faces.windows(2) {
        assert!(
            area(pair[0].detection.bbox) >= area(pair[1].detection.bbox),
            "largest first"
        );
    }
    // detect() finds the same faces; the batch gives each face what it gets alone.
    let detections = p.detect(&bytes).expect("detect");
    assert_eq!(
        detections,
        faces
            .iter()
            .map(|f| f.detection.clone())
            .collect::<Vec<_>>()
    );
    let decoded = rollcall_vision::image::decode(&bytes, p.limits).expect("decode");
    for face in &faces {
        let alone = p
            .embedder
            .embed_faces(&decoded, std::slice::from_ref(&face.detection))
            .remove(0);
        let batched = face.embedding.as_deref().expect("embedding");
        assert_unit(batched, 128);
        assert!(
            max_abs_diff(&alone, batched) < 1e-5,
            "batched and single embeddings differ"
        );
    }
}

#[test]
fn no_face_gives_an_empty_list() {
    let faces = face_api()
        .analyze(&image("synthetic_gradient_320x240.png"))
        .expect("analyze");
    assert!(faces.is_empty());
    let (faces, _timings) = face_api()
        .analyze_timed(&image("synthetic_noise_320x240.png"))
        .expect("analyze");
    assert!(faces.is_empty());
}

#[test]
fn corrupt_bytes_are_an_image_error() {
    for bytes in [&b"\xff\xd8\xff\xe0 not really a JPEG"[..], b"hello", b""] {
        match face_api().analyze(bytes) {
            Err(PipelineError::Image(_)) => {}
            other => panic!("expected an image error, got {:?}", other.map(|f| f.len())),
        }
    }
}

#[test]
fn timed_analysis_gives_the_same_faces() {
    let bytes = image("single_640x480_sample1.jpg");
    let (faces, _timings) = face_api().analyze_timed(&bytes).expect("analyze");
    let plain = face_api().analyze(&bytes).expect("analyze");
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0].detection, plain[0].detection);
    assert_eq!(faces[0].embedding, plain[0].embedding);
}

#[test]
fn facenet_end_to_end_matches_facenet_pytorch() {
    // decode → MTCNN → box crop → InceptionResnetV1, against the Python reference's embedding
    // of the same photo.
    let weights = parity_dir().join("irv1_parity.pt.zst");
    let p = FacePipeline::load(&config(EmbedderChoice::Facenet, Some(weights)))
        .expect("FaceNet pipeline");
    assert_eq!(p.model_id(), "facenet-irv1_parity");
    let faces = p.analyze(&image("single_640x480.jpg")).expect("analyze");
    assert_eq!(faces.len(), 1);
    let (shape, expected) =
        read_npy(&parity_dir().join("irv1/crops_single_640x480_embeddings.npy"));
    assert_eq!(shape, vec![1, 512]);
    let got = faces[0].embedding.as_deref().expect("embedding");
    let diff = max_abs_diff(got, &expected);
    eprintln!("end-to-end FaceNet embedding: max |Δ| {diff:.2e}");
    assert!(diff <= 1e-4, "end-to-end embedding: max |Δ| {diff}");
}

#[test]
fn box_crop_strategy_is_selectable() {
    let mut cfg = config(EmbedderChoice::FaceApi, None);
    cfg.face_api_crop = FaceApiCrop::Box;
    let p = FacePipeline::load(&cfg).expect("face-api pipeline");
    assert_eq!(p.model_id(), "face-api-resnet128-box-flip");
    let boxed = p.analyze(&image("single_640x480.jpg")).expect("analyze");
    let aligned = face_api()
        .analyze(&image("single_640x480.jpg"))
        .expect("analyze");
    let (b, a) = (
        boxed[0].embedding.as_deref().unwrap(),
        aligned[0].embedding.as_deref().unwrap(),
    );
    assert_unit(b, 128);
    // Different crops of the same face: not identical, still clearly the same person.
    let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    assert!(cos < 0.9999 && cos > 0.9, "cos {cos}");
}

#[test]
fn missing_models_are_a_model_error() {
    let mut cfg = config(EmbedderChoice::FaceApi, None);
    cfg.models.models_dir = shared_dir().join("no-such-models-dir");
    let err = FacePipeline::load(&cfg).err().expect("no models there");
    assert!(err.to_string().contains("no-such-models-dir"), "{err}");
}
