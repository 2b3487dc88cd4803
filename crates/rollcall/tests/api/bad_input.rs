//! Refused requests: each answers a JSON error and changes nothing in the database or img_refs/.
//! Names with quotes, SQL and emoji are not bad input: they are stored and returned intact.

use crate::helpers::{
    fixture, image_part, photos_of, spawn_app_with, tony_blair, Backend, Form, TestApp, TestConfig,
};
use serde_json::Value;

/// A PNG whose header declares 100000×100000 pixels (and has no pixel data).
fn huge_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    png.extend((13u32).to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// POST /register with these parts, expect `status` and `code`, and no change at all.
async fn refused(app: &TestApp, form: Form, status: u16, codes: &[&str]) -> Value {
    let before = app.snapshot().await;
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.expect("a JSON error body");
    let code = body["error"].as_str().unwrap_or_default();
    assert!(codes.contains(&code), "expected {codes:?}, got {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused request changed something ({code})"
    );
    body
}

fn photo_part() -> reqwest::multipart::Part {
    image_part(fixture(&tony_blair()[0]), "tony.jpg")
}

async fn bad_registrations_change_nothing(app: TestApp) {
    // A registered person first, so that "nothing changed" is about a non-empty state (someone
    // else than the photo the forms send, which would be refused as a duplicate first).
    app.register_ok("Hugo", "Chavez", &photos_of("Hugo_Chavez")[0])
        .await;

    let named = || {
        Form::new()
            .text("first_name", "Ada")
            .text("last_name", "Lovelace")
    };
    refused(
        &app,
        Form::new()
            .text("last_name", "Lovelace")
            .part("image", photo_part()),
        400,
        &["missing_field"],
    )
    .await;
    // No `last_name` is a person with one name (registration.rs); a blank first name is not.
    refused(
        &app,
        Form::new()
            .text("first_name", " ")
            .part("image", photo_part()),
        400,
        &["empty_field"],
    )
    .await;
    refused(&app, named(), 400, &["missing_field"]).await;
    // The photo under another field name: reported as the missing `image`, not as bad text.
    refused(
        &app,
        named().part("photo", photo_part()),
        400,
        &["missing_field"],
    )
    .await;
    refused(
        &app,
        Form::new()
            .text("first_name", "  ")
            .text("last_name", "Lovelace")
            .part("image", photo_part()),
        400,
        &["empty_field"],
    )
    .await;
    refused(
        &app,
        named().part("image", image_part(Vec::new(), "empty.jpg")),
        400,
        &["empty_field"],
    )
    .await;
    refused(
        &app,
        named().part(
            "image",
            image_part(b"GIF89a not an image".to_vec(), "x.jpg"),
        ),
        400,
        &["unsupported_image"],
    )
    .await;
    refused(
        &app,
        named().part("image", image_part(b"%PDF-1.4 hello".to_vec(), "x.png")),
        400,
        &["unsupported_image"],
    )
    .await;

    let jpeg = fixture(&tony_blair()[1]);
    let truncated = jpeg[..jpeg.len().min(600)].to_vec();
    refused(
        &app,
        named().part("image", image_part(truncated, "cut.jpg")),
        400,
        &["invalid_image", "no_face"],
    )
    .await;
    let mut garbled = jpeg[..20].to_vec();
    garbled.extend(std::iter::repeat_n(0x55u8, 2000));
    refused(
        &app,
        named().part("image", image_part(garbled, "garbled.jpg")),
        400,
        &["invalid_image", "no_face"],
    )
    .await;
    refused(
        &app,
        named().part("image", image_part(huge_png(), "huge.png")),
        400,
        &["image_too_large"],
    )
    .await;

    // A second image that fails refuses the whole registration.
    let two = named().part("image", photo_part()).part(
        "image",
        image_part(fixture("scenes/no_face/dog.jpg"), "dog.jpg"),
    );
    let body = refused(&app, two, 400, &["no_face"]).await;
    // The message names which image; the first image's errors read as the seed's single-photo
    // API's did.
    assert_eq!(
        body["message"], "image 2: no face was found in the photo",
        "{body}"
    );
    let first_fails = named()
        .part(
            "image",
            image_part(fixture("scenes/no_face/dog.jpg"), "dog.jpg"),
        )
        .part("image", photo_part());
    let body = refused(&app, first_fails, 400, &["no_face"]).await;
    assert_eq!(body["message"], "no face was found in the photo", "{body}");

    // Three faces of similar size: none is clearly the person to register.
    let group = named().part(
        "image",
        image_part(fixture("scenes/group/2008_002506.jpg"), "g.jpg"),
    );
    let before = app.snapshot().await;
    let r = app.post_form("/register", group).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "several_faces");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("faces were found"),
        "{body}"
    );
    assert_eq!(app.snapshot().await, before);

    // Not multipart at all.
    let before = app.snapshot().await;
    let r = app
        .client
        .post(app.url("/register"))
        .body("first_name=Ada")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_request");
    assert_eq!(app.snapshot().await, before);
}

async fn names_with_quotes_sql_and_emoji_are_kept_intact(app: TestApp) {
    let first = "Zoë \"Z\" O'Neil";
    let last = "Robert'); DROP TABLE users;-- 🙂👩‍💻";
    let id = app.register_ok(first, last, &tony_blair()[0]).await;
    let user: Value = app.get_json(&format!("/users/{id}")).await;
    assert_eq!(user["first_name"], first);
    assert_eq!(user["last_name"], last);
    let listed: Value = app.get_json("/users").await;
    assert_eq!(listed[0]["last_name"], last);
    let v: Value = app.verify(&tony_blair()[1]).await.json().await.unwrap();
    assert_eq!(v["last_name"], last);
    let csv = app.get("/attendance.csv").await.text().await.unwrap();
    assert!(csv.contains("DROP TABLE users;-- 🙂👩‍💻"), "{csv}");
}

async fn bad_verifies_are_refused(app: TestApp) {
    app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let before = app.snapshot().await;
    let r = app
        .post_form("/verify", Form::new().text("kiosk", "door"))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "missing_field");
    let r = app.verify_bytes(b"not an image".to_vec(), "x.jpg").await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_image"
    );
    let r = app.verify_bytes(huge_png(), "huge.png").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "image_too_large");
    assert_eq!(app.snapshot().await, before);
}

/// POST /detect with these parts: the status and the body.
async fn detect(app: &TestApp, form: Form) -> (u16, Value) {
    let r = app.post_form("/detect", form).await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

async fn bad_detects_are_refused_and_no_face_is_an_empty_list(app: TestApp) {
    let (status, body) = detect(&app, Form::new().text("kiosk", "door")).await;
    assert_eq!((status, &body["error"]), (400, &"missing_field".into()));
    let garbage = Form::new().part("image", image_part(b"\x00\x01garbage".to_vec(), "x.jpg"));
    let (status, body) = detect(&app, garbage).await;
    assert_eq!((status, &body["error"]), (400, &"unsupported_image".into()));
    let jpeg = fixture(&tony_blair()[0]);
    let truncated = Form::new().part("image", image_part(jpeg[..600].to_vec(), "cut.jpg"));
    let (status, body) = detect(&app, truncated).await;
    assert_eq!((status, &body["error"]), (400, &"invalid_image".into()));
    let two = Form::new()
        .part("image", photo_part())
        .part("image", photo_part());
    let (status, body) = detect(&app, two).await;
    assert_eq!((status, &body["error"]), (400, &"bad_request".into()));

    // No face is not an error for /detect: the admin page shows "no face found".
    let cup = Form::new().part(
        "image",
        image_part(fixture("scenes/no_face/coffee_cup.png"), "cup.png"),
    );
    let (status, body) = detect(&app, cup).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"], serde_json::json!([]), "{body}");
    assert!(body["width"].as_u64().is_some_and(|w| w > 0), "{body}");
}

/// /verify takes one photo: two `image` parts are refused and nobody is checked in.
async fn a_verify_with_two_images_is_refused(app: TestApp) {
    let photos = tony_blair();
    app.register_ok("Tony", "Blair", &photos[0]).await;
    let before = app.snapshot().await;
    let form = Form::new()
        .text("kiosk", "door")
        .part("image", image_part(fixture(&photos[1]), "a.jpg"))
        .part("image", image_part(fixture(&photos[2]), "b.jpg"));
    let r = app.post_form("/verify", form).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("one `image`"),
        "{body}"
    );
    assert_eq!(app.snapshot().await, before);
}

crate::on_both_backends!(
    bad_registrations_change_nothing,
    names_with_quotes_sql_and_emoji_are_kept_intact,
    bad_verifies_are_refused,
    bad_detects_are_refused_and_no_face_is_an_empty_list,
    a_verify_with_two_images_is_refused,
);

/// Over the upload limit: 413 with a JSON body, nothing stored, on /register and /verify.
/// (SQLite only: the limit is enforced before any database work.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_is_413() {
    let limit = 200 * 1024;
    let app = spawn_app_with(
        Backend::Sqlite,
        TestConfig {
            max_upload_bytes: limit,
            ..Default::default()
        },
    )
    .await;
    let before = app.snapshot().await;
    let mut big = fixture(&tony_blair()[0]);
    big.resize(limit + 64 * 1024, 0);
    let form = Form::new()
        .text("first_name", "Big")
        .text("last_name", "Upload")
        .part("image", image_part(big, "big.jpg"));
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    assert_eq!(app.snapshot().await, before);

    // A registered person's photo, padded past the limit: refused before it is looked at.
    app.register_ok("Tony", "Blair", &tony_blair()[1]).await;
    let before = app.snapshot().await;
    let mut big = fixture(&tony_blair()[2]);
    big.resize(limit + 64 * 1024, 0);
    let r = app.verify_bytes(big, "big.jpg").await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large", "{body}");
    assert_eq!(app.snapshot().await, before);
}
