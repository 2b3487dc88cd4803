//! The kiosk's liveness challenge in a real, headless Chromium against the real `rollcall
//! serve` (default `--liveness challenge`): a registered person's still photo as the camera —
//! a picture held up to the kiosk — is asked to turn their head, the page shows the
//! instruction with its progress ring while it records, sends the frames, and says why they
//! were refused in words a person can act on. Nobody is checked in. A camera showing the
//! person turning their head (photos ordered as `rollcall eval-liveness` orders its bona fide
//! sequences) is checked in, once: the page's request sent again is refused.

mod browser_support;
use rollcall_test_support as shared;

use browser_support::{models_dir, rollcall, screenshot, shared_dir, wait_js, y4m, Driver, Server};
use fantoccini::Locator;
use rollcall::eval::liveness::bona_fide_order;
use rollcall::liveness::Instruction;
use rollcall_vision::models::{EmbedderChoice, ModelConfig};
use rollcall_vision::{FacePipeline, PipelineConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_photo_at_the_kiosk_is_not_checked_in() {
    let work = tempfile::tempdir().expect("temporary directory");
    let faces = shared_dir().join("fixtures/faces/Tony_Blair");
    let camera = work.path().join("still.y4m");
    y4m::write_from_jpeg(&faces.join("Tony_Blair_0102.jpg"), &camera);
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    register(&data_dir, &faces.join("Tony_Blair_0048.jpg"));
    let server = Server::start_admin_with(&data_dir, &["--anonymous-verify"]).await;
    let driver = Driver::start(work.path()).await;
    let kiosk = open_kiosk(&driver, &camera, work.path(), &server).await;
    kiosk
        .execute(
            "document.querySelector('#status').dataset.state = 'pressed';",
            vec![],
        )
        .await
        .expect("mark the status");
    kiosk
        .find(Locator::Css("#capture"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
    // While it records: the instruction, large, over the preview.
    let instruction = wait_js(
        &kiosk,
        "the instruction",
        "const c = document.querySelector('#challenge'); \
         return c.hidden ? null : document.querySelector('#challenge-text').textContent;",
    )
    .await;
    let instruction = instruction.as_str().unwrap_or_default().to_owned();
    assert!(
        instruction.starts_with("Turn your head slowly to the"),
        "{instruction}"
    );
    screenshot(&kiosk, "kiosk-liveness-challenge").await;
    let answer = wait_js(
        &kiosk,
        "the kiosk's answer",
        "const s = document.querySelector('#status'); \
         return ['pressed', 'busy', 'idle'].includes(s.dataset.state) ? null : [s.dataset.state, \
           document.querySelector('#status-title').textContent, document.querySelector('#status-detail').textContent];",
    )
    .await;
    assert_eq!(
        answer,
        json!([
            "unknown",
            "Not checked in",
            "we could not see your head turn — try again"
        ]),
    );
    screenshot(&kiosk, "kiosk-liveness-refused").await;
    let log = attendance(&server).await;
    assert_eq!(log, json!([]), "nobody is checked in");
    kiosk.close().await.expect("close the kiosk");
    drop(driver);
}

/// The kiosk page in a browser whose camera plays `camera`, once the camera is live.
async fn open_kiosk(
    driver: &Driver,
    camera: &Path,
    work: &Path,
    server: &Server,
) -> fantoccini::Client {
    let kiosk = driver
        .session(Some(camera), &work.join("profile-kiosk"), (1366, 768))
        .await;
    kiosk.goto(&server.url).await.expect("open the kiosk");
    wait_js(
        &kiosk,
        "the camera",
        "const v = document.querySelector('#video'); \
         return document.querySelector('#camera').dataset.state === 'live' && v.videoWidth > 0 ? true : null;",
    )
    .await;
    kiosk
}

/// Register Tony Blair from `reference` with the CLI, as an operator would.
fn register(data_dir: &Path, reference: &Path) {
    let models = models_dir();
    rollcall(
        data_dir,
        &[
            "register",
            "--first-name",
            "Tony",
            "--last-name",
            "Blair",
            "--models",
            models.to_str().expect("a UTF-8 path"),
            "--embedder",
            "face-api",
            reference.to_str().expect("a UTF-8 path"),
        ],
        "",
    );
}

/// Frames a second of the turning clip, and how it is laid out: the first photo of the turn
/// held (the clip's first frame carries the marker), each photo of the turn out and back
/// shown twice, then the first photo held again, so that the loop's seam joins two identical
/// frames. Recording starts a moment after the marker, so its first frame faces the way the
/// turn starts, and its 1.5 s end in the final hold, back where it began.
const FPS: u32 = 10;
const LEAD: usize = 3;
const EACH: usize = 2;
const HOLD: usize = 12;

/// The photos of one person as a camera showing them turn their head to their left and back,
/// written to `out`.
fn turning_clip(photos: &[PathBuf], out: &Path) {
    let pipeline = FacePipeline::load(&PipelineConfig::new(ModelConfig {
        models_dir: models_dir(),
        embedder: EmbedderChoice::FaceApi,
        facenet_weights: None,
        fetch_missing: false,
    }))
    .expect("the face models");
    let images: Vec<_> = photos
        .iter()
        .map(|p| {
            pipeline
                .decode(&std::fs::read(p).expect("a fixture"))
                .expect("a photo")
        })
        .collect();
    let order = bona_fide_order(&pipeline, &images, Instruction::TurnLeft);
    assert!(
        order.len() >= 5 && order.first() == order.last(),
        "a turn out and back: {order:?}"
    );
    let start = order[0];
    let mut frames = vec![start; LEAD];
    for &i in &order[1..order.len() - 1] {
        frames.extend([i; EACH]);
    }
    frames.extend([start; HOLD]);
    let refs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
    y4m::write_clip(&refs, &frames, FPS, out);
}

async fn attendance(server: &Server) -> Value {
    server
        .http()
        .get(format!("{}/attendance", server.url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_turning_at_the_kiosk_is_checked_in_once() {
    let work = tempfile::tempdir().expect("temporary directory");
    let faces = shared_dir().join("fixtures/faces/Tony_Blair");
    // Four photos of one person that agree as frames of one session do (0.97–0.98), with
    // their faces where LFW centres them: a head turning in front of a kiosk's camera.
    let photos: Vec<PathBuf> = ["0048", "0102", "0121", "0086"]
        .iter()
        .map(|n| faces.join(format!("Tony_Blair_{n}.jpg")))
        .collect();
    let camera = work.path().join("turning.y4m");
    turning_clip(&photos, &camera);
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    register(&data_dir, &photos[0]);
    let server = Server::start_admin_with(
        &data_dir,
        &[
            "--anonymous-verify",
            "--liveness-test-instruction",
            "turn_left",
        ],
    )
    .await;
    let driver = Driver::start(work.path()).await;
    let kiosk = open_kiosk(&driver, &camera, work.path(), &server).await;
    // Keep the request the page sends to /verify, to send it again afterwards. And hold the
    // challenge's answer back until the clip starts over (its marker turns white), so that the
    // recording, which starts when the answer arrives, starts facing the way the turn starts,
    // however long the challenge took to come.
    kiosk
        .execute(
            &format!(
                "document.querySelector('#status').dataset.state = 'pressed'; \
                 const video = document.querySelector('#video'); \
                 const canvas = document.createElement('canvas'); \
                 canvas.width = {m}; canvas.height = {m}; \
                 const ctx = canvas.getContext('2d', {{ willReadFrequently: true }}); \
                 const clipStart = () => new Promise((resolve) => {{ \
                   const started = performance.now(); \
                   let dark = false; \
                   const check = () => {{ \
                     ctx.drawImage(video, 0, 0, {m}, {m}, 0, 0, {m}, {m}); \
                     const bright = ctx.getImageData({h}, {h}, 1, 1).data[0] > 160; \
                     if (!bright) dark = true; \
                     if (bright && dark) {{ resolve(true); return; }} \
                     if (performance.now() - started > 20000) {{ resolve(false); return; }} \
                     video.requestVideoFrameCallback(check); \
                   }}; \
                   video.requestVideoFrameCallback(check); \
                 }}); \
                 const original = window.fetch; \
                 window.sentVerify = null; \
                 window.markerSeen = null; \
                 window.fetch = async function (url, init) {{ \
                   if (String(url).endsWith('/verify') && init && init.body instanceof FormData) \
                     window.sentVerify = {{ url: String(url), init }}; \
                   const answer = await original.apply(this, arguments); \
                   if (String(url).endsWith('/verify/challenge')) window.markerSeen = await clipStart(); \
                   return answer; \
                 }};",
                m = y4m::MARKER,
                h = y4m::MARKER / 2
            ),
            vec![],
        )
        .await
        .expect("watch the requests");
    kiosk
        .find(Locator::Css("#capture"))
        .await
        .expect("the check-in button")
        .click()
        .await
        .expect("press check in");
    let answer = wait_js(
        &kiosk,
        "the kiosk's answer",
        "const s = document.querySelector('#status'); \
         return ['pressed', 'busy', 'idle'].includes(s.dataset.state) ? null : [s.dataset.state, \
           document.querySelector('#status-title').textContent, document.querySelector('#status-detail').textContent];",
    )
    .await;
    let marker = kiosk
        .execute("return window.markerSeen;", vec![])
        .await
        .expect("the marker");
    assert_eq!(marker, json!(true), "the clip's marker was never seen");
    assert_eq!(
        (&answer[0], &answer[1]),
        (&json!("welcome"), &json!("Welcome, Tony Blair")),
        "{answer}"
    );
    screenshot(&kiosk, "kiosk-liveness-checked-in").await;
    let log = attendance(&server).await;
    let rows: Vec<(&Value, &Value)> = log
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| (&e["last_name"], &e["liveness"]))
        .collect();
    assert_eq!(rows, [(&json!("Blair"), &json!("challenge"))], "{log}");

    // The page's own request, sent again from the page: its nonce is spent.
    let replayed = kiosk
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             const sent = window.sentVerify; \
             if (!sent) { done(null); return; } \
             fetch(sent.url, sent.init) \
               .then((r) => r.json().then((b) => done([r.status, b.error, b.reason]))) \
               .catch((e) => done(String(e)));",
            vec![],
        )
        .await
        .expect("send the request again");
    assert_eq!(
        replayed,
        json!([422, "not_live", "challenge_expired"]),
        "the same nonce twice"
    );
    assert_eq!(
        attendance(&server).await.as_array().map(Vec::len),
        Some(1),
        "still one check-in"
    );
    kiosk.close().await.expect("close the kiosk");
    drop(driver);
}
