//! `rollcall eval`: run the labelled photo set through the pipeline and print the figures
//! (see [`crate::eval`] for what is measured and how).

use super::args::{CommonArgs, EmbedderArgs, ThresholdArgs};
use super::Leading;
use crate::domain::Threshold;
use crate::eval::dataset::{generate_pairs, Dataset, PairsFile};
use crate::eval::report::ModelInfo;
use crate::eval::{
    decimal_threshold, derived_threshold, embed, evaluate, plots, sites, Evaluation, PairSet,
    Settings,
};
use crate::operating_point::{self, Calibration, Rule};
use anyhow::Context;
use clap::Args;
use rollcall_vision::embedder::FaceApiCrop;
use rollcall_vision::{DecodeLimits, EmbedderKind, FacePipeline, PipelineConfig};
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Folder per person: ROOT/<Person_Name>/<Person_Name>_0001.jpg
    #[arg(long)]
    pub root: PathBuf,
    /// LFW-style pairs.txt (default: ROOT/pairs.txt when present).
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Write the plots (roc.png, scores.png, attendance.png) into this folder; none without it.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Use at most this many people (for quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Cosine similarity at which a face is accepted [default: the embedder's].
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    /// Reference photos per enrolled person in the attendance scenario (best-of matching).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub references: u64,
    /// How face-api crops faces: `box` (the detection box) or `aligned` (5-landmark alignment).
    #[arg(long, value_name = "box|aligned")]
    pub face_api_crop: Option<rollcall_vision::embedder::FaceApiCrop>,
    /// Write the model's impostor calibration (every pair of photos of two different people of
    /// the even-positioned half) to FILE, as shipped in `crates/rollcall/calibration/`.
    #[arg(long, value_name = "FILE")]
    pub write_calibration: Option<PathBuf>,
    /// Redraws of the stranger people behind each margin-rule threshold (the 95th percentile
    /// of their thresholds is taken); 0 reads each threshold exactly at the calibration's rate.
    #[arg(long, default_value_t = crate::eval::margin_rule::BOUND.resamples)]
    pub margin_resamples: usize,
    /// Reuse the photos' embeddings from FILE when it holds this model's embeddings of the same
    /// photos; otherwise embed them and write FILE (for repeated runs on one photo set).
    #[arg(long, value_name = "FILE")]
    pub embeddings_cache: Option<PathBuf>,
    /// Instead of the usual report, measure how the registration quality checks (face size,
    /// sharpness, brightness, yaw) relate to recognition (docs/accuracy.md, "Registration
    /// quality").
    #[arg(long)]
    pub quality: bool,
    /// Worker threads for embedding photos.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// Folds generated when the photo set comes without a pairs file.
const GENERATED_FOLDS: usize = 10;

pub fn run(leading: &Leading, args: EvalArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let dataset = Dataset::scan(&args.root, args.limit)?;
    let pair_set = pair_set(&args, &dataset)?;

    let config = super::settings(leading, &[&args.common, &args.embedder, &args.threshold])?;
    let face_api_crop = args.face_api_crop.unwrap_or_default();
    let pipeline = FacePipeline::load(&PipelineConfig {
        models: config.models.clone(),
        limits: DecodeLimits::default(),
        face_api_crop,
    })
    .context("loading the face models")?;
    let kind = pipeline.kind();
    eprintln!(
        "eval: {} photos of {} people, {} pairs; embedder {} on {} thread(s)",
        dataset.photo_count(),
        dataset.people.len(),
        pair_set.folds.iter().map(Vec::len).sum::<usize>(),
        pipeline.model_id(),
        args.threads
    );
    if args.quality {
        // Measured at a fixed threshold (the flag, else the embedder's default), so that the
        // figures in docs/accuracy.md do not move with the gallery's size.
        let threshold = decimal_threshold(
            config
                .threshold
                .map_or_else(|| pipeline.default_threshold(), |t| t.value()),
        );
        print!(
            "{}",
            crate::eval::quality::report(&pipeline, &dataset, args.threads, threshold)?
        );
        eprintln!("eval: done in {:.1} s", started.elapsed().as_secs_f64());
        return Ok(());
    }
    let cached = args
        .embeddings_cache
        .as_deref()
        .and_then(|path| embed::Embeddings::load(path, pipeline.model_id(), &dataset));
    let embeddings = match cached {
        Some(embeddings) => {
            eprintln!("eval: embeddings read from the cache");
            embeddings
        }
        None => {
            let embeddings = embed::embed_dataset(&pipeline, &dataset, args.threads)?;
            if let Some(path) = &args.embeddings_cache {
                embeddings
                    .save(path, pipeline.model_id(), &dataset)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            embeddings
        }
    };

    // Galleries drawn from the calibration half, for the margin rule's measurements.
    let margin = crate::eval::strangers::margin_calibration(
        &dataset,
        &embeddings,
        crate::eval::strangers::Half::Calibration,
        pipeline.model_id(),
        crate::eval::margin_rule::FLOOR,
        (args.margin_resamples > 0).then_some(crate::eval::margin_rule::Bound {
            resamples: args.margin_resamples,
            ..crate::eval::margin_rule::BOUND
        }),
    );
    if let Some(path) = &args.write_calibration {
        let (pairs, people, photos) = sites::calibration_pairs(&dataset, &embeddings);
        let made_from = format!(
            "{photos} photos of the {people} people at even positions by name of {} people; \
             margin rule: {} (rollcall eval --write-calibration)",
            dataset.people.len(),
            margin.made_from
        );
        let calibration = Calibration {
            margin_rule: margin.table(&operating_point::MARGIN_RULE_RATES),
            ..pairs.to_calibration(pipeline.model_id(), &made_from)
        };
        std::fs::write(path, serde_json::to_string(&calibration)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "eval: calibration of {} impostor pairs and {} margin-rule rows written to {}",
            pairs.total(),
            calibration.margin_rule.len(),
            path.display()
        );
    }
    // As the server decides: the flag or environment, else the configuration file, else the
    // threshold derived for the enrolled set from the false-accept rate.
    let default = Threshold::new(pipeline.default_threshold())?;
    let rule = Rule::for_model(pipeline.model_id(), config.false_accept_rate, default);
    let references = usize::try_from(args.references).unwrap_or(1);
    let (threshold, accept_margin, threshold_source) = match config.threshold {
        Some(t) => (
            decimal_threshold(t.value()),
            config.margin.unwrap_or(0.0),
            "configured",
        ),
        None => {
            let point = derived_threshold(&dataset, &embeddings, references, &rule);
            (
                decimal_threshold(point.threshold.value()),
                point.margin,
                point.source.as_str(),
            )
        }
    };
    let settings = Settings {
        threshold,
        threshold_source: threshold_source.to_owned(),
        accept_margin,
        rule: Some(rule),
        margin: Some(margin),
        references,
        model: ModelInfo {
            embedder: embedder_name(kind).to_owned(),
            model_id: pipeline.model_id().to_owned(),
            face_api_crop: (kind == EmbedderKind::FaceApi)
                .then(|| crop_name(face_api_crop).to_owned()),
        },
        limit: args.limit,
    };
    let evaluation = evaluate(&dataset, &pair_set, &embeddings, &settings);

    // Plots only where asked for: a run never writes into the current folder on its own.
    let plots = match &args.plots {
        Some(dir) => Some(write_plots(dir, &settings, &evaluation)?),
        None => None,
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation.report)?);
    } else {
        print!("{}", evaluation.report.to_table());
        if let Some(written) = plots {
            println!(
                "\nPlots: {}",
                written
                    .files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    eprintln!("eval: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn write_plots(
    dir: &Path,
    settings: &Settings,
    evaluation: &Evaluation,
) -> anyhow::Result<plots::Written> {
    let title = match &settings.model.face_api_crop {
        Some(crop) => format!("{} ({crop} crop)", settings.model.embedder),
        None => settings.model.embedder.clone(),
    };
    let written = plots::write_all(
        dir,
        &plots::PlotInput {
            title: &title,
            pairs: &evaluation.pairs,
            roc: &evaluation.roc,
            open_set: &evaluation.open_set,
            threshold: settings.threshold,
        },
    )?;
    if !written.with_text {
        eprintln!(
            "warning: no TrueType font found (set ROLLCALL_PLOT_FONT to a .ttf file): plots have no text"
        );
    }
    Ok(written)
}

/// The pairs file given, else ROOT/pairs.txt when present, else generated pairs.
fn pair_set(args: &EvalArgs, dataset: &Dataset) -> anyhow::Result<PairSet> {
    let path = args.pairs.clone().or_else(|| {
        let default = args.root.join("pairs.txt");
        default.is_file().then_some(default)
    });
    Ok(match path {
        Some(path) => {
            let resolved = PairsFile::read(&path)?.resolve(dataset, &path, args.limit.is_some())?;
            if resolved.skipped > 0 {
                eprintln!(
                    "eval: {} pairs name photos outside the first {} people and are skipped",
                    resolved.skipped,
                    dataset.people.len()
                );
            }
            PairSet {
                source: path.display().to_string(),
                folds: resolved.folds,
                skipped: resolved.skipped,
            }
        }
        None => PairSet {
            source: "generated".to_owned(),
            folds: generate_pairs(dataset, GENERATED_FOLDS),
            skipped: 0,
        },
    })
}

fn embedder_name(kind: EmbedderKind) -> &'static str {
    match kind {
        EmbedderKind::Facenet => "facenet",
        EmbedderKind::FaceApi => "face-api",
    }
}

fn crop_name(crop: FaceApiCrop) -> &'static str {
    match crop {
        FaceApiCrop::Box => "box",
        FaceApiCrop::Aligned => "aligned",
    }
}
