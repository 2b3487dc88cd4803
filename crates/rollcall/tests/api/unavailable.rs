//! 503s over HTTP: `database_unavailable` when the database is gone, `busy` when the inference
//! queue is full; both with `Retry-After`.

use crate::helpers::{fixture, image_part, tony_blair, Form, TestApp, TestConfig};
use serde_json::Value;

/// One photo analysed at a time and none waiting: a second concurrent photo is refused.
fn config() -> TestConfig {
    TestConfig {
        workers: 1,
        queue: 0,
        ..Default::default()
    }
}

async fn expect_503(r: reqwest::Response, code: &str, what: &str) {
    assert_eq!(r.status(), 503, "{what}");
    assert_eq!(r.headers()["retry-after"], "1", "{what}");
    let body: Value = r.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn without_the_database_requests_answer_database_unavailable(app: TestApp) {
    let photos = tony_blair();
    app.register_ok("Tony", "Blair", &photos[0]).await;
    app.store.close().await;

    expect_503(
        app.get("/users").await,
        "database_unavailable",
        "GET /users",
    )
    .await;
    expect_503(
        app.get("/attendance").await,
        "database_unavailable",
        "GET /attendance",
    )
    .await;
    // The face is recognised from the gallery in memory; its check-in cannot be written.
    expect_503(
        app.verify(&photos[1]).await,
        "database_unavailable",
        "POST /verify",
    )
    .await;
}

async fn a_full_inference_queue_answers_busy(app: TestApp) {
    let photos = tony_blair();
    app.register_ok("Tony", "Blair", &photos[0]).await;
    // A group photo: the largest image of the fixtures, so each analysis takes a while.
    let bytes = fixture("scenes/group/multiface_friends_cast.jpg");
    let mut busy = 0;
    // Requests sent at once all overlap the first one's analysis; a few rounds make "none
    // overlapped" impossible in practice.
    for _round in 0..5 {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, url, bytes) = (app.client.clone(), app.url("/verify"), bytes.clone());
                tokio::spawn(async move {
                    let form = Form::new().part("image", image_part(bytes, "group.jpg"));
                    client.post(url).multipart(form).send().await
                })
            })
            .collect();
        for task in tasks {
            let r = task.await.expect("task").expect("request");
            match r.status().as_u16() {
                // Nobody in the group photo is registered.
                404 => {}
                503 => {
                    busy += 1;
                    expect_503(r, "busy", "a verify beyond the queue").await;
                }
                other => panic!("unexpected status {other}: {:?}", r.text().await),
            }
        }
        if busy > 0 {
            break;
        }
    }
    assert!(busy > 0, "no verify was refused with workers=1, queue=0");
    // Once the queue is empty again, photos are analysed.
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
}

crate::on_both_backends!(
    config = super::config();
    without_the_database_requests_answer_database_unavailable,
    a_full_inference_queue_answers_busy,
);
