//! Reference photos in an S3-compatible bucket (`--photo-store s3://…`), against a real
//! SeaweedFS ([`crate::seaweed`]): the API works as with the directory; a registration whose
//! rows fail leaves no photo; the sweep deletes old leftovers only; two servers share one
//! bucket; a missing bucket, refused credentials or a store that is down are said plainly and
//! nothing is half-written.

use crate::helpers::{
    fixture, image_part, models_dir, photos_of, pipeline, spawn_app_with, tony_blair, Backend,
    Form, TestApp, TestConfig,
};
use crate::seaweed::{self, Proxy};
use rollcall::app::Application;
use rollcall::config::{Overrides, Settings};
use rollcall::store::{PhotoLocation, PhotoStore, Store};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// `AWS_*` settings, (name, value).
type Aws = Vec<(String, String)>;

fn s3() -> TestConfig {
    TestConfig {
        s3: true,
        ..TestConfig::default()
    }
}

fn bucket(app: &TestApp) -> String {
    seaweed::bucket_of(&app.photo_store)
        .expect("a server with its photos in a bucket")
        .bucket()
        .to_owned()
}

async fn register_verify_serve_and_delete_through_the_bucket(app: TestApp) {
    let bucket = bucket(&app);
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    let keys = seaweed::keys(&bucket).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("img_refs/") && keys[0].ends_with(".jpg"),
        "{keys:?}"
    );
    assert!(!app.img_refs().exists(), "nothing in the data directory");
    let stored: Vec<String> = app
        .store
        .all_image_paths()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, keys, "the row names the object's key");

    let r = app.verify(&photos[1]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["id"].as_i64(), &v["checked_in"]),
        (Some(id), &true.into())
    );

    let r = app.get(&format!("/users/{id}/photo")).await;
    assert_eq!(r.status(), 200);
    let header = |name: &str| r.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "image/jpeg");
    assert_eq!(header("cache-control"), "private, max-age=3600");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(
        header("content-security-policy"),
        "sandbox; default-src 'none'"
    );
    let served = r.bytes().await.unwrap();
    let stored = object(&bucket, &keys[0]).await;
    assert_eq!(served.as_ref(), stored.as_slice(), "the object, as stored");

    let form = Form::new().part("image", image_part(fixture(&photos[2]), "more.jpg"));
    let r = app.post_form(&format!("/users/{id}/faces"), form).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(seaweed::keys(&bucket).await.len(), 2);
    let faces: Value = app.get_json(&format!("/users/{id}/faces")).await;
    let face = faces[1]["id"].as_i64().expect("the added face");
    let r = app.get(&format!("/users/{id}/faces/{face}/photo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private, no-cache");

    let r = app.delete(&format!("/users/{id}/faces/{face}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        seaweed::keys(&bucket).await,
        keys,
        "the face's photo is gone"
    );

    assert_eq!(app.delete(&format!("/users/{id}")).await.status(), 204);
    assert_eq!(seaweed::keys(&bucket).await, Vec::<String>::new());
    assert_eq!(app.get(&format!("/users/{id}/photo")).await.status(), 404);
}

async fn object(bucket: &str, key: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt;
    seaweed::server()
        .client(bucket)
        .get(&key.into())
        .await
        .expect("the object")
        .bytes()
        .await
        .expect("its bytes")
        .to_vec()
}

/// A trigger (`name`) that makes every insert into `table` fail, as a database refusing the
/// write would.
async fn refuse_inserts(app: &TestApp, name: &str, table: &str) {
    let sql = match app.store {
        Store::Sqlite(_) => format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ),
        Store::Mysql(_) => format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'"
        ),
    };
    app.execute(&sql).await;
}

/// The rows of a registration (or an added face) fail before the photo is placed (`users`,
/// `faces`) or after (`gallery_changes`, written last): the transaction rolls back and no
/// photo stays, in the directory or in the bucket.
async fn a_registration_whose_rows_fail_leaves_no_photo(app: TestApp) {
    let photos = tony_blair();
    for table in ["users", "gallery_changes"] {
        let trigger = format!("refuse_register_{table}");
        refuse_inserts(&app, &trigger, table).await;
        let before = app.snapshot().await;
        let r = app.register("Tony", "Blair", &photos[0]).await;
        assert_eq!(r.status(), 500, "insert into {table} refused");
        assert_eq!(app.snapshot().await, before, "{table}: no row, no photo");
        app.execute(&format!("DROP TRIGGER {trigger}")).await;
    }
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    for table in ["faces", "gallery_changes"] {
        let trigger = format!("refuse_add_face_{table}");
        refuse_inserts(&app, &trigger, table).await;
        let before = app.snapshot().await;
        let form = Form::new()
            .part("image", image_part(fixture(&photos[1]), "a.jpg"))
            .part("image", image_part(fixture(&photos[2]), "b.jpg"));
        let r = app.post_form(&format!("/users/{id}/faces"), form).await;
        assert_eq!(r.status(), 500, "insert into {table} refused");
        assert_eq!(app.snapshot().await, before, "{table}: no face, no photo");
        app.execute(&format!("DROP TRIGGER {trigger}")).await;
    }
    assert_eq!(app.stored_photos().await.len(), 1);
}

/// What a registration killed mid-way leaves in the bucket (an object no row names; a probe
/// or another temp object) is deleted by the sweep once older than the grace period; what is
/// younger may be another process's registration in flight and stays, as does everything a
/// row names and every key outside `img_refs/`.
async fn the_sweep_of_a_bucket_deletes_old_leftovers_only(app: TestApp) {
    let bucket = bucket(&app);
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let tony = app.stored_photos().await;
    for key in [
        "img_refs/old-orphan.jpg",
        "img_refs/.tmp-probe-old",
        "img_refs/kept/nested.jpg",
        "elsewhere/old.jpg",
    ] {
        seaweed::put(&bucket, key, b"left by a killed process").await;
    }
    // Last-modified times have a resolution of a second: these are older than a 2 s grace.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    seaweed::put(&bucket, "img_refs/fresh-orphan.jpg", b"in flight").await;

    let store = PhotoStore::open(&app.photo_store, app.data_dir.path())
        .await
        .expect("the bucket");
    let referenced: HashSet<String> = app.store.all_image_paths().await.unwrap();
    assert_eq!(
        store
            .sweep_older_than(&referenced, Duration::from_secs(2))
            .await
            .unwrap(),
        2
    );
    let mut expected = vec![
        "elsewhere/old.jpg".to_owned(),
        "img_refs/fresh-orphan.jpg".to_owned(),
        "img_refs/kept/nested.jpg".to_owned(),
        format!("img_refs/{}", tony[0]),
    ];
    expected.sort();
    assert_eq!(seaweed::keys(&bucket).await, expected);
    // The start-up sweep (a minute's grace) leaves the fresh one too.
    assert_eq!(store.sweep(&referenced).await.unwrap(), 0);
    assert_eq!(
        app.get(&format!("/users/{id}/photo")).await.status(),
        200,
        "the referenced photo is served"
    );
}

mod on_a_bucket {
    use super::*;
    crate::on_both_backends!(
        config = super::s3();
        register_verify_serve_and_delete_through_the_bucket,
        a_registration_whose_rows_fail_leaves_no_photo,
        the_sweep_of_a_bucket_deletes_old_leftovers_only,
    );
}

mod on_the_data_dir {
    use super::*;
    crate::on_both_backends!(a_registration_whose_rows_fail_leaves_no_photo);
}

/// Several servers over one database and one bucket: what sync.rs shows for the directory.
mod two_servers_on_a_bucket {
    use super::s3;
    use crate::sync::{
        a_person_deleted_on_one_server_is_no_longer_greeted_by_the_other,
        a_person_registered_on_one_server_is_recognised_on_the_other,
        simultaneous_verifies_on_two_servers_record_one_check_in,
        the_command_lines_changes_reach_a_running_server,
    };
    crate::on_both_backends!(
        config = super::s3();
        a_person_registered_on_one_server_is_recognised_on_the_other,
        a_person_deleted_on_one_server_is_no_longer_greeted_by_the_other,
        the_command_lines_changes_reach_a_running_server,
        simultaneous_verifies_on_two_servers_record_one_check_in,
    );
}

/// A server on `backend` whose photos are in a fresh bucket reached through a proxy the test
/// can cut: (the bucket, the proxy, the server).
async fn behind_a_store_proxy(backend: Backend) -> (String, Proxy, TestApp) {
    let server = seaweed::server();
    let bucket = server.fresh_bucket().await;
    let proxy = Proxy::start(&server.endpoint).await;
    let app = spawn_app_with(
        backend,
        TestConfig {
            photo_store: Some(seaweed::location(&bucket, &proxy.endpoint())),
            ..TestConfig::default()
        },
    )
    .await;
    (bucket, proxy, app)
}

async fn health(app: &TestApp) -> (u16, Option<String>, Value) {
    let r = app.get("/health").await;
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), retry, r.json().await.unwrap())
}

async fn expect_unavailable(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 503, "{what}");
    assert!(
        r.headers().get("retry-after").is_some(),
        "{what}: Retry-After"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "storage_unavailable", "{what}: {body}");
}

/// The store goes down under a running server (its connection cut by a proxy): writes answer
/// 503 `storage_unavailable` with nothing half-written, photos answer 503, `/health` says so;
/// check-ins (which write no photo) go on; all is well again once the store is back.
async fn a_store_that_goes_down_is_said_plainly(backend: Backend) {
    let (bucket, proxy, app) = behind_a_store_proxy(backend).await;
    let photos = tony_blair();
    let hugo = &photos_of("Hugo_Chavez")[0];
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    let (status, _, h) = health(&app).await;
    assert_eq!((status, &h["storage"]), (200, &"ok".into()), "{h}");

    proxy.cut();
    let before = app.snapshot().await;
    expect_unavailable(app.register("Hugo", "Chavez", hugo).await, "register").await;
    let form = Form::new()
        .part("image", image_part(fixture(&photos[2]), "a.jpg"))
        .part("image", image_part(fixture(&photos[3]), "b.jpg"));
    expect_unavailable(
        app.post_form(&format!("/users/{id}/faces"), form).await,
        "add faces",
    )
    .await;
    expect_unavailable(app.get(&format!("/users/{id}/photo")).await, "the photo").await;
    assert_eq!(app.snapshot().await, before, "no row, no object");
    let (status, retry, h) = health(&app).await;
    assert_eq!(
        (status, &h["database"], &h["storage"]),
        (503, &"ok".into(), &"unavailable".into()),
        "{h}"
    );
    assert!(retry.is_some(), "Retry-After on the 503");
    assert_eq!(
        app.verify(&photos[1]).await.status(),
        200,
        "check-ins go on"
    );

    proxy.restore();
    let (status, retry, h) = health(&app).await;
    assert_eq!(
        (status, retry, &h["storage"]),
        (200, None, &"ok".into()),
        "{h}"
    );
    app.register_ok("Hugo", "Chavez", hugo).await;
    assert_eq!(seaweed::keys(&bucket).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_goes_down_is_said_plainly_sqlite() {
    a_store_that_goes_down_is_said_plainly(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_goes_down_is_said_plainly_mysql() {
    a_store_that_goes_down_is_said_plainly(Backend::Mysql).await;
}

/// `/health` is anonymous and polled, and a probe writes to the bucket: a probe that succeeded
/// answers for a second (so polling cannot make the server write at the poller's rate), but a
/// request that meets a failed store makes the next `/health` probe again, and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_polls_do_not_each_write_to_the_bucket_but_a_failure_shows_at_once() {
    let (_bucket, proxy, app) = behind_a_store_proxy(Backend::Sqlite).await;
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    // Probe, take the store away, ask again: within the second the answer is the probe's,
    // as no new probe was written. On a machine too busy to ask twice within the second,
    // the pair is tried again.
    let mut answered_from_the_probe = false;
    for _ in 0..5 {
        proxy.restore();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let probed = std::time::Instant::now();
        let (status, _, h) = health(&app).await;
        assert_eq!((status, &h["storage"]), (200, &"ok".into()), "{h}");
        proxy.cut();
        let (status, _, h) = health(&app).await;
        if probed.elapsed() < Duration::from_millis(900) {
            assert_eq!((status, &h["storage"]), (200, &"ok".into()), "{h}");
            answered_from_the_probe = true;
            break;
        }
    }
    assert!(
        answered_from_the_probe,
        "never two /health calls within a second"
    );
    // A request meets the failed store: the next /health probes, and says so.
    expect_unavailable(app.get(&format!("/users/{id}/photo")).await, "the photo").await;
    let (status, _, h) = health(&app).await;
    assert_eq!((status, &h["storage"]), (503, &"unavailable".into()), "{h}");
    proxy.restore();
    let (status, _, h) = health(&app).await;
    assert_eq!((status, &h["storage"]), (200, &"ok".into()), "{h}");
}

/// The start-up error of a server whose photo store is `location`.
async fn start_error(location: PhotoLocation) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::resolve(Overrides {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_owned()),
        models: Some(models_dir()),
        embedder: Some(rollcall_vision::models::EmbedderChoice::FaceApi),
        ..Overrides::default()
    })
    .unwrap();
    settings.photo_store = location;
    match Application::build_with_pipeline(&settings, pipeline()).await {
        Ok(_) => panic!("a server started on an unusable photo store"),
        Err(e) => format!("{e:#}"),
    }
}

/// A missing bucket, refused credentials, a store that does not answer, or no credentials:
/// the start stops with one line naming the flag and what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_photo_store_stops_the_start_with_a_clear_error() {
    let server = seaweed::server();
    let missing = format!("rollcall-missing-{}", uuid::Uuid::new_v4().simple());
    let e = start_error(seaweed::location(&missing, &server.endpoint)).await;
    assert!(
        e.contains(&format!(
            "--photo-store s3://{missing}: the bucket `{missing}` does not exist"
        )),
        "{e}"
    );

    let bucket = server.fresh_bucket().await;
    let with = |change: &dyn Fn(&mut Aws)| {
        let mut aws = server.aws();
        change(&mut aws);
        let PhotoLocation::Bucket(b) = seaweed::location(&bucket, &server.endpoint) else {
            unreachable!()
        };
        PhotoLocation::Bucket(b.with_aws(aws))
    };
    let e = start_error(with(&|aws| {
        aws.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
        aws.push(("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into()));
    }))
    .await;
    assert!(
        e.contains(&format!("--photo-store s3://{bucket}: "))
            && e.contains("refused the credentials"),
        "{e}"
    );

    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", nobody.local_addr().unwrap());
    drop(nobody);
    let e = start_error(seaweed::location(&bucket, &closed)).await;
    assert!(
        e.contains(&format!(
            "--photo-store s3://{bucket}: cannot write to the bucket at {closed}"
        )),
        "{e}"
    );

    let e = start_error(with(&|aws| {
        aws.retain(|(k, _)| !k.starts_with("AWS_ACCESS"))
    }))
    .await;
    assert!(
        e.contains("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{e}"
    );
    assert_eq!(
        seaweed::keys(&bucket).await,
        Vec::<String>::new(),
        "no probe left"
    );
}

/// The command line takes the store from `ROLLCALL_PHOTO_STORE` and the `AWS_*` variables,
/// and says as plainly when the bucket is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_names_the_photo_store_it_cannot_use() {
    let server = seaweed::server();
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("rollcall-missing-{}", uuid::Uuid::new_v4().simple());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("ROLLCALL_") || key.starts_with("AWS_") || key == "DATABASE_URL" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.envs(server.aws())
        .env("ROLLCALL_PHOTO_STORE", format!("s3://{missing}"))
        .arg("users")
        .arg("delete")
        .arg("1")
        .arg("--data-dir")
        .arg(dir.path());
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "error: --photo-store s3://{missing}: the bucket `{missing}` does not exist"
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("rollcall.db").exists(),
        "the database is not opened for a command that cannot reach its photos"
    );
}
