//! A person's reference photos on the admin page, in a real headless Chromium against the real
//! `rollcall serve`: a person registered from one photo gets a second one uploaded from the
//! Photos dialog (the card's count becomes 2), a third from the (fake) webcam, loses one again
//! with a two-click delete, and the Settings tab turns kiosk references on.

mod browser_support;
use rollcall_test_support as shared;

use browser_support::signin::{click, click_current, log_in};
use browser_support::{
    screenshot, shared_dir, wait_js, y4m, Driver, Server, ADMIN_PASSWORD, ADMIN_USER,
};
use fantoccini::{Client, Locator};
use serde_json::Value;
use std::path::PathBuf;

fn face(file: &str) -> PathBuf {
    let path = shared_dir().join("fixtures/faces/Tony_Blair").join(file);
    // chromedriver only accepts canonical paths for file uploads.
    path.canonicalize()
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The photo count the person's card shows, once it says `expected`.
async fn wait_card_count(admin: &Client, expected: u32) -> String {
    let want = if expected == 1 {
        "1 photo".to_owned()
    } else {
        format!("{expected} photos")
    };
    let script = format!(
        "const m = document.querySelector('.person .person-faces'); \
         return m && m.textContent.startsWith('{want} ') ? m.textContent : null;"
    );
    wait_js(admin, &format!("the card to say {want}"), &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The photos the dialog lists, once there are `n` of them, each with its caption.
async fn wait_dialog_photos(admin: &Client, n: usize) -> Vec<String> {
    let script = format!(
        "const items = [...document.querySelectorAll('#photos-list .photo-item')]; \
         const loaded = items.every((i) => i.querySelector('img').complete); \
         return items.length === {n} && loaded ? items.map((i) => i.textContent) : null;"
    );
    let items = wait_js(admin, &format!("{n} photos in the dialog"), &script).await;
    items
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn dialog_notice(admin: &Client, containing: &str) -> String {
    let script = format!(
        "const n = document.querySelector('#photos-notice .notice'); \
         return n && n.textContent.includes({containing:?}) ? n.textContent : \
           (n && n.classList.contains('notice-error') ? 'ERROR: ' + n.textContent : null);"
    );
    let text = wait_js(admin, containing, &script).await;
    let text = text.as_str().unwrap_or_default().to_owned();
    assert!(!text.starts_with("ERROR: "), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_and_deleting_a_persons_photos_on_the_admin_page() {
    let work = tempfile::tempdir().expect("temporary directory");
    let camera = work.path().join("tony.y4m");
    y4m::write_from_jpeg(&face("Tony_Blair_0121.jpg"), &camera);
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    let server = Server::start(&data_dir).await;
    let client = server.http();
    let part = reqwest::multipart::Part::bytes(
        std::fs::read(face("Tony_Blair_0048.jpg")).expect("a photo"),
    )
    .file_name("tony.jpg")
    .mime_str("image/jpeg")
    .expect("mime");
    let form = reqwest::multipart::Form::new()
        .text("first_name", "Tony")
        .text("last_name", "Blair")
        .part("image", part);
    let r = client
        .post(format!("{}/register", server.url))
        .multipart(form)
        .send()
        .await
        .expect("POST /register");
    assert_eq!(r.status(), 200);
    let tony: Value = r.json().await.expect("JSON");

    let driver = Driver::start(work.path()).await;
    let admin = driver
        .session(Some(&camera), &work.path().join("profile"), (1366, 768))
        .await;
    admin
        .goto(&format!("{}/admin#people", server.url))
        .await
        .expect("open /admin");
    log_in(&admin, ADMIN_USER, ADMIN_PASSWORD).await;
    wait_card_count(&admin, 1).await;
    // Six tabs fit a laptop's bar: Settings is not scrolled out of sight.
    let fits = admin
        .execute(
            "const t = document.querySelector('#tab-settings').getBoundingClientRect(); \
             const bar = document.querySelector('.tabs').getBoundingClientRect(); \
             return [t.right, bar.right];",
            vec![],
        )
        .await
        .expect("measure the tabs");
    assert!(
        fits[0].as_f64() <= fits[1].as_f64().map(|r| r + 1.0),
        "the Settings tab is cut off: {fits}"
    );

    // The dialog lists the one photo; it cannot be deleted, being the only one.
    click_current(&admin, ".person .person-photos").await;
    let items = wait_dialog_photos(&admin, 1).await;
    assert!(items[0].starts_with("Uploaded"), "{items:?}");
    let only = admin
        .find(Locator::Css("#photos-list .photo-delete"))
        .await
        .expect("the delete button");
    assert!(
        !only.is_enabled().await.expect("enabled?"),
        "the only photo"
    );

    // A second photo, uploaded.
    admin
        .find(Locator::Css("#photos-file"))
        .await
        .expect("the file input")
        .send_keys(&face("Tony_Blair_0102.jpg").display().to_string())
        .await
        .expect("choose a photo");
    dialog_notice(&admin, "The photo was added").await;
    wait_dialog_photos(&admin, 2).await;
    let count = wait_card_count(&admin, 2).await;
    assert!(count.starts_with("2 photos"), "{count}");
    screenshot(&admin, "admin-photos-dialog").await;

    // A third, from the webcam.
    click(&admin, "#photos-webcam").await;
    wait_js(
        &admin,
        "the webcam preview",
        "const v = document.querySelector('#photos-camera video'); \
         return v && v.videoWidth > 0 && !document.querySelector('#photos-snap').hidden;",
    )
    .await;
    click(&admin, "#photos-snap").await;
    dialog_notice(&admin, "The photo was added").await;
    let items = wait_dialog_photos(&admin, 3).await;
    assert!(items[2].starts_with("Webcam"), "{items:?}");
    wait_card_count(&admin, 3).await;

    // Delete the second photo: the first click asks, the second deletes.
    let second = "#photos-list .photo-item:nth-child(2) .photo-delete";
    click_current(&admin, second).await;
    wait_js(
        &admin,
        "the delete button to ask again",
        &format!("const b = document.querySelector('{second}'); return b && b.textContent === 'Delete for good';"),
    )
    .await;
    assert_eq!(
        wait_dialog_photos(&admin, 3).await.len(),
        3,
        "one click deletes nothing"
    );
    click_current(&admin, second).await;
    dialog_notice(&admin, "The photo was deleted").await;
    wait_dialog_photos(&admin, 2).await;
    wait_card_count(&admin, 2).await;
    click(&admin, "#photos-close").await;

    // The server agrees.
    let faces: Value = client
        .get(format!("{}/users/{}/faces", server.url, tony["id"]))
        .send()
        .await
        .expect("GET faces")
        .json()
        .await
        .expect("JSON");
    let sources: Vec<&str> = faces
        .as_array()
        .expect("a list")
        .iter()
        .map(|f| f["source"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(sources, ["upload", "webcam"], "{faces}");

    // Settings: kiosk references on, at most 3.
    admin
        .goto(&format!("{}/admin#settings", server.url))
        .await
        .expect("the settings tab");
    wait_js(
        &admin,
        "the settings",
        "return document.querySelector('#setting-max-refs').value === '5';",
    )
    .await;
    click(&admin, "#setting-kiosk-adds").await;
    browser_support::signin::fill(&admin, "#setting-max-refs", "3").await;
    click(&admin, "#settings-save").await;
    wait_js(
        &admin,
        "the settings saved",
        "const n = document.querySelector('#settings-notice .notice'); return n ? n.textContent : null;",
    )
    .await;
    let settings: Value = client
        .get(format!("{}/settings", server.url))
        .send()
        .await
        .expect("GET /settings")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        settings,
        serde_json::json!({ "kiosk_adds_references": true, "max_references_per_person": 3 })
    );
    admin.close().await.expect("close the page");
    drop(driver);
}
