//! The cooldown ends: a person seen again inside it is not checked in again, a person seen
//! after it is. (A short cooldown, so the test waits it out.)

use crate::helpers::{tony_blair, TestApp, TestConfig};
use serde_json::Value;
use std::time::Duration;

/// Long enough that two verifies in a row fit inside it on a loaded machine.
const COOLDOWN: Duration = Duration::from_secs(4);

fn config() -> TestConfig {
    TestConfig {
        cooldown: COOLDOWN,
        ..Default::default()
    }
}

fn event_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v["attendance"]["at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .unwrap_or_else(|| panic!("no attendance time in {v}"))
}

async fn a_person_is_checked_in_again_once_the_cooldown_has_passed(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;

    let first: Value = app.verify(&photos[1]).await.json().await.unwrap();
    assert_eq!(first["checked_in"], true, "{first}");
    let first_at = event_time(&first);

    let inside: Value = app.verify(&photos[2]).await.json().await.unwrap();
    let elapsed = (chrono::Utc::now() - first_at).to_std().unwrap_or_default();
    assert!(
        elapsed < COOLDOWN,
        "the second verify took {elapsed:?}, past the cooldown: the machine is too slow for this test"
    );
    assert_eq!(inside["checked_in"], false, "inside the cooldown: {inside}");
    assert_eq!(inside["attendance"]["id"], first["attendance"]["id"]);

    // Wait until the first event is older than the cooldown.
    let expires = first_at + chrono::Duration::from_std(COOLDOWN).unwrap();
    let wait = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(300)).await;

    let after: Value = app.verify(&photos[3]).await.json().await.unwrap();
    assert_eq!(after["checked_in"], true, "after the cooldown: {after}");
    assert_ne!(after["attendance"]["id"], first["attendance"]["id"]);
    assert!(event_time(&after) >= expires, "{after}");

    let log: Value = app.get_json(&format!("/attendance?user_id={id}")).await;
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
}

crate::on_both_backends!(
    config = super::config();
    a_person_is_checked_in_again_once_the_cooldown_has_passed,
);
