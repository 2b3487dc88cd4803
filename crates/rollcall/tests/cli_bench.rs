//! `rollcall bench --gallery N` through the real binary: the JSON the issue names, the table, and
//! the start-up measurement through a scratch database (SQLite and MariaDB).

use rollcall_test_support as shared;

mod cli_support;

use cli_support::mysql::MysqlDatabase;
use cli_support::{rollcall, DataDir, Run};
use serde_json::Value;

fn bench(args: &[&str]) -> Run {
    rollcall()
        .arg("bench")
        .args(args)
        .output()
        .expect("running rollcall")
        .into()
}

/// The fields the issue names, with values that make sense for `people` people of `dim` values.
fn check_gallery(json: &Value, people: u64, embedder: &str, dim: u64) {
    let g = &json["gallery"];
    assert_eq!(g["people"], people, "{json:#}");
    assert_eq!(g["embedder"], embedder);
    assert_eq!(g["dim"], dim);
    for field in ["load_ms", "memory_mb", "search_p50_ms", "search_p99_ms"] {
        assert!(
            g[field].as_f64().is_some_and(|v| v >= 0.0),
            "{field}: {json:#}"
        );
    }
    assert!(g["search_p50_ms"].as_f64() <= g["search_p99_ms"].as_f64());
    assert_eq!(g["searches"], 40);
    // Every near-duplicate probe finds the member it was made from.
    assert_eq!(g["near_duplicates"], 10);
    assert_eq!(g["near_duplicates_found"], 10);
    assert!(g["arena_mb"].as_f64().unwrap() * 1024.0 * 1024.0 >= (people * dim) as f64);
}

#[test]
fn bench_gallery_reports_load_memory_and_search_latency() {
    let run = bench(&["--gallery", "1000", "--searches", "40", "--json"]).ok();
    check_gallery(&run.json(), 1000, "face-api", 128);
    assert!(run.json()["gallery"]["database"].is_null());

    let run = bench(&[
        "--gallery",
        "300",
        "--searches",
        "40",
        "--embedder",
        "facenet",
        "--json",
    ])
    .ok();
    check_gallery(&run.json(), 300, "facenet", 512);

    let run = bench(&["--gallery", "200", "--searches", "40"]).ok();
    assert!(
        run.stdout
            .starts_with("rollcall bench --gallery: 200 people, FaceApi (128-d)"),
        "{}",
        run.stdout
    );
    for line in [
        "search p50 (40 searches)",
        "search p99",
        "near-duplicates found",
        "10/10",
    ] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }
}

#[test]
fn bench_gallery_refuses_what_it_cannot_measure() {
    let run = bench(&["--gallery", "0"]).failed();
    assert!(run.stderr.contains("at least one person"), "{}", run.stderr);
    let run = bench(&["--json"]).failed();
    assert!(run.stderr.contains("--images"), "{}", run.stderr);
    let run = bench(&["--images", ".", "--searches", "3"]).failed();
    assert!(run.stderr.contains("--gallery"), "{}", run.stderr);
}

/// The start's database part on SQLite: rows written, read back by the start's own queries; a
/// database that already holds people is never written to.
#[test]
fn bench_gallery_through_a_scratch_sqlite_database() {
    let data = DataDir::new();
    let url = data.sqlite_url();
    let run = bench(&[
        "--gallery",
        "1000",
        "--searches",
        "40",
        "--from-database",
        &url,
        "--json",
    ])
    .ok();
    let json = run.json();
    check_gallery(&json, 1000, "face-api", 128);
    let db = &json["gallery"]["database"];
    assert_eq!(db["backend"], "sqlite");
    assert!(db["start_ms"].as_f64().unwrap() >= json["gallery"]["load_ms"].as_f64().unwrap());

    let run = bench(&["--gallery", "10", "--from-database", &url]).failed();
    assert!(
        run.stderr
            .contains("needs an empty scratch database: this one holds 1000 people"),
        "{}",
        run.stderr
    );
}

#[test]
fn bench_gallery_through_a_scratch_mysql_database() {
    let db = MysqlDatabase::create();
    let run = bench(&[
        "--gallery",
        "1000",
        "--searches",
        "40",
        "--from-database",
        &db.url(),
        "--json",
    ])
    .ok();
    let json = run.json();
    check_gallery(&json, 1000, "face-api", 128);
    assert_eq!(json["gallery"]["database"]["backend"], "mysql");
}
