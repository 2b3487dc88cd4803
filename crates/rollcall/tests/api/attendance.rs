//! Check-ins: one per person per cooldown, also under concurrent verifies; the log's views.

use crate::helpers::{fixture, image_part, tony_blair, Form, TestApp};
use rollcall::store::{CheckIn, NewCheckIn};
use serde_json::Value;

async fn two_verifies_within_the_cooldown_record_one_event(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    let first: Value = app.verify(&photos[1]).await.json().await.unwrap();
    let second: Value = app.verify(&photos[2]).await.json().await.unwrap();
    assert_eq!(first["checked_in"], true, "{first}");
    assert_eq!(second["checked_in"], false, "{second}");
    assert_eq!(
        second["attendance"]["id"], first["attendance"]["id"],
        "the earlier event is returned"
    );
    let log: Value = app.get_json(&format!("/attendance?user_id={id}")).await;
    assert_eq!(log.as_array().unwrap().len(), 1);
    // The kiosk is the caller's key, not the form's `kiosk` field.
    assert_eq!(log[0]["kiosk"], crate::helpers::ADMIN_KEY_NAME);
    assert_eq!(log[0]["first_name"], "Tony");
}

async fn concurrent_verifies_of_one_person_record_one_event(app: TestApp) {
    let photos = tony_blair();
    app.register_ok("Tony", "Blair", &photos[0]).await;
    let bytes = fixture(&photos[1]);
    // Separate tasks, so that the requests really overlap.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (client, url, bytes) = (app.client.clone(), app.url("/verify"), bytes.clone());
            tokio::spawn(async move {
                let form = Form::new().part("image", image_part(bytes, "same.jpg"));
                client.post(url).multipart(form).send().await
            })
        })
        .collect();
    let mut checked_in = 0;
    for task in tasks {
        let r = task.await.expect("task").expect("request");
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        if v["checked_in"] == true {
            checked_in += 1;
        }
    }
    assert_eq!(
        checked_in, 1,
        "exactly one of the concurrent verifies checks the person in"
    );
    assert_eq!(
        app.store
            .attendance(Default::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn the_log_exports_as_csv_and_summarises_the_day(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    assert_eq!(app.verify(&photos[1]).await.status(), 200);
    let today = chrono::Utc::now().date_naive().to_string();

    let r = app.get(&format!("/attendance.csv?date={today}")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,user_id,first_name,last_name,at,similarity,kiosk,liveness"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].contains(&format!(",{id},Tony,Blair,{today}T")),
        "{csv}"
    );
    assert!(lines[1].ends_with(",test admin,none"), "{csv}");

    let summary: Value = app
        .get_json(&format!("/attendance/summary?date={today}"))
        .await;
    assert_eq!(summary[0]["user_id"].as_i64(), Some(id));
    assert_eq!(summary[0]["count"], 1);

    let daily: Value = app
        .get_json(&format!("/attendance/daily?from={today}&to={today}"))
        .await;
    assert_eq!(daily[0]["date"], today.as_str());
    assert_eq!(
        (daily[0]["present"].as_i64(), daily[0]["events"].as_i64()),
        (Some(1), Some(1))
    );

    let other_day: Value = app.get_json("/attendance?date=2001-01-01").await;
    assert!(other_day.as_array().unwrap().is_empty());
    let r = app.get("/attendance?date=yesterday").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_request");
}

async fn the_log_comes_in_pages_newest_first(app: TestApp) {
    let photos = tony_blair();
    let id = app.register_ok("Tony", "Blair", &photos[0]).await;
    // Five check-ins an hour apart, written straight to the store: paging is about the log.
    let start = chrono::Utc::now() - chrono::Duration::hours(6);
    for h in 0..5 {
        let at = start + chrono::Duration::hours(h);
        let done = app
            .store
            .check_in(NewCheckIn {
                user_id: id,
                at,
                similarity: 0.99,
                kiosk: None,
                model: "test",
                not_since: at,
            })
            .await
            .expect("check-in");
        assert!(matches!(done, CheckIn::Recorded(_)), "{done:?}");
    }
    let ids = |url: String| {
        let app = &app;
        async move {
            let r = app.get(&url).await;
            assert_eq!(r.status(), 200, "{url}");
            let log: Value = r.json().await.unwrap();
            log.as_array()
                .unwrap()
                .iter()
                .map(|e| e["at"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let all = ids("/attendance".into()).await;
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    assert_eq!(ids("/attendance?limit=2".into()).await, all[..2]);
    assert_eq!(ids("/attendance?limit=2&offset=2".into()).await, all[2..4]);
    assert_eq!(
        ids(format!("/attendance?user_id={id}&limit=2&offset=4")).await,
        all[4..]
    );
    assert!(ids("/attendance?offset=5".into()).await.is_empty());
    let csv = app
        .get("/attendance.csv?limit=1")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "header and one row: {csv}");

    for bad in [
        "limit=0",
        "limit=-1",
        "limit=ten",
        "limit=100001",
        "offset=-3",
    ] {
        let r = app.get(&format!("/attendance?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_request");
    }
}

crate::on_both_backends!(
    the_log_comes_in_pages_newest_first,
    two_verifies_within_the_cooldown_record_one_event,
    concurrent_verifies_of_one_person_record_one_event,
    the_log_exports_as_csv_and_summarises_the_day,
);
