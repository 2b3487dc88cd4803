//! `rollcall bench --gallery N`: a synthetic gallery of N people (seeded random unit vectors of
//! the embedder's size, one reference each), loaded the way the server loads one; reports the
//! load time, the resident memory it added (VmRSS after minus before, measured, not estimated)
//! and the latency of exact searches (random strangers and near-duplicates of members). With
//! `--from-database URL` the rows go first into an empty scratch database and are read back as
//! the server reads them at start, so the figure is the start's own.

use crate::domain::{Embedding, Threshold};
use crate::gallery::{Gallery, Loader};
use crate::operating_point::{self, Rule};
use crate::store::{EmbeddingRow, Store};
use anyhow::Context;
use rollcall_vision::{facedesc, facenet, EmbedderKind};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct GalleryBench {
    pub gallery: GalleryReport,
}

#[derive(Debug, Serialize)]
pub struct GalleryReport {
    pub people: usize,
    pub embedder: EmbedderKind,
    pub dim: usize,
    /// Rows handed to the gallery's loader (with `--from-database`: read from it) until the
    /// gallery answers, pair sample and threshold included.
    pub load_ms: f64,
    /// Process CPU time of the load (all threads; with `--from-database` rollcall's side only,
    /// not the database server's): the work, whatever else runs on the machine.
    pub load_cpu_ms: Option<f64>,
    /// VmRSS after the load minus before it, freed allocator memory returned first.
    pub memory_mb: Option<f64>,
    /// The int8 codes and per-reference arrays alone.
    pub arena_mb: f64,
    /// Whether the exact f32 copy lives in the unlinked temporary file (its size on disk).
    pub exact_on_disk: bool,
    pub exact_mb: f64,
    pub searches: usize,
    pub search_p50_ms: f64,
    pub search_p99_ms: f64,
    /// Process CPU time per search (all threads), median: the work a search does, which stays
    /// meaningful when other jobs share the cores and wall-clock times do not.
    pub search_cpu_p50_ms: Option<f64>,
    /// Near-duplicate probes answered with the member they were made from (all of them, or
    /// the search is wrong).
    pub near_duplicates: usize,
    pub near_duplicates_found: usize,
    pub sampled_people: usize,
    pub threads: usize,
    pub database: Option<DatabaseReport>,
}

#[derive(Debug, Serialize)]
pub struct DatabaseReport {
    pub backend: &'static str,
    /// Writing the synthetic rows (not part of a start).
    pub fill_ms: f64,
    /// The start-up's photo sweep query (every stored image path).
    pub image_paths_ms: f64,
    /// Connecting, migrations checked, sweep query and gallery load: the start's database part.
    pub start_ms: f64,
}

/// What `--gallery` runs with.
pub struct Options {
    pub people: usize,
    pub embedder: EmbedderKind,
    pub searches: usize,
    pub seed: u64,
    pub database: Option<String>,
}

fn shape(kind: EmbedderKind) -> (usize, &'static str) {
    match kind {
        EmbedderKind::FaceApi => (facedesc::EMBEDDING_DIM, "face-api-resnet128-flip"),
        EmbedderKind::Facenet => (facenet::EMBEDDING_DIM, "facenet-vggface2"),
    }
}

/// Person `id`'s vector: drawn from a generator seeded by (seed, id), so that a probe near it
/// can be made again without keeping the gallery's vectors.
fn vector(seed: u64, id: u64, dim: usize) -> Vec<f32> {
    let mut state = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..dim)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // A sum of four uniforms: roughly normal, so directions are spread evenly.
            (0..4)
                .map(|k| ((state >> (16 * k)) & 0xFFFF) as f32 / 65_536.0 - 0.5)
                .sum()
        })
        .collect()
}

fn row(seed: u64, id: u64, dim: usize, model: &str) -> EmbeddingRow {
    let e = Embedding::new(vector(seed, id, dim)).expect("a non-zero vector");
    EmbeddingRow {
        user_id: id as i64 + 1,
        first_name: format!("First{id}"),
        last_name: format!("Last{id}"),
        model: model.to_owned(),
        embedding: e.to_le_bytes(),
    }
}

/// Resident memory now (VmRSS), after handing freed heap memory back to the kernel.
fn rss_mb() -> Option<f64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time of the whole process so far (all threads), in ms.
fn process_cpu_ms() -> Option<f64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    (rc == 0).then(|| t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

pub async fn run(o: Options) -> anyhow::Result<GalleryBench> {
    anyhow::ensure!(o.people > 0, "--gallery needs at least one person");
    anyhow::ensure!(o.searches > 0, "--searches needs at least one search");
    let (dim, model) = shape(o.embedder);
    let rule = Rule::for_model(
        model,
        operating_point::DEFAULT_FALSE_ACCEPT_RATE,
        Threshold::new(0.5).expect("in range"),
    );
    let gallery = Gallery::new(model, rule);
    let mut database = None;

    let before = rss_mb();
    let (load_ms, load_cpu_ms) = match &o.database {
        None => {
            let (t0, cpu0) = (Instant::now(), process_cpu_ms());
            let mut loader = gallery.loader();
            for id in 0..o.people as u64 {
                loader.push(row(o.seed, id, dim, model));
            }
            loader.finish();
            let cpu = process_cpu_ms().zip(cpu0).map(|(c1, c0)| c1 - c0);
            (t0.elapsed().as_secs_f64() * 1e3, cpu)
        }
        Some(url) => {
            let (report, load) = through_database(url, &o, dim, model, &gallery).await?;
            database = Some(report);
            load
        }
    };
    let memory_mb = rss_mb().zip(before).map(|(after, before)| after - before);

    // Warm-up, then strangers (fresh random vectors) and near-duplicates of members by turns.
    let mut timings = Vec::with_capacity(o.searches);
    let mut cpu = Vec::with_capacity(o.searches);
    let (mut near, mut found) = (0, 0);
    for i in 0..o.searches + 5 {
        let member = (i as u64).wrapping_mul(2_654_435_761) % o.people as u64;
        let probe = if i % 4 == 3 {
            let mut v = vector(o.seed, member, dim);
            let noise = vector(o.seed ^ 0xABCD, i as u64, dim);
            v.iter_mut().zip(noise).for_each(|(x, n)| *x += 0.1 * n);
            Embedding::new(v).expect("non-zero")
        } else {
            Embedding::new(vector(o.seed ^ 0x5EED, i as u64, dim)).expect("non-zero")
        };
        let (t0, cpu0) = (Instant::now(), process_cpu_ms());
        let best = gallery.best(&probe);
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if i < 5 {
            continue;
        }
        timings.push(ms);
        if let (Some(c1), Some(c0)) = (process_cpu_ms(), cpu0) {
            cpu.push(c1 - c0);
        }
        if i % 4 == 3 {
            near += 1;
            found += usize::from(best.is_some_and(|c| c.user_id == member as i64 + 1));
        }
    }
    timings.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let footprint = gallery.footprint();
    Ok(GalleryBench {
        gallery: GalleryReport {
            people: gallery.len(),
            embedder: o.embedder,
            dim,
            load_ms,
            load_cpu_ms,
            memory_mb,
            arena_mb: footprint.arena_bytes as f64 / (1 << 20) as f64,
            exact_on_disk: footprint.spilled,
            exact_mb: (o.people * dim * 4) as f64 / (1 << 20) as f64,
            searches: timings.len(),
            search_p50_ms: percentile(&timings, 0.5),
            search_p99_ms: percentile(&timings, 0.99),
            search_cpu_p50_ms: (!cpu.is_empty()).then(|| percentile(&cpu, 0.5)),
            near_duplicates: near,
            near_duplicates_found: found,
            sampled_people: footprint.sampled_people,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            database,
        },
    })
}

/// Fill an empty scratch database with the synthetic people, then time what a server's start
/// does with it: connect, check migrations, the photo sweep's query, the gallery's load.
async fn through_database(
    url: &str,
    o: &Options,
    dim: usize,
    model: &str,
    gallery: &Gallery,
) -> anyhow::Result<(DatabaseReport, (f64, Option<f64>))> {
    let store = Store::connect(url).await.context("--from-database")?;
    store.migrate().await?;
    let existing = store.count_users().await?;
    anyhow::ensure!(
        existing == 0,
        "--from-database needs an empty scratch database: this one holds {existing} people"
    );
    let t0 = Instant::now();
    fill(&store, o, dim, model).await?;
    let fill_ms = t0.elapsed().as_secs_f64() * 1e3;
    store.close().await;

    let t0 = Instant::now();
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let t1 = Instant::now();
    let paths = store.all_image_paths().await?;
    let image_paths_ms = t1.elapsed().as_secs_f64() * 1e3;
    drop(paths);
    let (t1, cpu1) = (Instant::now(), process_cpu_ms());
    let mut loader: Loader<'_> = gallery.loader();
    store.for_each_embedding(|row| loader.push(row)).await?;
    loader.finish();
    let load_ms = t1.elapsed().as_secs_f64() * 1e3;
    let load_cpu_ms = process_cpu_ms().zip(cpu1).map(|(c1, c0)| c1 - c0);
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    store.close().await;
    Ok((
        DatabaseReport {
            backend: store.backend(),
            fill_ms,
            image_paths_ms,
            start_ms,
        },
        (load_ms, load_cpu_ms),
    ))
}

/// The people as rows of `users`, a thousand to a statement, in one transaction per batch.
async fn fill(store: &Store, o: &Options, dim: usize, model: &str) -> anyhow::Result<()> {
    const BATCH: usize = 1000;
    let now = chrono::Utc::now();
    let mut id = 0u64;
    while (id as usize) < o.people {
        let n = BATCH.min(o.people - id as usize);
        let sql = format!(
            "INSERT INTO users (first_name, last_name, embedding, image_path, model, created_at) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?)"; n].join(", ")
        );
        let rows: Vec<EmbeddingRow> = (id..id + n as u64)
            .map(|i| row(o.seed, i, dim, model))
            .collect();
        macro_rules! bind_all {
            ($pool:expr, $created:expr) => {{
                let mut q = sqlx::query(&sql);
                for r in &rows {
                    q = q
                        .bind(&r.first_name)
                        .bind(&r.last_name)
                        .bind(&r.embedding)
                        .bind(format!("img_refs/bench-{}.jpg", r.user_id))
                        .bind(model)
                        .bind($created);
                }
                q.execute($pool).await?;
            }};
        }
        match store {
            // Each backend's own form of the instant (see store/time.rs).
            Store::Sqlite(pool) => bind_all!(pool, now),
            Store::Mysql(pool) => bind_all!(pool, now.naive_utc()),
        }
        id += n as u64;
    }
    Ok(())
}

/// The human-readable report.
pub fn render_table(r: &GalleryReport) -> String {
    let memory = r
        .memory_mb
        .map(|m| format!("{m:.0} MB"))
        .unwrap_or_else(|| "n/a".into());
    let mut out = format!(
        "rollcall bench --gallery: {} people, {:?} ({}-d), {} threads\n",
        r.people, r.embedder, r.dim, r.threads
    );
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        "load",
        format!("{:.0} ms", r.load_ms)
    ));
    if let Some(c) = r.load_cpu_ms {
        out.push_str(&format!(
            "  {:<34} {:>12}\n",
            "load CPU time (all threads)",
            format!("{c:.0} ms")
        ));
    }
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        "resident memory added (VmRSS)", memory
    ));
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        "  of which int8 arena",
        format!("{:.0} MB", r.arena_mb)
    ));
    let exact = if r.exact_on_disk {
        "temp file"
    } else {
        "memory"
    };
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        format!("exact f32 copy ({exact})"),
        format!("{:.0} MB", r.exact_mb)
    ));
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        format!("search p50 ({} searches)", r.searches),
        format!("{:.2} ms", r.search_p50_ms)
    ));
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        "search p99",
        format!("{:.2} ms", r.search_p99_ms)
    ));
    if let Some(c) = r.search_cpu_p50_ms {
        out.push_str(&format!(
            "  {:<34} {:>12}\n",
            "search CPU time p50 (all threads)",
            format!("{c:.2} ms")
        ));
    }
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        "near-duplicates found",
        format!("{}/{}", r.near_duplicates_found, r.near_duplicates)
    ));
    out.push_str(&format!(
        "  {:<34} {:>12}\n",
        "people in the pair sample", r.sampled_people
    ));
    if let Some(d) = &r.database {
        out.push_str(&format!(
            "  {:<34} {:>12}\n",
            format!("{}: filling (not timed as start)", d.backend),
            format!("{:.0} ms", d.fill_ms)
        ));
        out.push_str(&format!(
            "  {:<34} {:>12}\n",
            "start: photo sweep query",
            format!("{:.0} ms", d.image_paths_ms)
        ));
        out.push_str(&format!(
            "  {:<34} {:>12}\n",
            "start: database part in all",
            format!("{:.0} ms", d.start_ms)
        ));
    }
    out
}
