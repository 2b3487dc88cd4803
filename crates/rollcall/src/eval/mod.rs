//! `rollcall eval`: recognition accuracy measured on a labelled folder-per-person photo set.
//!
//! [`dataset`] reads the photo tree and LFW's `pairs.txt` → [`embed`] runs each photo once
//! through the server's pipeline → [`scenario`] scores verification pairs and plays the
//! attendance kiosk (enrolled people vs strangers) → [`metrics`] turns scores into rates →
//! [`report`] (table, JSON) and [`plots`] (PNG).

pub mod dataset;
pub mod embed;
pub mod liveness;
pub mod margin;
pub mod margin_rule;
pub mod metrics;
pub mod plots;
pub mod quality;
pub mod report;
pub mod scenario;
pub mod sites;
pub mod strangers;

use dataset::{Dataset, Pair};
use embed::{Embeddings, PhotoOutcome};
use metrics::{ProbeCounts, Scored};
use plots::RatePoint;
use report::{
    DatasetInfo, Identification, ModelInfo, ReferencesRow, Report, Unreadable, Verification,
};
use std::collections::BTreeMap;

/// The false-accept rates at which TAR is reported for verification pairs.
pub const VERIFICATION_FARS: [(&str, f64); 2] = [("0.01", 1e-2), ("0.001", 1e-3)];
/// The false-accept rates at which the attendance scenario is reported.
pub const ATTENDANCE_FARS: [(&str, f64); 2] = [("0.001", 1e-3), ("0.0001", 1e-4)];
/// How a default threshold is calibrated: the false-accept rate it must keep in the attendance
/// scenario, and in what share of bootstrap draws of the probes (docs/accuracy.md).
pub const CALIBRATION_FAR: f64 = 1e-3;
pub const CALIBRATION_RESAMPLES: usize = 1000;
pub const CALIBRATION_QUANTILE: f64 = 0.95;
/// The reference counts compared on a fixed probe set.
pub const COMPARED_REFERENCES: usize = 3;

/// A threshold setting (f32, as the server holds it) as the decimal it was written as: 0.962,
/// not 0.9620000123977661.
pub fn decimal_threshold(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// Where the verification pairs came from.
pub struct PairSet {
    /// The pairs file's path, or "generated".
    pub source: String,
    pub folds: Vec<Vec<Pair>>,
    pub skipped: usize,
}

/// How to evaluate.
pub struct Settings {
    /// The threshold in force: configured, or [`derived_threshold`] for the enrolled set.
    pub threshold: f64,
    /// Where it came from (`configured`, `sampled`, `model`, `gallery`, `default`).
    pub threshold_source: String,
    /// The margin in force with it (0: the best person alone decides).
    pub accept_margin: f64,
    /// How thresholds are derived for the site table; `None`: no site table.
    pub rule: Option<crate::operating_point::Rule>,
    /// Galleries drawn from the calibration half ([`strangers::margin_calibration`]): the site
    /// table and the held-out galleries measured at the points read from them; `None`: neither.
    pub margin: Option<margin_rule::MarginCalibration>,
    pub references: usize,
    pub model: ModelInfo,
    pub limit: Option<usize>,
}

/// Everything computed: the report and what the plots draw.
pub struct Evaluation {
    pub report: Report,
    pub pairs: Vec<Scored>,
    pub roc: Vec<metrics::RocPoint>,
    pub open_set: Vec<RatePoint>,
}

/// All figures, from embeddings already computed. Deterministic: the same inputs give the
/// same report, bit for bit.
pub fn evaluate(
    dataset: &Dataset,
    pair_set: &PairSet,
    embeddings: &Embeddings,
    settings: &Settings,
) -> Evaluation {
    let scored_folds = scenario::score_pairs(&pair_set.folds, embeddings);
    let all_pairs: Vec<Scored> = scored_folds.iter().flatten().copied().collect();
    let verification = verification(pair_set, &scored_folds, &all_pairs, settings.threshold);

    let split = scenario::attendance_split(dataset, settings.references);
    let (probes, not_enrolled) = scenario::match_probes(&split, embeddings);
    let counts = ProbeCounts::of(&probes);
    let at_threshold = metrics::open_set_under(&probes, settings.threshold, settings.accept_margin);
    let identification = Identification {
        threshold: settings.threshold,
        threshold_source: settings.threshold_source.clone(),
        margin: settings.accept_margin,
        true_accept_rate: at_threshold.true_accept_rate,
        false_accept_rate: at_threshold.false_accept_rate,
        false_reject_rate: at_threshold.false_reject_rate,
        rank1: counts.rank1(),
        references: settings.references,
        enrolled: split.gallery.len(),
        genuine_probes: counts.genuine,
        stranger_probes: counts.strangers,
        not_enrolled: not_enrolled
            .iter()
            .map(|&p| dataset.people[p].name.clone())
            .collect(),
        at_threshold,
        best: metrics::open_set_best(&probes),
        at_far: ATTENDANCE_FARS
            .iter()
            .map(|&(k, far)| (k.to_owned(), metrics::open_set_at_far(&probes, far)))
            .collect(),
        at_far_resampled: metrics::resampled_far_threshold(
            &probes,
            &split
                .probes
                .iter()
                .map(|((person, _), _)| *person)
                .collect::<Vec<_>>(),
            CALIBRATION_FAR,
            CALIBRATION_RESAMPLES,
            CALIBRATION_QUANTILE,
        ),
        references_comparison: references_comparison(dataset, embeddings, settings.threshold),
        sweep: threshold_grid(&probes)
            .map(|t| metrics::open_set_at(&probes, t))
            .collect(),
    };

    let mut no_face = Vec::new();
    let mut unreadable = Vec::new();
    for id in dataset.photo_ids() {
        let path = dataset.photo(id).path.display().to_string();
        match embeddings.get(id) {
            PhotoOutcome::Face { .. } => {}
            PhotoOutcome::NoFace => no_face.push(path),
            PhotoOutcome::Unreadable(error) => unreadable.push(Unreadable {
                path,
                error: error.clone(),
            }),
        }
    }
    let several = dataset
        .people
        .iter()
        .filter(|p| p.photos.len() >= 2)
        .count();
    // The margin rule measured on the other half, and the other way round (calibrated on the
    // odd half, measured on the even one): how well a rule read from one set of people holds
    // for another.
    let held_out = settings
        .margin
        .as_ref()
        .map(|even| {
            let odd = strangers::margin_calibration(
                dataset,
                embeddings,
                strangers::Half::Measurement,
                &even.model,
                even.floor,
                even.bound,
            );
            let far = settings
                .rule
                .as_ref()
                .map_or(CALIBRATION_FAR, |r| r.false_accept_rate);
            (
                strangers::held_out(even, &odd, far),
                strangers::held_out(&odd, even, far),
            )
        })
        .unwrap_or_default();
    let report = Report {
        model: settings.model.clone(),
        dataset: DatasetInfo {
            root: dataset.root.display().to_string(),
            people: dataset.people.len(),
            photos: dataset.photo_count(),
            people_with_several_photos: several,
            people_with_one_photo: dataset.people.len() - several,
            limit: settings.limit,
        },
        verification,
        identification,
        margin_rule: margin::margin_rule(&split, embeddings, CALIBRATION_FAR),
        sites: settings
            .rule
            .as_ref()
            .map(|rule| sites::sites(dataset, embeddings, rule, settings.margin.as_ref()))
            .unwrap_or_default(),
        held_out_galleries: held_out.0,
        held_out_reversed: held_out.1,
        no_face,
        unreadable,
    };
    let open_set = open_set_sweep(&probes);
    Evaluation {
        report,
        roc: metrics::roc(&all_pairs),
        pairs: all_pairs,
        open_set,
    }
}

/// The threshold `rule` derives for the attendance scenario's enrolled set (the server's
/// derivation for a gallery of these people with `references` photos each).
pub fn derived_threshold(
    dataset: &Dataset,
    embeddings: &Embeddings,
    references: usize,
    rule: &crate::operating_point::Rule,
) -> crate::operating_point::OperatingPoint {
    let split = scenario::attendance_split(dataset, references);
    let (gallery, _) = split.enrolled_references(embeddings);
    sites::derive_for(rule, &gallery)
}

fn verification(
    pair_set: &PairSet,
    folds: &[Vec<Scored>],
    all: &[Scored],
    threshold: f64,
) -> Verification {
    let same_pairs = all.iter().filter(|p| p.same).count();
    let different_pairs = all.len() - same_pairs;
    // With one kind of pair only, a threshold that accepts (or rejects) everything is always
    // right: no accuracy can be measured.
    let unmeasured = match (same_pairs, different_pairs) {
        (0, 0) => Some("no pairs"),
        (0, _) => Some("no same-person pairs"),
        (_, 0) => Some("no different-person pairs"),
        _ => None,
    };
    let accuracy = match unmeasured {
        Some(reason) => Accuracy {
            protocol: format!("not measured: {reason}"),
            ..Accuracy::default()
        },
        None => measured_accuracy(folds, all, threshold),
    };
    Verification {
        pairs_source: pair_set.source.clone(),
        pairs: all.len(),
        same_pairs,
        different_pairs,
        pairs_without_face: all.iter().filter(|p| p.score.is_none()).count(),
        pairs_skipped: pair_set.skipped,
        folds: folds.iter().filter(|f| !f.is_empty()).count(),
        protocol: accuracy.protocol,
        accuracy: accuracy.mean,
        accuracy_std: accuracy.std,
        fold_results: accuracy.folds,
        best_threshold: accuracy.best_threshold,
        accuracy_at_threshold: accuracy.at_threshold,
        auc: metrics::auc(all),
        tar_at_far: VERIFICATION_FARS
            .iter()
            .filter_map(|&(k, far)| Some((k.to_owned(), metrics::tar_at_far(all, far)?)))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The verification accuracy figures; all `None` when they cannot be measured.
#[derive(Default)]
struct Accuracy {
    protocol: String,
    mean: Option<f64>,
    std: Option<f64>,
    folds: Vec<metrics::ThresholdAccuracy>,
    best_threshold: Option<metrics::ThresholdAccuracy>,
    at_threshold: Option<f64>,
}

/// Accuracy on pairs of both kinds: cross-validated over the folds when there are two or more.
fn measured_accuracy(folds: &[Vec<Scored>], all: &[Scored], threshold: f64) -> Accuracy {
    let best = metrics::best_threshold(all);
    let (protocol, mean, std, fold_results) = match metrics::cross_validated_accuracy(folds) {
        Some(cv) => ("cross-validated".to_owned(), cv.mean, cv.std, cv.folds),
        None => (
            "best threshold on all pairs".to_owned(),
            best.map_or(0.0, |b| b.accuracy),
            0.0,
            Vec::new(),
        ),
    };
    Accuracy {
        protocol,
        mean: Some(mean),
        std: Some(std),
        folds: fold_results,
        best_threshold: best,
        at_threshold: Some(metrics::accuracy_at(all, threshold)),
    }
}

/// 1, 2 … [`COMPARED_REFERENCES`] references per person on the same probes.
fn references_comparison(
    dataset: &Dataset,
    embeddings: &Embeddings,
    threshold: f64,
) -> Vec<ReferencesRow> {
    (1..=COMPARED_REFERENCES)
        .filter_map(|refs| {
            let split = scenario::fixed_probe_split(dataset, refs, COMPARED_REFERENCES);
            let (probes, _) = scenario::match_probes(&split, embeddings);
            let counts = ProbeCounts::of(&probes);
            (counts.genuine > 0).then(|| ReferencesRow {
                references: refs,
                genuine_probes: counts.genuine,
                stranger_probes: counts.strangers,
                rank1: counts.rank1(),
                at_threshold: metrics::open_set_at(&probes, threshold),
                at_far_0_001: metrics::open_set_at_far(&probes, 1e-3),
            })
        })
        .collect()
}

/// The attendance rates at every distinct best-match score (for the plots).
fn open_set_sweep(probes: &[metrics::ProbeMatch]) -> Vec<RatePoint> {
    let mut scores: Vec<f64> = probes.iter().filter_map(|p| p.best.map(|b| b.1)).collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    scores
        .into_iter()
        .map(|t| {
            let r = metrics::open_set_at(probes, t);
            RatePoint {
                threshold: t,
                true_accept_rate: r.true_accept_rate,
                false_accept_rate: r.false_accept_rate,
                false_reject_rate: r.false_reject_rate,
            }
        })
        .collect()
}

/// Thresholds every 1/[`GRID_STEPS`] from just below the lowest best-match score to just above
/// the highest (exact decimals: i / 200).
fn threshold_grid(probes: &[metrics::ProbeMatch]) -> impl Iterator<Item = f64> {
    let scores = || probes.iter().filter_map(|p| p.best.map(|b| b.1));
    let lo = scores().fold(f64::INFINITY, f64::min);
    let hi = scores().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo <= hi {
        (
            (lo * GRID_STEPS).floor() as i64,
            (hi * GRID_STEPS).ceil() as i64,
        )
    } else {
        (1, 0)
    };
    (lo..=hi).map(|i| i as f64 / GRID_STEPS)
}

/// Grid steps per unit of cosine similarity in the sweep.
const GRID_STEPS: f64 = 200.0;
