//! MTCNN parity with facenet-pytorch 2.6.0: each net alone on recorded inputs, then the whole
//! detector and the 160×160 crops on the 13 parity images (`shared/fixtures/parity`).

use rollcall_test_support as common;

use common::{max_abs_diff, models_dir, parity_dir, read_npy};
use rollcall_vision::crop::{box_crop, standardize_facenet};
use rollcall_vision::mtcnn::nets::{ONet, PNet, RNet};
use rollcall_vision::mtcnn::{Detection, Detector, DetectorParams};
use rollcall_vision::{DecodeLimits, RgbImage, Tensor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const NET_TOL: f32 = 1e-4;
const PX_TOL: f32 = 0.01;

fn npy(name: &str) -> Tensor {
    let (shape, data) = read_npy(&parity_dir().join("mtcnn_nets").join(name));
    Tensor::new(shape, data)
}

fn golden() -> &'static Value {
    static G: OnceLock<Value> = OnceLock::new();
    G.get_or_init(|| {
        let path = parity_dir().join("mtcnn_golden.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("mtcnn_golden.json")
    })
}

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| {
        Detector::load(&models_dir().join("mtcnn"), DetectorParams::default())
            .expect("load MTCNN weights")
    })
}

/// The parity image `name`, decoded like Pillow (checked against the recorded pixel hash).
fn image(name: &str) -> RgbImage {
    let path = parity_dir().join("images").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let img = rollcall_vision::image::decode(&bytes, DecodeLimits::default()).expect("decode");
    let want = golden()["images"][name]["decoded_rgb_sha256"]
        .as_str()
        .expect("decoded_rgb_sha256");
    assert_eq!(
        hex::encode(Sha256::digest(&img.data)),
        want,
        "{name}: decoded pixels differ from Pillow's"
    );
    img
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let d = max_abs_diff(&got.data, &want.data);
    assert!(d <= tol, "{what}: max abs diff {d} > {tol}");
}

#[test]
fn pnet_matches_torch_at_scales_0_and_9() {
    let pnet = PNet::load(&models_dir().join("mtcnn/pnet.pt")).expect("pnet.pt");
    for scale in ["scale0", "scale9"] {
        let (reg, prob) = pnet.forward(&npy(&format!("astronaut_pnet_{scale}_in.npy")));
        assert_close(
            &format!("P-Net {scale} reg"),
            &reg,
            &npy(&format!("astronaut_pnet_{scale}_reg.npy")),
            NET_TOL,
        );
        assert_close(
            &format!("P-Net {scale} prob"),
            &prob,
            &npy(&format!("astronaut_pnet_{scale}_prob.npy")),
            NET_TOL,
        );
    }
}

#[test]
fn rnet_matches_torch_on_153_crops() {
    let rnet = RNet::load(&models_dir().join("mtcnn/rnet.pt")).expect("rnet.pt");
    let input = npy("astronaut_rnet_in.npy");
    assert_eq!(input.shape, vec![153, 3, 24, 24]);
    let (reg, prob) = rnet.forward(&input);
    assert_close("R-Net reg", &reg, &npy("astronaut_rnet_reg.npy"), NET_TOL);
    assert_close(
        "R-Net prob",
        &prob,
        &npy("astronaut_rnet_prob.npy"),
        NET_TOL,
    );
}

#[test]
fn onet_matches_torch_on_9_crops() {
    let onet = ONet::load(&models_dir().join("mtcnn/onet.pt")).expect("onet.pt");
    let out = onet.forward(&npy("astronaut_onet_in.npy"));
    assert_close(
        "O-Net reg",
        &out.reg,
        &npy("astronaut_onet_reg.npy"),
        NET_TOL,
    );
    assert_close(
        "O-Net landmarks",
        &out.landmarks,
        &npy("astronaut_onet_landmarks.npy"),
        NET_TOL,
    );
    assert_close(
        "O-Net prob",
        &out.prob,
        &npy("astronaut_onet_prob.npy"),
        NET_TOL,
    );
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number") as f32],
        Value::Null => Vec::new(),
        other => panic!("unexpected JSON value {other}"),
    }
}

fn image_names() -> Vec<String> {
    let names: Vec<String> = golden()["images"]
        .as_object()
        .expect("images")
        .keys()
        .cloned()
        .collect();
    assert_eq!(names.len(), 13, "13 parity images");
    names
}

/// Standardised 160×160 crops of `dets`, as `mtcnn(img)` returns them.
fn crops(img: &RgbImage, dets: &[Detection]) -> Vec<f32> {
    dets.iter()
        .flat_map(|d| standardize_facenet(&box_crop(img, d, 160).expect("non-empty crop")).data)
        .collect()
}

#[test]
fn full_detection_matches_facenet_pytorch_on_all_parity_images() {
    let mut report = Vec::new();
    for name in image_names() {
        let g = &golden()["images"][&name];
        let img = image(&name);
        let dets = detector().detect(&img);
        let n = g["n_faces"].as_u64().unwrap_or(0) as usize;
        assert_eq!(dets.len(), n, "{name}: face count");
        if n == 0 {
            report.push(format!("{name}: no face"));
            continue;
        }
        let boxes: Vec<f32> = dets.iter().flat_map(|d| d.bbox).collect();
        let probs: Vec<f32> = dets.iter().map(|d| d.probability).collect();
        let lmks: Vec<f32> = dets
            .iter()
            .flat_map(|d| d.landmarks.into_iter().flatten())
            .collect();
        let db = max_abs_diff(&boxes, &floats(&g["boxes"]));
        let dp = max_abs_diff(&probs, &floats(&g["probs"]));
        let dl = max_abs_diff(&lmks, &floats(&g["landmarks"]));
        assert!(db <= PX_TOL, "{name}: boxes differ by {db} px");
        assert!(dl <= PX_TOL, "{name}: landmarks differ by {dl} px");
        assert!(dp <= NET_TOL, "{name}: probabilities differ by {dp}");
        let (_, want) = read_npy(&parity_dir().join(g["crops"].as_str().expect("crops")));
        let dc = max_abs_diff(&crops(&img, &dets), &want);
        assert!(dc <= 1e-6, "{name}: crops differ by {dc}");
        report.push(format!(
            "{name}: {n} faces, |dbox| {db:.2e} |dlmk| {dl:.2e} |dprob| {dp:.2e} |dcrop| {dc:.1e}"
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn crops_of_the_golden_boxes_are_bit_exact() {
    // Independent of the detector: the recorded boxes, cropped and resized here, must give
    // exactly the recorded crops.
    for name in image_names() {
        let g = &golden()["images"][&name];
        if g["n_faces"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let img = image(&name);
        let dets: Vec<Detection> = floats(&g["boxes"])
            .chunks_exact(4)
            .map(|b| Detection {
                bbox: [b[0], b[1], b[2], b[3]],
                probability: 1.0,
                landmarks: [[0.0; 2]; 5],
            })
            .collect();
        let (shape, want) = read_npy(&parity_dir().join(g["crops"].as_str().expect("crops")));
        assert_eq!(shape, vec![dets.len(), 3, 160, 160], "{name}: crop shape");
        assert_eq!(crops(&img, &dets), want, "{name}: crops");
    }
}

#[test]
fn images_without_faces_give_none() {
    for name in [
        "synthetic_gradient_320x240.png",
        "synthetic_noise_320x240.png",
        "synthetic_tiny_8x8.png",
    ] {
        let dets = detector().detect(&image(name));
        assert!(dets.is_empty(), "{name}: {} faces", dets.len());
    }
    // Smaller than one pyramid level (or empty): no face, no error.
    for (w, h) in [
        (8, 8),
        (1, 1),
        (19, 400),
        (400, 19),
        (0, 0),
        (0, 30),
        (30, 0),
    ] {
        let img = RgbImage {
            width: w,
            height: h,
            data: vec![128; (w * h * 3) as usize],
        };
        assert!(detector().detect(&img).is_empty(), "{w}×{h}");
    }
}

#[test]
fn detector_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Detector>();
}
