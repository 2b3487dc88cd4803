//! Dates at the edges of what the backends store: a day inside the accepted range (1000-01-01 to
//! 9999-12-31) finds exactly the events of that range on both backends, and a day outside it, or
//! no day at all, is a 400 naming the field — never a 500 and never a silently empty answer.

use crate::helpers::{tony_blair, TestApp};
use chrono::{DateTime, Utc};
use rollcall::store::{CheckIn, NewCheckIn};
use serde_json::Value;

/// The events the tests store, oldest first: the first and last instants the accepted range
/// holds, both sides of the Unix epoch, the first second past a 32-bit TIMESTAMP, the last
/// microsecond of 2099.
const EVENTS: [&str; 6] = [
    "1000-01-01T00:00:00Z",
    "1969-12-31T12:00:00Z",
    "1970-01-01T00:00:00Z",
    "2038-01-19T03:14:08Z",
    "2099-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59.999999Z",
];

/// A filter and the events it must find (indices into [`EVENTS`]).
const RANGES: [(&str, &[usize]); 15] = [
    ("", &[0, 1, 2, 3, 4, 5]),
    ("to=9999-12-31", &[0, 1, 2, 3, 4, 5]),
    ("from=9999-12-31", &[5]),
    ("date=9999-12-31", &[5]),
    ("to=2099-12-31", &[0, 1, 2, 3, 4]),
    ("from=2099-12-31", &[4, 5]),
    ("from=2038-01-19", &[3, 4, 5]),
    ("to=2038-01-19", &[0, 1, 2, 3]),
    ("date=2038-01-19", &[3]),
    ("date=1969-12-31", &[1]),
    ("to=1969-12-31", &[0, 1]),
    ("from=1970-01-01", &[2, 3, 4, 5]),
    ("from=1000-01-01", &[0, 1, 2, 3, 4, 5]),
    ("date=1000-01-01", &[0]),
    ("from=1970-01-01&to=2099-12-31", &[2, 3, 4]),
];

/// Days outside the accepted range or not days at all, with the field the error must name.
const REFUSED: [(&str, &str); 12] = [
    ("from=-9999-01-01", "from"),
    ("from=0000-01-01", "from"),
    ("from=0999-12-31", "from"),
    ("to=10000-01-01", "to"),
    ("to=+10000-01-01", "to"),
    ("date=99999-01-01", "date"),
    ("to=garbage", "to"),
    ("from=2026-02-30", "from"),
    ("date=2026-11-24T00:00:00Z", "date"),
    ("to=2026-1-1x", "to"),
    ("from=%00", "from"),
    // `to` before `from`: a 400 rather than an empty answer that looks like "nobody came".
    ("from=2026-11-24&to=2026-11-23", "from"),
];

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// One person with a check-in at each of [`EVENTS`], written straight to the store.
async fn store_events(app: &TestApp) -> i64 {
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
    for at in EVENTS.map(instant) {
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
    id
}

async fn ok(app: &TestApp, url: &str) -> reqwest::Response {
    let r = app.get(url).await;
    assert_eq!(r.status(), 200, "{url}");
    r
}

async fn the_edges_of_the_date_range_find_their_events(app: TestApp) {
    store_events(&app).await;
    for (query, want) in RANGES {
        let want: Vec<&str> = want.iter().rev().map(|&i| EVENTS[i]).collect();
        let log: Value = ok(&app, &format!("/attendance?{query}"))
            .await
            .json()
            .await
            .unwrap();
        let got: Vec<DateTime<Utc>> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| instant(e["at"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            want.iter().map(|s| instant(s)).collect::<Vec<_>>(),
            "/attendance?{query}"
        );

        let csv = ok(&app, &format!("/attendance.csv?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(csv.lines().count(), want.len() + 1, "CSV of {query}: {csv}");

        if !query.is_empty() {
            let summary: Value = ok(&app, &format!("/attendance/summary?{query}"))
                .await
                .json()
                .await
                .unwrap();
            let counted: u64 = summary
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["count"].as_u64().unwrap())
                .sum();
            assert_eq!(
                counted as usize,
                want.len(),
                "summary of {query}: {summary}"
            );
        }
    }

    // The chart's days, each range short enough for it.
    for (query, days, events) in [
        ("from=9999-12-01&to=9999-12-31", 31, 1),
        ("from=2099-12-31&to=2100-01-01", 2, 1),
        ("from=2038-01-19&to=2038-01-19", 1, 1),
        ("from=1969-12-31&to=1970-01-01", 2, 2),
        ("from=1000-01-01&to=1000-01-02", 2, 1),
    ] {
        let daily: Value = ok(&app, &format!("/attendance/daily?{query}"))
            .await
            .json()
            .await
            .unwrap();
        let rows = daily.as_array().unwrap();
        let counted: u64 = rows.iter().map(|r| r["events"].as_u64().unwrap()).sum();
        assert_eq!(
            (rows.len(), counted),
            (days, events),
            "daily of {query}: {daily}"
        );
    }
}

async fn days_outside_the_range_are_refused_naming_the_field(app: TestApp) {
    store_events(&app).await;
    for route in [
        "/attendance",
        "/attendance.csv",
        "/attendance/summary",
        "/attendance/daily",
    ] {
        for (query, field) in REFUSED {
            let url = format!("{route}?{query}");
            let r = app.get(&url).await;
            assert_eq!(r.status(), 400, "{url}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "bad_request", "{url}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{field}`")), "{url}: {message}");
        }
    }
    // Nothing was lost on the way.
    assert_eq!(
        app.store
            .attendance(Default::default())
            .await
            .unwrap()
            .len(),
        EVENTS.len()
    );
}

/// The report: with the instants sent as TIMESTAMP, MySQL answered nothing for a range
/// reaching past 2038-01-19 or before 1970, about events well inside both.
async fn todays_events_are_found_by_ranges_reaching_past_2038_or_before_1970(app: TestApp) {
    let at = instant("2026-11-24T08:59:01.5Z");
    let id = app.register_ok("Tony", "Blair", &tony_blair()[0]).await;
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
    for query in [
        "to=2038-01-19",
        "to=2099-12-31",
        "to=9999-12-31",
        "from=1969-12-31",
        "from=1000-01-01&to=9999-12-31",
        "from=2026-11-24&to=2099-12-31",
    ] {
        let log: Value = ok(&app, &format!("/attendance?{query}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(log.as_array().unwrap().len(), 1, "/attendance?{query}");
        let csv = ok(&app, &format!("/attendance.csv?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(csv.lines().count(), 2, "CSV of {query}");
        let summary: Value = ok(&app, &format!("/attendance/summary?{query}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(summary[0]["count"], 1, "summary of {query}: {summary}");
    }
}

crate::on_both_backends!(
    todays_events_are_found_by_ranges_reaching_past_2038_or_before_1970,
    the_edges_of_the_date_range_find_their_events,
    days_outside_the_range_are_refused_naming_the_field,
);
