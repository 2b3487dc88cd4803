//! Several faces in one frame: every registered person in it is checked in, and a person who
//! appears twice is checked in once. The frames are two LFW photos pasted side by side.

use crate::helpers::{fixture, photos_of, tony_blair, TestApp, TestConfig};
use rollcall_vision::image::{decode, RgbImage};
use serde_json::Value;

/// No cooldown: a person seen twice in one frame must be checked in once by the frame's own
/// rule, not because the cooldown hides the second check-in.
fn config() -> TestConfig {
    TestConfig {
        cooldown: std::time::Duration::ZERO,
        ..Default::default()
    }
}

/// Two photos side by side in one JPEG (the shorter one padded with black below).
pub(crate) fn side_by_side(left: &str, right: &str) -> Vec<u8> {
    let open = |rel: &str| decode(&fixture(rel), Default::default()).expect("a fixture decodes");
    let (a, b) = (open(left), open(right));
    let (width, height) = (a.width + b.width, a.height.max(b.height));
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    let mut paste = |image: &RgbImage, x0: u32| {
        let row_bytes = (image.width * 3) as usize;
        for y in 0..image.height {
            let from = (y * image.width * 3) as usize;
            let to = ((y * width + x0) * 3) as usize;
            pixels[to..to + row_bytes].copy_from_slice(&image.data[from..from + row_bytes]);
        }
    };
    paste(&a, 0);
    paste(&b, a.width);
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(width as usize, height as usize);
    c.set_quality(95.0);
    let mut c = c.start_compress(Vec::new()).expect("jpeg start");
    c.write_scanlines(&pixels).expect("jpeg scanlines");
    c.finish().expect("jpeg finish")
}

/// The ids of the people matched in a /verify answer, by face, and which faces were checked in.
fn matches(v: &Value) -> Vec<(Option<i64>, bool)> {
    v["faces"]
        .as_array()
        .unwrap_or_else(|| panic!("no faces in {v}"))
        .iter()
        .map(|f| (f["match"]["id"].as_i64(), f["checked_in"] == true))
        .collect()
}

async fn checked_in_ids(app: &TestApp) -> Vec<i64> {
    let log: Value = app.get_json("/attendance").await;
    let mut ids: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

const OTHER: &str = "Hugo_Chavez";

async fn two_registered_people_in_one_photo_are_both_checked_in(app: TestApp) {
    let blair = tony_blair();
    let chavez = photos_of(OTHER);
    let tony = app.register_ok("Tony", "Blair", &blair[0]).await;
    let hugo = app.register_ok("Hugo", "Chavez", &chavez[0]).await;

    let frame = side_by_side(&blair[1], &chavez[0]);
    let r = app.verify_bytes(frame, "two.jpg").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let mut found = matches(&v);
    assert_eq!(found.len(), 2, "two faces in the frame: {v}");
    found.sort_unstable();
    assert_eq!(
        found,
        vec![(Some(tony), true), (Some(hugo), true)],
        "both people recognised and checked in: {v}"
    );
    let mut expected = vec![tony, hugo];
    expected.sort_unstable();
    assert_eq!(checked_in_ids(&app).await, expected);
}

async fn one_person_twice_in_one_photo_is_checked_in_once(app: TestApp) {
    let blair = tony_blair();
    let tony = app.register_ok("Tony", "Blair", &blair[0]).await;

    let frame = side_by_side(&blair[1], &blair[2]);
    let r = app.verify_bytes(frame, "twice.jpg").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let found = matches(&v);
    assert_eq!(found.len(), 2, "two faces in the frame: {v}");
    assert!(
        found.iter().all(|(id, _)| *id == Some(tony)),
        "both faces are Tony Blair: {v}"
    );
    assert_eq!(
        found.iter().filter(|(_, checked_in)| *checked_in).count(),
        1,
        "one check-in for the two faces: {v}"
    );
    assert_eq!(checked_in_ids(&app).await, vec![tony]);
}

crate::on_both_backends!(
    config = super::config();
    two_registered_people_in_one_photo_are_both_checked_in,
    one_person_twice_in_one_photo_is_checked_in_once,
);
