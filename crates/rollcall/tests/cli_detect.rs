//! `rollcall detect` as a user runs it: the real binary, the real models, real photos.

use rollcall_test_support as shared;

mod cli_support;

use cli_support::rollcall;
use shared::{models_dir, shared_dir};
use std::path::PathBuf;

fn detect(photos: &[PathBuf]) -> (bool, serde_json::Value, String) {
    let output = rollcall()
        .arg("--models")
        .arg(models_dir())
        .args(["--embedder", "face-api", "detect", "--json", "--embed"])
        .args(photos)
        .output()
        .expect("running rollcall");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (
        output.status.success(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn detect_json_reports_faces_with_embeddings() {
    let images = shared_dir().join("fixtures/parity/images");
    let photos = [
        images.join("single_640x480.jpg"),
        images.join("synthetic_gradient_320x240.png"),
    ];
    let (ok, json, stderr) = detect(&photos);
    assert!(ok, "exit status; stderr: {stderr}");

    let reports = json.as_array().expect("an array");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["image"], photos[0].to_string_lossy().as_ref());

    let faces = reports[0]["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 1, "one face in single_640x480.jpg");
    let face = &faces[0];
    let bbox: Vec<f64> = serde_json::from_value(face["box"].clone()).expect("box of 4 numbers");
    assert_eq!(bbox.len(), 4);
    assert!(bbox[0] < bbox[2] && bbox[1] < bbox[3], "box {bbox:?}");
    let p = face["probability"].as_f64().expect("probability");
    assert!(p > 0.99, "probability {p}");
    let landmarks: Vec<[f64; 2]> =
        serde_json::from_value(face["landmarks"].clone()).expect("5 landmarks");
    assert_eq!(landmarks.len(), 5);
    for [x, y] in &landmarks {
        assert!(
            *x >= bbox[0] && *x <= bbox[2] && *y >= bbox[1] && *y <= bbox[3],
            "landmark ({x},{y}) outside {bbox:?}"
        );
    }
    let embedding: Vec<f64> = serde_json::from_value(face["embedding"].clone()).expect("embedding");
    assert_eq!(embedding.len(), 128);
    let norm = embedding.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");

    assert_eq!(
        reports[1]["faces"].as_array().map(Vec::len),
        Some(0),
        "no face in the gradient image"
    );
}

#[test]
fn a_photo_that_cannot_be_read_is_reported_and_the_others_still_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 this is not really a JPEG").expect("write");
    let good = shared_dir().join("fixtures/parity/images/single_640x480.jpg");

    let (ok, json, stderr) = detect(&[corrupt.clone(), good]);
    assert!(!ok, "a failed photo makes the exit status non-zero");
    assert!(
        stderr.contains("corrupt.jpg"),
        "stderr names the photo: {stderr}"
    );
    let reports = json.as_array().expect("an array");
    assert_eq!(reports.len(), 2);
    assert!(reports[0]["error"].is_string(), "{}", reports[0]);
    assert_eq!(reports[1]["faces"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_models_directory_of_the_config_file_is_used_as_it_is() {
    // No `--models` flag: the configuration file names the directory. The data directory is
    // empty, so a command that ignored the file would try to fill `<data-dir>/models`.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("rollcall.toml");
    std::fs::write(
        &config,
        format!(
            "models = {:?}\nembedder = \"face-api\"\n",
            models_dir().to_string_lossy()
        ),
    )
    .expect("writing the config file");
    let data_dir = dir.path().join("data");
    let photo = shared_dir().join("fixtures/parity/images/single_640x480.jpg");
    let output = rollcall()
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["detect", "--json"])
        .arg(&photo)
        .output()
        .expect("running rollcall");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit status; stderr: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(json[0]["faces"].as_array().map(Vec::len), Some(1));
    assert!(
        !data_dir.join("models").exists(),
        "nothing may be fetched into the default models directory"
    );
}
