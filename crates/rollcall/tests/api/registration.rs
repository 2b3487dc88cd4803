//! Registration that helps instead of refusing: choosing a face in a group photo, duplicates,
//! quality refusals with advice, people with one name.

use crate::helpers::{fixture, image_part, photos_of, tony_blair, Form, TestApp};
use crate::multi_face::side_by_side;
use rollcall::audit::AuditRecord;
use rollcall_vision::image::{decode, RgbImage};
use serde_json::Value;

const HUGO: &str = "Hugo_Chavez";

fn encode(image: &RgbImage) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(image.width as usize, image.height as usize);
    c.set_quality(95.0);
    let mut c = c.start_compress(Vec::new()).expect("jpeg start");
    c.write_scanlines(&image.data).expect("jpeg scanlines");
    c.finish().expect("jpeg finish")
}

fn open(rel: &str) -> RgbImage {
    decode(&fixture(rel), Default::default()).expect("a fixture decodes")
}

/// A registration form: `fields` as text, then one image.
fn form(fields: &[(&str, &str)], image: Vec<u8>) -> Form {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    form.part("image", image_part(image, "photo.jpg"))
}

async fn register(app: &TestApp, fields: &[(&str, &str)], image: Vec<u8>) -> (u16, Value) {
    let r = app.post_form("/register", form(fields, image)).await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

async fn add_face(app: &TestApp, id: i64, fields: &[(&str, &str)], image: Vec<u8>) -> (u16, Value) {
    let r = app
        .post_form(&format!("/users/{id}/faces"), form(fields, image))
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

/// Tony Blair and Hugo Chavez side by side: two faces of one size either side of the centre.
fn pair_photo() -> (Vec<u8>, u32) {
    let left = &tony_blair()[0];
    (side_by_side(left, &photos_of(HUGO)[0]), open(left).width)
}

/// The boxes `/detect` gives for `image`, in its order.
async fn detected_boxes(app: &TestApp, image: Vec<u8>) -> Vec<Vec<f64>> {
    let r = app
        .post_form(
            "/detect",
            Form::new().part("image", image_part(image, "p.jpg")),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    boxes(&body["faces"])
}

/// `/detect`'s `subject` for `image`.
async fn detected_subject(app: &TestApp, image: Vec<u8>) -> Value {
    let r = app
        .post_form(
            "/detect",
            Form::new().part("image", image_part(image, "p.jpg")),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    body["subject"].clone()
}

fn boxes(faces: &Value) -> Vec<Vec<f64>> {
    faces
        .as_array()
        .unwrap_or_else(|| panic!("no faces: {faces}"))
        .iter()
        .map(|f| {
            f["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}

async fn a_group_photo_without_a_clear_subject_lists_its_faces(app: TestApp) {
    let (photo, _) = pair_photo();
    let before = app.snapshot().await;
    let (status, body) = register(
        &app,
        &[("first_name", "Tony"), ("last_name", "Blair")],
        photo.clone(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "several_faces", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`face`"),
        "{body}"
    );
    let faces = body["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2, "{body}");
    for (i, f) in faces.iter().enumerate() {
        assert_eq!(f["index"], i, "{body}");
        assert!(f["probability"].as_f64().unwrap() > 0.9, "{body}");
    }
    // In the order and with the boxes `/detect` gives, so a client can choose from either.
    assert_eq!(
        boxes(&body["faces"]),
        detected_boxes(&app, photo.clone()).await
    );
    // `/detect` says there is no clear subject here, and names it in a photo of one person.
    assert_eq!(detected_subject(&app, photo).await, Value::Null);
    let alone = fixture(&tony_blair()[0]);
    assert_eq!(detected_subject(&app, alone).await, 0);
    assert_eq!(app.snapshot().await, before, "nothing stored");
}

async fn a_face_is_chosen_by_index_or_by_box(app: TestApp) {
    let (photo, split) = pair_photo();
    let faces = detected_boxes(&app, photo.clone()).await;
    assert_eq!(faces.len(), 2);
    let left = faces
        .iter()
        .position(|b| b[2] <= f64::from(split))
        .expect("a face on the left");
    let right = 1 - left;

    let index = left.to_string();
    let (status, tony) = register(
        &app,
        &[
            ("first_name", "Tony"),
            ("last_name", "Blair"),
            ("face", &index),
        ],
        photo.clone(),
    )
    .await;
    assert_eq!(status, 200, "{tony}");
    // The chosen face is the one registered: another photo of Tony Blair is recognised as him.
    let r = app.verify(&tony_blair()[1]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], tony["id"], "{v}");

    // A box a few pixels off the detected one still names it.
    let b = &faces[right];
    let sent = format!(
        "{},{},{},{}",
        b[0] + 3.0,
        b[1] - 2.0,
        b[2] + 2.0,
        b[3] + 3.0
    );
    let (status, hugo) = register(
        &app,
        &[
            ("first_name", "Hugo"),
            ("last_name", "Chavez"),
            ("box", &sent),
        ],
        photo,
    )
    .await;
    assert_eq!(status, 200, "{hugo}");
    let r = app.verify(&photos_of(HUGO)[0]).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], hugo["id"], "{v}");
}

async fn bad_face_choices_are_refused_and_nothing_is_stored(app: TestApp) {
    let (photo, _) = pair_photo();
    let before = app.snapshot().await;
    let name = [("first_name", "Tony"), ("last_name", "Blair")];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("face", "-1")], "not a face index"),
        (&[("face", "first")], "not a face index"),
        (&[("face", "NaN")], "not a face index"),
        (&[("face", "1.0")], "not a face index"),
        (&[("face", "2")], "2 face(s)"),
        (&[("face", "0"), ("face", "1")], "more than once"),
        (&[("face", "0"), ("box", "0,0,10,10")], "not both"),
        (&[("box", "1,2,3")], "four numbers"),
        (&[("box", "NaN,0,100,100")], "not negative"),
        (&[("box", "-5,0,100,100")], "not negative"),
        (&[("box", "100,0,50,100")], "x2 > x1"),
        (&[("box", "0,0,20,20")], "no detected face overlaps"),
    ];
    for (fields, says) in cases {
        let all: Vec<(&str, &str)> = name.iter().chain(fields.iter()).copied().collect();
        let (status, body) = register(&app, &all, photo.clone()).await;
        assert_eq!(status, 400, "{fields:?}: {body}");
        assert_eq!(body["error"], "bad_request", "{fields:?}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{fields:?}: {message}");
    }
    // A choice that names no face lists the faces there are.
    let all = [name[0], name[1], ("face", "7")];
    let (_, body) = register(&app, &all, photo).await;
    assert_eq!(body["faces"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(app.snapshot().await, before, "nothing stored");
}

/// Two registrations of one photo at the same moment (the server analyses two photos at once):
/// one person, and a 409 for the other, every time.
async fn one_face_registered_twice_at_once_is_one_person(app: TestApp) {
    let people = [
        "Tony_Blair",
        "Silvio_Berlusconi",
        "Wen_Jiabao",
        "David_Beckham",
        "Tiger_Woods",
    ];
    for (round, person) in people.iter().enumerate() {
        let photo = &crate::helpers::photos_of(person)[0];
        let last = format!("Round{round}");
        let (a, b) = tokio::join!(
            app.register("First", &last, photo),
            app.register("Second", &last, photo)
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{person}");
    }
    assert_eq!(app.snapshot().await.users.len(), people.len());
}

async fn a_registered_face_is_a_duplicate_unless_allowed(app: TestApp) {
    let photos = tony_blair();
    let tony = app.register_ok("Tony", "Blair", &photos[0]).await;
    let before = app.snapshot().await;
    let again = [("first_name", "Anthony"), ("last_name", "Blair")];
    let (status, body) = register(&app, &again, fixture(&photos[1])).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "duplicate");
    assert_eq!(body["person"]["id"], tony, "{body}");
    assert_eq!(body["person"]["first_name"], "Tony");
    assert_eq!(body["person"]["last_name"], "Blair");
    let similarity = body["similarity"].as_f64().unwrap();
    assert!(similarity >= body["threshold"].as_f64().unwrap(), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Tony Blair"),
        "{body}"
    );
    assert_eq!(app.snapshot().await, before, "nothing stored");

    for bad in ["yes", "", "2", "TRUE "] {
        let fields = [again[0], again[1], ("allow_duplicate", bad)];
        let (status, body) = register(&app, &fields, fixture(&photos[1])).await;
        // An empty value is read as false (like `history=`): still the duplicate.
        let expected = if bad.is_empty() { 409 } else { 400 };
        assert_eq!(status, expected, "allow_duplicate={bad:?}: {body}");
    }
    let fields = [again[0], again[1], ("allow_duplicate", "false")];
    assert_eq!(register(&app, &fields, fixture(&photos[1])).await.0, 409);
    assert_eq!(app.snapshot().await, before, "nothing stored");

    let fields = [again[0], again[1], ("allow_duplicate", "true")];
    let (status, body) = register(&app, &fields, fixture(&photos[1])).await;
    assert_eq!(status, 200, "{body}");
    let log: Vec<AuditRecord> = app.get_json("/audit").await;
    let forced = log.iter().find(|e| e.action == "register").unwrap();
    assert_eq!(
        forced.detail.as_deref(),
        Some(format!("1 face(s); duplicate of user:{tony} allowed").as_str())
    );
}

async fn adding_someone_elses_face_is_a_duplicate(app: TestApp) {
    let photos = tony_blair();
    let tony = app.register_ok("Tony", "Blair", &photos[0]).await;
    let hugo = app.register_ok("Hugo", "Chavez", &photos_of(HUGO)[0]).await;
    let before = app.snapshot().await;
    // Tony's face on Hugo's record would check Tony in as Hugo.
    let (status, body) = add_face(&app, hugo, &[], fixture(&photos[1])).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "duplicate");
    assert_eq!(body["person"]["id"], tony, "{body}");
    assert_eq!(app.snapshot().await, before, "nothing stored");
    let user: Value = app.get_json(&format!("/users/{hugo}")).await;
    assert_eq!(user["faces"], 1);
    // Tony's own second face is what add-face is for.
    let (status, body) = add_face(&app, tony, &[], fixture(&photos[1])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"], 2);
    // Forced, it is stored and the audit entry says so.
    let (status, body) =
        add_face(&app, hugo, &[("allow_duplicate", "1")], fixture(&photos[2])).await;
    assert_eq!(status, 200, "{body}");
    let log: Vec<AuditRecord> = app.get_json("/audit").await;
    let forced = log.iter().find(|e| e.action == "add_face").unwrap();
    assert_eq!(
        forced.target.as_deref(),
        Some(format!("user:{hugo}").as_str())
    );
    assert_eq!(
        forced.detail.as_deref(),
        Some(format!("duplicate of user:{tony} allowed").as_str())
    );
}

/// Tony Blair's photo made worse in one way.
fn degraded(f: impl Fn(&RgbImage) -> RgbImage) -> Vec<u8> {
    encode(&f(&open(&tony_blair()[0])))
}

fn scaled(image: &RgbImage, factor: f32) -> RgbImage {
    let w = (image.width as f32 * factor).round() as u32;
    let h = (image.height as f32 * factor).round() as u32;
    rollcall_vision::crop::pil_bilinear_resize(image, w, h)
}

fn blurred(image: &RgbImage, radius: usize) -> RgbImage {
    // Three box blurs: close to a Gaussian of σ ≈ radius.
    let (w, h) = (image.width as usize, image.height as usize);
    let mut data = image.data.clone();
    for _ in 0..3 {
        for horizontal in [true, false] {
            let src = data.clone();
            for y in 0..h {
                for x in 0..w {
                    for c in 0..3 {
                        let mut sum = 0u32;
                        for k in 0..=2 * radius {
                            let (xx, yy) = if horizontal {
                                ((x + k).saturating_sub(radius).min(w - 1), y)
                            } else {
                                (x, (y + k).saturating_sub(radius).min(h - 1))
                            };
                            sum += u32::from(src[(yy * w + xx) * 3 + c]);
                        }
                        data[(y * w + x) * 3 + c] = (sum / (2 * radius as u32 + 1)) as u8;
                    }
                }
            }
        }
    }
    RgbImage {
        width: image.width,
        height: image.height,
        data,
    }
}

fn darkened(image: &RgbImage, factor: f32) -> RgbImage {
    RgbImage {
        width: image.width,
        height: image.height,
        data: image
            .data
            .iter()
            .map(|&v| (f32::from(v) * factor) as u8)
            .collect(),
    }
}

async fn poor_photos_are_refused_with_advice(app: TestApp) {
    let cases = [
        (degraded(|i| scaled(i, 0.22)), "too_small", "come closer"),
        (degraded(|i| blurred(i, 4)), "blurred", "hold still"),
        (degraded(|i| darkened(i, 0.12)), "too_dark", "more light"),
        (fixture(TURNED), "turned", "face the camera"),
    ];
    let before = app.snapshot().await;
    for (photo, reason, advice) in &cases {
        let (status, body) = register(
            &app,
            &[("first_name", "Tony"), ("last_name", "Blair")],
            photo.clone(),
        )
        .await;
        assert_eq!(status, 400, "{reason}: {body}");
        assert_eq!(body["error"], "poor_quality", "{reason}: {body}");
        assert_eq!(body["reason"], *reason, "{body}");
        assert!(body["message"].as_str().unwrap().contains(advice), "{body}");
        assert!(
            body["measured"].is_number() && body["limit"].is_number(),
            "{body}"
        );
    }
    assert_eq!(app.snapshot().await, before, "nothing stored");
    // The same checks guard add-face, and never /verify.
    let tony = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let (status, body) = add_face(&app, tony, &[], cases[2].0.clone()).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (400, Some("too_dark")),
        "{body}"
    );
    let r = app
        .verify_bytes(degraded(|i| darkened(i, 0.5)), "dim.jpg")
        .await;
    assert_eq!(r.status(), 200, "a dim frame is still recognised");
}

/// An LFW photo with the head turned well away from the camera (yaw 0.53, the most turned of
/// the first 500 people by name).
const TURNED: &str = "faces/Christine_Todd_Whitman/Christine_Todd_Whitman_0002.jpg";

async fn a_person_with_one_name_is_registered_listed_and_recognised(app: TestApp) {
    let photos = tony_blair();
    let form = Form::new()
        .text("first_name", "Bono")
        .part("image", image_part(fixture(&photos[0]), "bono.jpg"));
    let r = app.post_form("/register", form).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["first_name"], "Bono", "{body}");
    assert_eq!(body["last_name"], "", "{body}");
    // An empty last name is one name too; an invisible one is refused.
    let (status, pele) = register(
        &app,
        &[("first_name", "Pelé"), ("last_name", "  ")],
        fixture(&photos_of(HUGO)[0]),
    )
    .await;
    assert_eq!(
        (status, pele["last_name"].as_str()),
        (200, Some("")),
        "{pele}"
    );
    let (status, body) = register(
        &app,
        &[("first_name", "Cher"), ("last_name", "\u{200B}")],
        fixture(&photos_of(HUGO)[0]),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_name")),
        "{body}"
    );

    let users: Value = app.get_json("/users").await;
    let names: Vec<(&str, &str)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["first_name"].as_str().unwrap(),
                u["last_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        names.contains(&("Bono", "")) && names.contains(&("Pelé", "")),
        "{users}"
    );

    let v: Value = app.verify(&photos[1]).await.json().await.unwrap();
    assert_eq!(
        (v["first_name"].as_str(), v["last_name"].as_str()),
        (Some("Bono"), Some("")),
        "{v}"
    );
    let csv = app.get("/attendance.csv").await.text().await.unwrap();
    assert!(
        csv.lines().any(|l| l.contains(",Bono,,")),
        "one name, an empty last name column: {csv}"
    );
}

crate::on_both_backends!(
    a_group_photo_without_a_clear_subject_lists_its_faces,
    a_face_is_chosen_by_index_or_by_box,
    bad_face_choices_are_refused_and_nothing_is_stored,
    a_registered_face_is_a_duplicate_unless_allowed,
    one_face_registered_twice_at_once_is_one_person,
    adding_someone_elses_face_is_a_duplicate,
    poor_photos_are_refused_with_advice,
    a_person_with_one_name_is_registered_listed_and_recognised,
);
