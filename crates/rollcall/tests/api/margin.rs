//! The margin rule at the kiosk: the best person is named only when they are also more similar
//! than the next person by the margin (`--margin` with `--threshold` here, so that the rule is
//! fixed; derived, it comes from the model's calibration: `threshold.rs`). A face close to two
//! people is not checked in as either; a face with nobody else registered has no one to be
//! confused with. Admins see the runner-up's similarity, kiosks do not.

use crate::helpers::{
    client_with_key, fixture, image_part, photos_of, tony_blair, Form, TestApp, TestConfig,
};
use rollcall::auth::Scope;
use serde_json::Value;

/// A low threshold every photo of the right person clears, with `margin`.
fn rule(margin: f64) -> TestConfig {
    TestConfig {
        threshold: Some(0.5),
        margin: Some(margin),
        ..Default::default()
    }
}

/// Register at a threshold this low: every face is a "duplicate" of someone, so say it is not.
async fn register(app: &TestApp, first: &str, last: &str, photo: &str) -> i64 {
    let form = Form::new()
        .text("first_name", first.to_owned())
        .text("last_name", last.to_owned())
        .text("allow_duplicate", "true")
        .part("image", image_part(fixture(photo), "p.jpg"));
    let r = app.post_form("/register", form).await;
    assert_eq!(r.status(), 200, "register {photo}");
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn verify_json(app: &TestApp, photo: &str) -> (u16, Value) {
    let r = app.verify(photo).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The best and runner-up similarity an admin sees for the largest face.
fn scores(v: &Value) -> (f64, Option<f64>) {
    let face = &v["faces"][0];
    (
        face["best_similarity"].as_f64().expect("best_similarity"),
        face["runner_up_similarity"].as_f64(),
    )
}

mod wide {
    use super::*;

    /// Far more than a different person's face-api similarity leaves between two people.
    const MARGIN: f64 = 0.3;

    async fn a_face_not_ahead_of_the_next_person_by_the_margin_is_not_named(app: TestApp) {
        let blair = tony_blair();
        register(&app, "Tony", "Blair", &blair[0]).await;
        // Nobody else registered: nobody to confuse him with.
        let (status, v) = verify_json(&app, &blair[1]).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["margin"], MARGIN, "{v}");
        assert_eq!(v["faces"][0]["runner_up_similarity"], Value::Null, "{v}");
        let checked_in = app.snapshot().await.attendance;
        assert_eq!(checked_in, 1);

        register(&app, "Hugo", "Chavez", &photos_of("Hugo_Chavez")[0]).await;
        let (status, v) = verify_json(&app, &blair[2]).await;
        assert_eq!(status, 404, "{v}");
        assert_eq!(v["error"], "not_recognised", "{v}");
        assert_eq!(
            (&v["threshold"], &v["margin"]),
            (&0.5.into(), &MARGIN.into())
        );
        assert_eq!(v["threshold_source"], "configured", "{v}");
        let (best, runner_up) = scores(&v);
        let runner_up = runner_up.expect("the runner-up an admin sees");
        assert!(best >= 0.5 && best - runner_up < MARGIN, "{v}");
        assert_eq!(
            app.snapshot().await.attendance,
            checked_in,
            "nobody checked in"
        );

        // A kiosk is not told how close the runner-up came.
        let kiosk = client_with_key(&app.key(Scope::Verify).await);
        let form = Form::new().part("image", image_part(fixture(&blair[2]), "b.jpg"));
        let r = kiosk
            .post(app.url("/verify"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["faces"][0]["runner_up_similarity"], Value::Null, "{v}");
        assert_eq!(v["faces"][0]["best_similarity"], Value::Null, "{v}");

        let h: Value = app.get_json("/health").await;
        assert_eq!(
            (&h["margin"], &h["threshold_source"]),
            (&MARGIN.into(), &"configured".into())
        );
    }

    crate::on_both_backends!(config = crate::margin::rule(crate::margin::wide::MARGIN); a_face_not_ahead_of_the_next_person_by_the_margin_is_not_named);
}

mod narrow {
    use super::*;

    const MARGIN: f64 = 0.01;

    async fn a_face_ahead_of_the_next_person_by_the_margin_is_named(app: TestApp) {
        let blair = tony_blair();
        let blair_id = register(&app, "Tony", "Blair", &blair[0]).await;
        register(&app, "Hugo", "Chavez", &photos_of("Hugo_Chavez")[0]).await;
        let (status, v) = verify_json(&app, &blair[2]).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["id"], blair_id, "{v}");
        assert_eq!(v["checked_in"], true, "{v}");
        let (best, runner_up) = scores(&v);
        let runner_up = runner_up.expect("the runner-up an admin sees");
        assert!(best - runner_up >= MARGIN, "{v}");
        assert!(runner_up < best, "{v}");
    }

    crate::on_both_backends!(config = crate::margin::rule(crate::margin::narrow::MARGIN); a_face_ahead_of_the_next_person_by_the_margin_is_named);
}
