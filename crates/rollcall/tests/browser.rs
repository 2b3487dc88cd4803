//! The kiosk and admin pages in a real, headless Chromium against the real `rollcall serve`.
//!
//! The camera is Chromium's fake capture device playing a clip made here from an LFW photo. The
//! story: an administrator logs in and registers a person from an uploaded photo; pairs a kiosk
//! from the admin page, whose camera shows *another* photo of that person and which welcomes
//! them; the admin log shows the check-in under the kiosk's name; a kiosk whose camera shows a
//! stranger says "Not recognised" until the administrator registers her from the admin page's
//! webcam, and then welcomes her. Along the way: names with HTML stay text, automatic mode,
//! nobody in front of the camera, a refused camera with the upload fallback, a delete with
//! confirmation, a revoked kiosk key, logging out, and the server going away. A second test
//! covers signing in: the first-run setup link, wrong and right passwords, a viewer's narrower
//! page and the login rate limit. Screenshots of every page at laptop, tablet (upright) and phone
//! sizes land in `target/test-artifacts/screenshots/` for a person to look at.

mod browser_support;
use rollcall_test_support as shared;

use browser_support::signin::{
    clear_notice, click, click_current, create_key, fill, key_row, log_in, log_out, notice_text,
    pair_by_link, pair_kiosk, revoke_key, submit_login, visible_tabs, wait_signed_in,
    wait_unpaired,
};
use browser_support::{
    resize, rollcall, screenshot, shared_dir, wait_js, y4m, Driver, Server, ADMIN_PASSWORD,
    ADMIN_USER,
};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const LAPTOP: (u32, u32) = (1366, 768);
const TABLET: (u32, u32) = (768, 1024);
const PHONE: (u32, u32) = (390, 844);

/// One LFW person, registered from one photo and recognised from another.
const KNOWN: (&str, &str, &str) = ("Tony_Blair", "Tony_Blair_0048.jpg", "Tony_Blair_0102.jpg");
/// Someone never registered.
const STRANGER: (&str, &str) = ("Stacey_Yamaguchi", "Stacey_Yamaguchi_0001.jpg");
/// Registered under a name full of HTML, quotes and emoji, which must show literally.
const TRICKY: (&str, &str) = ("Wen_Jiabao", "Wen_Jiabao_0001.jpg");
const TRICKY_FIRST: &str = "Zoë \"Z\" <i>";
const TRICKY_LAST: &str = "<b>O'Brien</b> 🙂";

fn scene(file: &str) -> PathBuf {
    let path = shared_dir().join("fixtures/scenes").join(file);
    path.canonicalize()
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn face(person: &str, file: &str) -> PathBuf {
    let path = shared_dir().join("fixtures/faces").join(person).join(file);
    // chromedriver only accepts canonical paths for file uploads.
    path.canonicalize()
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_and_admin_in_chromium() {
    let work = tempfile::tempdir().expect("temporary directory");
    let camera_known = work.path().join("known.y4m");
    let camera_stranger = work.path().join("stranger.y4m");
    y4m::write_from_jpeg(&face(KNOWN.0, KNOWN.2), &camera_known);
    y4m::write_from_jpeg(&face(STRANGER.0, STRANGER.1), &camera_stranger);

    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    // One still photo as the camera cannot follow a liveness challenge: this story is about
    // recognition, with single frames (the challenge is `browser_liveness.rs`'s).
    let server = Server::start_admin_with(&data_dir, &["--liveness", "off"]).await;
    let driver = Driver::start(work.path()).await;

    // ---- admin: register two people from uploaded photos --------------------------------------
    let admin = driver
        .session(
            Some(&camera_stranger),
            &work.path().join("profile-admin"),
            LAPTOP,
        )
        .await;
    resize(&admin, LAPTOP).await;
    admin
        .goto(&format!("{}/admin#register", server.url))
        .await
        .expect("open /admin");
    log_in(&admin, ADMIN_USER, ADMIN_PASSWORD).await;
    register(&admin, "Tony", "Blair", &face(KNOWN.0, KNOWN.1)).await;
    register(&admin, TRICKY_FIRST, TRICKY_LAST, &face(TRICKY.0, TRICKY.1)).await;

    admin
        .goto(&format!("{}/admin#people", server.url))
        .await
        .expect("people tab");
    let names = wait_js(
        &admin,
        "two people in the list",
        "const n = [...document.querySelectorAll('#people-list .person-name')].map(e => e.textContent); \
         return n.length === 2 ? n : null;",
    )
    .await;
    assert!(
        names
            .as_array()
            .is_some_and(|n| n.contains(&json!("Tony Blair"))),
        "people: {names}"
    );
    // The threshold in force, derived for the two references now registered.
    let line = wait_js(
        &admin,
        "the threshold line for two people",
        "const t = document.querySelector('#threshold-state').textContent; \
         return t.includes('2 people') ? t : null;",
    )
    .await;
    let rule = rollcall::operating_point::Rule::for_model(
        "face-api-resnet128-flip",
        rollcall::operating_point::DEFAULT_FALSE_ACCEPT_RATE,
        rollcall::domain::Threshold::new(0.962).unwrap(),
    );
    let point = rule.derive(&rollcall::operating_point::ScoreHistogram::default(), 2, 2);
    // The page shows threshold and margin to at most four decimals, without trailing zeros.
    let derived = (f64::from(point.threshold.value()) * 1e4).round() / 1e4;
    let shown = (point.margin * 1e4).round() / 1e4;
    let margin = if shown > 0.0 {
        format!(", margin {shown}")
    } else {
        String::new()
    };
    assert_eq!(
        line,
        json!(format!(
            "threshold in force {derived}{margin} — at most 1 stranger in 1,000 attempts, 2 people"
        ))
    );
    // Escaping: the tricky name is text, not markup.
    let tricky = format!("{TRICKY_FIRST} {TRICKY_LAST}");
    assert!(
        names.as_array().is_some_and(|n| n.contains(&json!(tricky))),
        "people: {names}"
    );
    let injected = admin
        .execute(
            "return document.querySelectorAll('#people-list b, #people-list i').length;",
            vec![],
        )
        .await
        .expect("count injected elements");
    assert_eq!(injected, json!(0), "a user's name was parsed as HTML");
    wait_photos_loaded(&admin).await;
    screenshot(&admin, "admin-people-laptop").await;
    resize(&admin, TABLET).await;
    screenshot(&admin, "admin-people-tablet").await;

    // ---- admin pairs a kiosk; the kiosk opens the link once ----------------------------------
    let link = pair_kiosk(&admin, "Front desk").await;
    assert!(
        link.starts_with(&format!("{}/#pair=rc_", server.url)),
        "pairing link: {link}"
    );
    resize(&admin, LAPTOP).await;
    screenshot(&admin, "admin-keys-laptop").await;
    let kiosk = driver
        .session(
            Some(&camera_known),
            &work.path().join("profile-kiosk"),
            LAPTOP,
        )
        .await;
    resize(&kiosk, LAPTOP).await;
    kiosk.goto(&link).await.expect("open the pairing link");
    wait_camera(&kiosk).await;
    // The key left the address bar (and the history) and stayed in the kiosk's storage; the
    // name shown is the key's, from GET /me.
    let paired = kiosk
        .execute(
            "return [location.href, localStorage.getItem('rollcall.kioskKey'),                document.querySelector('#kiosk-name-value').textContent];",
            vec![],
        )
        .await
        .expect("the kiosk's pairing");
    assert_eq!(paired[0], json!(format!("{}/", server.url)), "{paired}");
    assert_eq!(
        paired[1].as_str(),
        link.split_once("#pair=").map(|(_, key)| key),
        "{paired}"
    );
    assert_eq!(paired[2], json!("Front desk"), "{paired}");
    let (state, title, detail) = check_in(&kiosk).await;
    assert_eq!(
        title, "Welcome, Tony Blair",
        "kiosk said: {state}: {title} / {detail}"
    );
    assert_eq!(state, "welcome", "{title} / {detail}");
    assert!(detail.starts_with("Checked in "), "{detail}");
    screenshot(&kiosk, "kiosk-recognised-laptop").await;
    // Again, at tablet and phone sizes: still welcomed (now or already checked in).
    for (size, name) in [
        (TABLET, "kiosk-recognised-tablet"),
        (PHONE, "kiosk-recognised-phone"),
    ] {
        resize(&kiosk, size).await;
        let (state, title, detail) = check_in(&kiosk).await;
        assert_eq!(title, "Welcome, Tony Blair", "{state}: {detail}");
        assert!(
            state == "welcome" || state == "already",
            "{state}: {title} / {detail}"
        );
        screenshot(&kiosk, name).await;
    }

    // ---- kiosk: a stranger -----------------------------------------------------------------
    let stranger = driver
        .session(
            Some(&camera_stranger),
            &work.path().join("profile-stranger"),
            LAPTOP,
        )
        .await;
    resize(&stranger, LAPTOP).await;
    pair_by_link(&stranger, &server, "Side door").await;
    wait_camera(&stranger).await;
    let (state, title, detail) = check_in(&stranger).await;
    assert_eq!(
        (state.as_str(), title.as_str()),
        ("unknown", "Not recognised"),
        "{detail}"
    );
    screenshot(&stranger, "kiosk-not-recognised-laptop").await;
    resize(&stranger, TABLET).await;
    let (state, _, detail) = check_in(&stranger).await;
    assert_eq!(state, "unknown", "{detail}");
    screenshot(&stranger, "kiosk-not-recognised-tablet").await;
    // Automatic mode sends a frame by itself once switched on.
    mark_pressed(&stranger).await;
    toggle_auto(&stranger).await;
    let (state, _, detail) = answer(&stranger).await;
    assert_eq!(state, "unknown", "automatic mode: {detail}");
    toggle_auto(&stranger).await;

    // ---- kiosk: nobody in front of the camera ---------------------------------------------
    let camera_empty = work.path().join("empty.y4m");
    y4m::write_from_jpeg(&scene("no_face/dog.jpg"), &camera_empty);
    let empty = driver
        .session(
            Some(&camera_empty),
            &work.path().join("profile-empty"),
            PHONE,
        )
        .await;
    resize(&empty, PHONE).await;
    pair_by_link(&empty, &server, "Empty hall").await;
    wait_camera(&empty).await;
    let (state, title, _) = check_in(&empty).await;
    assert_eq!(
        (state.as_str(), title.as_str()),
        ("noface", "No face found — look at the camera")
    );
    screenshot(&empty, "kiosk-no-face-phone").await;
    empty.close().await.expect("close the empty kiosk");

    // ---- kiosk: the camera is refused; a photo upload still checks in ----------------------
    let refused = driver
        .session(None, &work.path().join("profile-refused"), PHONE)
        .await;
    resize(&refused, PHONE).await;
    pair_by_link(&refused, &server, "No camera").await;
    let message = wait_js(
        &refused,
        "the camera refusal",
        "const c = document.querySelector('#camera'); \
         return c.dataset.state === 'failed' ? document.querySelector('#camera-message-text').textContent : null;",
    )
    .await;
    assert!(
        message.as_str().is_some_and(|m| m.contains("denied")),
        "camera message: {message}"
    );
    screenshot(&refused, "kiosk-camera-refused-phone").await;
    let upload = refused
        .find(Locator::Css("#upload"))
        .await
        .expect("upload input");
    upload
        .send_keys(&face(KNOWN.0, KNOWN.2).display().to_string())
        .await
        .expect("choose a photo");
    let answer = wait_js(
        &refused,
        "the answer to the upload",
        "const s = document.querySelector('#status'); \
         return ['busy', 'idle'].includes(s.dataset.state) ? null : document.querySelector('#status-title').textContent;",
    )
    .await;
    assert_eq!(answer, json!("Welcome, Tony Blair"), "upload fallback");
    screenshot(&refused, "kiosk-upload-phone").await;
    refused.close().await.expect("close the refused kiosk");

    // ---- admin: the check-in is in today's summary, the log and the CSV --------------------
    resize(&admin, LAPTOP).await;
    admin
        .goto(&format!("{}/admin#attendance", server.url))
        .await
        .expect("attendance tab");
    admin.refresh().await.expect("reload");
    let rows = wait_js(
        &admin,
        "the check-ins in the log",
        "const r = [...document.querySelectorAll('#log-table tbody tr')] \
           .map(tr => [...tr.cells].map(c => c.textContent)); \
         return r.length ? r : null;",
    )
    .await;
    // Checked in at the kiosk paired from the admin page, recorded under its key's name (the
    // upload later, at another kiosk, fell within the cooldown: "already checked in").
    let rows = rows.as_array().expect("rows");
    assert!(
        rows.iter()
            .all(|r| r[2] == json!("Tony Blair") && r[4] == json!("Front desk")),
        "log: {rows:?}"
    );
    // A short log fits on one page: no "showing the newest 500" note.
    let more_hidden = admin
        .execute("return document.querySelector('#log-more').hidden;", vec![])
        .await
        .expect("the page note");
    assert_eq!(more_hidden, json!(true), "the log's page note");
    let present = wait_js(
        &admin,
        "the day's summary",
        "const r = [...document.querySelectorAll('#summary-table tbody tr td.name')].map(td => td.textContent); \
         return r.length ? r : null;",
    )
    .await;
    assert_eq!(present, json!(["Tony Blair"]), "summary");
    wait_js(
        &admin,
        "the chart",
        "return document.querySelector('#chart svg .bar') !== null;",
    )
    .await;
    let csv_url: Value = admin
        .execute("return document.querySelector('#csv-link').href;", vec![])
        .await
        .expect("CSV link");
    let csv = server
        .http()
        .get(csv_url.as_str().expect("href"))
        .send()
        .await
        .expect("download CSV")
        .text()
        .await
        .expect("CSV text");
    assert!(csv.contains("Blair"), "CSV: {csv}");
    screenshot(&admin, "admin-attendance-laptop").await;
    resize(&admin, TABLET).await;
    screenshot(&admin, "admin-attendance-tablet").await;

    // ---- admin: register form with a photo and its face box, at both sizes ------------------
    admin
        .goto(&format!("{}/admin#register", server.url))
        .await
        .expect("register tab");
    choose_photo(&admin, &face(STRANGER.0, STRANGER.1)).await;
    screenshot(&admin, "admin-register-tablet").await;
    resize(&admin, LAPTOP).await;
    screenshot(&admin, "admin-register-laptop").await;

    // ---- admin: register the stranger from the webcam; the kiosk then knows her -------------
    register_from_webcam(&admin, "Stacey", "Yamaguchi").await;
    screenshot(&admin, "admin-register-webcam-laptop").await;
    let (state, title, detail) = check_in(&stranger).await;
    assert_eq!(
        (state.as_str(), title.as_str()),
        ("welcome", "Welcome, Stacey Yamaguchi"),
        "{detail}"
    );

    // ---- admin: delete with confirmation --------------------------------------------------
    admin
        .goto(&format!("{}/admin#people", server.url))
        .await
        .expect("people tab");
    wait_js(
        &admin,
        "the list",
        "return document.querySelectorAll('#people-list .person').length === 3;",
    )
    .await;
    // The list may be drawn again meanwhile (the tab's load and a reload's): click a current one.
    click_current(&admin, "#people-list .person .btn-danger-ghost").await;
    wait_js(
        &admin,
        "the confirmation",
        "return document.querySelector('#delete-dialog').open;",
    )
    .await;
    screenshot(&admin, "admin-delete-dialog-laptop").await;
    admin
        .find(Locator::Css("#delete-confirm"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("click");
    wait_js(
        &admin,
        "two people left",
        "return document.querySelectorAll('#people-list .person').length === 2;",
    )
    .await;
    let users: Value = server
        .http()
        .get(format!("{}/users", server.url))
        .send()
        .await
        .expect("GET /users")
        .json()
        .await
        .expect("users JSON");
    assert_eq!(users.as_array().map(Vec::len), Some(2), "{users}");

    // ---- admin revokes a kiosk's key: that kiosk forgets it and says it is not paired -------
    revoke_key(&admin, "Side door").await;
    screenshot(&admin, "admin-keys-revoked-laptop").await;
    mark_pressed(&stranger).await;
    click(&stranger, "#capture").await;
    let detail = wait_unpaired(&stranger).await;
    assert!(detail.contains("revoked"), "{detail}");
    screenshot(&stranger, "kiosk-revoked-tablet").await;
    stranger.refresh().await.expect("reload the revoked kiosk");
    let detail = wait_unpaired(&stranger).await;
    assert!(detail.contains("pairs a kiosk once"), "{detail}");
    let camera = stranger
        .execute(
            "return [localStorage.getItem('rollcall.kioskKey'), document.querySelector('#video').srcObject];",
            vec![],
        )
        .await
        .expect("the unpaired kiosk's state");
    assert_eq!(camera, json!([null, null]), "key forgotten, camera off");
    stranger.close().await.expect("close the stranger's kiosk");

    // ---- admin logs out: back to the login screen -------------------------------------------
    log_out(&admin).await;
    admin.close().await.expect("close admin");

    // ---- kiosk: the server goes away -------------------------------------------------------
    drop(server);
    let (state, title, detail) = check_in(&kiosk).await;
    assert_eq!(state, "offline", "{title} / {detail}");
    assert_eq!(title, "Server unreachable", "{detail}");
    screenshot(&kiosk, "kiosk-server-unreachable-phone").await;
    kiosk.close().await.expect("close the kiosk");
    drop(driver);
}

/// Fill the register form, upload `photo`, wait for the face check, save, wait for the answer.
async fn register(admin: &Client, first: &str, last: &str, photo: &Path) {
    fill_names(admin, first, last).await;
    choose_photo(admin, photo).await;
    save_registration(admin, first, last).await;
}

/// Fill the register form, take the photo with the (fake) webcam, save, wait for the answer.
async fn register_from_webcam(admin: &Client, first: &str, last: &str) {
    // The register tab is open (with an uploaded photo from before): start afresh.
    click(admin, "#register-reset").await;
    fill_names(admin, first, last).await;
    click(admin, "#register-webcam").await;
    wait_js(
        admin,
        "the webcam preview",
        "const v = document.querySelector('#panel-register video'); \
         return v && v.videoWidth > 0 && !document.querySelector('#register-snap').hidden;",
    )
    .await;
    click(admin, "#register-snap").await;
    expect_one_face(admin).await;
    save_registration(admin, first, last).await;
}

/// Upload `photo` in the register form and wait for exactly one face to be found.
async fn choose_photo(admin: &Client, photo: &Path) {
    let input = admin
        .find(Locator::Css("#register-file"))
        .await
        .expect("file input");
    input
        .send_keys(&photo.display().to_string())
        .await
        .expect("choose the photo");
    expect_one_face(admin).await;
}

async fn fill_names(admin: &Client, first: &str, last: &str) {
    for (field, value) in [("#first-name", first), ("#last-name", last)] {
        let input = admin
            .wait()
            .for_element(Locator::Css(field))
            .await
            .expect("name field");
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type a name");
    }
}

/// Wait for the register form's face check to find one face and enable "Save".
async fn expect_one_face(admin: &Client) {
    // Waits for the check's end (not a notice left by the photo before: the new photo's decode
    // may not have started when the first look comes) and for "Save" to follow it.
    let found = wait_js(
        admin,
        "the face check",
        "const n = document.querySelector('#detect-result .notice'); \
         const save = document.querySelector('#register-save'); \
         return n && n.textContent && !n.classList.contains('notice-warn') \
           && (!save.disabled || n.classList.contains('notice-error')) ? [n.className, n.textContent] : null;",
    )
    .await;
    assert!(
        found[0].as_str().is_some_and(|c| c.contains("notice-ok")),
        "face check: {found}"
    );
    let enabled = admin
        .find(Locator::Css("#register-save"))
        .await
        .expect("save")
        .is_enabled()
        .await;
    assert!(
        enabled.expect("is enabled"),
        "save stays disabled after a face was found"
    );
}

/// Press "Save person" and wait for the answer, which must be a success.
async fn save_registration(admin: &Client, first: &str, last: &str) {
    click(admin, "#register-save").await;
    let message = wait_js(
        admin,
        "the registration answer",
        "const n = document.querySelector('#detect-result .notice'); \
         return n && !n.textContent.startsWith('Looking') && (n.classList.contains('notice-error') || \
           n.textContent.includes('is registered')) ? n.textContent : null;",
    )
    .await;
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("is registered")),
        "registering {first} {last}: {message}"
    );
}

async fn wait_camera(kiosk: &Client) {
    let state = wait_js(
        kiosk,
        "the camera",
        "const c = document.querySelector('#camera'); const v = document.querySelector('#video'); \
         return c.dataset.state === 'failed' ? 'failed: ' + document.querySelector('#camera-message-text').textContent \
           : (c.dataset.state === 'live' && v.videoWidth > 0 && v.readyState >= 2 ? 'live' : null);",
    )
    .await;
    assert_eq!(state, json!("live"), "the fake camera did not start");
}

/// Press "Check in" and return the (state, title, detail) the kiosk settles on.
async fn check_in(kiosk: &Client) -> (String, String, String) {
    mark_pressed(kiosk).await;
    kiosk
        .find(Locator::Css("#capture"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    answer(kiosk).await
}

/// Mark the status so an answer still on screen from before is not mistaken for the next one.
async fn mark_pressed(kiosk: &Client) {
    kiosk
        .execute(
            "document.querySelector('#status').dataset.state = 'pressed';",
            vec![],
        )
        .await
        .expect("mark status");
}

async fn toggle_auto(kiosk: &Client) {
    let switch = kiosk
        .find(Locator::Css("label.switch"))
        .await
        .expect("switch");
    switch.click().await.expect("click the switch");
}

/// The next (state, title, detail) the kiosk settles on after `mark_pressed`, read at once.
async fn answer(kiosk: &Client) -> (String, String, String) {
    let answer = wait_js(
        kiosk,
        "the kiosk's answer",
        "const s = document.querySelector('#status'); \
         return ['pressed', 'busy', 'idle'].includes(s.dataset.state) ? null : [s.dataset.state, \
           document.querySelector('#status-title').textContent, document.querySelector('#status-detail').textContent];",
    )
    .await;
    let text = |i: usize| answer[i].as_str().unwrap_or_default().to_owned();
    (text(0), text(1), text(2))
}

async fn wait_photos_loaded(admin: &Client) {
    wait_js(
        admin,
        "reference photos",
        "return [...document.querySelectorAll('#people-list img')].every(i => i.complete && i.naturalWidth > 0);",
    )
    .await;
}

// ---- signing in, keys and pairing -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_in_chromium() {
    let work = tempfile::tempdir().expect("temporary directory");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    let server = Server::start_fresh(&data_dir).await;
    let driver = Driver::start(work.path()).await;
    let page = driver
        .session(None, &work.path().join("profile-admin"), LAPTOP)
        .await;
    resize(&page, LAPTOP).await;

    // ---- the first start's setup link creates the first administrator ----------------------
    page.goto(&server.setup_link())
        .await
        .expect("open the setup link");
    wait_js(
        &page,
        "the setup screen",
        "return !document.querySelector('#setup-form').hidden;",
    )
    .await;
    let href = page
        .execute("return location.href;", vec![])
        .await
        .expect("the address");
    assert_eq!(
        href,
        json!(format!("{}/admin", server.url)),
        "the setup token must leave the address bar"
    );
    fill(&page, "#setup-username", "first").await;
    fill(&page, "#setup-password", "a long enough secret").await;
    fill(&page, "#setup-password2", "a long enough secreT").await;
    click(&page, "#setup-submit").await;
    let said = notice_text(&page, "#setup-notice").await;
    assert!(said.contains("not the same"), "{said}");
    screenshot(&page, "admin-setup-laptop").await;
    clear_notice(&page, "#setup-notice").await;
    fill(&page, "#setup-password", "a long enough secret").await;
    fill(&page, "#setup-password2", "a long enough secret").await;
    click(&page, "#setup-submit").await;
    assert_eq!(wait_signed_in(&page).await, json!(["first", "admin"]));
    let tabs = visible_tabs(&page).await;
    assert_eq!(
        tabs,
        json!([
            "People",
            "Register",
            "Attendance",
            "Keys",
            "Audit",
            "Settings"
        ])
    );

    // ---- logout ends the session; a wrong password is refused, the right one lets in --------
    log_out(&page).await;
    submit_login(&page, "first", "not the password").await;
    let said = notice_text(&page, "#login-notice").await;
    assert_eq!(said, "Wrong username or password.");
    screenshot(&page, "admin-login-wrong-laptop").await;
    log_in(&page, "first", "a long enough secret").await;

    // ---- a viewer sees people and attendance, and nothing that changes them ----------------
    rollcall(
        &data_dir,
        &["admin", "add", "watcher", "--role", "viewer"],
        "just looking, thanks\n",
    );
    // A register key made on the keys tab, shown once, registers a person.
    let key = create_key(&page, "enrolment desk", "register").await;
    assert!(
        key.len() == 46 && key.starts_with("rc_"),
        "the key shown: {key}"
    );
    assert_eq!(
        key_row(&page, "enrolment desk").await,
        json!(["register", "Active"])
    );
    screenshot(&page, "admin-key-created-laptop").await;
    // A kiosk key made with "Require liveness" ticked is listed so.
    fill(&page, "#key-name", "hall kiosk").await;
    page.find(Locator::Css("#key-scope"))
        .await
        .expect("the scope")
        .select_by_value("verify")
        .await
        .expect("choose the scope");
    click(&page, "#key-liveness").await;
    click(&page, "#key-submit").await;
    assert_eq!(
        key_row(&page, "hall kiosk").await,
        json!(["verifyliveness required", "Active"])
    );
    assert_eq!(
        page.execute(
            "return document.querySelector('#key-liveness').checked;",
            vec![]
        )
        .await
        .expect("the box"),
        json!(false),
        "the box is cleared for the next key"
    );
    let form = reqwest::multipart::Form::new()
        .text("first_name", "Tony")
        .text("last_name", "Blair")
        .part(
            "image",
            reqwest::multipart::Part::bytes(
                std::fs::read(face(KNOWN.0, KNOWN.1)).expect("a photo"),
            )
            .file_name("tony.jpg")
            .mime_str("image/jpeg")
            .expect("mime"),
        );
    let registered = reqwest::Client::new()
        .post(format!("{}/register", server.url))
        .bearer_auth(key.trim())
        .multipart(form)
        .send()
        .await
        .expect("POST /register");
    assert!(registered.status().is_success(), "{registered:?}");
    // The audit tab shows what was just done, newest first, and by whom.
    page.goto(&format!("{}/admin#audit", server.url))
        .await
        .expect("open the audit tab");
    let entries = wait_js(
        &page,
        "the audit log",
        "const rows = [...document.querySelectorAll('#audit-table tbody tr')] \
           .map(tr => [tr.cells[1].textContent, tr.cells[2].textContent]); \
         return !document.querySelector('#panel-audit').hidden && rows.length >= 3 ? rows : null;",
    )
    .await;
    let entries = entries.as_array().expect("rows");
    assert_eq!(
        entries[0],
        json!(["key:enrolment desk", "register"]),
        "{entries:?}"
    );
    assert!(
        entries.contains(&json!(["account:first", "key_created"]))
            && entries.contains(&json!(["account:first", "login"]))
            && entries.contains(&json!(["anonymous", "login_failed"])),
        "{entries:?}"
    );
    screenshot(&page, "admin-audit-laptop").await;
    log_out(&page).await;
    log_in(&page, "watcher", "just looking, thanks").await;
    assert_eq!(wait_signed_in(&page).await, json!(["watcher", "viewer"]));
    assert_eq!(visible_tabs(&page).await, json!(["People", "Attendance"]));
    wait_js(
        &page,
        "the people list",
        "return document.querySelectorAll('#people-list .person').length === 1;",
    )
    .await;
    wait_photos_loaded(&page).await;
    let controls = page
        .execute(
            // A viewer may look at a person's photos, nothing more.
            "return [document.querySelectorAll('#people-list button:not(.person-photos)').length, \
               document.querySelector('#people-add').hidden];",
            vec![],
        )
        .await
        .expect("the viewer's controls");
    assert_eq!(
        controls,
        json!([0, true]),
        "delete buttons, register button"
    );
    screenshot(&page, "admin-viewer-laptop").await;
    // The keys section cannot be reached by its address either.
    page.goto(&format!("{}/admin#keys", server.url))
        .await
        .expect("#keys");
    let panels = page
        .execute(
            "return [document.querySelector('#panel-keys').hidden, document.querySelector('#panel-people').hidden];",
            vec![],
        )
        .await
        .expect("the panels");
    assert_eq!(panels, json!([true, false]), "a viewer on #keys");

    // ---- a session ended on the server (a password reset) sends the page back to the login ---
    clear_notice(&page, "#login-notice").await;
    rollcall(
        &data_dir,
        &["admin", "reset-password", "watcher"],
        "a brand new password\n",
    );
    click(&page, "#tab-attendance").await;
    let said = notice_text(&page, "#login-notice").await;
    assert_eq!(said, "Your session has ended. Log in again.");
    let gone = page
        .execute(
            "return [document.querySelector('#app').hidden, \
               document.querySelectorAll('#people-list .person, #summary-table tbody tr').length];",
            vec![],
        )
        .await
        .expect("the page after the session ended");
    assert_eq!(
        gone,
        json!([true, 0]),
        "the app hidden and its data cleared"
    );

    // ---- too many wrong passwords: the page says when to try again --------------------------
    let mut said = String::new();
    for _ in 0..8 {
        submit_login(&page, "watcher", "guessing wrong").await;
        said = notice_text(&page, "#login-notice").await;
        if said.starts_with("Too many") {
            break;
        }
        assert_eq!(said, "Wrong username or password.");
    }
    assert!(
        said.starts_with("Too many failed attempts. Try again in "),
        "{said}"
    );
    screenshot(&page, "admin-login-limited-laptop").await;
    page.close().await.expect("close");
    drop(driver);
}

/// A server started with `--anonymous-verify` (a kiosk on a trusted network) lets a kiosk that
/// was never paired check people in, under the name `anonymous`; without the flag the same page
/// says it is not paired (the other tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaired_kiosk_with_anonymous_verify() {
    let work = tempfile::tempdir().expect("temporary directory");
    let camera = work.path().join("stranger.y4m");
    y4m::write_from_jpeg(&face(STRANGER.0, STRANGER.1), &camera);
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    let server = Server::start_with(&data_dir, &["--anonymous-verify", "--liveness", "off"]).await;
    let driver = Driver::start(work.path()).await;
    let kiosk = driver
        .session(Some(&camera), &work.path().join("profile-kiosk"), TABLET)
        .await;
    resize(&kiosk, TABLET).await;
    kiosk.goto(&server.url).await.expect("open the kiosk");
    wait_camera(&kiosk).await;
    let name = kiosk
        .execute(
            "return document.querySelector('#kiosk-name-value').textContent;",
            vec![],
        )
        .await
        .expect("the kiosk's name");
    assert_eq!(name, json!("anonymous"));
    // Nobody is registered: the answer is "Not recognised", not a refusal.
    let (state, title, detail) = check_in(&kiosk).await;
    assert_eq!(
        (state.as_str(), title.as_str()),
        ("unknown", "Not recognised"),
        "{detail}"
    );
    screenshot(&kiosk, "kiosk-anonymous-tablet").await;
    kiosk.close().await.expect("close the kiosk");
    drop(driver);
}

/// A page served from another origin (`localhost` on another port) posts a registration to the
/// server with `fetch(…, {mode: 'no-cors'})`, as a forging page would: the server refuses it
/// before doing anything, and nobody is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_cannot_register_anyone() {
    let work = tempfile::tempdir().expect("temporary directory");
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    let server = Server::start(&data_dir).await;
    let target = format!("{}/register", server.url);
    let photo = std::fs::read(face(KNOWN.0, KNOWN.1)).expect("photo");
    let page = format!(
        "<!doctype html><title>loading</title><script>
         fetch('/photo.jpg').then(r => r.blob()).then(photo => {{
           const form = new FormData();
           form.append('first_name', 'Mallory');
           form.append('last_name', 'Forged');
           form.append('image', photo, 'photo.jpg');
           return fetch('{target}', {{ method: 'POST', mode: 'no-cors', body: form }});
         }}).then(() => {{ document.title = 'sent'; }}, e => {{ document.title = 'failed: ' + e; }});
         </script>"
    );
    let other = evil_site(page, photo).await;

    let driver = Driver::start(work.path()).await;
    let browser = driver
        .session(None, &work.path().join("profile-evil"), LAPTOP)
        .await;
    browser
        .goto(&format!("http://localhost:{other}/"))
        .await
        .expect("open the other origin's page");
    let title = wait_js(
        &browser,
        "the forged request sent",
        "return document.title === 'loading' ? null : document.title;",
    )
    .await;
    assert_eq!(title, json!("sent"), "the page's fetch did not go out");
    let users: Value = reqwest::Client::new()
        .get(format!("{}/users", server.url))
        .bearer_auth(server.admin_key.as_deref().expect("an admin key"))
        .send()
        .await
        .expect("GET /users")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        users,
        json!([]),
        "a page of another origin registered someone"
    );
    let log = server.guard.log_text();
    assert!(
        log.contains("refused a cross-origin request (Sec-Fetch-Site: cross-site)"),
        "the server never saw the forged request:\n{log}"
    );
    browser.close().await.expect("close the browser");
}

/// A one-page web site on another port: `/photo.jpg` is `photo`, anything else is `page`.
async fn evil_site(page: String, photo: Vec<u8>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the other site");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (page, photo) = (page.clone(), photo.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let (kind, body) = if head.starts_with(b"GET /photo.jpg") {
                    ("image/jpeg", photo)
                } else {
                    ("text/html; charset=utf-8", page.into_bytes())
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    port
}

// ---- registering from a group photo ---------------------------------------------------------

/// Two LFW photos side by side in one JPEG (the shorter padded with black below): two faces of
/// one size either side of the centre, so no face is clearly the subject. Returns the left
/// photo's width and height.
fn group_photo(left: &Path, right: &Path, out: &Path) -> (u32, u32) {
    use rollcall_vision::image::decode;
    let open = |p: &Path| {
        decode(&std::fs::read(p).expect("a photo"), Default::default()).expect("decodes")
    };
    let (a, b) = (open(left), open(right));
    let (width, height) = (a.width + b.width, a.height.max(b.height));
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    for (image, x0) in [(&a, 0), (&b, a.width)] {
        let row = (image.width * 3) as usize;
        for y in 0..image.height {
            let from = (y * image.width * 3) as usize;
            let to = ((y * width + x0) * 3) as usize;
            pixels[to..to + row].copy_from_slice(&image.data[from..from + row]);
        }
    }
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(width as usize, height as usize);
    c.set_quality(95.0);
    let mut c = c.start_compress(Vec::new()).expect("jpeg start");
    c.write_scanlines(&pixels).expect("jpeg scanlines");
    std::fs::write(out, c.finish().expect("jpeg finish")).expect("writing the group photo");
    (a.width, a.height)
}

/// Click the photo in the register form at `(x, y)` pixels of the photo, as a person would: a
/// real pointer move and press where the page shows that point.
async fn click_photo_at(admin: &Client, (x, y): (f64, f64)) {
    use fantoccini::actions::InputSource;
    let at = admin
        .execute(
            "const c = document.querySelector('#photo-box canvas'); const r = c.getBoundingClientRect(); \
             const k = Math.min(r.width / c.width, r.height / c.height); \
             return [r.left + (r.width - c.width * k) / 2 + arguments[0] * k, \
                     r.top + (r.height - c.height * k) / 2 + arguments[1] * k];",
            vec![json!(x), json!(y)],
        )
        .await
        .expect("where the point is shown");
    let (vx, vy) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    let mouse = fantoccini::actions::MouseActions::new("mouse".into())
        .then(fantoccini::actions::PointerAction::MoveTo {
            duration: None,
            x: vx.round() as i64,
            y: vy.round() as i64,
        })
        .then(fantoccini::actions::PointerAction::Down {
            button: fantoccini::actions::MOUSE_BUTTON_LEFT,
        })
        .then(fantoccini::actions::PointerAction::Up {
            button: fantoccini::actions::MOUSE_BUTTON_LEFT,
        });
    admin.perform_actions(mouse).await.expect("click the photo");
}

/// The register form's notice once it says something other than "Looking for a face…".
async fn register_notice(admin: &Client, containing: &str) -> String {
    let script = format!(
        "const n = document.querySelector('#detect-result .notice'); \
         return n && n.textContent.includes({}) ? n.textContent : null;",
        json!(containing)
    );
    wait_js(admin, containing, &script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_face_clicked_in_a_group_photo() {
    let work = tempfile::tempdir().expect("temporary directory");
    let group = work.path().join("group.jpg");
    let (left_width, left_height) = group_photo(
        &face(KNOWN.0, KNOWN.1),
        &face(STRANGER.0, STRANGER.1),
        &group,
    );
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data directory");
    let server = Server::start(&data_dir).await;
    let driver = Driver::start(work.path()).await;
    let admin = driver
        .session(None, &work.path().join("profile-admin"), LAPTOP)
        .await;
    resize(&admin, LAPTOP).await;
    admin
        .goto(&format!("{}/admin#register", server.url))
        .await
        .expect("open /admin");
    log_in(&admin, ADMIN_USER, ADMIN_PASSWORD).await;

    // No face is clearly the person: the page says so, and saving waits for a click.
    fill_names(&admin, "Tony", "Blair").await;
    let input = admin
        .find(Locator::Css("#register-file"))
        .await
        .expect("file input");
    input
        .send_keys(&group.canonicalize().expect("a path").display().to_string())
        .await
        .expect("choose the group photo");
    let text = register_notice(&admin, "click the face to register").await;
    assert!(text.contains("faces found and none is clearly"), "{text}");
    let save = admin
        .find(Locator::Css("#register-save"))
        .await
        .expect("save");
    assert!(
        !save.is_enabled().await.expect("enabled?"),
        "save before a face is chosen"
    );
    screenshot(&admin, "admin-register-group").await;

    // Click Tony Blair's face, in the middle of the left photo.
    let centre = (f64::from(left_width) / 2.0, f64::from(left_height) / 2.0);
    click_photo_at(&admin, centre).await;
    let text = register_notice(&admin, "will be registered").await;
    assert!(text.contains("(green)"), "{text}");
    assert!(
        save.is_enabled().await.expect("enabled?"),
        "save after a click"
    );
    save_registration(&admin, "Tony", "Blair").await;

    // The face clicked is the one registered: another photo of Tony Blair is recognised as him.
    let client = server.http();
    let verify = |photo: PathBuf| {
        let client = client.clone();
        let url = format!("{}/verify", server.url);
        async move {
            let part = reqwest::multipart::Part::bytes(std::fs::read(photo).expect("a photo"))
                .file_name("frame.jpg")
                .mime_str("image/jpeg")
                .expect("mime");
            let r = client
                .post(url)
                .multipart(reqwest::multipart::Form::new().part("image", part))
                .send()
                .await
                .expect("POST /verify");
            r.json::<Value>().await.expect("JSON")
        }
    };
    let v = verify(face(KNOWN.0, KNOWN.2)).await;
    assert_eq!(
        (v["first_name"].as_str(), v["last_name"].as_str()),
        (Some("Tony"), Some("Blair")),
        "{v}"
    );

    // The same face again, under one name: the page names whose face it is and offers to
    // register it anyway.
    fill_names(&admin, "Anthony", "").await;
    let input = admin
        .find(Locator::Css("#register-file"))
        .await
        .expect("file input");
    input
        .send_keys(&group.canonicalize().expect("a path").display().to_string())
        .await
        .expect("choose the group photo");
    register_notice(&admin, "click the face to register").await;
    click_photo_at(&admin, centre).await;
    register_notice(&admin, "will be registered").await;
    click(&admin, "#register-save").await;
    let text = register_notice(&admin, "already belongs to").await;
    assert!(
        text.contains("This face already belongs to Tony Blair"),
        "{text}"
    );
    click(&admin, "#register-anyway").await;
    let text = register_notice(&admin, "is registered").await;
    assert!(
        text.starts_with("Anthony is registered"),
        "one name, no stray space: {text}"
    );
    let users: Value = client
        .get(format!("{}/users", server.url))
        .send()
        .await
        .expect("GET /users")
        .json()
        .await
        .expect("JSON");
    assert_eq!(users.as_array().map(Vec::len), Some(2), "{users}");
}
