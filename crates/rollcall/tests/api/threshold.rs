//! The threshold in force follows the gallery: derived from `--false-accept-rate` for the
//! reference faces registered now, recomputed on register, add-face and delete; shown by
//! `/health`, `/metrics` and the `/verify` answers. The expected values come from the
//! derivation itself (the shipped calibration of the model), never from a number written here.

use crate::helpers::{fixture, image_part, photos_of, tony_blair, Form, TestApp};
use rollcall::operating_point::{Rule, ScoreHistogram};
use serde_json::Value;

/// The rule the server is in force with for `people` holding `references` (a few people: far
/// fewer member pairs than the gallery's own derivation needs): (threshold, margin, source), as
/// the answers round them.
fn expected(people: usize, references: usize) -> (f64, f64, &'static str) {
    let rule = Rule::for_model(
        "face-api-resnet128-flip",
        rollcall::operating_point::DEFAULT_FALSE_ACCEPT_RATE,
        rollcall::domain::Threshold::new(0.0).unwrap(),
    );
    let point = rule.derive(&ScoreHistogram::default(), people, references);
    (
        (f64::from(point.threshold.value()) * 1e6).round() / 1e6,
        (point.margin * 1e6).round() / 1e6,
        point.source.as_str(),
    )
}

async fn health(app: &TestApp) -> Value {
    app.get_json("/health").await
}

fn assert_in_force(h: &Value, people: usize, references: usize) {
    let (threshold, margin, source) = expected(people, references);
    assert_eq!(h["gallery_people"], people as u64, "{h}");
    assert_eq!(h["gallery_references"], references as u64, "{h}");
    assert_eq!(h["threshold"].as_f64(), Some(threshold), "{h}");
    assert_eq!(h["margin"].as_f64(), Some(margin), "{h}");
    assert_eq!(h["threshold_source"], source, "{h}");
    assert_eq!(h["false_accept_rate"], 0.001, "{h}");
}

/// The rule the verify answer `v` was judged by.
fn assert_judged_by(v: &Value, people: usize, references: usize) {
    let (threshold, margin, source) = expected(people, references);
    assert_eq!(v["threshold"].as_f64(), Some(threshold), "{v}");
    assert_eq!(v["margin"].as_f64(), Some(margin), "{v}");
    assert_eq!(v["threshold_source"], source, "{v}");
    assert_eq!(v["false_accept_rate"], 0.001, "{v}");
}

async fn the_threshold_follows_registrations_and_deletions(app: TestApp) {
    // The shipped rule answers these gallery sizes with the margin rule of the smallest
    // calibrated galleries (10 people with 1, 2 and 3 references each): three different rules,
    // otherwise this test could not tell a recomputed rule from a stale one.
    let sizes = [(0, 0), (2, 5), (2, 6), (1, 2)];
    let rules: Vec<_> = sizes.iter().map(|&(p, r)| expected(p, r)).collect();
    assert!(rules.iter().all(|r| r.2 == "sampled"), "{rules:?}");
    assert!(
        rules[0] != rules[1] && rules[1] != rules[3] && rules[0] != rules[3],
        "{rules:?}"
    );
    assert_in_force(&health(&app).await, 0, 0);

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
    assert_in_force(&health(&app).await, 2, 5);

    let face = Form::new().part("image", image_part(fixture(&chavez[1]), "c.jpg"));
    let r = app
        .post_form(&format!("/users/{chavez_id}/faces"), face)
        .await;
    assert_eq!(r.status(), 200);
    assert_in_force(&health(&app).await, 2, 6);
    let (threshold, margin, _) = expected(2, 6);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    assert!(
        gauge("rollcall_threshold").is_some_and(|g| (g - threshold).abs() < 1e-6),
        "{metrics}"
    );
    assert!(
        gauge("rollcall_threshold_margin").is_some_and(|g| (g - margin).abs() < 1e-6),
        "{metrics}"
    );
    assert!(metrics.contains("rollcall_threshold_false_accept_rate 0.001"));

    // The verify answers carry the rule the photo was judged by.
    let r = app.verify(&blair[0]).await;
    assert_eq!(r.status(), 200);
    assert_judged_by(&r.json().await.unwrap(), 2, 6);

    assert_eq!(
        app.delete(&format!("/users/{blair_id}")).await.status(),
        204
    );
    assert_in_force(&health(&app).await, 1, 2);
    let r = app.verify(&blair[1]).await;
    assert_eq!(r.status(), 404);
    assert_judged_by(&r.json().await.unwrap(), 1, 2);
}

crate::on_both_backends!(the_threshold_follows_registrations_and_deletions);
