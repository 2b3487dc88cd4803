//! face-api's descriptor network: the forward pass against face-api.js itself, then the
//! whole detector → crop → descriptor chain on labelled LFW photos.

use rollcall_test_support as common;

use common::{max_abs_diff, models_dir, shared_dir};
use rollcall_vision::embedder::{Embedder, FaceApiCrop};
use rollcall_vision::facedesc::FaceDescriptorNet;
use rollcall_vision::mtcnn::{Detection, Detector, DetectorParams};
use rollcall_vision::{RgbImage, Tensor};

fn decode(bytes: &[u8]) -> RgbImage {
    rollcall_vision::image::decode(bytes, Default::default()).expect("decodable test photo")
}
use std::path::{Path, PathBuf};

const S: usize = 150;

/// `tests/fixtures/faceapi/golden.json`: raw descriptors from face-api.js 1.7.15 on tfjs-cpu
/// (made by `make_golden.mjs` beside it).
fn golden() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faceapi/golden.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden.json")
}

/// A 150×150 input as an NCHW item, from `f(y, x, c)` (0..255).
fn pattern(f: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let mut data = Vec::with_capacity(3 * S * S);
    for c in 0..3 {
        for y in 0..S {
            for x in 0..S {
                data.push(f(y, x, c));
            }
        }
    }
    data
}

#[test]
fn forward_pass_matches_face_api_js() {
    let golden = golden();
    let net = FaceDescriptorNet::load(&models_dir().join("face-api")).expect("face-api weights");

    let png = decode(
        &std::fs::read(shared_dir().join("fixtures/parity/images/astronaut.png"))
            .expect("astronaut.png"),
    );
    let window = &golden["astronaut_window"];
    let (x0, y0) = (
        window["x0"].as_u64().unwrap() as usize,
        window["y0"].as_u64().unwrap() as usize,
    );
    let w = png.width as usize;

    // The same integer patterns make_golden.mjs builds, in the same batch order.
    let inputs: [(&str, Vec<f32>); 3] = [
        (
            "ramps",
            pattern(|y, x, c| ((x * 3 + y * 5 + c * 70) % 256) as f32),
        ),
        (
            "quadratic",
            pattern(|y, x, c| (((x * x + 2 * y * y + x * y + 37 * c) / 8) % 256) as f32),
        ),
        (
            "astronaut_window",
            pattern(|y, x, c| png.data[((y0 + y) * w + x0 + x) * 3 + c] as f32),
        ),
    ];
    let batch = Tensor::new(
        vec![3, 3, S, S],
        inputs.iter().flat_map(|(_, d)| d.iter().copied()).collect(),
    );
    let raw = net.forward_raw(&batch);
    let normalised = net.forward(&batch);
    assert_eq!(raw.shape, vec![3, 128]);

    for (i, (name, _)) in inputs.iter().enumerate() {
        let expected: Vec<f32> =
            serde_json::from_value(golden["descriptors"][name].clone()).expect("descriptor");
        let got = &raw.data[i * 128..(i + 1) * 128];
        let diff = max_abs_diff(got, &expected);
        eprintln!("{name}: max |Δ| {diff:.2e} against face-api.js");
        // Raw values are up to ~0.3; float32 summation order differs from tfjs-cpu.
        assert!(diff < 1e-5, "{name}: max |Δ| {diff} against face-api.js");

        // forward() is the same direction, unit length.
        let norm = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (n, r) in normalised.data[i * 128..(i + 1) * 128].iter().zip(got) {
            assert!((n - r / norm).abs() < 1e-6);
        }
    }
}

#[test]
fn wrong_directory_names_the_missing_file() {
    let dir = models_dir().join("mtcnn");
    let err = FaceDescriptorNet::load(&dir)
        .err()
        .expect("mtcnn/ holds no face-api weights");
    assert!(err.to_string().contains("face_recognition_model"), "{err}");
}

/// The first `n` people (by name) with at least two photos, and their first two photos.
fn lfw_pairs(n: usize) -> Vec<(String, [PathBuf; 2])> {
    let root = shared_dir().join("fixtures/faces");
    let mut people: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    people
        .into_iter()
        .filter_map(|dir| {
            let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
                .ok()?
                .map(|e| e.expect("dir entry").path())
                .collect();
            photos.sort();
            (photos.len() >= 2).then(|| {
                let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                (name, [photos[0].clone(), photos[1].clone()])
            })
        })
        .take(n)
        .collect()
}

/// LFW photos are centred on the person: of several faces, take the one nearest the centre.
fn central_face(image: &RgbImage, dets: Vec<Detection>) -> Option<Detection> {
    let (cx, cy) = (image.width as f32 / 2.0, image.height as f32 / 2.0);
    let dist = |d: &Detection| {
        let [x1, y1, x2, y2] = d.bbox;
        ((x1 + x2) / 2.0 - cx).hypot((y1 + y2) / 2.0 - cy)
    };
    dets.into_iter().min_by(|a, b| dist(a).total_cmp(&dist(b)))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

struct Scores {
    /// People whose second photo is nearer their first than any other person's second photo.
    rank1: usize,
    same: Vec<f32>,
    different: Vec<f32>,
}

fn score(embeddings: &[[Vec<f32>; 2]]) -> Scores {
    let (mut rank1, mut same, mut different) = (0, Vec::new(), Vec::new());
    for (i, a) in embeddings.iter().enumerate() {
        let own = cosine(&a[0], &a[1]);
        same.push(own);
        let mut best_other = f32::NEG_INFINITY;
        for (j, b) in embeddings.iter().enumerate() {
            if i != j {
                let c = cosine(&a[0], &b[1]);
                different.push(c);
                best_other = best_other.max(c);
            }
        }
        rank1 += usize::from(own > best_other);
    }
    Scores {
        rank1,
        same,
        different,
    }
}

#[test]
fn same_person_is_closer_than_other_people_on_lfw() {
    let detector = Detector::load(&models_dir().join("mtcnn"), DetectorParams::default())
        .expect("MTCNN weights");
    let dir = models_dir().join("face-api");
    let embedders = [
        (
            "aligned",
            Embedder::load_face_api(&dir, FaceApiCrop::Aligned).expect("face-api weights"),
        ),
        (
            "box",
            Embedder::load_face_api(&dir, FaceApiCrop::Box).expect("face-api weights"),
        ),
    ];

    let people = lfw_pairs(10);
    assert_eq!(people.len(), 10);
    let mut faces = Vec::new();
    for (name, photos) in &people {
        let pair = photos.clone().map(|p| {
            let image =
                decode(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
            let det = central_face(&image, detector.detect(&image))
                .unwrap_or_else(|| panic!("{name}: no face in {}", p.display()));
            (image, det)
        });
        faces.push(pair);
    }

    for (label, embedder) in &embedders {
        let embeddings: Vec<[Vec<f32>; 2]> = faces
            .iter()
            .map(|pair| {
                pair.each_ref().map(|(image, det)| {
                    let crop = embedder.crop(image, det).expect("a face inside the photo");
                    let e = embedder.embed_crops(&[crop]).expect("embed").remove(0);
                    let e = e.into_vec();
                    assert_eq!(e.len(), 128);
                    assert!(
                        e.iter().all(|v| v.is_finite()),
                        "{label}: non-finite embedding"
                    );
                    let norm = e.iter().map(|v| v * v).sum::<f32>().sqrt();
                    assert!((norm - 1.0).abs() < 1e-5, "{label}: norm {norm}");
                    e
                })
            })
            .collect();
        let s = score(&embeddings);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        let range = |v: &[f32]| {
            v.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        };
        eprintln!(
            "{label}: rank-1 {}/10; same-person cos {:.3}..{:.3} (mean {:.3}); different {:.3}..{:.3} (mean {:.3})",
            s.rank1,
            range(&s.same).0,
            range(&s.same).1,
            mean(&s.same),
            range(&s.different).0,
            range(&s.different).1,
            mean(&s.different)
        );
        assert!(
            s.rank1 >= 9,
            "{label}: only {} of 10 people matched their own second photo",
            s.rank1
        );
        assert!(
            mean(&s.same) > mean(&s.different) + 0.05,
            "{label}: same and different people barely differ"
        );
    }
}
