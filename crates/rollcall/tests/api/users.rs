//! Users: list, get, photo, delete (photo file, row, and with `history=true` the check-ins).

use crate::helpers::{fixture, image_part, photos_of, tony_blair, Form, TestApp};
use serde_json::Value;

async fn users_are_listed_by_name_and_their_photo_is_served(app: TestApp) {
    let blair = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let chavez = app
        .register_ok("Hugo", "Chavez", &photos_of("Hugo_Chavez")[0])
        .await;
    let users: Value = app.get_json("/users").await;
    let ids: Vec<i64> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![blair, chavez], "sorted by last name");

    let r = app.get(&format!("/users/{blair}/photo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().to_vec(), fixture(&tony_blair()[0]));

    let r = app.get("/users/9999").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    let r = app.get("/users/abc").await;
    assert_eq!(r.status(), 400);
}

async fn delete_removes_the_photo_the_row_and_optionally_the_history(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
    assert_eq!(app.files().len(), 1);

    let r = app.delete(&format!("/users/{id}")).await;
    assert_eq!(r.status(), 204);
    assert!(app.files().is_empty(), "the reference photo is deleted");
    assert_eq!(app.get(&format!("/users/{id}")).await.status(), 404);
    assert!(app.store.list_users().await.unwrap().is_empty());
    // Without history=true the check-in stays, with the name as it was.
    let log: Value = app.get_json("/attendance").await;
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["last_name"], "Blair");
    // Nobody is recognised any more.
    assert_eq!(app.verify(&photos[1]).await.status(), 404);
    let r = app.delete(&format!("/users/{id}")).await;
    assert_eq!(r.status(), 404);

    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
    let r = app.delete(&format!("/users/{id}?history=true")).await;
    assert_eq!(r.status(), 204);
    let log: Value = app.get_json(&format!("/attendance?user_id={id}")).await;
    assert!(log.as_array().unwrap().is_empty());
    assert!(app.files().is_empty());
}

async fn a_face_for_an_unknown_user_or_another_model_is_refused(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    let face = || Form::new().part("image", image_part(fixture(&photos[1]), "face.jpg"));
    let before = app.snapshot().await;

    let r = app
        .post_form(&format!("/users/{}/faces", id + 1), face())
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    let r = app.post_form("/users/abc/faces", face()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_request");
    assert_eq!(app.snapshot().await, before);

    // The person's embeddings are of another model (registered before the model changed).
    app.execute(&format!(
        "UPDATE users SET model = 'some-older-model' WHERE id = {id}"
    ))
    .await;
    let r = app.post_form(&format!("/users/{id}/faces"), face()).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "model_mismatch");
    assert!(
        body["message"].as_str().unwrap().contains("reindex"),
        "the message says what to do: {body}"
    );
    assert_eq!(app.snapshot().await, before);
    let user: Value = app.get_json(&format!("/users/{id}")).await;
    assert_eq!(user["faces"], 1);
}

/// A reference photo deleted from disk behind the server's back: the user is still listed, the
/// photo is a JSON 404.
async fn a_missing_photo_file_is_a_404(app: TestApp) {
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    let files = app.files();
    assert_eq!(files.len(), 1);
    std::fs::remove_file(app.img_refs().join(&files[0])).unwrap();

    let r = app.get(&format!("/users/{id}/photo")).await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(
        body["message"].as_str().unwrap().contains("photo"),
        "{body}"
    );
    assert_eq!(app.get(&format!("/users/{id}")).await.status(), 200);
}

crate::on_both_backends!(
    users_are_listed_by_name_and_their_photo_is_served,
    delete_removes_the_photo_the_row_and_optionally_the_history,
    a_face_for_an_unknown_user_or_another_model_is_refused,
    a_missing_photo_file_is_a_404,
);
