//! Several servers, one truth: each server's gallery follows the database's change log, so a
//! change made on one server, or with the command line, reaches the others within a second,
//! and a server cut off from the database keeps serving what it had, then catches up.

use crate::helpers::{fixture, image_part, models_dir, photos_of, tony_blair, Form, TestApp};
use rollcall::store::Store;
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// What the issue promises: changes reach the other servers within this.
const WITHIN: Duration = Duration::from_secs(1);

/// Check `check` until it holds; panics with `what` once `within` has passed.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health(app: &TestApp) -> Value {
    app.get_json("/health").await
}

/// The people in `app`'s gallery, as its `/health` says.
async fn gallery_people(app: &TestApp) -> u64 {
    health(app).await["gallery_people"]
        .as_u64()
        .expect("gallery_people")
}

/// Has `app`'s gallery applied every change committed before `instant`?
async fn synced_since(app: &TestApp, instant: chrono::DateTime<chrono::Utc>) -> bool {
    let h = health(app).await;
    let at = h["gallery_synced_at"].as_str().expect("gallery_synced_at");
    chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 instant") >= instant
}

/// Who `app` recognises in `photo`: the id, or `None` for a 404.
async fn recognised(app: &TestApp, photo: &str) -> Option<i64> {
    let r = app.verify(photo).await;
    match r.status().as_u16() {
        200 => Some(r.json::<Value>().await.unwrap()["id"].as_i64().expect("id")),
        404 => None,
        other => panic!("verify {photo}: {other} {:?}", r.text().await),
    }
}

pub(crate) async fn a_person_registered_on_one_server_is_recognised_on_the_other(a: TestApp) {
    let b = a.second_server().await;
    let photos = tony_blair();
    let id = a.register_ok("Tony", "Blair", &photos[0]).await;
    eventually(
        WITHIN,
        "B's gallery holds the person registered on A",
        || async { gallery_people(&b).await == 1 },
    )
    .await;
    assert_eq!(recognised(&b, &photos[1]).await, Some(id));
    // The photo is A's, in the shared photo store; B finds its path in the database.
    let r = b.get(&format!("/users/{id}/photo")).await;
    assert_eq!(r.status(), 200);
    let on_b = r.bytes().await.unwrap();
    assert!(!on_b.is_empty());
    assert_eq!(
        a.get(&format!("/users/{id}/photo"))
            .await
            .bytes()
            .await
            .unwrap(),
        on_b
    );
    let h = health(&b).await;
    assert!(h["gallery_sync_lag_ms"].as_u64().unwrap() < 1000, "{h}");
    assert!(h["gallery_synced_at"].as_str().is_some(), "{h}");
}

/// A second server over A's data, and Tony Blair registered on A once B knows him: (B, his
/// photos, his id).
async fn tony_known_to_a_second_server(a: &TestApp) -> (TestApp, Vec<String>, i64) {
    let b = a.second_server().await;
    let photos = tony_blair();
    let id = a.register_ok("Tony", "Blair", &photos[0]).await;
    eventually(WITHIN, "B knows the person", || async {
        gallery_people(&b).await == 1
    })
    .await;
    (b, photos, id)
}

pub(crate) async fn a_person_deleted_on_one_server_is_no_longer_greeted_by_the_other(a: TestApp) {
    let (b, photos, id) = tony_known_to_a_second_server(&a).await;
    assert_eq!(recognised(&a, &photos[1]).await, Some(id));

    assert_eq!(b.delete(&format!("/users/{id}")).await.status(), 204);
    // On B at once: its own change.
    assert_eq!(gallery_people(&b).await, 0);
    assert_eq!(
        b.stored_photos().await,
        Vec::<String>::new(),
        "the photo is gone"
    );
    assert_eq!(a.get(&format!("/users/{id}/photo")).await.status(), 404);
    eventually(WITHIN, "A forgets the person deleted on B", || async {
        gallery_people(&a).await == 0
    })
    .await;
    assert_eq!(recognised(&a, &photos[2]).await, None);
}

/// The threshold in force depends on the references registered: B's follows A's add-face.
async fn a_face_added_on_one_server_moves_the_others_references_and_threshold(a: TestApp) {
    let (b, photos, id) = tony_known_to_a_second_server(&a).await;
    let before = health(&b).await;
    assert_eq!(before["gallery_references"], 1, "{before}");

    let form = Form::new().part("image", image_part(fixture(&photos[2]), "more.jpg"));
    let r = a.post_form(&format!("/users/{id}/faces"), form).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let on_a = health(&a).await;
    assert_eq!(on_a["gallery_references"], 2, "{on_a}");
    assert_ne!(
        on_a["threshold"], before["threshold"],
        "two references call for another threshold"
    );
    eventually(WITHIN, "B has the face added on A", || async {
        health(&b).await["gallery_references"] == 2
    })
    .await;
    let on_b = health(&b).await;
    assert_eq!(
        (
            &on_b["threshold"],
            &on_b["threshold_source"],
            &on_b["gallery_people"]
        ),
        (
            &on_a["threshold"],
            &on_a["threshold_source"],
            &on_a["gallery_people"]
        ),
    );
}

/// `rollcall …` run as a user does, on `app`'s data (no configuration of the caller's), off
/// the async runtime.
async fn cli(app: &TestApp, args: &[&str]) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("ROLLCALL_")
            || key.starts_with("AWS_")
            || key == "DATABASE_URL"
            || key == "RUST_LOG"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.arg("--data-dir")
        .arg(app.data_dir.path())
        .arg("--models")
        .arg(models_dir())
        .args([
            "--embedder",
            "face-api",
            "--database-url",
            &app.database_url,
        ])
        .args(args);
    if let Some(bucket) = crate::seaweed::bucket_of(&app.photo_store) {
        cmd.envs(crate::seaweed::server().aws())
            .arg("--photo-store")
            .arg(bucket.url());
    }
    let shown = format!("{args:?}");
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("running rollcall"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "rollcall {shown}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) async fn the_command_lines_changes_reach_a_running_server(app: TestApp) {
    let photos = tony_blair();
    let photo = crate::helpers::shared_dir()
        .join("fixtures")
        .join(&photos[0]);
    let photo = photo.to_str().unwrap();
    cli(
        &app,
        &[
            "register",
            "--first-name",
            "Tony",
            "--last-name",
            "Blair",
            photo,
        ],
    )
    .await;
    eventually(
        WITHIN,
        "the server knows the person the CLI registered",
        || async { gallery_people(&app).await == 1 },
    )
    .await;
    let users: Value = app.get_json("/users").await;
    let id = users[0]["id"].as_i64().expect("the registered person");
    assert_eq!(recognised(&app, &photos[1]).await, Some(id));
    assert_eq!(app.get(&format!("/users/{id}/photo")).await.status(), 200);

    assert_eq!(app.stored_photos().await.len(), 1);
    cli(&app, &["users", "delete", &id.to_string()]).await;
    assert_eq!(
        app.stored_photos().await,
        Vec::<String>::new(),
        "the photo is gone"
    );
    eventually(
        WITHIN,
        "the server forgets the person the CLI deleted",
        || async { gallery_people(&app).await == 0 },
    )
    .await;
    assert_eq!(recognised(&app, &photos[2]).await, None);
}

/// Rounds of verifies sent to both servers at once.
const ROUNDS: usize = 4;

/// One person seen by the kiosks of two servers at the same moment is checked in once: the
/// database keeps the cooldown, not each server's memory.
pub(crate) async fn simultaneous_verifies_on_two_servers_record_one_check_in(a: TestApp) {
    let (b, photos, id) = tony_known_to_a_second_server(&a).await;
    for round in 0..ROUNDS {
        a.execute("DELETE FROM attendance").await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = [(&a, &photos[1]), (&b, &photos[2])]
            .into_iter()
            .map(|(server, photo)| {
                let (client, url) = (server.client.clone(), server.url("/verify"));
                let (bytes, start) = (fixture(photo), start.clone());
                tokio::spawn(async move {
                    let form = Form::new().part("image", image_part(bytes, "kiosk.jpg"));
                    start.wait().await;
                    let r = client.post(url).multipart(form).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.json::<Value>().await.unwrap()
                })
            })
            .collect();
        let mut checked_in = 0;
        for task in tasks {
            let v = task.await.unwrap();
            assert_eq!(v["id"].as_i64(), Some(id), "{v}");
            checked_in += usize::from(v["checked_in"] == true);
        }
        let log: Value = a.get_json(&format!("/attendance?user_id={id}")).await;
        assert_eq!(
            (checked_in, log.as_array().unwrap().len()),
            (1, 1),
            "round {round}: {log}"
        );
    }
}

/// Every connection of `store`'s pool, held: the server's queries wait for one, as when the
/// database stops answering it (while it goes on answering the others).
async fn hold_every_connection(store: &Store) -> Box<dyn Send> {
    match store {
        Store::Sqlite(pool) => {
            let mut held = Vec::new();
            for _ in 0..pool.options().get_max_connections() {
                held.push(pool.acquire().await.unwrap());
            }
            Box::new(held)
        }
        Store::Mysql(pool) => {
            let mut held = Vec::new();
            for _ in 0..pool.options().get_max_connections() {
                held.push(pool.acquire().await.unwrap());
            }
            Box::new(held)
        }
    }
}

/// A cut off for longer than the log keeps its changes (pruned here rather than waited for):
/// A serves its last gallery meanwhile, then reloads it whole.
async fn a_server_cut_off_from_the_database_serves_from_memory_and_catches_up(a: TestApp) {
    let b = a.second_server().await;
    let photos = tony_blair();
    let hugo = &photos_of("Hugo_Chavez")[0];
    let tony = a.register_ok("Tony", "Blair", &photos[0]).await;

    let held = hold_every_connection(&a.store).await;
    assert_eq!(b.delete(&format!("/users/{tony}")).await.status(), 204);
    let hugo_id = b.register_ok("Hugo", "Chavez", hugo).await;
    b.execute("DELETE FROM gallery_changes").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let h = health(&a).await;
    assert_eq!(h["database"], "unavailable", "{h}");
    assert_eq!(h["gallery_people"], 1, "the last gallery still serves: {h}");
    assert!(h["gallery_sync_lag_ms"].as_u64().unwrap() >= 1000, "{h}");

    drop(held);
    // A pass may still wait for a connection: allow it to get one.
    eventually(
        WITHIN * 3,
        "A catches up once the database answers",
        || async {
            let h = health(&a).await;
            h["database"] == "ok" && h["gallery_sync_lag_ms"].as_u64().unwrap() < 1000
        },
    )
    .await;
    assert_eq!(recognised(&a, hugo).await, Some(hugo_id));
    assert_eq!(recognised(&a, &photos[1]).await, None);
}

/// A change that commits late with the lower id is not missed: the change after it cannot
/// commit first. Here the older change is a deletion held open by hand, written as the store
/// writes one (the sequence bumped, then the log row, in the transaction of the change).
async fn a_change_that_commits_late_is_not_missed(a: TestApp) {
    let b = a.second_server().await;
    let photos = tony_blair();
    let hugo = photos_of("Hugo_Chavez")[0].clone();
    let tony = a.register_ok("Tony", "Blair", &photos[0]).await;
    eventually(WITHIN, "B knows Tony", || async {
        gallery_people(&b).await == 1
    })
    .await;

    let writer = a.another_pool().await;
    let statements = [
        "UPDATE gallery_sequence SET last_id = last_id + 1 WHERE id = 1".to_owned(),
        format!("DELETE FROM faces WHERE user_id = {tony}"),
        format!("DELETE FROM users WHERE id = {tony}"),
        format!(
            "INSERT INTO gallery_changes (id, user_id, kind, at) \
             SELECT last_id, {tony}, 'delete_user', '9999-01-01 00:00:00' FROM gallery_sequence"
        ),
    ];
    let (to_commit, committed) = tokio::sync::oneshot::channel::<()>();
    let (opened, is_open) = tokio::sync::oneshot::channel::<()>();
    let late = tokio::spawn(async move {
        macro_rules! hold_open {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await.unwrap();
                for sql in &statements {
                    sqlx::query(sql).execute(&mut *tx).await.unwrap();
                }
                opened.send(()).unwrap();
                committed.await.unwrap();
                tx.commit().await.unwrap();
            }};
        }
        match &writer {
            Store::Sqlite(pool) => hold_open!(pool),
            Store::Mysql(pool) => hold_open!(pool),
        }
        writer.close().await;
    });
    is_open.await.unwrap();
    let (b_client, b_url) = (b.client.clone(), b.url("/register"));
    let later = tokio::spawn(async move {
        let form = Form::new()
            .text("first_name", "Hugo")
            .text("last_name", "Chavez")
            .part("image", image_part(fixture(&hugo), "hugo.jpg"));
        b_client.post(b_url).multipart(form).send().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !later.is_finished(),
        "a later change committed while an earlier one was still open"
    );
    to_commit.send(()).unwrap();
    late.await.unwrap();
    let r = later.await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let hugo_id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let committed = chrono::Utc::now();
    eventually(WITHIN, "A has both changes", || async {
        synced_since(&a, committed).await
    })
    .await;
    assert_eq!(gallery_people(&a).await, 1);
    assert_eq!(recognised(&a, &photos[1]).await, None);
    assert_eq!(
        recognised(&a, &photos_of("Hugo_Chavez")[0]).await,
        Some(hugo_id)
    );
}

crate::on_both_backends!(
    a_person_registered_on_one_server_is_recognised_on_the_other,
    a_person_deleted_on_one_server_is_no_longer_greeted_by_the_other,
    a_face_added_on_one_server_moves_the_others_references_and_threshold,
    the_command_lines_changes_reach_a_running_server,
    a_server_cut_off_from_the_database_serves_from_memory_and_catches_up,
    a_change_that_commits_late_is_not_missed,
    simultaneous_verifies_on_two_servers_record_one_check_in,
);
