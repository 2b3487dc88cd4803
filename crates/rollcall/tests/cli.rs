//! Every command of the README's "The command line", run as a user runs it: the real `rollcall`
//! binary, the real face-api and MTCNN weights, real LFW photos, a fresh data directory (SQLite)
//! per test, and one test on MariaDB.

use rollcall_test_support as shared;

mod cli_support;

use cli_support::models::{
    fetch_line, fetch_offline, models_copy, snapshot, FACENET_FILE, FACE_API_FILES, MTCNN_FILES,
};
use cli_support::mysql::MysqlDatabase;
use cli_support::server::Server;
use cli_support::{
    age_embeddings, fixture, no_face, rollcall, schema, seed_check_ins, stranger, tony_blair,
    DataDir, Run,
};
use serde_json::Value;
use shared::models_dir;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The rule the server derives for one face-api reference at the default false-accept rate
/// (from the shipped calibration, as `verify` does): threshold and margin as `/verify` rounds
/// them, and their source.
fn derived_for_one_reference() -> (f64, f64, &'static str) {
    let rule = rollcall::operating_point::Rule::for_model(
        "face-api-resnet128-flip",
        rollcall::operating_point::DEFAULT_FALSE_ACCEPT_RATE,
        rollcall::domain::Threshold::new(0.962).unwrap(),
    );
    let point = rule.derive(&rollcall::operating_point::ScoreHistogram::default(), 1, 1);
    (
        (f64::from(point.threshold.value()) * 1e6).round() / 1e6,
        (point.margin * 1e6).round() / 1e6,
        point.source.as_str(),
    )
}

// ---------------------------------------------------------------------------------------------
// register

#[test]
fn register_one_photo_prints_the_new_person_and_stores_the_photo() {
    let data = DataDir::new();
    let run = data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let line = run.stdout.trim();
    assert!(
        line.starts_with("1  Tony Blair  (1 face, model face-api"),
        "stdout: {line}"
    );
    assert_eq!(data.stored_photos(), 1);

    let users = data.users_json();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["first_name"], "Tony");
    assert_eq!(users[0]["last_name"], "Blair");
    assert_eq!(users[0]["faces"], 1);
}

#[test]
fn register_several_photos_keeps_each_as_a_reference_face() {
    let data = DataDir::new();
    let photos = [tony_blair("0048"), tony_blair("0102"), tony_blair("0121")];
    let run = data.register("Tony", "Blair", &photos).ok();
    assert!(run.stdout.contains("(3 faces, model"), "{}", run.stdout);
    assert_eq!(data.stored_photos(), 3);
    assert_eq!(data.users_json()[0]["faces"], 3);
}

#[test]
fn register_refuses_a_photo_without_a_face_and_registers_nobody() {
    let data = DataDir::new();
    let run = data.register("Coffee", "Cup", &[no_face()]).failed();
    assert!(
        run.stderr.contains("no face was found in the photo"),
        "{}",
        run.stderr
    );
    // A good photo beside the bad one changes nothing: the whole registration is refused.
    let run = data
        .register("Tony", "Blair", &[tony_blair("0048"), no_face()])
        .failed();
    assert!(
        run.stderr
            .contains("image 2: no face was found in the photo"),
        "{}",
        run.stderr
    );
    assert!(data.users_json().is_empty());
    assert_eq!(data.stored_photos(), 0);
}

#[test]
fn register_refuses_a_group_photo_and_a_file_that_is_no_image() {
    let data = DataDir::new();
    // Three faces of similar size: none is clearly the person to register.
    let group = fixture("scenes/group/2008_002506.jpg");
    let run = data
        .register("Some", "One", std::slice::from_ref(&group))
        .failed();
    assert!(
        run.stderr
            .contains("3 faces were found and none is clearly the person to register"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`--face`"), "{}", run.stderr);
    let text = data.path().join("notes.jpg");
    std::fs::write(&text, "not a photo").expect("writing a text file");
    let run = data.register("Some", "One", &[text]).failed();
    assert!(
        run.stderr
            .contains("error: the file is not a JPEG or PNG image"),
        "{}",
        run.stderr
    );
    assert!(data.users_json().is_empty());
    assert_eq!(data.stored_photos(), 0);
    // Naming the face registers it; one name is enough.
    let run = data
        .run([
            OsStr::new("register"),
            OsStr::new("--first-name"),
            OsStr::new("Someone"),
            OsStr::new("--face"),
            OsStr::new("1"),
            group.as_os_str(),
        ])
        .ok();
    assert!(run.stdout.contains("Someone  (1 face"), "{}", run.stdout);
    assert_eq!(data.users_json().len(), 1);
}

#[test]
fn register_names_a_missing_file() {
    let data = DataDir::new();
    let missing = data.path().join("no-such-photo.jpg");
    let run = data
        .register("Tony", "Blair", &[tony_blair("0048"), missing.clone()])
        .failed();
    assert!(
        run.stderr
            .contains(&format!("error: reading {}", missing.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("No such file"), "{}", run.stderr);
    assert!(data.users_json().is_empty());
}

// ---------------------------------------------------------------------------------------------
// verify

#[test]
fn verify_names_a_registered_person_exits_0_and_records_nothing() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let run = data
        .run([OsStr::new("verify"), tony_blair("0102").as_os_str()])
        .ok();
    let mut lines = run.stdout.lines();
    let face = lines.next().expect("a line per face");
    assert!(face.starts_with("face 1: ["), "{face}");
    assert!(
        face.contains("]  Tony Blair (id 1, similarity 0.9"),
        "{face}"
    );
    let footer = lines.last().expect("the threshold line");
    let threshold = match derived_for_one_reference() {
        (t, m, _) if m > 0.0 => format!("threshold {t}, margin {m}, model face-api"),
        (t, _, _) => format!("threshold {t}, model face-api"),
    };
    assert!(footer.starts_with(&threshold), "{footer}");
    // "who is in it (records nothing)"
    assert!(data.export(&[]).is_empty());
}

#[test]
fn verify_exits_non_zero_for_a_stranger() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let run = data
        .run([OsStr::new("verify"), stranger().as_os_str()])
        .failed();
    assert!(
        run.stdout.contains("unknown (closest similarity 0."),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error: the largest face is not recognised"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_exits_non_zero_when_nobody_is_registered() {
    let data = DataDir::new();
    let run = data
        .run([OsStr::new("verify"), tony_blair("0048").as_os_str()])
        .failed();
    assert!(
        run.stdout.contains("unknown (nobody registered)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("the largest face is not recognised"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_exits_non_zero_when_there_is_no_face() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let run = data
        .run([OsStr::new("verify"), no_face().as_os_str()])
        .failed();
    assert_eq!(run.stdout, "", "no face, nothing to list");
    assert!(
        run.stderr.contains("error: no face was found in the photo"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_json_gives_threshold_model_and_each_face() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();

    let run = data.run([
        OsStr::new("verify"),
        OsStr::new("--json"),
        tony_blair("0102").as_os_str(),
    ]);
    let run = run.ok();
    // The log goes to a pipe here: plain text, no terminal colour codes.
    assert!(run.stderr.contains("gallery: 1 people"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    let json = run.json();
    let (threshold, margin, source) = derived_for_one_reference();
    assert_eq!(
        json["threshold"].as_f64(),
        Some(threshold),
        "the threshold in force for one reference, as `/verify` rounds it"
    );
    assert_eq!(json["margin"].as_f64(), Some(margin));
    assert_eq!(json["threshold_source"], source);
    assert_eq!(json["false_accept_rate"], 0.001);
    let model = json["model"].as_str().expect("model");
    assert!(model.starts_with("face-api"), "{model}");
    let faces = json["faces"].as_array().expect("faces");
    assert!(!faces.is_empty());
    let face = &faces[0];
    let bbox: Vec<f64> = serde_json::from_value(face["box"].clone()).expect("box of 4 numbers");
    assert!(
        bbox.len() == 4 && bbox[0] < bbox[2] && bbox[1] < bbox[3],
        "{bbox:?}"
    );
    assert!(face["probability"].as_f64().expect("probability") > 0.9);
    assert_eq!(face["match"]["id"], 1);
    assert_eq!(face["match"]["first_name"], "Tony");
    assert_eq!(face["match"]["last_name"], "Blair");
    let similarity = face["match"]["similarity"].as_f64().expect("similarity");
    assert!(similarity >= 0.962, "{similarity}");
    assert_eq!(face["best_similarity"].as_f64(), Some(similarity));
    assert_eq!(face["checked_in"], false, "the CLI records nothing");

    // Not recognised: still JSON on stdout, no match, the closest similarity, exit status 1.
    let run = data.run([
        OsStr::new("verify"),
        OsStr::new("--json"),
        stranger().as_os_str(),
    ]);
    let json = run.failed().json();
    let face = &json["faces"][0];
    assert!(face["match"].is_null(), "{face}");
    let best = face["best_similarity"].as_f64().expect("best_similarity");
    assert!(best < 0.962, "{best}");
}

// ---------------------------------------------------------------------------------------------
// users

#[test]
fn users_list_shows_everyone_as_text_and_json() {
    let data = DataDir::new();
    let run = data.run(["users", "list"]).ok();
    assert_eq!(run.stdout, "nobody is registered\n");
    assert_eq!(data.users_json(), Vec::<Value>::new());

    data.register("Aaron", "Sorkin", &[stranger()]).ok();
    data.register("Tony", "Blair", &[tony_blair("0048"), tony_blair("0102")])
        .ok();

    // Sorted by last name, not by id.
    let run = data.run(["users", "list"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(
        lines[0].starts_with("    2  Tony Blair  (2 faces, model face-api"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("    1  Aaron Sorkin  (1 face, model face-api"),
        "{}",
        lines[1]
    );

    let users = data.users_json();
    let names: Vec<(i64, &str, &str, i64)> = users
        .iter()
        .map(|u| {
            (
                u["id"].as_i64().expect("id"),
                u["first_name"].as_str().expect("first_name"),
                u["last_name"].as_str().expect("last_name"),
                u["faces"].as_i64().expect("faces"),
            )
        })
        .collect();
    assert_eq!(names, [(2, "Tony", "Blair", 2), (1, "Aaron", "Sorkin", 1)]);
    assert_eq!(users[0]["image_url"], "/users/2/photo");
    assert!(users[0]["model"]
        .as_str()
        .expect("model")
        .starts_with("face-api"));
    let created = users[0]["created_at"].as_str().expect("created_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
}

#[test]
fn users_delete_keeps_the_history_unless_asked() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048"), tony_blair("0102")])
        .ok();
    data.register("Aaron", "Sorkin", &[stranger()]).ok();
    seed_check_ins(&data.sqlite_url(), 1, &["2026-11-02T08:00:00Z"]);
    seed_check_ins(&data.sqlite_url(), 2, &["2026-11-02T09:00:00Z"]);
    assert_eq!(data.stored_photos(), 3);

    let run = data.run(["users", "delete", "1"]).ok();
    assert_eq!(run.stdout, "deleted user 1\n");
    assert_eq!(data.stored_photos(), 1, "Tony Blair's two photos are gone");
    let ids: Vec<Value> = data.users_json().iter().map(|u| u["id"].clone()).collect();
    assert_eq!(ids, [2]);
    let who: Vec<String> = data.export(&[]).iter().map(|r| r[2].clone()).collect();
    assert_eq!(who, ["Aaron", "Tony"], "his check-in stays in the log");

    let run = data.run(["users", "delete", "2", "--with-history"]).ok();
    assert_eq!(run.stdout, "deleted user 2 and their attendance history\n");
    assert_eq!(data.stored_photos(), 0);
    assert!(data.users_json().is_empty());
    let who: Vec<String> = data.export(&[]).iter().map(|r| r[2].clone()).collect();
    assert_eq!(who, ["Tony"], "only Aaron Sorkin's check-ins are gone");

    let run = data.run(["users", "delete", "2"]).failed();
    assert!(
        run.stderr.contains("error: no user with id 2"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// attendance export

#[test]
fn attendance_export_filters_whole_days_to_stdout_or_a_file() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    // Both edges of November (UTC days) and one instant either side.
    seed_check_ins(
        &data.sqlite_url(),
        1,
        &[
            "2026-10-31T23:59:59Z",
            "2026-11-01T00:00:00Z",
            "2026-11-30T23:59:59Z",
            "2026-12-01T00:00:00Z",
        ],
    );

    let all = data.export(&[]);
    let instants: Vec<&str> = all.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        instants,
        [
            "2026-12-01T00:00:00Z",
            "2026-11-30T23:59:59Z",
            "2026-11-01T00:00:00Z",
            "2026-10-31T23:59:59Z",
        ],
        "newest first"
    );
    assert_eq!(
        all[0][1..],
        [
            "1",
            "Tony",
            "Blair",
            "2026-12-01T00:00:00Z",
            "0.9700",
            "front door",
            "none"
        ]
    );

    let november = data.export(&["--from", "2026-11-01", "--to", "2026-11-30"]);
    let instants: Vec<&str> = november.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(instants, ["2026-11-30T23:59:59Z", "2026-11-01T00:00:00Z"]);
    assert_eq!(data.export(&["--from", "2026-12-01"]).len(), 1);
    assert_eq!(data.export(&["--to", "2026-10-31"]).len(), 1);

    // --out writes the same CSV to the file and says so on stderr.
    let stdout = data
        .run([
            "attendance",
            "export",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ])
        .ok()
        .stdout;
    let file = data.path().join("november.csv");
    let run = data
        .run([
            OsStr::new("attendance"),
            OsStr::new("export"),
            OsStr::new("--from"),
            OsStr::new("2026-11-01"),
            OsStr::new("--to"),
            OsStr::new("2026-11-30"),
            OsStr::new("--out"),
            file.as_os_str(),
        ])
        .ok();
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains(&format!("wrote 2 check-ins to {}", file.display())),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("the CSV file"),
        stdout
    );
}

#[test]
fn attendance_export_refuses_a_bad_day_range() {
    let data = DataDir::new();
    let run = data
        .run([
            "attendance",
            "export",
            "--from",
            "2026-11-30",
            "--to",
            "2026-11-01",
        ])
        .failed();
    assert!(
        run.stderr.contains("2026-11-30 is after 2026-11-01"),
        "{}",
        run.stderr
    );
    let run = data
        .run(["attendance", "export", "--to", "0999-12-31"])
        .failed();
    assert!(
        run.stderr.contains(
            "`to`: `0999-12-31` is outside the days the log holds, 1000-01-01 to 9999-12-31"
        ),
        "{}",
        run.stderr
    );
    let run = data
        .run(["attendance", "export", "--from", "30/11/2026"])
        .failed();
    assert!(
        run.stderr
            .contains("`30/11/2026` is not a date like 2026-11-24"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_kiosk_check_in_is_in_the_export() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let key = data.create_key("front door", "verify");
    let server = Server::start(&data);
    let answer = server.verify(&tony_blair("0102"), &key);
    assert_eq!(answer["checked_in"], true, "{answer}");
    drop(server);

    let rows = data.export(&[]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1..4], ["1", "Tony", "Blair"]);
    assert_eq!(rows[0][6], "front door");
    assert_eq!(
        rows[0][4],
        answer["attendance"]["at"]
            .as_str()
            .map_or_else(String::new, |at| {
                chrono::DateTime::parse_from_rfc3339(at)
                    .expect("an instant")
                    .to_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
    );
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(data.export(&["--from", &today, "--to", &today]).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// reindex

#[test]
fn reindex_re_embeds_the_photos_of_another_model() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048"), tony_blair("0121")])
        .ok();
    let run = data.run(["reindex"]).ok();
    assert!(
        run.stdout.starts_with(
            "re-embedded 0 photo(s) with face-api-resnet128-flip; 2 already up to date"
        ),
        "{}",
        run.stdout
    );

    age_embeddings(&data.sqlite_url());
    let verify = || data.run([OsStr::new("verify"), tony_blair("0102").as_os_str()]);
    let run = verify().failed();
    assert!(
        run.stdout.contains("unknown (nobody registered)"),
        "people of another model are not compared: {}",
        run.stdout
    );

    let run = data.run(["reindex"]).ok();
    assert!(
        run.stdout.starts_with(
            "re-embedded 2 photo(s) with face-api-resnet128-flip; 0 already up to date"
        ),
        "{}",
        run.stdout
    );
    assert!(verify().ok().stdout.contains("Tony Blair (id 1"));
    assert_eq!(
        data.users_json()[0]["model"],
        "face-api-resnet128-flip",
        "users list shows the new model"
    );
}

#[test]
fn reindex_names_a_photo_it_cannot_read_and_exits_non_zero() {
    let data = DataDir::new();
    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    age_embeddings(&data.sqlite_url());
    let photo = std::fs::read_dir(data.path().join("img_refs"))
        .expect("img_refs")
        .next()
        .expect("the stored photo")
        .expect("dir entry")
        .path();
    std::fs::remove_file(&photo).expect("removing the stored photo");

    let run = data.run(["reindex"]).failed();
    let name = photo.file_name().expect("file name").to_string_lossy();
    assert!(
        run.stdout.contains("could not re-embed img_refs/") && run.stdout.contains(name.as_ref()),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error: 1 photo(s) could not be re-embedded"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// migrate

/// Four `rollcall migrate` processes started at once on an empty database, SQLite file and
/// MariaDB alike, all succeed and leave each migration applied once (a few rounds, a fresh
/// database each).
#[test]
fn processes_migrating_an_empty_database_at_once_all_succeed() {
    use std::process::Stdio;
    let migrations = |backend: &str| {
        std::fs::read_dir(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend),
        )
        .expect("the migrations")
        .count() as i64
    };
    for round in 0..3 {
        let mysql = MysqlDatabase::create();
        let sqlite = DataDir::new();
        let on_mysql = DataDir::with_database(mysql.url());
        for data in [&sqlite, &on_mysql] {
            let children: Vec<_> = (0..4)
                .map(|_| {
                    data.command(["migrate"])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("starting rollcall migrate")
                })
                .collect();
            for child in children {
                let run: Run = child.wait_with_output().expect("rollcall migrate").into();
                assert!(run.success, "round {round}: {run:#?}");
            }
        }
        assert_eq!(
            schema(&sqlite.sqlite_url()).1,
            migrations("sqlite"),
            "round {round}"
        );
        let versions: Vec<(i64, i64)> = cli_support::runtime().block_on(async {
            let pool = sqlx::MySqlPool::connect(&mysql.url())
                .await
                .expect("MariaDB");
            let rows = sqlx::query_as(
                "SELECT version, COUNT(*) FROM _sqlx_migrations GROUP BY version ORDER BY version",
            )
            .fetch_all(&pool)
            .await
            .expect("reading _sqlx_migrations");
            pool.close().await;
            rows
        });
        assert_eq!(
            versions.len() as i64,
            migrations("mysql"),
            "round {round}: {versions:?}"
        );
        assert!(
            versions.iter().all(|(_, n)| *n == 1),
            "round {round}: {versions:?}"
        );
    }
}

#[test]
fn migrate_creates_the_schema_once_and_can_run_again() {
    let data = DataDir::new();
    let db = data.path().join("rollcall.db");
    assert!(!db.exists());
    let run = data.run(["migrate"]).ok();
    assert_eq!(run.stdout, "the sqlite database is up to date\n");
    let migrations =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))
            .expect("the SQLite migrations")
            .count() as i64;
    let expected = (
        [
            "_sqlx_migrations",
            "accounts",
            "api_keys",
            "attendance",
            "audit_log",
            "faces",
            "gallery_changes",
            "gallery_sequence",
            "liveness_challenges",
            "sessions",
            "settings",
            "users",
        ]
        .map(String::from)
        .to_vec(),
        migrations,
    );
    assert_eq!(schema(&data.sqlite_url()), expected);

    data.register("Tony", "Blair", &[tony_blair("0048")]).ok();
    let run = data.run(["migrate"]).ok();
    assert_eq!(run.stdout, "the sqlite database is up to date\n");
    assert_eq!(schema(&data.sqlite_url()), expected);
    assert_eq!(
        data.users_json().len(),
        1,
        "a second migrate keeps the data"
    );
}

// ---------------------------------------------------------------------------------------------
// enroll

#[test]
fn enroll_registers_one_person_per_folder_from_at_most_max_photos() {
    let data = DataDir::new();
    let root = tempfile::tempdir().expect("temp dir");
    let person = |folder: &str, photos: &[PathBuf]| {
        let dir = root.path().join(folder);
        std::fs::create_dir(&dir).expect("a person's folder");
        for photo in photos {
            std::fs::copy(photo, dir.join(photo.file_name().expect("file name")))
                .expect("copying a photo");
        }
    };
    let blair: Vec<PathBuf> = ["0048", "0102", "0121", "0086"].map(tony_blair).to_vec();
    person("Tony_Blair", &blair);
    person(
        "Aaron_Sorkin",
        &[
            stranger(),
            fixture("faces/Aaron_Sorkin/Aaron_Sorkin_0002.jpg"),
        ],
    );
    // A first photo with no face is skipped; the next one is used.
    person(
        "Abdullah_Gul",
        &[
            no_face(),
            fixture("faces/Abdullah_Gul/Abdullah_Gul_0001.jpg"),
        ],
    );
    person("Coffee_Cup", &[no_face()]);
    // One name is a person too (stored with an empty last name).
    person(
        "Madonna",
        &[fixture("faces/Hugo_Chavez/Hugo_Chavez_0002.jpg")],
    );
    std::fs::write(root.path().join("notes.txt"), "not a person").expect("a stray file");

    let run = data
        .run([
            OsStr::new("enroll"),
            root.path().as_os_str(),
            OsStr::new("--max-photos"),
            OsStr::new("2"),
        ])
        .ok();
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("registered 4 of 5 people from 6 photo(s); 3 skipped"),
        "{}",
        run.stdout
    );
    let skipped: Vec<&str> = lines.collect();
    let says = |what: &str| skipped.iter().any(|l| l.contains(what));
    assert!(says("coffee_cup.png: no face was found"), "{skipped:#?}");
    assert!(
        says("Coffee_Cup: no photo with one clear face"),
        "{skipped:#?}"
    );

    let users: Vec<(i64, String, i64)> = data
        .users_json()
        .iter()
        .map(|u| {
            (
                u["id"].as_i64().expect("id"),
                format!(
                    "{} {}",
                    u["first_name"].as_str().unwrap_or_default(),
                    u["last_name"].as_str().unwrap_or_default()
                )
                .trim_end()
                .to_owned(),
                u["faces"].as_i64().expect("faces"),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            (3, "Madonna".to_owned(), 1),
            (4, "Tony Blair".to_owned(), 2),
            (2, "Abdullah Gul".to_owned(), 1),
            (1, "Aaron Sorkin".to_owned(), 2),
        ],
        "folders enrolled in name order (ids), at most --max-photos photos each"
    );
    assert_eq!(data.stored_photos(), 6);

    // Tony Blair's first two photos by name (0048, 0086) are his references; 0121 matches them.
    let run = data
        .run([OsStr::new("verify"), tony_blair("0121").as_os_str()])
        .ok();
    assert!(run.stdout.contains("Tony Blair (id 4"), "{}", run.stdout);

    // A second run adds nobody twice: everyone is already registered, and says so.
    let enroll = |extra: &[&str]| {
        let mut args = vec![OsStr::new("enroll"), root.path().as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        data.run(args).ok()
    };
    let again = enroll(&["--max-photos", "2"]);
    assert!(
        again
            .stdout
            .starts_with("registered 0 of 5 people from 0 photo(s);"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("this face already belongs to Tony Blair (user 4"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("`--allow-duplicate` on the command line"),
        "the flag a command-line user would type: {}",
        again.stdout
    );
    assert_eq!(data.users_json().len(), 4);
    assert_eq!(data.stored_photos(), 6);
    // `--allow-duplicate` forces them in, as `allow_duplicate=true` does over HTTP.
    let forced = enroll(&["--max-photos", "1", "--allow-duplicate"]);
    assert!(
        forced.stdout.starts_with("registered 4 of 5 people"),
        "{}",
        forced.stdout
    );
    assert_eq!(data.users_json().len(), 8);
}

// ---------------------------------------------------------------------------------------------
// models fetch

#[test]
fn models_fetch_verifies_present_files_and_leaves_them_alone() {
    let all: Vec<&str> = MTCNN_FILES
        .iter()
        .chain(&FACE_API_FILES)
        .chain([&FACENET_FILE])
        .copied()
        .collect();
    let models = models_copy(&all);
    let facenet_here = models.path().join(FACENET_FILE).is_file();
    let before = snapshot(models.path());

    let run = fetch_offline(models.path());
    assert!(
        run.stdout
            .starts_with(&format!("models directory: {}\n", models.path().display())),
        "{}",
        run.stdout
    );
    for file in MTCNN_FILES.iter().chain(&FACE_API_FILES) {
        assert_eq!(fetch_line(&run, file), "present, verified");
    }
    assert_eq!(
        snapshot(models.path()),
        before,
        "nothing fetched, moved or touched"
    );
    if facenet_here {
        let run = run.ok();
        assert_eq!(fetch_line(&run, FACENET_FILE), "present, verified");
        assert!(run
            .stdout
            .ends_with("MTCNN: ready, FaceNet: ready, face-api: ready\n"));
    } else {
        // This machine has no FaceNet weights: that one file is tried and fails (see
        // `models_fetch_exits_non_zero_when_a_fetch_fails` for what the exit status should be).
        assert!(
            fetch_line(&run, FACENET_FILE).starts_with("FAILED: could not fetch"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .ends_with("MTCNN: ready, FaceNet: missing, face-api: ready\n"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn models_fetch_without_the_detector_exits_non_zero() {
    let present: Vec<&str> = MTCNN_FILES[..2]
        .iter()
        .chain(&FACE_API_FILES)
        .copied()
        .collect();
    let models = models_copy(&present);
    let run = fetch_offline(models.path()).failed();
    assert!(
        fetch_line(&run, "mtcnn/onet.pt")
            .starts_with("FAILED: could not fetch mtcnn/onet.pt: every source failed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("MTCNN: missing"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "error: the MTCNN detector files are missing from {}: nothing can run",
            models.path().display()
        )),
        "{}",
        run.stderr
    );
    assert!(!models.path().join("mtcnn/onet.pt").exists());
}

#[test]
fn models_fetch_exits_non_zero_when_a_fetch_fails() {
    let present: Vec<&str> = MTCNN_FILES.iter().chain(&FACE_API_FILES).copied().collect();
    let models = models_copy(&present);
    let run = fetch_offline(models.path());
    assert!(
        fetch_line(&run, FACENET_FILE).starts_with("FAILED"),
        "{}",
        run.stdout
    );
    run.failed();
}

// ---------------------------------------------------------------------------------------------
// MySQL

#[test]
fn migrate_register_and_users_list_on_mysql() {
    let db = MysqlDatabase::create();
    let data = DataDir::with_database(db.url());
    let run = data.run(["migrate"]).ok();
    assert_eq!(run.stdout, "the mysql database is up to date\n");
    data.run(["migrate"]).ok();

    data.register("Tony", "Blair", &[tony_blair("0048"), tony_blair("0102")])
        .ok();
    let run = data.run(["users", "list"]).ok();
    assert!(
        run.stdout
            .starts_with("    1  Tony Blair  (2 faces, model face-api"),
        "{}",
        run.stdout
    );
    let users = data.users_json();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["faces"], 2);
    assert!(
        !data.path().join("rollcall.db").exists(),
        "nothing went to SQLite"
    );
}

/// Without FaceNet's weights, `--embedder auto` uses face-api and says so once, naming what
/// works, not a command that cannot succeed here.
#[test]
fn the_face_api_fallback_is_said_once() {
    let models: Vec<&str> = MTCNN_FILES.iter().chain(&FACE_API_FILES).copied().collect();
    let models = models_copy(&models);
    let data = DataDir::new();
    let run = data.run([OsStr::new("users"), OsStr::new("list")]);
    assert!(
        !run.stderr.contains("FaceNet"),
        "needs no model: {}",
        run.stderr
    );
    let run = data.run([
        OsStr::new("verify"),
        OsStr::new("--embedder"),
        OsStr::new("auto"),
        OsStr::new("--models"),
        models.path().as_os_str(),
        tony_blair("0048").as_os_str(),
    ]);
    assert_eq!(
        run.stderr.matches("FaceNet's weights").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--facenet-weights FILE"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("model face-api"), "{}", run.stdout);
}

/// Precedence: a flag beats the environment, also when the flag stands before the command
/// (`rollcall --models DIR verify …`, as the test helpers and older scripts write it).
#[test]
fn a_flag_before_the_command_beats_the_environment() {
    let data = DataDir::new();
    let empty = tempfile::tempdir().expect("temp dir");
    let mut cmd = rollcall();
    cmd.arg("--data-dir")
        .arg(data.path())
        .arg("--models")
        .arg(models_dir())
        .args(["--embedder", "face-api", "verify"])
        .arg(tony_blair("0048"))
        .env("ROLLCALL_MODELS", empty.path());
    let run: Run = cmd.output().expect("running rollcall").into();
    // Nobody is registered: exit 1, but only after the models (from the flag) were loaded.
    assert!(
        run.stdout.contains("unknown (nobody registered)"),
        "{run:#?}"
    );

    // The same environment with no flag: the empty directory is used, and named.
    let mut cmd = rollcall();
    cmd.arg("--data-dir")
        .arg(data.path())
        .args(["verify", "--embedder", "face-api"])
        .arg(tony_blair("0048"))
        .env("ROLLCALL_MODELS", empty.path());
    let run: Run = cmd.output().expect("running rollcall").into();
    assert!(!run.success);
    assert!(
        run.stderr.contains(&empty.path().display().to_string()),
        "{run:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// admin and keys

const PASSWORD: &str = "correct horse battery";

#[test]
fn admin_add_reads_one_line_of_stdin_and_refuses_a_short_password() {
    let data = DataDir::new();
    let run = data.run_with_input(["admin", "add", "ada"], "").failed();
    assert!(
        run.stderr.contains("no password on standard input"),
        "{run:#?}"
    );
    let run = data
        .run_with_input(["admin", "add", "ada"], "short\n")
        .failed();
    assert!(run.stderr.contains("at least 10 characters"), "{run:#?}");
    let run = data
        .run_with_input(["admin", "add", "bad name"], "correct horse battery\n")
        .failed();
    assert!(run.stderr.contains("username"), "{run:#?}");

    let run = data
        .run_with_input(
            ["admin", "add", "Ada"],
            &format!("{PASSWORD}\nignored second line\n"),
        )
        .ok();
    assert_eq!(run.stdout, "created the admin account `ada`\n");
    data.run_with_input(
        ["admin", "add", "vera", "--role", "viewer"],
        &format!("{PASSWORD}\r\n"),
    )
    .ok();
    let run = data
        .run_with_input(["admin", "add", "ada"], &format!("{PASSWORD}\n"))
        .failed();
    assert!(run.stderr.contains("already exists"), "{run:#?}");

    let run = data.run(["admin", "list"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(
        lines[0].contains("admin") && lines[0].contains("ada"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].contains("viewer") && lines[1].contains("vera"),
        "{}",
        run.stdout
    );
    assert!(
        !data.holds(PASSWORD.as_bytes()),
        "the password is stored only hashed"
    );
}

/// The server and the CLI on one data directory: an account made by `admin add` logs in, and
/// `admin reset-password` (the server still running) ends its session.
#[test]
fn reset_password_works_beside_the_server_and_ends_the_sessions() {
    let data = DataDir::new();
    data.run_with_input(["admin", "add", "ada"], &format!("{PASSWORD}\n"))
        .ok();
    let server = Server::start(&data);
    // One runtime for the client: its pooled connections belong to the runtime that made them.
    let rt = cli_support::runtime();
    let client = reqwest::Client::new();
    let (status, cookie) = rt.block_on(async {
        let r = client
            .post(server.url("/login"))
            .json(&serde_json::json!({ "username": "ada", "password": PASSWORD }))
            .send()
            .await
            .expect("POST /login");
        let cookie = r.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("name=value")
            .to_owned();
        (r.status().as_u16(), cookie)
    });
    assert_eq!(status, 200);
    let users = |cookie: &str| {
        rt.block_on(async {
            client
                .get(server.url("/users"))
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await
                .expect("GET /users")
                .status()
                .as_u16()
        })
    };
    assert_eq!(users(&cookie), 200);

    let run = data
        .run_with_input(["admin", "reset-password", "ada"], "a new password, long\n")
        .ok();
    assert!(run.stdout.contains("ended its sessions"), "{run:#?}");
    assert_eq!(users(&cookie), 401, "the old session is over");
    let run = data
        .run_with_input(
            ["admin", "reset-password", "nobody"],
            "a new password, long\n",
        )
        .failed();
    assert!(run.stderr.contains("no account named `nobody`"), "{run:#?}");
}

#[test]
fn keys_create_prints_the_key_alone_and_list_and_revoke_follow() {
    let data = DataDir::new();
    let run = data
        .run([
            "keys",
            "create",
            "--name",
            "front door",
            "--scope",
            "verify",
        ])
        .ok();
    let key = run.stdout.trim();
    assert_eq!(run.stdout, format!("{key}\n"), "the key alone on stdout");
    assert!(key.starts_with("rc_") && key.len() == 46, "{key}");
    assert!(run.stderr.contains("not shown again"), "{}", run.stderr);
    let second = data.create_key("enrolment desk", "register");
    assert_ne!(second, key);
    let run = data
        .run(["keys", "create", "--name", "x", "--scope", "root"])
        .failed();
    assert!(
        run.stderr.contains("use verify, register or admin"),
        "{}",
        run.stderr
    );

    let listed = data.run(["keys", "list", "--json"]).ok().json();
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "front door");
    assert_eq!(listed[0]["scope"], "verify");
    assert!(listed[0]["last_used_at"].is_null() && listed[0]["revoked_at"].is_null());
    assert!(listed[0].get("key").is_none());
    assert!(!data.holds(key.as_bytes()), "only the key's hash is stored");

    data.run(["keys", "revoke", "1"]).ok();
    let text = data.run(["keys", "list"]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("front door") && lines[0].contains("REVOKED"),
        "{text}"
    );
    assert!(
        lines[1].contains("enrolment desk") && !lines[1].contains("REVOKED"),
        "{text}"
    );
    let run = data.run(["keys", "revoke", "7"]).failed();
    assert!(run.stderr.contains("no key with id 7"), "{}", run.stderr);
}

#[test]
fn a_key_created_to_require_liveness_is_listed_so() {
    let data = DataDir::new();
    let run = data
        .run([
            "keys",
            "create",
            "--name",
            "front door",
            "--scope",
            "verify",
            "--require-liveness",
        ])
        .ok();
    assert!(run.stderr.contains("(liveness required)"), "{}", run.stderr);
    data.create_key("hall", "verify");
    let listed = data.run(["keys", "list", "--json"]).ok().json();
    let flags: Vec<(&str, bool)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap_or_default(),
                k["require_liveness"].as_bool().expect("a boolean"),
            )
        })
        .collect();
    assert_eq!(flags, [("front door", true), ("hall", false)]);
    let text = data.run(["keys", "list"]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("liveness required"), "{text}");
    assert!(!lines[1].contains("liveness required"), "{text}");
}
