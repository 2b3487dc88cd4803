//! The kiosk's liveness challenge in a real, headless Chromium against the real `rollcall
//! serve` (default `--liveness challenge`): a registered person's still photo as the camera —
//! a picture held up to the kiosk — is asked to turn their head, the page shows the
//! instruction with its progress ring while it records, sends the frames, and says why they
//! were refused in words a person can act on. Nobody is checked in.

mod browser_support;
use rollcall_test_support as shared;

use browser_support::{models_dir, rollcall, screenshot, shared_dir, wait_js, y4m, Driver, Server};
use fantoccini::Locator;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_photo_at_the_kiosk_is_not_checked_in() {
    let work = tempfile::tempdir().expect("temporary directory");
    let faces = shared_dir().join("fixtures/faces/Tony_Blair");
    let camera = work.path().join("still.y4m");
    y4m::write_from_jpeg(&faces.join("Tony_Blair_0102.jpg"), &camera);
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    let models = models_dir();
    let reference = faces.join("Tony_Blair_0048.jpg");
    rollcall(
        &data_dir,
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
    let server = Server::start_admin_with(&data_dir, &["--anonymous-verify"]).await;
    let driver = Driver::start(work.path()).await;
    let kiosk = driver
        .session(
            Some(&camera),
            &work.path().join("profile-kiosk"),
            (1366, 768),
        )
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
    let log: Value = server
        .http()
        .get(format!("{}/attendance", server.url))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(log, json!([]), "nobody is checked in");
    kiosk.close().await.expect("close the kiosk");
    drop(driver);
}
