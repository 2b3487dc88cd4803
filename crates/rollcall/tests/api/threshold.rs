//! The threshold in force follows the gallery: derived from `--false-accept-rate` for the
//! reference faces registered now, recomputed on register, add-face and delete; shown by
//! `/health`, `/metrics` and the `/verify` answers. The expected values come from the
//! derivation itself (the shipped calibration of the model), never from a number written here.

use crate::helpers::{fixture, image_part, photos_of, tony_blair, Form, TestApp};
use rollcall::operating_point::{model_tail, Rule};
use serde_json::Value;

/// The threshold the server should be in force with `references` faces registered (a few
/// people: far fewer member pairs than the gallery's own derivation needs, so the model's).
fn expected(references: usize) -> f64 {
    let rule = Rule {
        false_accept_rate: rollcall::operating_point::DEFAULT_FALSE_ACCEPT_RATE,
        configured: None,
        default: rollcall::domain::Threshold::new(0.0).unwrap(),
        model: model_tail("face-api-resnet128-flip"),
    };
    let t = rule
        .model_threshold(references)
        .expect("face-api is calibrated") as f32;
    (f64::from(t) * 1e6).round() / 1e6
}

async fn health(app: &TestApp) -> Value {
    app.get_json("/health").await
}

fn assert_in_force(h: &Value, people: u64, references: usize, threshold: f64) {
    assert_eq!(h["gallery_people"], people, "{h}");
    assert_eq!(h["gallery_references"], references as u64, "{h}");
    assert_eq!(h["threshold"].as_f64(), Some(threshold), "{h}");
    assert_eq!(h["threshold_source"], "model", "{h}");
    assert_eq!(h["false_accept_rate"], 0.001, "{h}");
}

async fn the_threshold_follows_registrations_and_deletions(app: TestApp) {
    // More references, a higher threshold: otherwise this test could not tell a recomputed
    // threshold from a stale one.
    assert!(expected(1) < expected(5) && expected(5) < expected(6));
    assert!(expected(2) < expected(5));
    assert_in_force(&health(&app).await, 0, 0, expected(1));

    let blair = tony_blair();
    let form = blair.iter().fold(
        Form::new()
            .text("first_name", "Tony")
            .text("last_name", "Blair"),
        |form, p| form.part("image", image_part(fixture(p), "b.jpg")),
    );
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 200);
    let blair_id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let chavez = photos_of("Hugo_Chavez");
    let chavez_id = app.register_ok("Hugo", "Chavez", &chavez[0]).await;
    assert_in_force(&health(&app).await, 2, 5, expected(5));

    let face = Form::new().part("image", image_part(fixture(&chavez[1]), "c.jpg"));
    let r = app
        .post_form(&format!("/users/{chavez_id}/faces"), face)
        .await;
    assert_eq!(r.status(), 200);
    assert_in_force(&health(&app).await, 2, 6, expected(6));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let gauge = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rollcall_threshold "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(
        gauge.is_some_and(|g| (g - expected(6)).abs() < 1e-6),
        "{metrics}"
    );
    assert!(metrics.contains("rollcall_threshold_false_accept_rate 0.001"));

    // The verify answers carry the threshold the photo was judged by.
    let r = app.verify(&blair[0]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["threshold"].as_f64(), Some(expected(6)), "{v}");
    assert_eq!(
        (&v["false_accept_rate"], &v["threshold_source"]),
        (&Value::from(0.001), &Value::from("model"))
    );

    assert_eq!(
        app.delete(&format!("/users/{blair_id}")).await.status(),
        204
    );
    assert_in_force(&health(&app).await, 1, 2, expected(2));
    let r = app.verify(&blair[1]).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["threshold"].as_f64(), Some(expected(2)), "{v}");
    assert_eq!(v["threshold_source"], "model", "{v}");
}

crate::on_both_backends!(the_threshold_follows_registrations_and_deletions);
