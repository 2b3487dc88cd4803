//! Storage faults said plainly, on real file systems: a full disk (a small tmpfs, filled) →
//! 507 `storage_full`; a photo store that cannot be written (the tmpfs remounted read-only) →
//! 503 `storage_unavailable`; nothing half-written either way; `/health` reports the store,
//! and answers within a second when the database does not.
//!
//! Mounting needs root (CI and the development machines run as root): without it these tests
//! fail and say so rather than pass untested.

use crate::helpers::{
    client_with_key, create_key, fixture, image_part, models_dir, photos_of, pipeline, tony_blair,
    Form, TestApp,
};
use rollcall::app::Application;
use rollcall::auth::Scope;
use rollcall::config::{Overrides, Settings};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs on {} failed: these tests need root (CAP_SYS_ADMIN) to make a \
             real full disk and a real read-only file system",
            at.display()
        );
        Mount(at.to_owned())
    }

    fn read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "remounting {} read-only",
            self.0.display()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system of `dir` until it refuses another byte; the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = [0u8; 4096];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
            return path;
        }
    }
}

async fn health(app_url: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{app_url}/health")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn expect_error(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status(), status, "{code}");
    let retry = r.headers().get("retry-after").cloned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        retry.is_some(),
        status == 503,
        "Retry-After with a 503 only"
    );
}

async fn a_full_or_read_only_photo_store_is_said_plainly(app: TestApp) {
    let photos = tony_blair();
    let mount = Mount::tmpfs(&app.img_refs(), "256k");
    let filler = fill(&app.img_refs());

    let before = app.snapshot().await;
    expect_error(
        app.register("Tony", "Blair", &photos[0]).await,
        507,
        "storage_full",
    )
    .await;
    assert_eq!(app.snapshot().await, before, "no row, no file");
    let (status, h) = health(&app.address).await;
    assert_eq!(status, 503, "{h}");
    assert_eq!(
        (&h["status"], &h["database"], &h["storage"]),
        (&"unavailable".into(), &"ok".into(), &"full".into())
    );
    assert_eq!(h["users"], 0);

    std::fs::remove_file(filler).unwrap();
    let (status, h) = health(&app.address).await;
    assert_eq!((status, &h["storage"]), (200, &"ok".into()), "{h}");
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;

    mount.read_only();
    let before = app.snapshot().await;
    expect_error(
        // Another person: Tony's own face would be refused as a duplicate before any write.
        app.register("Hugo", "Chavez", &photos_of("Hugo_Chavez")[0])
            .await,
        503,
        "storage_unavailable",
    )
    .await;
    let form = Form::new().part("image", image_part(fixture(&photos[2]), "face.jpg"));
    expect_error(
        app.post_form(&format!("/users/{id}/faces"), form).await,
        503,
        "storage_unavailable",
    )
    .await;
    assert_eq!(app.snapshot().await, before, "no row, no file");
    let (status, h) = health(&app.address).await;
    assert_eq!((status, &h["storage"]), (503, &"unavailable".into()), "{h}");
    // Check-ins write no photo: they go on.
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
}

async fn health_answers_within_a_second_when_the_database_does_not(app: TestApp) {
    // Every connection of the server's pool held: each query waits for one, as when the
    // database server stops answering.
    let held = match &app.store {
        rollcall::store::Store::Sqlite(pool) => {
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(pool.acquire().await.unwrap());
            }
            (held, Vec::new())
        }
        rollcall::store::Store::Mysql(pool) => {
            let mut held = Vec::new();
            for _ in 0..8 {
                held.push(pool.acquire().await.unwrap());
            }
            (Vec::new(), held)
        }
    };
    let start = Instant::now();
    let (status, h) = health(&app.address).await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "/health took {took:?}");
    assert_eq!(status, 503, "{h}");
    assert_eq!(
        (&h["database"], &h["storage"]),
        (&"unavailable".into(), &"ok".into())
    );
    assert_eq!(h["users"], Value::Null);
    drop(held);
    let (status, h) = health(&app.address).await;
    assert_eq!((status, &h["status"]), (200, &"ok".into()), "{h}");
}

crate::on_both_backends!(
    a_full_or_read_only_photo_store_is_said_plainly,
    health_answers_within_a_second_when_the_database_does_not,
);

/// The whole data directory (SQLite database included) on a small tmpfs: a check-in on a full
/// disk was a 500 `internal`; it is a 507 now, and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_on_a_full_disk_answers_storage_full() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _mount = Mount::tmpfs(&data, "4m");
    let settings = Settings::resolve(Overrides {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(data.clone()),
        models: Some(models_dir()),
        embedder: Some(rollcall_vision::models::EmbedderChoice::FaceApi),
        ..Overrides::default()
    })
    .unwrap();
    let application = Application::build_with_pipeline(&settings, pipeline())
        .await
        .unwrap();
    let url = format!("http://{}", application.address());
    let store = application.store().clone();
    tokio::spawn(application.run_until(std::future::pending()));
    let client = client_with_key(&create_key(&store, "full disk test", Scope::Admin).await);
    let photos = tony_blair();
    let post = |path: &str, form: Form| client.post(format!("{url}{path}")).multipart(form).send();
    let person = Form::new()
        .text("first_name", "Tony")
        .text("last_name", "Blair")
        .part("image", image_part(fixture(&photos[0]), "a.jpg"));
    assert_eq!(post("/register", person).await.unwrap().status(), 200);

    let filler = fill(&data);
    let frame = || Form::new().part("image", image_part(fixture(&photos[1]), "b.jpg"));
    expect_error(post("/verify", frame()).await.unwrap(), 507, "storage_full").await;
    assert!(store
        .attendance(Default::default())
        .await
        .unwrap()
        .is_empty());
    let (status, h) = health(&url).await;
    assert_eq!((status, &h["storage"]), (503, &"full".into()), "{h}");

    std::fs::remove_file(filler).unwrap();
    assert_eq!(post("/verify", frame()).await.unwrap().status(), 200);
    assert_eq!(store.attendance(Default::default()).await.unwrap().len(), 1);
    store.close().await;
}
