//! Register and verify with real photos: the person is recognised from another photo, a
//! stranger is not, a group photo lists every face, a photo without a face is refused.

use crate::helpers::{fixture, image_part, photos_of, tony_blair, Form, TestApp};
use serde_json::Value;

const STRANGER: &str = "Hugo_Chavez";

async fn a_registered_person_is_recognised_and_a_stranger_is_not(app: TestApp) {
    let photos = tony_blair();
    let r = app.register("Tony", "Blair", &photos[0]).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["first_name"], "Tony");
    assert_eq!(user["last_name"], "Blair");
    assert_eq!(user["faces"], 1);
    let health: Value = app.get_json("/health").await;
    assert_eq!(
        user["model"], health["model"],
        "embeddings carry the server's model id"
    );
    let id = user["id"].as_i64().unwrap();
    assert_eq!(user["image_url"], format!("/users/{id}/photo"));
    assert_eq!(app.files().len(), 1, "one reference photo in img_refs/");

    let r = app.verify(&photos[1]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["id"].as_i64(), &v["first_name"], &v["last_name"]),
        (Some(id), &"Tony".into(), &"Blair".into())
    );
    let similarity = v["similarity"].as_f64().unwrap();
    assert!(similarity >= v["threshold"].as_f64().unwrap(), "{v}");
    assert_eq!(v["checked_in"], true);
    assert!(v["attendance"]["id"].is_i64());
    let faces = v["faces"].as_array().unwrap();
    assert!(!faces.is_empty());
    assert_eq!(faces[0]["match"]["id"].as_i64(), Some(id));
    assert_eq!(faces[0]["checked_in"], true);
    assert_eq!(faces[0]["box"].as_array().unwrap().len(), 4);

    let r = app.verify(&photos_of(STRANGER)[0]).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_recognised");
    assert!(v["threshold"].is_f64());
    let faces = v["faces"].as_array().unwrap();
    assert!(faces[0]["match"].is_null());
    assert!(faces[0]["best_similarity"].as_f64().unwrap() < v["threshold"].as_f64().unwrap());
}

async fn extra_images_become_extra_reference_faces(app: TestApp) {
    let photos = tony_blair();
    let form = Form::new()
        .text("first_name", "Tony")
        .text("last_name", "Blair")
        .part("image", image_part(fixture(&photos[0]), "a.jpg"))
        .part("image", image_part(fixture(&photos[2]), "b.jpg"));
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["faces"], 2);
    assert_eq!(app.files().len(), 2);

    // One more through /users/{id}/faces.
    let id = user["id"].as_i64().unwrap();
    let form = Form::new().part("image", image_part(fixture(&photos[3]), "c.jpg"));
    let r = app.post_form(&format!("/users/{id}/faces"), form).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["faces"], 3);
    assert_eq!(app.files().len(), 3);

    let r = app.verify(&photos[1]).await;
    assert_eq!(r.status(), 200);
}

async fn a_group_photo_lists_every_face(app: TestApp) {
    let r = app.verify("scenes/group/multiface_friends_cast.jpg").await;
    // Nobody is registered: the largest face is not recognised, and every face is listed.
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert!(
        faces.len() >= 4,
        "expected the cast's faces, got {}",
        faces.len()
    );
    let area = |f: &Value| {
        let b: Vec<f64> = f["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (b[2] - b[0]) * (b[3] - b[1])
    };
    assert!(
        faces.windows(2).all(|w| area(&w[0]) >= area(&w[1])),
        "largest first"
    );
    assert!(faces
        .iter()
        .all(|f| f["best_similarity"].is_null() && f["match"].is_null()));

    let form = Form::new().part(
        "image",
        image_part(fixture("scenes/group/multiface_friends_cast.jpg"), "g.jpg"),
    );
    let r = app.post_form("/detect", form).await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["width"], 1200);
    assert_eq!(d["faces"].as_array().unwrap().len(), faces.len());
    assert_eq!(d["faces"][0]["landmarks"].as_array().unwrap().len(), 5);
}

async fn a_photo_without_a_face_is_refused(app: TestApp) {
    let r = app.verify("scenes/no_face/coffee_cup.png").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "no_face");

    let before = app.snapshot().await;
    let r = app
        .register("No", "Face", "scenes/no_face/giraffe.jpg")
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "no_face");
    assert_eq!(app.snapshot().await, before);
}

crate::on_both_backends!(
    other_model_embeddings_wait_for_reindex,
    reindex_embeds_the_face_chosen_in_a_group_photo_again,
    a_registered_person_is_recognised_and_a_stranger_is_not,
    extra_images_become_extra_reference_faces,
    a_group_photo_lists_every_face,
    a_photo_without_a_face_is_refused,
);

/// A second service over the test's database and photos, as a restart loads it.
async fn restart(app: &TestApp) -> rollcall::service::Rollcall {
    use rollcall::service::{Options, Rollcall};
    use rollcall::store::{PhotoDir, PhotoStore};
    let options = Options {
        threshold: None,
        margin: None,
        false_accept_rate: 1e-3,
        cooldown: std::time::Duration::from_secs(300),
        workers: 1,
        queue: 4,
    };
    Rollcall::open(
        app.store.clone(),
        PhotoStore::Dir(PhotoDir::new(app.data_dir.path())),
        crate::helpers::pipeline(),
        &options,
    )
    .await
    .unwrap()
}

/// A person registered from a group photo by choosing a face is re-embedded from that face, not
/// from the photo's subject (two faces of a size: none is clear, so without the stored box the
/// photo could not be re-embedded at all).
async fn reindex_embeds_the_face_chosen_in_a_group_photo_again(app: TestApp) {
    let group = crate::multi_face::side_by_side(&tony_blair()[0], &photos_of("Hugo_Chavez")[0]);
    let form = Form::new()
        .text("first_name", "Hugo")
        .text("last_name", "Chavez")
        .text("face", "1")
        .part("image", image_part(group, "group.jpg"));
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let embedding = || async {
        let rows = app.store.embeddings_of(&[id]).await.unwrap();
        assert_eq!(rows.len(), 1, "one reference face");
        rows[0].embedding.clone()
    };
    let registered = embedding().await;
    // Another model's embedding (zeros): reindex must embed the photo again.
    app.execute(&format!(
        "UPDATE users SET model = 'some-older-model', embedding = X'{}' WHERE id = {id}",
        "00".repeat(registered.len())
    ))
    .await;

    let restarted = restart(&app).await;
    let report = restarted
        .reindex(false, &rollcall::audit::Actor::cli(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (report.reembedded, report.failed.len()),
        (1, 0),
        "{report:?}"
    );
    // The same face, so the same embedding, bit for bit.
    assert_eq!(embedding().await, registered);
}

/// Embeddings of another model are never compared; `reindex` re-embeds them from the stored
/// photos and the person is recognised again.
async fn other_model_embeddings_wait_for_reindex(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    app.execute(&format!(
        "UPDATE users SET model = 'some-older-model' WHERE id = {id}"
    ))
    .await;

    // A restart: the gallery leaves the person out.
    let restarted = restart(&app).await;
    assert_eq!(restarted.gallery_len(), 0);
    let probe: std::sync::Arc<[u8]> = fixture(&photos[1]).into();
    let v = restarted.verify(probe.clone(), None, false).await.unwrap();
    assert!(!v.faces[0].matched);

    let report = restarted
        .reindex(false, &rollcall::audit::Actor::cli(), |_, _| {})
        .await
        .unwrap();
    assert_eq!((report.reembedded, report.failed.len()), (1, 0));
    let v = restarted.verify(probe, None, false).await.unwrap();
    assert!(v.faces[0].matched);
    assert_eq!(v.faces[0].best.as_ref().map(|c| c.user_id), Some(id));
    let user = app.store.get_user(id).await.unwrap().unwrap();
    assert_eq!(user.model, restarted.model());
}
