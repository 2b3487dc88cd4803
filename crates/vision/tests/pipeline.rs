//! `FacePipeline` end to end: bytes in, faces with embeddings out.

use rollcall_test_support as common;

use common::{max_abs_diff, models_dir, parity_dir, read_npy, shared_dir};
use rollcall_vision::embedder::FaceApiCrop;
use rollcall_vision::models::{EmbedderChoice, EmbedderKind, ModelConfig};
use rollcall_vision::{Detection, Face, FacePipeline, PipelineConfig, PipelineError};
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

/// The faces of a photo, with their embeddings.
fn faces(p: &FacePipeline, bytes: &[u8]) -> Vec<Face> {
    p.analyze(bytes, true).expect("analyze").faces
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
    assert_eq!(p.kind(), EmbedderKind::FaceApi);
    assert_eq!(p.model_id(), "face-api-resnet128-flip");
    assert_eq!(p.default_threshold(), 0.962);
    let faces = faces(p, &image("single_640x480.jpg"));
    assert_eq!(faces.len(), 1);
    assert!(faces[0].detection.probability > 0.99);
    assert_unit(faces[0].embedding.as_deref().expect("embedding"), 128);
}

#[test]
fn several_faces_in_a_group_photo_largest_first_embedded_as_one_batch() {
    let p = face_api();
    let bytes = image("sample4.jpg");
    let analysis = p.analyze(&bytes, true).expect("analyze");
    let faces = analysis.faces;
    assert_eq!(faces.len(), 5, "sample4.jpg has 5 faces");
    let area = |b: [f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    for pair in faces.windows(2) {
        assert!(
            area(pair[0].detection.bbox) >= area(pair[1].detection.bbox),
            "largest first"
        );
    }
    // Without embeddings: the same faces; the batch gives each face what it gets alone.
    let detected = p.analyze(&bytes, false).expect("detect").faces;
    assert!(detected.iter().all(|f| f.embedding.is_none()));
    assert_eq!(
        detected.iter().map(|f| &f.detection).collect::<Vec<_>>(),
        faces.iter().map(|f| &f.detection).collect::<Vec<_>>()
    );
    let decoded = p.decode(&bytes).expect("decode");
    assert_eq!(
        (analysis.width, analysis.height),
        (decoded.width, decoded.height)
    );
    for face in &faces {
        let alone = p
            .embed_faces(&decoded, vec![face.detection.clone()])
            .expect("embed")
            .remove(0);
        assert_eq!(alone.detection, face.detection);
        let alone = alone.embedding.expect("embedding");
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
    let faces = faces(face_api(), &image("synthetic_gradient_320x240.png"));
    assert!(faces.is_empty());
    let analysis = face_api()
        .analyze(&image("synthetic_noise_320x240.png"), true)
        .expect("analyze");
    assert!(analysis.faces.is_empty());
    assert_eq!(analysis.timings.embed, None, "nothing to embed");
}

#[test]
fn corrupt_bytes_are_an_image_error() {
    for bytes in [&b"\xff\xd8\xff\xe0 not really a JPEG"[..], b"hello", b""] {
        match face_api().analyze(bytes, true) {
            Err(PipelineError::Image(_)) => {}
            other => panic!(
                "expected an image error, got {:?}",
                other.map(|a| a.faces.len())
            ),
        }
    }
}

#[test]
fn the_embed_stage_is_timed_only_when_it_runs() {
    let bytes = image("single_640x480_sample1.jpg");
    let embedded = face_api().analyze(&bytes, true).expect("analyze");
    let detected = face_api().analyze(&bytes, false).expect("analyze");
    assert_eq!(embedded.faces.len(), 1);
    assert_eq!(embedded.faces[0].detection, detected.faces[0].detection);
    assert!(embedded.timings.embed.is_some());
    assert_eq!(detected.timings.embed, None);
    for timings in [embedded.timings, detected.timings] {
        assert!(timings.decode > std::time::Duration::ZERO);
        assert!(timings.detect > std::time::Duration::ZERO);
    }
}

/// A box wholly outside the frame, larger than any face of the photos used: were it kept, it
/// would sort first.
fn outside_the_frame() -> Detection {
    Detection {
        bbox: [-3000.0, -3000.0, -1000.0, -1000.0],
        probability: 0.999,
        landmarks: [[-2000.0, -2000.0]; 5],
    }
}

#[test]
fn a_box_outside_the_frame_is_dropped_and_each_face_keeps_its_own_embedding() {
    let bytes = image("sample4.jpg");
    let plain = faces(face_api(), &bytes);
    assert_eq!(plain.len(), 5);
    let p = FacePipeline::load(&config(EmbedderChoice::FaceApi, None))
        .expect("face-api pipeline")
        .with_extra_detections(vec![outside_the_frame()]);

    // The server's road: the box is filtered out before anything is embedded.
    let with_box = faces(&p, &bytes);
    assert_eq!(with_box.len(), plain.len(), "the outside box is dropped");
    for (got, want) in with_box.iter().zip(&plain) {
        assert_eq!(got.detection, want.detection);
        let diff = max_abs_diff(
            got.embedding.as_deref().expect("embedding"),
            want.embedding.as_deref().expect("embedding"),
        );
        assert!(diff < 1e-5, "a face got another face's embedding: {diff}");
    }
    let detected = p.analyze(&bytes, false).expect("detect").faces;
    assert_eq!(detected.len(), plain.len(), "no embeddings, same filter");

    // The embed stage alone, given the box first: it never hands the box a face's embedding.
    let decoded = p.decode(&bytes).expect("decode");
    let largest = plain[0].clone();
    let embedded = p
        .embed_faces(
            &decoded,
            vec![outside_the_frame(), largest.detection.clone()],
        )
        .expect("embed");
    assert_eq!(embedded.len(), 1);
    assert_eq!(embedded[0].detection, largest.detection);
    let diff = max_abs_diff(
        embedded[0].embedding.as_deref().expect("embedding"),
        largest.embedding.as_deref().expect("embedding"),
    );
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn facenet_end_to_end_matches_facenet_pytorch() {
    // decode → MTCNN → box crop → InceptionResnetV1, against the Python reference's embedding
    // of the same photo.
    let weights = parity_dir().join("irv1_parity.pt.zst");
    let p = FacePipeline::load(&config(EmbedderChoice::Facenet, Some(weights)))
        .expect("FaceNet pipeline");
    assert_eq!(p.model_id(), "facenet-irv1_parity");
    let faces = faces(&p, &image("single_640x480.jpg"));
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
    let boxed = faces(&p, &image("single_640x480.jpg"));
    let aligned = faces(face_api(), &image("single_640x480.jpg"));
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
