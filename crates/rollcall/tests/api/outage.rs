//! The database cut away mid-load, through a TCP proxy the test controls (the shared MariaDB
//! keeps running for everyone else): requests fail fast with 503 and `Retry-After`, nothing is
//! half-written, and the same server recovers without a restart once the proxy lets
//! connections through again — its gallery catching up with what another server did meanwhile.

use crate::helpers::{
    fixture, image_part, photos_of, tony_blair, Form, TcpProxy, TestApp, TestConfig,
};
use rollcall::store::Store;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A 503 for an unreachable database must come within this (the pool waits 3 s for a
/// connection; nothing may wait for the database's own timeouts, or forever).
const FAIL_FAST: Duration = Duration::from_secs(10);

/// One answer of the load.
#[derive(Debug)]
struct Answer {
    what: &'static str,
    status: u16,
    started: Instant,
    took: Duration,
    retry_after: Option<String>,
    body: Value,
}

/// The kiosk check-ins recorded with a 200 (their attendance ids), and every answer.
#[derive(Default)]
struct Log {
    answers: Mutex<Vec<Answer>>,
}

impl Log {
    async fn record(&self, what: &'static str, started: Instant, r: reqwest::Response) {
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = r.json().await.unwrap_or(Value::Null);
        self.answers.lock().unwrap().push(Answer {
            what,
            status,
            started,
            took: started.elapsed(),
            retry_after,
            body,
        });
    }
}

/// A server whose database is behind a proxy, with check-ins on every verify (no cooldown) and
/// anonymous kiosks (so a verify reaches the database only for the check-in).
fn config() -> TestConfig {
    TestConfig {
        cooldown: Duration::ZERO,
        anonymous_verify: true,
        workers: 2,
        queue: 64,
        ..Default::default()
    }
}

/// Kiosks verifying Tony Blair, and an admin registering new people, until `stop`.
fn load(app: &TestApp, log: &Arc<Log>, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for kiosk in 0..3 {
        let (client, url) = (app.anonymous(), app.url("/verify"));
        let (log, stop) = (log.clone(), stop.clone());
        let photos = tony_blair();
        tasks.push(tokio::spawn(async move {
            let mut n = kiosk;
            while !stop.load(Ordering::Relaxed) {
                let photo = &photos[1 + n % 3];
                n += 1;
                let form = Form::new().part("image", image_part(fixture(photo), "kiosk.jpg"));
                let started = Instant::now();
                let r = client
                    .post(&url)
                    .multipart(form)
                    .send()
                    .await
                    .expect("verify");
                log.record("verify", started, r).await;
            }
        }));
    }
    let (client, url) = (app.client.clone(), app.url("/register"));
    let (log, stop) = (log.clone(), stop.clone());
    tasks.push(tokio::spawn(async move {
        for (n, person) in ["Silvio_Berlusconi", "Wen_Jiabao", "David_Beckham"]
            .iter()
            .cycle()
            .enumerate()
        {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let photos = photos_of(person);
            let photo = &photos[n / 3 % photos.len()];
            let form = Form::new()
                .text("first_name", format!("{person}{n}"))
                .text("last_name", "Load")
                .part("image", image_part(fixture(photo), "new.jpg"));
            let started = Instant::now();
            let r = client
                .post(&url)
                .multipart(form)
                .send()
                .await
                .expect("register");
            log.record("register", started, r).await;
        }
    }));
    tasks
}

/// Every row names a photo that is there, read straight from the database (not through the
/// proxy). Returns how many photos no row names: a registration whose COMMIT was cut on its
/// way leaves its photo (the next start's sweep deletes it), never a row without one.
async fn every_row_has_its_photo(app: &TestApp, direct: &Store) -> usize {
    let mut named = BTreeSet::new();
    for user in direct.list_users().await.expect("users") {
        named.insert(user.image_path.clone());
        let faces = direct.faces_of(user.id).await.expect("faces");
        for face in faces.into_iter().flatten() {
            named.insert(face.image_path.clone());
        }
    }
    let on_disk: BTreeSet<String> = app
        .files()
        .into_iter()
        .map(|f| format!("img_refs/{f}"))
        .collect();
    let missing: Vec<_> = named.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "rows name photos that are gone: {missing:?}"
    );
    on_disk.difference(&named).count()
}

async fn a_database_cut_mid_load_fails_fast_and_the_server_recovers(app: TestApp, proxy: TcpProxy) {
    let direct = Store::connect(&app.direct_database_url())
        .await
        .expect("a pool straight to the test database");
    let other = app.second_server_at(&app.direct_database_url()).await;
    let photos = tony_blair();
    app.register_ok("Tony", "Blair", &photos[0]).await;

    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&app, &log, &stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut_at = Instant::now();
    proxy.cut();
    // Meanwhile, another server (with its own road to the database) registers someone.
    let hugo = &photos_of("Hugo_Chavez")[0];
    let newcomer = other.register_ok("Newcomer", "Elsewhere", hugo).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restored_at = Instant::now();
    proxy.restore();
    // The same server, not restarted: a check-in is recorded again.
    let mut recovered = None;
    while recovered.is_none() {
        assert!(
            restored_at.elapsed() < Duration::from_secs(15),
            "no check-in recorded within 15 s of the database's return"
        );
        let r = app
            .anonymous()
            .post(app.url("/verify"))
            .multipart(Form::new().part("image", image_part(fixture(&photos[1]), "kiosk.jpg")));
        let r = r.send().await.expect("verify");
        if r.status() == 200 {
            recovered = Some(restored_at.elapsed());
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a load task");
    }

    let answers = std::mem::take(&mut *log.answers.lock().unwrap());
    // Only the answers the contract has for these requests.
    for a in &answers {
        let allowed: &[u16] = match a.what {
            "verify" => &[200, 503],
            _ => &[200, 400, 409, 503],
        };
        assert!(
            allowed.contains(&a.status),
            "{} answered {}: {}",
            a.what,
            a.status,
            a.body
        );
        if a.status == 503 {
            assert!(
                a.retry_after.is_some(),
                "a 503 without Retry-After: {}",
                a.body
            );
            assert_eq!(a.body["error"], "database_unavailable", "{}", a.body);
        }
    }
    // Cut off, requests fail fast: those sent after the cut and before the return answer 503
    // within FAIL_FAST, not after the database's own timeouts.
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.started > cut_at && a.started + a.took < restored_at)
        .collect();
    assert!(!during.is_empty(), "no request was answered during the cut");
    for a in &during {
        assert_eq!(a.status, 503, "{} during the cut: {}", a.what, a.body);
        assert!(a.took < FAIL_FAST, "{} took {:?} to fail", a.what, a.took);
    }
    assert!(
        answers
            .iter()
            .any(|a| a.status == 200 && a.started < cut_at),
        "no request succeeded before the cut"
    );

    // Nothing half-written: rows and photos agree; every check-in answered 200 is recorded,
    // and a recorded one nobody was told of can only come from a request cut mid-way.
    let unnamed = every_row_has_its_photo(&app, &direct).await;
    let registers_cut = answers
        .iter()
        .filter(|a| a.what == "register" && a.status == 503 && a.started < cut_at)
        .count();
    assert!(
        unnamed <= registers_cut,
        "{unnamed} photos without a row, {registers_cut} registrations cut mid-way"
    );
    let recorded: BTreeSet<i64> = direct
        .attendance(Default::default())
        .await
        .expect("attendance")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let answered: BTreeSet<i64> = answers
        .iter()
        .filter(|a| a.what == "verify" && a.status == 200)
        .filter_map(|a| a.body["attendance"]["id"].as_i64())
        .collect();
    assert!(
        answered.is_subset(&recorded),
        "a check-in answered 200 is missing"
    );
    let cut_mid_way = answers
        .iter()
        .filter(|a| a.what == "verify" && a.status == 503 && a.started < cut_at)
        .count();
    // +1: the verify of the recovery above.
    assert!(
        recorded.len() <= answered.len() + cut_mid_way + 1,
        "{} check-ins recorded, {} answered",
        recorded.len(),
        answered.len()
    );

    // The gallery sync resumed: the person registered elsewhere during the cut is known here.
    let start = Instant::now();
    loop {
        let r = app
            .anonymous()
            .post(app.url("/verify"))
            .multipart(Form::new().part("image", image_part(fixture(hugo), "kiosk.jpg")));
        let r = r.send().await.expect("verify");
        if r.status() == 200 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["id"].as_i64(), Some(newcomer), "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the person registered during the cut is not recognised after it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health: Value = app.get_json("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    // The figures of docs/reliability.md (shown with --nocapture; not asserted).
    let first_503 = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| (a.started + a.took).saturating_duration_since(cut_at))
        .min();
    eprintln!(
        "outage: {} answers, {} during the cut; first 503 {first_503:?} after the cut; \
         slowest 503 during the cut {:?}; a check-in recorded {:?} after the return",
        answers.len(),
        during.len(),
        during.iter().map(|a| a.took).max(),
        recovered.expect("set by the loop above"),
    );
    drop(other);
    direct.close().await;
}

/// The database commits a registration but the answer to its COMMIT never arrives: the
/// server cannot know the row exists, so it keeps the photo (a photo without a row is swept
/// at the next start; a row without its photo would be a person without a face).
async fn a_registration_whose_commit_answer_is_lost_keeps_its_photo(app: TestApp, proxy: TcpProxy) {
    let direct = Store::connect(&app.direct_database_url())
        .await
        .expect("a pool straight to the test database");
    proxy.cut_after_commit();
    let r = app.register("Tony", "Blair", &tony_blair()[0]).await;
    assert!(proxy.is_cut(), "the registration's COMMIT never went by");
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    proxy.restore();
    let users = direct.list_users().await.expect("users");
    assert_eq!(users.len(), 1, "the COMMIT reached the database: {users:?}");
    assert_eq!(every_row_has_its_photo(&app, &direct).await, 0);
    // The server learns of the registration from the change log, as of any other server's;
    // then a retry finds the person there (the answer that was lost) instead of registering
    // them twice.
    let start = Instant::now();
    loop {
        let health: Value = app.get_json("/health").await;
        if health["gallery_people"] == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the registration never reached the gallery: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = app.register("Tony", "Blair", &tony_blair()[1]).await;
    assert_eq!(r.status(), 409, "{:?}", r.text().await);
    direct.close().await;
}

/// The database stops answering without closing anything (a hung server, a network that
/// drops packets) in the middle of a registration, at its COMMIT: the request still gets an
/// answer, 503 `timed_out` within the answer timeout, instead of waiting forever; the
/// registration finishes whole once the database answers again (its answer was lost, not its
/// work), and the same server goes on without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_hangs_mid_request_still_gets_an_answer_mysql() {
    const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
    let proxy = crate::helpers::mysql_proxy().await;
    let config = TestConfig {
        answer_timeout_secs: Some(ANSWER_TIMEOUT.as_secs()),
        ..config()
    };
    let app = crate::helpers::spawn_app_behind(&proxy, config).await;
    let direct = Store::connect(&app.direct_database_url())
        .await
        .expect("a pool straight to the test database");
    let photos = tony_blair();
    app.register_ok("Tony", "Blair", &photos[0]).await;

    proxy.stall_at_commit();
    // Should this test fail while the database hangs, the hung transaction is cut first:
    // dropping the test database waits for its locks.
    let _cut_on_exit = CutOnDrop(&proxy);
    let started = Instant::now();
    let hugo = &photos_of("Hugo_Chavez")[0];
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        app.register("Hugo", "Chavez", hugo),
    )
    .await
    .expect("no answer while the database hangs");
    let took = started.elapsed();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some(), "Retry-After");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "timed_out", "{body}");
    assert!(
        took >= ANSWER_TIMEOUT && took < ANSWER_TIMEOUT + Duration::from_secs(3),
        "answered after {took:?}"
    );

    proxy.restore();
    // The COMMIT goes on its way: Hugo is registered, with his photo.
    let start = Instant::now();
    loop {
        let users = direct.list_users().await.expect("users");
        if users.iter().any(|u| u.first_name == "Hugo") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the registration did not finish after the database's return: {users:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(every_row_has_its_photo(&app, &direct).await, 0);
    assert_eq!(
        app.verify(&photos[1]).await.status(),
        200,
        "the server goes on"
    );
    direct.close().await;
}

struct CutOnDrop<'a>(&'a TcpProxy);

impl Drop for CutOnDrop<'_> {
    fn drop(&mut self) {
        self.0.cut();
    }
}

macro_rules! behind_a_proxy {
    ($($name:ident),* $(,)?) => {
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let proxy = crate::helpers::mysql_proxy().await;
                    let app = crate::helpers::spawn_app_behind(&proxy, super::config()).await;
                    super::$name(app, proxy).await
                }
            )*
        }
    };
}

behind_a_proxy!(
    a_database_cut_mid_load_fails_fast_and_the_server_recovers,
    a_registration_whose_commit_answer_is_lost_keeps_its_photo,
);
