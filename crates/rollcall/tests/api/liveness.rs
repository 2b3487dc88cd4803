//! Liveness from a sequence of frames: `POST /verify/challenge`, then `POST /verify` with the
//! nonce and the frames. There are no videos here, so sequences are built from still photos:
//! a bona fide turn from four LFW photos of one person ordered by their measured yaw (LFW
//! centres each face, so the face box stays put from photo to photo and the track holds; the
//! four agree with one another at 0.97–0.98, as frames of one session do — photos of one
//! person from different days agree far less, down to 0.90), and attacks from one still photo
//! (repeated, or warped as a picture held at changing angles).

use crate::helpers::{client_with_key, fixture, image_part, photos_of, Form, TestApp, TestConfig};
use rollcall::liveness::pose::yaw;
use rollcall::liveness::synth::{jpeg, warp, Pose};
use rollcall::liveness::Instruction;
use rollcall_vision::image::decode;
use serde_json::Value;

async fn new_challenge(app: &TestApp) -> Value {
    new_challenge_as(app, &app.client).await
}

async fn new_challenge_as(app: &TestApp, client: &reqwest::Client) -> Value {
    let r = client
        .post(app.url("/verify/challenge"))
        .send()
        .await
        .expect("request");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body
}

async fn send(app: &TestApp, nonce: &str, frames: &[Vec<u8>]) -> (u16, Value) {
    send_as(app, &app.client, nonce, frames).await
}

async fn send_as(
    app: &TestApp,
    client: &reqwest::Client,
    nonce: &str,
    frames: &[Vec<u8>],
) -> (u16, Value) {
    let form = frames.iter().enumerate().fold(
        Form::new().text("challenge", nonce.to_owned()),
        |form, (i, bytes)| form.part("image", image_part(bytes.clone(), &format!("f{i}.jpg"))),
    );
    let r = client
        .post(app.url("/verify"))
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

fn instruction_of(challenge: &Value) -> Instruction {
    Instruction::parse(challenge["instruction"]["kind"].as_str().expect("a kind"))
        .expect("a known instruction")
}

/// The yaw of the one face `/detect` finds in `bytes` (`None` without exactly one face).
async fn measured_yaw(app: &TestApp, bytes: &[u8]) -> Option<f32> {
    let form = Form::new().part("image", image_part(bytes.to_vec(), "p.jpg"));
    let d: Value = app.post_form("/detect", form).await.json().await.ok()?;
    let faces = d["faces"].as_array()?;
    if faces.len() != 1 {
        return None;
    }
    let points: Vec<f32> = faces[0]["landmarks"]
        .as_array()?
        .iter()
        .flat_map(|p| p.as_array().into_iter().flatten().filter_map(Value::as_f64))
        .map(|v| v as f32)
        .collect();
    let landmarks: [[f32; 2]; 5] = std::array::from_fn(|i| [points[2 * i], points[2 * i + 1]]);
    Some(yaw(&landmarks))
}

/// A head turning as `instruction` asks and back: the person's photos ordered by measured yaw,
/// out from the end the movement starts at to the other, and back.
async fn bona_fide(app: &TestApp, instruction: Instruction) -> Vec<Vec<u8>> {
    let mut photos = Vec::new();
    for path in crate::helpers::tony_blair() {
        let bytes = fixture(&path);
        if let Some(y) = measured_yaw(app, &bytes).await {
            photos.push((y * instruction.yaw_sign(), bytes));
        }
    }
    photos.sort_by(|a, b| a.0.total_cmp(&b.0));
    let out: Vec<Vec<u8>> = photos.into_iter().map(|(_, b)| b).collect();
    let back = out.iter().rev().skip(1).cloned();
    out.iter().cloned().chain(back).take(24).collect()
}

/// One photo of the person seen as a picture held up to the camera, tilted further each frame
/// about both axes, shifted and scaled.
fn held_picture(photo: &str, frames: usize) -> Vec<Vec<u8>> {
    let image = decode(&fixture(photo), Default::default()).expect("a fixture decodes");
    (0..frames)
        .map(|i| {
            let t = (i as f32 / (frames - 1) as f32 * std::f32::consts::PI).sin();
            let pose = Pose {
                yaw_deg: 35.0 * t,
                pitch_deg: -10.0 * t,
                shift: [0.03 * t, 0.02 * t],
                scale: 1.0 + 0.1 * t,
            };
            let h = pose.homography(image.width, image.height).expect("a pose");
            jpeg(&warp(&image, &h).expect("a warp"), 90.0).expect("a JPEG")
        })
        .collect()
}

async fn register_person(app: &TestApp) -> i64 {
    app.register_ok("Tony", "Blair", &crate::helpers::tony_blair()[0])
        .await
}

async fn attendance(app: &TestApp) -> Vec<Value> {
    app.get_json::<Vec<Value>>("/attendance").await
}

async fn a_single_photo_says_liveness_none(app: TestApp) {
    let id = register_person(&app).await;
    let r = app.verify(&crate::helpers::tony_blair()[1]).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["id"], id, "{body}");
    assert_eq!(body["checked_in"], true, "{body}");
    assert_eq!(body["liveness"], "none", "{body}");
    assert!(body["reason"].is_null(), "{body}");
    let log = attendance(&app).await;
    assert_eq!(log[0]["liveness"], "none", "{log:?}");
}

async fn a_turning_head_checks_in_once_per_challenge(app: TestApp) {
    let id = register_person(&app).await;
    let challenge = new_challenge(&app).await;
    assert_eq!(challenge["frames"]["max"], 24, "{challenge}");
    assert!(challenge["instruction"]["text"]
        .as_str()
        .unwrap()
        .contains("Turn your head"));
    let nonce = challenge["nonce"].as_str().expect("a nonce").to_owned();
    let frames = bona_fide(&app, instruction_of(&challenge)).await;
    let (status, body) = send(&app, &nonce, &frames).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id, "{body}");
    assert_eq!(
        (&body["checked_in"], &body["liveness"]),
        (&true.into(), &"challenge".into()),
        "{body}"
    );
    let log = attendance(&app).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["liveness"], "challenge", "{log:?}");
    // The same nonce again: refused before any frame is looked at.
    let (status, body) = send(&app, &nonce, &frames).await;
    assert_eq!(
        (status, &body["error"], &body["reason"]),
        (422, &"not_live".into(), &"challenge_expired".into()),
        "{body}"
    );
}

async fn an_expired_or_unknown_challenge_is_refused(app: TestApp) {
    register_person(&app).await;
    let challenge = new_challenge(&app).await;
    let nonce = challenge["nonce"].as_str().expect("a nonce").to_owned();
    let frames = bona_fide(&app, instruction_of(&challenge)).await;
    // Its expiry moved to the moment it was given: past by now, on either backend.
    app.execute("UPDATE liveness_challenges SET expires_at = created_at")
        .await;
    let (status, body) = send(&app, &nonce, &frames).await;
    assert_eq!(
        (status, &body["reason"]),
        (422, &"challenge_expired".into()),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("try again"),
        "{body}"
    );
    let (status, body) = send(&app, "made-up", &frames).await;
    assert_eq!(
        (status, &body["reason"]),
        (422, &"challenge_expired".into()),
        "{body}"
    );
    assert!(attendance(&app).await.is_empty());
}

async fn a_still_or_a_held_up_photo_is_not_live(app: TestApp) {
    register_person(&app).await;
    let photo = &crate::helpers::tony_blair()[1];
    let still = vec![fixture(photo); 8];
    let challenge = new_challenge(&app).await;
    let (status, body) = send(&app, challenge["nonce"].as_str().unwrap(), &still).await;
    assert_eq!(
        (status, &body["error"], &body["reason"]),
        (422, &"not_live".into(), &"no_turn".into()),
        "{body}"
    );
    assert_eq!(
        body["message"], "we could not see your head turn — try again",
        "{body}"
    );
    let challenge = new_challenge(&app).await;
    let (status, body) = send(
        &app,
        challenge["nonce"].as_str().unwrap(),
        &held_picture(photo, 10),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (422, &"not_live".into()),
        "{body}"
    );
    let reason = body["reason"].as_str().unwrap();
    assert!(["no_turn", "flat"].contains(&reason), "{body}");
    assert!(attendance(&app).await.is_empty());
}

async fn two_faces_in_a_frame_are_refused(app: TestApp) {
    register_person(&app).await;
    let challenge = new_challenge(&app).await;
    let mut frames = bona_fide(&app, instruction_of(&challenge)).await;
    frames[2] = fixture("scenes/group/two_people_obama_biden.jpg");
    let (status, body) = send(&app, challenge["nonce"].as_str().unwrap(), &frames).await;
    assert_eq!(
        (status, &body["reason"]),
        (422, &"several_people".into()),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("one person at a time"),
        "{body}"
    );
    assert!(attendance(&app).await.is_empty());
}

async fn another_face_mid_sequence_is_refused(app: TestApp) {
    register_person(&app).await;
    let challenge = new_challenge(&app).await;
    let mut frames = bona_fide(&app, instruction_of(&challenge)).await;
    // The second half is someone else (LFW centres faces alike: the track itself holds).
    let others = photos_of("Silvio_Berlusconi");
    let half = frames.len() / 2;
    for (frame, other) in frames[half..].iter_mut().zip(others.iter().cycle()) {
        *frame = fixture(other);
    }
    let (status, body) = send(&app, challenge["nonce"].as_str().unwrap(), &frames).await;
    assert_eq!(
        (status, &body["reason"]),
        (422, &"identity_changed".into()),
        "{body}"
    );
    assert!(attendance(&app).await.is_empty());
}

async fn a_recorded_turn_does_not_answer_the_other_challenge(app: TestApp) {
    register_person(&app).await;
    let challenge = new_challenge(&app).await;
    assert_eq!(
        challenge["instruction"]["kind"], "turn_right",
        "{challenge}"
    );
    let left = bona_fide(&app, Instruction::TurnLeft).await;
    let (status, body) = send(&app, challenge["nonce"].as_str().unwrap(), &left).await;
    assert_eq!(
        (status, &body["reason"]),
        (422, &"no_turn".into()),
        "{body}"
    );
    assert!(attendance(&app).await.is_empty());
}

async fn a_single_photo_is_recognised_but_not_checked_in_when_liveness_is_required(app: TestApp) {
    let id = register_person(&app).await;
    let r = app.verify(&crate::helpers::tony_blair()[1]).await;
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id, "{body}");
    assert_eq!(body["checked_in"], false, "{body}");
    assert_eq!(body["liveness"], "none", "{body}");
    assert_eq!(body["reason"], "liveness_required", "{body}");
    assert!(attendance(&app).await.is_empty());
    // A sequence answering a challenge still checks in.
    let challenge = new_challenge(&app).await;
    let frames = bona_fide(&app, instruction_of(&challenge)).await;
    let (status, body) = send(&app, challenge["nonce"].as_str().unwrap(), &frames).await;
    assert_eq!((status, &body["checked_in"]), (200, &true.into()), "{body}");
    assert_eq!(attendance(&app).await.len(), 1);
}

/// A kiosk key made by `POST /keys` (as the admin page's Keys tab does), and a client
/// presenting it.
async fn kiosk_key(app: &TestApp, name: &str, require_liveness: Option<bool>) -> reqwest::Client {
    let mut body = serde_json::json!({ "name": name, "scope": "verify" });
    if let Some(required) = require_liveness {
        body["require_liveness"] = required.into();
    }
    let r = app
        .client
        .post(app.url("/keys"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    let created: Value = r.json().await.expect("json");
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["require_liveness"],
        require_liveness.unwrap_or(false),
        "{created}"
    );
    client_with_key(created["key"].as_str().expect("the key"))
}

async fn verify_as(app: &TestApp, client: &reqwest::Client, photo: &str) -> Value {
    let form = Form::new().part("image", image_part(fixture(photo), "p.jpg"));
    let r = client
        .post(app.url("/verify"))
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_key_requiring_liveness_checks_nobody_in_from_one_photo(app: TestApp) {
    let id = register_person(&app).await;
    let door = kiosk_key(&app, "front door", Some(true)).await;
    let body = verify_as(&app, &door, &crate::helpers::tony_blair()[1]).await;
    assert_eq!(body["id"], id, "recognised all the same: {body}");
    assert_eq!(
        (&body["checked_in"], &body["liveness"], &body["reason"]),
        (&false.into(), &"none".into(), &"liveness_required".into()),
        "{body}"
    );
    assert!(attendance(&app).await.is_empty());
    // Listed with the requirement, and the audit log says it was made so.
    let keys: Vec<Value> = app.get_json("/keys").await;
    let listed: Vec<(&Value, &Value)> = keys
        .iter()
        .map(|k| (&k["name"], &k["require_liveness"]))
        .collect();
    assert_eq!(
        listed,
        [
            (&"test admin".into(), &false.into()),
            (&"front door".into(), &true.into())
        ],
        "{keys:?}"
    );
    let log: Vec<Value> = app.get_json("/audit").await;
    let created: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "key_created")
        .map(|e| &e["detail"])
        .collect();
    assert_eq!(
        created,
        [&Value::from("verify, liveness required: front door")],
        "{log:?}"
    );
    // Another kiosk's key, made without it: its single photo checks in.
    let hall = kiosk_key(&app, "hall", None).await;
    let body = verify_as(&app, &hall, &crate::helpers::tony_blair()[1]).await;
    assert_eq!(
        (&body["checked_in"], &body["liveness"], &body["reason"]),
        (&true.into(), &"none".into(), &Value::Null),
        "{body}"
    );
    let log = attendance(&app).await;
    assert_eq!(
        log.iter()
            .map(|e| (&e["kiosk"], &e["liveness"]))
            .collect::<Vec<_>>(),
        [(&"hall".into(), &"none".into())],
        "{log:?}"
    );
}

async fn a_key_requiring_liveness_checks_in_a_sequence(app: TestApp) {
    let id = register_person(&app).await;
    let door = kiosk_key(&app, "front door", Some(true)).await;
    let challenge = new_challenge_as(&app, &door).await;
    let frames = bona_fide(&app, instruction_of(&challenge)).await;
    let (status, body) = send_as(
        &app,
        &door,
        challenge["nonce"].as_str().expect("a nonce"),
        &frames,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["id"], &body["checked_in"], &body["liveness"]),
        (&id.into(), &true.into(), &"challenge".into()),
        "{body}"
    );
    let log = attendance(&app).await;
    assert_eq!(
        log.iter()
            .map(|e| (&e["kiosk"], &e["liveness"]))
            .collect::<Vec<_>>(),
        [(&"front door".into(), &"challenge".into())],
        "{log:?}"
    );
}

async fn a_key_that_is_not_a_boolean_is_refused(app: TestApp) {
    let r = app
        .client
        .post(app.url("/keys"))
        .json(&serde_json::json!({ "name": "door", "scope": "verify", "require_liveness": "yes" }))
        .send()
        .await
        .expect("request");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 400, "{body}");
    let keys: Vec<Value> = app.get_json("/keys").await;
    assert_eq!(keys.len(), 1, "only the test's admin key: {keys:?}");
}

/// The server's `--require-liveness` wins over a key made without the requirement.
async fn the_global_flag_wins_over_a_key_without_it(app: TestApp) {
    let id = register_person(&app).await;
    let hall = kiosk_key(&app, "hall", Some(false)).await;
    let body = verify_as(&app, &hall, &crate::helpers::tony_blair()[1]).await;
    assert_eq!(
        (&body["id"], &body["checked_in"], &body["reason"]),
        (&id.into(), &false.into(), &"liveness_required".into()),
        "{body}"
    );
    assert!(attendance(&app).await.is_empty());
}

async fn no_challenges_when_liveness_is_off(app: TestApp) {
    let r = app
        .client
        .post(app.url("/verify/challenge"))
        .send()
        .await
        .expect("request");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (409, &"liveness_off".into()),
        "{body}"
    );
    // Single photos work as ever.
    let id = register_person(&app).await;
    let body: Value = app
        .verify(&crate::helpers::tony_blair()[1])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&body["id"], &body["liveness"]),
        (&id.into(), &"none".into()),
        "{body}"
    );
}

mod challenge_mode {
    use super::*;
    crate::on_both_backends!(
        a_single_photo_says_liveness_none,
        a_turning_head_checks_in_once_per_challenge,
        an_expired_or_unknown_challenge_is_refused,
        a_still_or_a_held_up_photo_is_not_live,
        two_faces_in_a_frame_are_refused,
        another_face_mid_sequence_is_refused,
        a_key_requiring_liveness_checks_nobody_in_from_one_photo,
        a_key_requiring_liveness_checks_in_a_sequence,
        a_key_that_is_not_a_boolean_is_refused,
    );
}

fn turn_right_only() -> TestConfig {
    TestConfig {
        liveness_instruction: Some(Instruction::TurnRight),
        ..TestConfig::default()
    }
}

mod fixed_instruction {
    use super::*;
    crate::on_both_backends!(
        config = super::super::turn_right_only();
        a_recorded_turn_does_not_answer_the_other_challenge
    );
}

fn required() -> TestConfig {
    TestConfig {
        require_liveness: true,
        ..TestConfig::default()
    }
}

mod liveness_required {
    use super::*;
    crate::on_both_backends!(
        config = super::super::required();
        a_single_photo_is_recognised_but_not_checked_in_when_liveness_is_required,
        the_global_flag_wins_over_a_key_without_it
    );
}

fn off() -> TestConfig {
    TestConfig {
        liveness: Some(rollcall::liveness::Mode::Off),
        ..TestConfig::default()
    }
}

mod liveness_off {
    use super::*;
    crate::on_both_backends!(
        config = super::super::off();
        no_challenges_when_liveness_is_off
    );
}
