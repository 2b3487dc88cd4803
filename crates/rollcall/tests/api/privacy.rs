//! Data that stays private: photos kept without their metadata and served so that they cannot
//! run anything, names that cannot pass for others, spreadsheet-safe CSV, deletions that leave
//! no trace in the data directory, retention.

use crate::helpers::{fixture, image_part, models_dir, pipeline, tony_blair, Form, TestApp};
use rollcall::app::Application;
use rollcall::config::{Overrides, Settings};
use rollcall::store::NewCheckIn;
use rollcall_vision::models::EmbedderChoice;
use rollcall_vision::DecodeLimits;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A marker that must not survive: it stands in the Exif description, XMP and a comment.
const SECRET: &[u8] = b"secret-place-48.8584N";
/// GPS latitude 48° 51' 29.67" as Exif stores it (three big-endian rationals).
const LATITUDE: [u8; 24] = [
    0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 51, 0, 0, 0, 1, 0, 0, 0x0B, 0x97, 0, 0, 0, 100,
];

/// A big-endian TIFF block as a phone writes it: description, orientation `o` and a GPS IFD.
fn exif_with_gps(o: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2A".to_vec();
    t.extend(8u32.to_be_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend(tag.to_be_bytes());
        t.extend(kind.to_be_bytes());
        t.extend(count.to_be_bytes());
        t.extend(value);
    };
    let mut description = SECRET.to_vec();
    description.push(0);
    let description_at = 8 + 2 + 3 * 12 + 4;
    let gps_at = description_at + description.len();
    let latitude_at = gps_at + 2 + 2 * 12 + 4;
    t.extend(3u16.to_be_bytes());
    entry(
        &mut t,
        0x010E,
        2,
        description.len() as u32,
        (description_at as u32).to_be_bytes(),
    );
    let [a, b] = o.to_be_bytes();
    entry(&mut t, 0x0112, 3, 1, [a, b, 0, 0]);
    entry(&mut t, 0x8825, 4, 1, (gps_at as u32).to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend(&description);
    t.extend(2u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, (latitude_at as u32).to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend(LATITUDE);
    t
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend(u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    s.extend(payload);
    s
}

/// A fixture photo with Exif (GPS, orientation 2: mirrored, so a face still stands upright),
/// XMP and a comment inserted after SOI.
fn photo_with_gps() -> Vec<u8> {
    let jpeg = fixture(&tony_blair()[0]);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(exif_with_gps(2));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>".to_vec();
    xmp.extend(SECRET);
    let mut f = jpeg[..2].to_vec();
    f.extend(segment(0xE1, &exif));
    f.extend(segment(0xE1, &xmp));
    f.extend(segment(0xFE, SECRET));
    f.extend(&jpeg[2..]);
    f
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn a_photo_is_stored_without_its_metadata_and_served_inert(app: TestApp) {
    let original = photo_with_gps();
    let form = Form::new()
        .text("first_name", "Tony")
        .text("last_name", "Blair")
        .part("image", image_part(original.clone(), "gps.jpg"));
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let files = app.files();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read(app.img_refs().join(&files[0])).unwrap();
    assert!(
        !contains(&stored, SECRET),
        "the description, XMP or comment is still there"
    );
    assert!(
        !contains(&stored, &LATITUDE),
        "the GPS position is still there"
    );
    assert!(
        !contains(&stored, b"xap/1.0"),
        "the XMP block is still there"
    );
    // What is left of Exif is the orientation alone: an APP1 of 2 + 6 + 26 bytes.
    let at = stored
        .windows(6)
        .position(|w| w == b"Exif\0\0")
        .expect("the orientation is kept");
    assert_eq!(u16::from_be_bytes([stored[at - 2], stored[at - 1]]), 34);

    let limits = DecodeLimits::default();
    let before = rollcall_vision::image::decode(&original, limits).unwrap();
    let after = rollcall_vision::image::decode(&stored, limits).unwrap();
    assert_eq!(before, after, "same pixels, same orientation");
    let mut unoriented = fixture(&tony_blair()[0]);
    unoriented.splice(2..2, segment(0xFE, b"x"));
    assert_ne!(
        rollcall_vision::image::decode(&unoriented, limits).unwrap(),
        after,
        "the orientation was applied (a mirrored photo differs)"
    );

    let r = app.get(&format!("/users/{id}/photo")).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
    assert_eq!(r.bytes().await.unwrap().as_ref(), stored.as_slice());
}

async fn names_that_would_show_as_someone_else_are_refused(app: TestApp) {
    let before = app.snapshot().await;
    for (first, last, says) in [
        ("Ada", "Smith\u{202E}nimda", "direction"),
        ("\u{2067}Ada", "Smith", "direction"),
        ("Ada", "Lee\u{200F}", "direction"),
        ("\u{200B}\u{200D}", "Smith", "no visible character"),
        ("Ada", "\u{3164}\u{FEFF} \u{2060}", "no visible character"),
    ] {
        let r = app.register(first, last, &tony_blair()[0]).await;
        assert_eq!(r.status(), 400, "{first:?} {last:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_name", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(app.snapshot().await, before, "nobody was registered");
    // A name in a right-to-left script is a name.
    app.register_ok("דוד", "בן־גוריון", &tony_blair()[0]).await;
}

async fn csv_cells_that_start_a_formula_are_neutralised(app: TestApp) {
    let photos = tony_blair();
    let id = app
        .register_ok("=HYPERLINK(\"http://x\",\"y\")", "@SUM(1+1)", &photos[0])
        .await;
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
    let csv = app.get("/attendance.csv").await.text().await.unwrap();
    let row = csv.lines().nth(1).expect("one check-in");
    assert!(
        row.starts_with(&format!(
            "1,{id},\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'@SUM(1+1),"
        )),
        "{row}"
    );
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(all_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn a_deleted_person_leaves_no_trace_in_the_data_directory(app: TestApp) {
    let photos = tony_blair();
    let last = format!("Trace{}", uuid::Uuid::new_v4().simple());
    app.register_ok(
        "Quillon",
        "Known",
        "faces/Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    )
    .await;
    let id = app.register_ok("Zebedee", &last, &photos[0]).await;
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
    let holding = |name: &[u8]| -> Vec<PathBuf> {
        all_files(app.data_dir.path())
            .into_iter()
            .filter(|f| contains(&std::fs::read(f).unwrap(), name))
            .collect()
    };
    if app.store.backend() == "sqlite" {
        assert!(!holding(last.as_bytes()).is_empty(), "the name was written");
    }

    let r = app.delete(&format!("/users/{id}?history=true")).await;
    assert_eq!(r.status(), 204);
    assert_eq!(holding(last.as_bytes()), Vec::<PathBuf>::new());
    assert_eq!(holding(b"Zebedee"), Vec::<PathBuf>::new());
    assert_eq!(
        app.files().len(),
        1,
        "only the other person's photo is left"
    );
    // The other person is still there.
    if app.store.backend() == "sqlite" {
        assert!(!holding(b"Quillon").is_empty());
        let wal = app.data_dir.path().join("rollcall.db-wal");
        assert_eq!(
            std::fs::metadata(wal).map_or(0, |m| m.len()),
            0,
            "the WAL was emptied"
        );
    }
}

/// A second server over the test's database and data directory, started with `retention_days`.
async fn restart_with_retention(app: &TestApp, retention_days: u32) -> Application {
    let settings = Settings::resolve(Overrides {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(app.data_dir.path().to_owned()),
        database_url: Some(app.database_url.clone()),
        models: Some(models_dir()),
        embedder: Some(EmbedderChoice::FaceApi),
        retention_days: Some(retention_days),
        ..Overrides::default()
    })
    .unwrap();
    Application::build_with_pipeline(&settings, pipeline())
        .await
        .unwrap()
}

async fn check_ins_past_the_retention_period_are_purged_at_start(app: TestApp) {
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let now = chrono::Utc::now();
    for days in [400, 31, 29, 1] {
        let at = now - chrono::Duration::days(days);
        app.store
            .check_in(NewCheckIn {
                user_id: id,
                at,
                similarity: 0.97,
                kiosk: None,
                model: "face-api-resnet128-flip",
                not_since: at,
            })
            .await
            .unwrap();
    }
    let kept = restart_with_retention(&app, 30).await;
    let left = app.store.attendance(Default::default()).await.unwrap();
    let ages: Vec<i64> = left.iter().map(|r| (now - r.at).num_days()).collect();
    assert_eq!(
        ages,
        vec![1, 29],
        "newest first; 31 and 400 days old are gone"
    );
    // The purge is in the audit log, under the server's own name.
    let purges: Vec<(String, Option<String>)> = app
        .store
        .audit_log(rollcall::audit::Page {
            limit: rollcall::audit::Page::MAX,
            before: None,
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "purge")
        .map(|e| (e.actor, e.detail))
        .collect();
    assert_eq!(
        purges,
        vec![(
            "server:retention".to_owned(),
            Some("2 check-in(s) older than 30 days".to_owned())
        )]
    );
    drop(kept);
    // A shorter period deletes more, at the next start.
    let _kept = restart_with_retention(&app, 2).await;
    assert_eq!(
        app.store
            .attendance(Default::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

crate::on_both_backends!(
    a_photo_is_stored_without_its_metadata_and_served_inert,
    names_that_would_show_as_someone_else_are_refused,
    csv_cells_that_start_a_formula_are_neutralised,
    a_deleted_person_leaves_no_trace_in_the_data_directory,
    check_ins_past_the_retention_period_are_purged_at_start,
);
