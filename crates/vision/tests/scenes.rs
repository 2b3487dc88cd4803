//! The detector on real scene photos (`shared/fixtures/scenes`, see its `manifest.csv`): every
//! photo runs, photos without people give no face, group photos give several.

use rollcall_test_support as common;

use common::{models_dir, shared_dir};
use rollcall_vision::mtcnn::{Detector, DetectorParams};
use rollcall_vision::DecodeLimits;

struct Scene {
    path: String,
    category: String,
    /// `expected_faces` as written: a number, a range like `2-3`, or empty (unknown).
    expected: String,
}

fn scenes() -> Vec<Scene> {
    let path = shared_dir().join("fixtures/scenes/manifest.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let scenes: Vec<Scene> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // The first three columns never hold commas or quotes.
            let mut cols = line.splitn(4, ',');
            let mut next = || cols.next().unwrap_or_default().to_string();
            Scene {
                path: next(),
                category: next(),
                expected: next(),
            }
        })
        .collect();
    assert!(scenes.len() >= 20, "manifest lists {} scenes", scenes.len());
    scenes
}

/// The smallest count the manifest allows (`2-3` → 2), if it states one.
fn expected_min(s: &str) -> Option<usize> {
    s.split('-').next().and_then(|v| v.trim().parse().ok())
}

#[test]
fn every_scene_runs_and_the_counts_are_plausible() {
    let detector = Detector::load(&models_dir().join("mtcnn"), DetectorParams::default())
        .expect("MTCNN weights");
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for scene in scenes() {
        let file = shared_dir().join("fixtures/scenes").join(&scene.path);
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let img = rollcall_vision::image::decode(&bytes, DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", scene.path));
        let dets = detector.detect(&img);
        for d in &dets {
            assert!(
                d.probability > 0.7 && d.probability <= 1.0,
                "{}: probability {}",
                scene.path,
                d.probability
            );
            assert!(
                d.bbox[2] > d.bbox[0] && d.bbox[3] > d.bbox[1],
                "{}: box {:?}",
                scene.path,
                d.bbox
            );
        }
        let n = dets.len();
        report.push(format!(
            "{:45} {:11} expected {:>4}  found {n}",
            scene.path, scene.category, scene.expected
        ));
        let ok = match scene.category.as_str() {
            "no_face" => n == 0,
            "group" => n >= 2,
            "single_face" => n >= 1,
            _ => true,
        };
        if !ok {
            failures.push(format!(
                "{}: {n} faces (expected {})",
                scene.path, scene.expected
            ));
        }
        // Loosely: a group photo with a stated count should show at least half of it.
        if let (Some(min), "group") = (expected_min(&scene.expected), scene.category.as_str()) {
            if n * 2 < min {
                failures.push(format!("{}: {n} faces, far below {min}", scene.path));
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
