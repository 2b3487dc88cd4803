//! The evaluation's figures as one serialisable value, printed as a table or as JSON.
//!
//! JSON contract (kept stable for scripts): `verification.accuracy`, `verification.auc`,
//! `verification.tar_at_far` (keys `"0.01"`, `"0.001"`), `identification.threshold`,
//! `identification.true_accept_rate`, `identification.false_accept_rate`,
//! `identification.rank1`, `no_face`. Everything else is extra detail.

use super::metrics::{OpenSetRates, ResampledThreshold, TarAtFar, ThresholdAccuracy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: ModelInfo,
    pub dataset: DatasetInfo,
    pub verification: Verification,
    pub identification: Identification,
    /// The attendance scenario with a margin rule (best person ahead of the runner-up by the
    /// margin), each at its best threshold for FAR ≤ 0.1 %: not applied by the server.
    pub margin_rule: Vec<super::margin::MarginRow>,
    /// What a site sees at the threshold derived for its gallery: sizes × references, on the
    /// people the calibration was not made from (docs/accuracy.md). Empty without a rule.
    pub sites: Vec<super::sites::SiteRow>,
    /// Galleries drawn from the measurement half at the points of the calibration half's.
    pub held_out_galleries: Vec<super::strangers::HeldOutRow>,
    /// The same the other way round: the rule read from the odd half's galleries, measured on
    /// the even half's.
    pub held_out_reversed: Vec<super::strangers::HeldOutRow>,
    /// Photos in which no face was found (paths as scanned).
    pub no_face: Vec<String>,
    /// Photos that could not be read or decoded, with the reason.
    pub unreadable: Vec<Unreadable>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub embedder: String,
    pub model_id: String,
    /// How face-api crops are made (`box` or `aligned`); absent for FaceNet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_api_crop: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DatasetInfo {
    pub root: String,
    pub people: usize,
    pub photos: usize,
    /// People with two or more photos (enrolled in the attendance scenario).
    pub people_with_several_photos: usize,
    /// People with exactly one photo (the strangers).
    pub people_with_one_photo: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unreadable {
    pub path: String,
    pub error: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// The pairs file read, or `generated` (none given and none at ROOT/pairs.txt).
    pub pairs_source: String,
    pub pairs: usize,
    pub same_pairs: usize,
    pub different_pairs: usize,
    /// Pairs with a photo in which no face was found (wrong at every threshold).
    pub pairs_without_face: usize,
    /// Pairs naming photos outside a `--limit` subset.
    pub pairs_skipped: usize,
    pub folds: usize,
    /// `cross-validated` (LFW: each fold's threshold chosen on the other folds), `best
    /// threshold on all pairs` (fewer than two folds: optimistic), or `not measured: …` (pairs of
    /// one kind only, on which any threshold that accepts or rejects them all is right).
    pub protocol: String,
    /// Mean accuracy over the folds; `None` when not measured.
    pub accuracy: Option<f64>,
    pub accuracy_std: Option<f64>,
    pub fold_results: Vec<ThresholdAccuracy>,
    /// The best threshold on all pairs together, and its accuracy.
    pub best_threshold: Option<ThresholdAccuracy>,
    /// Accuracy of the pairs at the configured threshold; `None` when not measured.
    pub accuracy_at_threshold: Option<f64>,
    pub auc: Option<f64>,
    pub tar_at_far: BTreeMap<String, TarAtFar>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Identification {
    /// The threshold in force (the figures below are at it): `--threshold` when given, else the
    /// one derived for this enrolled set from the false-accept rate.
    pub threshold: f64,
    /// `configured`, `sampled`, `model`, `gallery` or `default`, as `/health` says it.
    pub threshold_source: String,
    /// The margin in force with the threshold (0: the best person alone decides); the figures
    /// at the threshold apply it, the sweeps do not.
    pub margin: f64,
    pub true_accept_rate: f64,
    pub false_accept_rate: f64,
    pub false_reject_rate: f64,
    pub rank1: f64,
    /// Reference photos per enrolled person (at most; each keeps at least one probe).
    pub references: usize,
    pub enrolled: usize,
    pub genuine_probes: usize,
    pub stranger_probes: usize,
    /// Enrolled people none of whose reference photos had a face (not in the gallery).
    pub not_enrolled: Vec<String>,
    pub at_threshold: OpenSetRates,
    /// The threshold with the most right decisions (right person accepted, stranger rejected).
    pub best: OpenSetRates,
    /// The lowest threshold whose false-accept rate is at most the key.
    pub at_far: BTreeMap<String, OpenSetRates>,
    /// Where the FAR ≤ 0.1 % point lies over bootstrap draws of the probes: the threshold that
    /// keeps the bound in 95 % of them is the one to calibrate a default with.
    pub at_far_resampled: Option<ResampledThreshold>,
    /// 1, 2, 3 references per person on one fixed probe set.
    pub references_comparison: Vec<ReferencesRow>,
    /// The rates on a 0.005 grid of thresholds across the best-match scores (for calibration).
    pub sweep: Vec<OpenSetRates>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReferencesRow {
    pub references: usize,
    pub genuine_probes: usize,
    pub stranger_probes: usize,
    pub rank1: f64,
    pub at_threshold: OpenSetRates,
    pub at_far_0_001: OpenSetRates,
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn thr(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "none".to_owned()
    }
}

impl Report {
    /// The human-readable summary.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let m = &self.model;
        let crop = m
            .face_api_crop
            .as_deref()
            .map(|c| format!(", {c} crop"))
            .unwrap_or_default();
        let d = &self.dataset;
        let _ = writeln!(s, "Model      {} ({}{crop})", m.embedder, m.model_id);
        let _ = writeln!(
            s,
            "Photos     {} of {} people under {} ({} with 2+ photos, {} with one); {} without a face, {} unreadable",
            d.photos,
            d.people,
            d.root,
            d.people_with_several_photos,
            d.people_with_one_photo,
            self.no_face.len(),
            self.unreadable.len()
        );

        let v = &self.verification;
        let _ = writeln!(
            s,
            "\nVerification: {} pairs ({} same, {} different) in {} folds from {}{}",
            v.pairs,
            v.same_pairs,
            v.different_pairs,
            v.folds,
            v.pairs_source,
            if v.pairs_without_face > 0 {
                format!(
                    "; {} with a no-face photo count as wrong",
                    v.pairs_without_face
                )
            } else {
                String::new()
            }
        );
        match (v.accuracy, v.accuracy_std) {
            (Some(accuracy), Some(std)) => {
                let _ = writeln!(
                    s,
                    "  accuracy ({})  {} ± {}",
                    v.protocol,
                    pct(accuracy),
                    pct(std)
                );
            }
            _ => {
                let _ = writeln!(s, "  accuracy {}", v.protocol);
            }
        }
        if let Some(b) = v.best_threshold {
            let _ = writeln!(
                s,
                "  best threshold on all pairs     {}  ({})",
                thr(b.threshold),
                pct(b.accuracy)
            );
        }
        if let Some(accuracy) = v.accuracy_at_threshold {
            let _ = writeln!(
                s,
                "  accuracy at threshold {}   {}",
                thr(self.identification.threshold),
                pct(accuracy)
            );
        }
        let _ = writeln!(
            s,
            "  ROC AUC                         {}",
            v.auc.map_or("n/a".into(), |a| format!("{a:.5}"))
        );
        for (far, t) in v.tar_at_far.iter().rev() {
            let _ = writeln!(
                s,
                "  TAR at FAR {far:<6}               {}  (threshold {}, FAR reached {})",
                pct(t.tar),
                thr(t.threshold),
                pct(t.far)
            );
        }

        let i = &self.identification;
        let _ = writeln!(
            s,
            "\nAttendance (open set): {} enrolled with up to {} reference photo(s); {} genuine probes, {} strangers",
            i.enrolled, i.references, i.genuine_probes, i.stranger_probes
        );
        let _ = writeln!(s, "  rank-1 accuracy {}", pct(i.rank1));
        let _ = writeln!(
            s,
            "  {:<18} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "", "threshold", "TAR", "FAR", "FRR", "strangers", "wrong name"
        );
        let row = |s: &mut String, label: &str, r: &OpenSetRates| {
            let _ = writeln!(
                s,
                "  {:<18} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10}",
                label,
                thr(r.threshold),
                pct(r.true_accept_rate),
                pct(r.false_accept_rate),
                pct(r.false_reject_rate),
                r.strangers_accepted,
                r.misidentified
            );
        };
        row(
            &mut s,
            &if i.margin > 0.0 {
                format!("in force ({}, margin {})", i.threshold_source, i.margin)
            } else {
                format!("in force ({})", i.threshold_source)
            },
            &i.at_threshold,
        );
        row(&mut s, "most right", &i.best);
        for (far, r) in &i.at_far {
            row(&mut s, &format!("FAR <= {far}"), r);
        }
        if let Some(r) = &i.at_far_resampled {
            let _ = writeln!(
                s,
                "  FAR <= {} over {} draws of the probes: median threshold {}, {:.0}% of draws within the bound at {}",
                r.false_accept_rate,
                r.resamples,
                thr(r.median),
                100.0 * r.quantile,
                thr(r.threshold)
            );
        }
        if !i.not_enrolled.is_empty() {
            let _ = writeln!(
                s,
                "  not enrolled (no face in any reference): {}",
                i.not_enrolled.join(", ")
            );
        }
        if !i.references_comparison.is_empty() {
            let first = &i.references_comparison[0];
            let _ = writeln!(
                s,
                "\nReferences per person (same probes for each row: {} genuine, {} strangers)",
                first.genuine_probes, first.stranger_probes
            );
            let _ = writeln!(
                s,
                "  {:>4} {:>8} {:>16} {:>16} {:>16} {:>22}",
                "refs",
                "rank-1",
                "TAR @ in force",
                "FRR @ in force",
                "FAR @ in force",
                "TAR @ FAR<=0.1% (thr)"
            );
            for r in &i.references_comparison {
                let _ = writeln!(
                    s,
                    "  {:>4} {:>8} {:>16} {:>16} {:>16} {:>13} ({})",
                    r.references,
                    pct(r.rank1),
                    pct(r.at_threshold.true_accept_rate),
                    pct(r.at_threshold.false_reject_rate),
                    pct(r.at_threshold.false_accept_rate),
                    pct(r.at_far_0_001.true_accept_rate),
                    thr(r.at_far_0_001.threshold)
                );
            }
        }
        if !self.margin_rule.is_empty() {
            let _ = writeln!(
                s,
                "\nMargin rule (best ahead of the runner-up by the margin; FAR <= 0.1%)"
            );
            for r in &self.margin_rule {
                let _ = writeln!(
                    s,
                    "  margin {:<6} threshold {}  TAR {}  false accepts {}",
                    r.margin,
                    thr(r.threshold),
                    pct(r.true_accept_rate),
                    r.false_accepts
                );
            }
        }
        if !self.sites.is_empty() {
            let _ = writeln!(
                s,
                "\nSites (people at odd positions by name; each at its derived threshold)"
            );
            let _ = writeln!(
                s,
                "  {:>8} {:>4} {:>9} {:>9} {:>7} {:>9} {:>22} {:>10} {:>8}",
                "enrolled",
                "refs",
                "FAR asked",
                "threshold",
                "margin",
                "source",
                "strangers acc.",
                "wrong name",
                "TAR"
            );
            for r in &self.sites {
                let _ = writeln!(
                    s,
                    "  {:>8} {:>4} {:>9} {:>9} {:>7} {:>9} {:>22} {:>10} {:>8}",
                    r.enrolled,
                    r.references,
                    r.requested_false_accept_rate,
                    thr(r.threshold),
                    r.margin,
                    r.threshold_source,
                    format!(
                        "{} ({}/{}, {}p)",
                        pct(r.stranger_accept_rate),
                        r.strangers_accepted,
                        r.stranger_probes,
                        r.stranger_people_accepted
                    ),
                    pct(r.misidentification_rate),
                    pct(r.true_accept_rate)
                );
            }
            let ruled: Vec<_> = self
                .sites
                .iter()
                .flat_map(|r| {
                    [("sampled", &r.sampled), ("margin", &r.margin_rule)]
                        .into_iter()
                        .filter_map(move |(name, row)| Some((r, name, row.as_ref()?)))
                })
                .collect();
            if !ruled.is_empty() {
                let _ = writeln!(
                    s,
                    "\nSites under the sampled galleries' threshold, without and with a margin"
                );
                let _ = writeln!(
                    s,
                    "  {:>8} {:>4} {:>8} {:>9} {:>7} {:>9} {:>22} {:>10} {:>8} {:>8}",
                    "enrolled",
                    "refs",
                    "rule",
                    "threshold",
                    "margin",
                    "from",
                    "strangers acc.",
                    "wrong name",
                    "TAR",
                    "TAR pred"
                );
                for (r, name, m) in ruled {
                    let _ = writeln!(
                        s,
                        "  {:>8} {:>4} {:>8} {:>9} {:>7} {:>9} {:>22} {:>10} {:>8} {:>8}",
                        r.enrolled,
                        r.references,
                        name,
                        thr(m.threshold),
                        m.margin,
                        format!("{}x{}", m.calibrated_people, m.calibrated_references),
                        format!(
                            "{} ({}/{}, {}p)",
                            pct(m.stranger_accept_rate),
                            m.strangers_accepted,
                            r.stranger_probes,
                            m.stranger_people_accepted
                        ),
                        pct(m.misidentification_rate),
                        pct(m.true_accept_rate),
                        pct(m.predicted_true_accept_rate)
                    );
                }
            }
        }
        held_out_table(
            &mut s,
            "Held-out galleries (odd half, drawn like the calibration's; at the even half's points)",
            &self.held_out_galleries,
        );
        held_out_table(
            &mut s,
            "The other way round (even half, at the odd half's points)",
            &self.held_out_reversed,
        );
        if !self.no_face.is_empty() {
            let _ = writeln!(s, "\nNo face found in {} photo(s):", self.no_face.len());
            for p in &self.no_face {
                let _ = writeln!(s, "  {p}");
            }
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(s, "\nUnreadable photos:");
            for u in &self.unreadable {
                let _ = writeln!(s, "  {}: {}", u.path, u.error);
            }
        }
        s
    }
}

/// The galleries of one half at the other half's points, and how many sizes let in more
/// strangers than asked.
fn held_out_table(s: &mut String, title: &str, rows: &[super::strangers::HeldOutRow]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{title}");
    let _ = writeln!(
        s,
        "  {:>6} {:>4} {:>9} {:>9} {:>8} {:>9} {:>7} {:>9} {:>8} {:>9} {:>8}",
        "people",
        "refs",
        "threshold",
        "strangers",
        "TAR",
        "+margin t",
        "margin",
        "strangers",
        "TAR",
        "same-rate",
        "TAR"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "  {:>6} {:>4} {:>9} {:>9} {:>8} {:>9} {:>7} {:>9} {:>8} {:>9} {:>8}",
            r.people,
            r.references,
            thr(r.threshold),
            pct(r.stranger_accept_rate),
            pct(r.true_accept_rate),
            thr(r.margin_threshold),
            r.margin,
            pct(r.margin_stranger_accept_rate),
            pct(r.margin_true_accept_rate),
            r.same_rate_threshold.map_or("-".to_owned(), thr),
            r.same_rate_true_accept_rate.map_or("-".to_owned(), pct)
        );
    }
    let over = |rate: fn(&super::strangers::HeldOutRow) -> f64| {
        rows.iter()
            .filter(|r| rate(r) > r.requested_false_accept_rate)
            .count()
    };
    let mean = |rate: fn(&super::strangers::HeldOutRow) -> f64| {
        rows.iter().map(rate).sum::<f64>() / rows.len() as f64
    };
    let _ = writeln!(
        s,
        "  more strangers than asked: {} of {} sizes without a margin, {} with; mean TAR {} / {}",
        over(|r| r.stranger_accept_rate),
        rows.len(),
        over(|r| r.margin_stranger_accept_rate),
        pct(mean(|r| r.true_accept_rate)),
        pct(mean(|r| r.margin_true_accept_rate)),
    );
}
