//! `rollcall bench`: speed of each stage (decode, detect, crop, embed, the whole verify step)
//! and memory with models loaded, measured the way the Python reference's `bench.py` measures.

use super::args::{CommonArgs, EmbedderArgs};
use super::Leading;
use crate::config::Settings;
use anyhow::Context;
use clap::Args;
use rollcall_vision::models::{face_api_dir, facenet_default_path, EmbedderKind, ModelConfig};
use rollcall_vision::pipeline::{FacePipeline, PipelineConfig};
use rollcall_vision::{DecodeLimits, Embedder, Tensor};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long)]
    pub json: bool,
    /// Instead of the networks: a synthetic gallery of N people (random unit vectors of
    /// --embedder's size, face-api's 128 by default): load time, resident memory and exact
    /// search latency.
    #[arg(long, value_name = "N")]
    pub gallery: Option<usize>,
    /// With --gallery: searches timed.
    #[arg(long, default_value_t = 200, requires = "gallery")]
    pub searches: usize,
    /// With --gallery: write the people into this empty scratch database first (sqlite:… or
    /// mysql://…), then time the start's read of it.
    #[arg(long, value_name = "URL", requires = "gallery")]
    pub from_database: Option<String>,
    /// Timed runs per measurement.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Folder with single_640x480.jpg and single_1280x720.jpg, the photos the Python reference's
    /// bench times (in this repository: ../shared/fixtures/parity/images).
    #[arg(long, value_name = "DIR", required_unless_present = "gallery")]
    pub images: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Without --embedder: every embedder whose files are present.
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// The photos timed, as in the reference bench.
const IMAGES: [&str; 2] = ["single_640x480.jpg", "single_1280x720.jpg"];
const WARMUP: usize = 3;

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub threads: usize,
    pub runs: usize,
    pub embedders: Vec<EmbedderReport>,
}

#[derive(Debug, Serialize)]
pub struct EmbedderReport {
    pub embedder: EmbedderKind,
    pub model_id: String,
    /// `FacePipeline::load`: MTCNN and the embedder.
    pub load_ms: f64,
    /// `VmHWM` once this embedder's models were loaded and measured: the process's peak so far.
    pub peak_rss_mb: Option<f64>,
    pub rows: Vec<Row>,
}

/// One measurement: `image` is `None` for the embedders' forward passes on a fixed input.
#[derive(Debug, Serialize)]
pub struct Row {
    pub image: Option<String>,
    pub stage: String,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub median_ms: f64,
    pub min_ms: f64,
    pub p90_ms: f64,
    pub runs: usize,
    /// Process CPU time (all threads) per run, mean over the timed runs: the work done, which
    /// stays meaningful when other jobs share the cores and wall-clock times do not.
    pub cpu_ms: Option<f64>,
}

impl Stats {
    /// Median, min and p90 with the reference's index rule (`ts[int(0.9 * (n - 1))]`).
    pub fn from_ms(mut ms: Vec<f64>) -> Stats {
        assert!(!ms.is_empty(), "no timings");
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Stats {
            median_ms: median,
            min_ms: ms[0],
            p90_ms: ms[(0.9 * (n - 1) as f64) as usize],
            runs: n,
            cpu_ms: None,
        }
    }
}

/// Time `f` `runs` times after a warm-up.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Stats {
    for _ in 0..WARMUP {
        std::hint::black_box(f());
    }
    let cpu0 = process_cpu_ms();
    let ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(f());
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let n = ms.len() as f64;
    let cpu_ms = process_cpu_ms().zip(cpu0).map(|(c1, c0)| (c1 - c0) / n);
    Stats {
        cpu_ms,
        ..Stats::from_ms(ms)
    }
}

/// User + system CPU time of the process so far (`/proc/self/stat`, clock ticks of 10 ms:
/// coarse per run, fine over a whole series).
fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

pub fn run(leading: &Leading, args: BenchArgs) -> anyhow::Result<()> {
    let settings = super::settings(leading, &[&args.common, &args.embedder])?;
    if let Some(people) = args.gallery {
        let options = super::bench_gallery::Options {
            people,
            embedder: settings
                .models
                .embedder
                .named()
                .unwrap_or(EmbedderKind::FaceApi),
            searches: args.searches,
            seed: 42,
            database: args.from_database.clone(),
        };
        let report = crate::app::runtime()?.block_on(super::bench_gallery::run(options))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", super::bench_gallery::render_table(&report.gallery));
        }
        return Ok(());
    }
    let images = args.images.as_ref().context("--images is needed")?;
    let photos: Vec<(String, Vec<u8>)> = IMAGES
        .iter()
        .map(|name| {
            let path = images.join(name);
            std::fs::read(&path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map(|bytes| (name.to_string(), bytes))
        })
        .collect::<anyhow::Result<_>>()?;

    let models_dir = settings.models.models_dir.clone();
    let kinds = embedders_to_bench(&settings)?;
    let mut report = BenchReport {
        threads: rayon::current_num_threads(),
        runs: args.runs,
        embedders: Vec::new(),
    };
    for kind in kinds {
        let config = PipelineConfig {
            models: ModelConfig {
                models_dir: models_dir.clone(),
                embedder: kind.into(),
                facenet_weights: settings.models.facenet_weights.clone(),
                // A benchmark measures what is there; it never downloads.
                fetch_missing: false,
            },
            limits: DecodeLimits::default(),
            face_api_crop: Default::default(),
        };
        eprintln!(
            "benchmarking {kind:?} ({} runs per measurement)…",
            args.runs
        );
        report
            .embedders
            .push(bench_embedder(&config, &photos, args.runs)?);
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(())
}

/// `--embedder` when given; otherwise every embedder whose files are present.
fn embedders_to_bench(settings: &Settings) -> anyhow::Result<Vec<EmbedderKind>> {
    let models_dir = &settings.models.models_dir;
    Ok(match settings.models.embedder.named() {
        Some(kind) => vec![kind],
        None => {
            let facenet = settings
                .models
                .facenet_weights
                .clone()
                .unwrap_or_else(|| facenet_default_path(models_dir));
            let mut kinds = Vec::new();
            if facenet.is_file() {
                kinds.push(EmbedderKind::Facenet);
            }
            if face_api_dir(models_dir).is_dir() {
                kinds.push(EmbedderKind::FaceApi);
            }
            if kinds.is_empty() {
                anyhow::bail!(
                    "no embedder's weights in {}: run `rollcall models fetch --models {0}` or pass --facenet-weights",
                    models_dir.display()
                );
            }
            kinds
        }
    })
}

fn bench_embedder(
    config: &PipelineConfig,
    photos: &[(String, Vec<u8>)],
    runs: usize,
) -> anyhow::Result<EmbedderReport> {
    let t0 = Instant::now();
    let pipeline = FacePipeline::load(config)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let embedder = pipeline.embedder();
    let mut rows = Vec::new();

    // The networks alone, on a fixed input, as the reference times `resnet(x)`.
    for batch in [1, 8] {
        let x = fixed_input(embedder, batch);
        let stats = time(runs, || embedder.forward(&x));
        rows.push(Row {
            image: None,
            stage: format!("embed b{batch}"),
            stats,
        });
    }

    // Each stage as `FacePipeline::analyze` runs it.
    for (name, bytes) in photos {
        let img = pipeline.decode(bytes)?;
        let largest = pipeline
            .find_faces(&img)
            .into_iter()
            .next()
            .with_context(|| format!("no face found in {name}"))?;
        let image = Some(name.clone());
        let mut push = |stage: &str, stats| {
            rows.push(Row {
                image: image.clone(),
                stage: stage.into(),
                stats,
            })
        };
        push("decode", time(runs, || pipeline.decode(bytes)));
        push("detect", time(runs, || pipeline.find_faces(&img)));
        push("crop", time(runs, || embedder.crop(&img, &largest)));
        // JPEG bytes → faces with embeddings: what one kiosk check-in costs.
        push("verify", time(runs, || pipeline.analyze(bytes, true)));
    }

    Ok(EmbedderReport {
        embedder: pipeline.kind(),
        model_id: pipeline.model_id().to_string(),
        load_ms,
        peak_rss_mb: peak_rss_mb(),
        rows,
    })
}

/// A deterministic pseudo-random batch in the network's input shape and range.
fn fixed_input(embedder: &Embedder, batch: usize) -> Tensor {
    let side = embedder.input_size() as usize;
    let n = batch * 3 * side * side;
    let mut state = 0x2545_f491_u32;
    let data = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            match embedder.kind() {
                EmbedderKind::Facenet => (state as f32 / u32::MAX as f32) * 2.0 - 1.0,
                EmbedderKind::FaceApi => (state >> 24) as f32,
            }
        })
        .collect();
    Tensor::new(vec![batch, 3, side, side], data)
}

/// The process's peak resident set (`VmHWM`), in MB; `None` off Linux.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The human-readable report.
pub fn render_table(report: &BenchReport) -> String {
    let mut out = format!(
        "rollcall bench: {} threads, {} timed runs after {WARMUP} warm-up\n",
        report.threads, report.runs
    );
    for e in &report.embedders {
        let rss = e
            .peak_rss_mb
            .map(|mb| format!("{mb:.0} MB"))
            .unwrap_or_else(|| "n/a".into());
        out.push_str(&format!(
            "\n{:?} ({}): load {:.0} ms, peak RSS {rss}\n",
            e.embedder, e.model_id, e.load_ms
        ));
        out.push_str(&format!(
            "  {:<22} {:<10} {:>10} {:>10} {:>10} {:>10}\n",
            "image", "stage", "median ms", "min ms", "p90 ms", "cpu ms"
        ));
        for r in &e.rows {
            let cpu = r
                .stats
                .cpu_ms
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "n/a".into());
            out.push_str(&format!(
                "  {:<22} {:<10} {:>10.2} {:>10.2} {:>10.2} {:>10}\n",
                r.image.as_deref().unwrap_or("(fixed input)"),
                r.stage,
                r.stats.median_ms,
                r.stats.min_ms,
                r.stats.p90_ms,
                cpu
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_follow_the_reference_rules() {
        let s = Stats::from_ms(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(
            s,
            Stats {
                median_ms: 3.0,
                min_ms: 1.0,
                p90_ms: 4.0,
                runs: 5,
                cpu_ms: None,
            }
        );
        let s = Stats::from_ms((1..=20).map(f64::from).collect());
        assert_eq!((s.median_ms, s.min_ms, s.p90_ms), (10.5, 1.0, 18.0));
    }

    #[test]
    fn table_has_one_line_per_measurement() {
        let stats = Stats {
            median_ms: 12.345,
            min_ms: 10.0,
            p90_ms: 15.5,
            runs: 20,
            cpu_ms: Some(24.0),
        };
        let report = BenchReport {
            threads: 2,
            runs: 20,
            embedders: vec![EmbedderReport {
                embedder: EmbedderKind::Facenet,
                model_id: "facenet-test".into(),
                load_ms: 812.4,
                peak_rss_mb: Some(256.4),
                rows: vec![
                    Row {
                        image: None,
                        stage: "embed b1".into(),
                        stats,
                    },
                    Row {
                        image: Some("single_640x480.jpg".into()),
                        stage: "verify".into(),
                        stats,
                    },
                ],
            }],
        };
        let table = render_table(&report);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "rollcall bench: 2 threads, 20 timed runs after 3 warm-up"
        );
        assert_eq!(
            lines[2],
            "Facenet (facenet-test): load 812 ms, peak RSS 256 MB"
        );
        assert!(
            lines[3].contains("median ms") && lines[3].contains("p90 ms"),
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[4],
            format!(
                "  {:<22} {:<10} {:>10} {:>10} {:>10} {:>10}",
                "(fixed input)", "embed b1", "12.35", "10.00", "15.50", "24.0"
            )
        );
        assert!(
            lines[5].starts_with("  single_640x480.jpg") && lines[5].contains("verify"),
            "{}",
            lines[5]
        );
        assert_eq!(lines.len(), 6);

        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        let row = &json["embedders"][0]["rows"][1];
        assert_eq!(row["stage"], "verify");
        assert_eq!(row["median_ms"], 12.345);
        assert_eq!(json["embedders"][0]["embedder"], "facenet");
    }
}
