//! The threshold in force, derived from the risk an admin accepts ("at most 1 stranger in 1,000
//! attempts is checked in as someone") instead of a fixed cosine:
//!
//! - [`ScoreHistogram`]: impostor similarities (one face against one face of another person) in
//!   fine bins; the gallery keeps one of its own members' pairs, `rollcall eval
//!   --write-calibration` writes one per model (`calibration/<model id>.json`, compiled in);
//! - [`Tail`]: a histogram's survival function q(t) = P(score ≥ t), empirical where enough pairs
//!   lie above t, a fitted exponential tail below that;
//! - [`per_comparison_rate`]: a stranger's probe meets R references; if those comparisons were
//!   independent, P(accepted as someone) = 1 − (1 − q(t))^R, so q(t) = 1 − (1 − FAR)^(1/R);
//! - [`MarginRow`]: the margin rule `rollcall eval` measures on galleries drawn from the
//!   calibration photos (`eval/margin_rule.rs`): for a gallery's size and the requested rate, a
//!   threshold and a margin by which the best person must also beat the runner-up;
//! - [`Rule::derive`]: the margin rule where a calibrated gallery is large enough, else the
//!   model's threshold; the gallery's own scores raise either when its members look more alike
//!   than the calibration's people; an explicit `--threshold` wins; without any, the embedder's
//!   default.
//!
//! docs/accuracy.md gives the method, its assumptions and how it was checked.

use crate::domain::Threshold;
use serde::{Deserialize, Serialize};

/// The default risk: at most one stranger in 1,000 attempts accepted as someone.
pub const DEFAULT_FALSE_ACCEPT_RATE: f64 = 1e-3;

/// Width of a histogram bin in cosine similarity: the threshold's resolution.
pub const BIN_WIDTH: f64 = 1.0 / 2000.0;
const BINS: usize = 4000;

/// Pairs that must lie above a score for its empirical survival to be trusted; below that
/// probability the fitted tail answers.
const MIN_PAIRS_ABOVE: u64 = 10;
/// The tail is fitted over the lowest this many decades of trusted survival.
const FIT_DECADES: f64 = 2.0;
/// The gallery's member pairs set a threshold of their own from this many pairs on (≈ 140
/// people with one reference), where [`GALLERY_PAIRS_ABOVE`] pairs lie above the 1 % level:
/// fewer leave the comparison to a handful of scores, and a noisy one can only raise the
/// threshold (the larger one is in force). Measured in docs/accuracy.md.
pub const MIN_GALLERY_PAIRS: u64 = 10_000;
/// Member pairs above the level at which the gallery's scores are compared with the model's.
pub const GALLERY_PAIRS_ABOVE: u64 = 100;

/// Similarity scores counted in bins of [`BIN_WIDTH`] over [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for ScoreHistogram {
    fn default() -> Self {
        ScoreHistogram {
            counts: vec![0; BINS],
            total: 0,
        }
    }
}

fn bin_of(score: f64) -> usize {
    let b = ((score + 1.0) / BIN_WIDTH).floor();
    if b.is_nan() {
        0
    } else {
        (b.max(0.0) as usize).min(BINS - 1)
    }
}

fn lower_edge(bin: usize) -> f64 {
    // Rounded to the bin grid so that edges print as the decimals they are.
    (((bin as f64) * BIN_WIDTH - 1.0) * 1e6).round() / 1e6
}

impl ScoreHistogram {
    pub fn add(&mut self, score: f64) {
        self.counts[bin_of(score)] += 1;
        self.total += 1;
    }

    /// Take back a score added before (the same pair scores the same, bit for bit).
    pub fn remove(&mut self, score: f64) {
        let bin = &mut self.counts[bin_of(score)];
        if *bin > 0 {
            *bin -= 1;
            self.total -= 1;
        }
    }

    /// Add the counts of `other` (histograms counted in parallel, then joined).
    pub fn merge(&mut self, other: &ScoreHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// Pairs counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The survival function, or `None` when too few pairs lie in the tail to fit it.
    pub fn tail(&self) -> Option<Tail> {
        Tail::of(self)
    }

    /// The calibration file's form: the bins from where the survival falls under 5 % up (and
    /// at least those the tail is fitted on; the rest never sets a threshold), and the total.
    pub fn to_calibration(&self, model: &str, made_from: &str) -> Calibration {
        let mut bins = Vec::new();
        let mut above = 0u64;
        for b in (0..BINS).rev() {
            if self.counts[b] > 0 {
                bins.push((lower_edge(b), self.counts[b]));
            }
            above += self.counts[b];
            // Past 5 %, and past the range the tail is fitted over.
            let fitted = MIN_PAIRS_ABOVE as f64 * 10f64.powf(FIT_DECADES);
            if above as f64 > (0.05 * self.total as f64).max(fitted) {
                break;
            }
        }
        bins.reverse();
        Calibration {
            model: model.to_owned(),
            made_from: made_from.to_owned(),
            bin_width: BIN_WIDTH,
            comparisons: self.total,
            bins,
            margin_rule: Vec::new(),
        }
    }

    pub fn from_calibration(c: &Calibration) -> ScoreHistogram {
        let mut h = ScoreHistogram::default();
        for &(edge, count) in &c.bins {
            // The edge itself lies on the bin's boundary: its middle is unambiguous.
            h.counts[bin_of(edge + BIN_WIDTH / 2.0)] += count;
        }
        h.total = c.comparisons;
        h
    }
}

/// A model's impostor scores as shipped (`calibration/<model id>.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub model: String,
    /// Which photos the pairs came from (identity-disjoint from those eval measures on).
    pub made_from: String,
    pub bin_width: f64,
    /// Every impostor pair counted, including those below the stored bins.
    pub comparisons: u64,
    /// (lower edge of a bin, pairs in it), ascending, from the top 5 % of scores up.
    pub bins: Vec<(f64, u64)>,
    /// The margin rule for galleries of the calibrated sizes at [`MARGIN_RULE_RATES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub margin_rule: Vec<MarginRow>,
}

/// The false-accept rates the shipped margin rule is tabulated for; a rate in between uses the
/// next lower one (never more strangers than asked for, as measured).
pub const MARGIN_RULE_RATES: [f64; 8] = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2];

/// One point of the margin rule, measured on galleries of `people` with `references` each
/// drawn from the calibration photos: at `threshold` with `margin`, at most
/// `false_accept_rate` of their strangers were accepted, and of the margins tried this one
/// accepted most genuine probes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct MarginRow {
    pub people: usize,
    pub references: usize,
    pub false_accept_rate: f64,
    pub threshold: f64,
    pub margin: f64,
    /// Strangers accepted in the calibration's galleries (at most the rate).
    pub stranger_rate: f64,
    /// Genuine probes accepted as the right person in the calibration's galleries.
    pub true_accept_rate: f64,
}

/// The row for a gallery of `people` holding `references` in all, at `far`: of the rows of the
/// largest tabulated rate not above `far`, those of the smallest calibrated gallery at least as
/// large in people and in references per person (rounded up; capped at the most calibrated:
/// more references per person only raise strangers' best scores, which the threshold of a
/// larger gallery covers). `None` when no calibrated gallery is large enough.
pub fn margin_row(
    rows: &[MarginRow],
    people: usize,
    references: usize,
    far: f64,
) -> Option<MarginRow> {
    let rate = rows
        .iter()
        .map(|r| r.false_accept_rate)
        .filter(|&r| r <= far * (1.0 + 1e-9))
        .max_by(f64::total_cmp)?;
    let at_rate = || rows.iter().filter(move |r| r.false_accept_rate == rate);
    let most = at_rate().map(|r| r.references).max()?;
    let per_person = references.div_ceil(people.max(1)).clamp(1, most);
    at_rate()
        .filter(|r| r.people >= people.max(1) && r.references >= per_person)
        .min_by_key(|r| (r.people * r.references, r.references))
        .copied()
}

/// The calibrations shipped with rollcall, by model id.
const CALIBRATIONS: [(&str, &str); 1] = [(
    "face-api-resnet128-flip",
    include_str!("../calibration/face-api-resnet128-flip.json"),
)];

/// The calibration shipped for `model`, if any (FaceNet's is not: its weights are not at hand
/// where the calibration was made).
pub fn model_calibration(model: &str) -> Option<Calibration> {
    let (_, text) = CALIBRATIONS.iter().find(|(id, _)| *id == model)?;
    serde_json::from_str(text).ok()
}

/// q(t) = P(impostor score ≥ t): empirical down to [`MIN_PAIRS_ABOVE`] pairs, then
/// ln q = a + b·t fitted over the lowest [`FIT_DECADES`] decades of the trusted part.
#[derive(Clone, Debug, PartialEq)]
pub struct Tail {
    /// (bin lower edge t, q(t)) ascending in t, only where q is trusted.
    points: Vec<(f64, f64)>,
    /// ln q = intercept + slope · t, slope < 0.
    intercept: f64,
    slope: f64,
}

impl Tail {
    fn of(h: &ScoreHistogram) -> Option<Tail> {
        if h.total == 0 {
            return None;
        }
        let total = h.total as f64;
        let mut points = Vec::new();
        let mut above = 0u64;
        for b in (0..BINS).rev() {
            above += h.counts[b];
            if above >= MIN_PAIRS_ABOVE && h.counts[b] > 0 {
                points.push((lower_edge(b), above as f64 / total));
            }
        }
        points.reverse();
        let q_min = points.last()?.1;
        let fit: Vec<(f64, f64)> = points
            .iter()
            .filter(|(_, q)| *q <= q_min * 10f64.powf(FIT_DECADES))
            .map(|&(t, q)| (t, q.ln()))
            .collect();
        if fit.len() < 3 {
            return None;
        }
        let n = fit.len() as f64;
        let mt = fit.iter().map(|p| p.0).sum::<f64>() / n;
        let ml = fit.iter().map(|p| p.1).sum::<f64>() / n;
        let stt: f64 = fit.iter().map(|p| (p.0 - mt).powi(2)).sum();
        let stl: f64 = fit.iter().map(|p| (p.0 - mt) * (p.1 - ml)).sum();
        let slope = stl / stt;
        if !(slope.is_finite() && slope < 0.0) {
            return None;
        }
        Some(Tail {
            points,
            intercept: ml - slope * mt,
            slope,
        })
    }

    /// q(t), the share of impostor pairs scoring t or more (a step on the bin grid inside the
    /// data, the fitted tail past it; at most the first stored point's share below the data).
    pub fn survival(&self, t: f64) -> f64 {
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return 1.0;
        };
        if t > last.0 {
            return (self.intercept + self.slope * t).exp().min(last.1);
        }
        self.points
            .iter()
            .rev()
            .find(|(edge, _)| *edge <= t)
            .unwrap_or(first)
            .1
    }

    /// The lowest threshold t on the bin grid (or, past the data, on the fitted tail) with
    /// q(t) ≤ p.
    pub fn inverse(&self, p: f64) -> f64 {
        if let Some(&(t, _)) = self.points.iter().find(|(_, q)| *q <= p) {
            return t;
        }
        let last = self.points.last().map_or(-1.0, |pt| pt.0);
        ((p.ln() - self.intercept) / self.slope).max(last + BIN_WIDTH)
    }
}

/// The per-comparison rate q for which a stranger meeting `references` independent comparisons
/// is accepted as someone with probability `far`: q = 1 − (1 − far)^(1/R). (Independence held
/// on the calibration's own people; docs/accuracy.md has the check.)
pub fn per_comparison_rate(far: f64, references: usize) -> f64 {
    let r = references.max(1) as f64;
    -((-far).ln_1p() / r).exp_m1()
}

/// Where the threshold in force came from (`threshold_source` in `/health` and `/verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `--threshold` (flag, environment or file): used as given.
    Configured,
    /// From the model's impostor scores and the number of references.
    Model,
    /// The margin rule measured on galleries of the calibration photos ([`MarginRow`]).
    Sampled,
    /// Raised by the gallery's own member-vs-member scores (higher than the model's; the margin,
    /// if any, kept), or from them alone when the model has no calibration.
    Gallery,
    /// The embedder's documented default: no calibration and too few gallery pairs.
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Configured => "configured",
            Source::Model => "model",
            Source::Sampled => "sampled",
            Source::Gallery => "gallery",
            Source::Default => "default",
        }
    }
}

/// The threshold in force and what it was derived for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OperatingPoint {
    pub threshold: Threshold,
    /// How much the best person must beat the runner-up (the best other person) by; 0: the
    /// best person alone decides.
    pub margin: f64,
    /// The false-accept rate per probe it was derived for.
    pub false_accept_rate: f64,
    pub source: Source,
    pub people: usize,
    pub references: usize,
}

/// How the threshold is chosen for a gallery.
#[derive(Clone, Debug)]
pub struct Rule {
    pub false_accept_rate: f64,
    /// `--threshold`: wins over any derivation.
    pub configured: Option<Threshold>,
    /// The embedder's default, when nothing can be derived.
    pub default: Threshold,
    /// The model's impostor tail (from its calibration: [`Rule::for_model`]), if calibrated.
    pub model: Option<Tail>,
    /// The model's margin rule (its calibration's rows); empty: the best person alone decides.
    pub margins: Vec<MarginRow>,
    /// `--margin`, with a configured threshold (0 when not given).
    pub configured_margin: f64,
}

impl Rule {
    /// The rule the server applies for `model`: its shipped calibration (tail and margin rule),
    /// if any, at `false_accept_rate`; nothing configured.
    pub fn for_model(model: &str, false_accept_rate: f64, default: Threshold) -> Rule {
        let calibration = model_calibration(model);
        Rule {
            false_accept_rate,
            configured: None,
            default,
            model: calibration
                .as_ref()
                .and_then(|c| ScoreHistogram::from_calibration(c).tail()),
            margins: calibration.map_or_else(Vec::new, |c| c.margin_rule),
            configured_margin: 0.0,
        }
    }

    /// The model's threshold for `references` comparisons, if the model is calibrated.
    pub fn model_threshold(&self, references: usize) -> Option<f64> {
        let q = per_comparison_rate(self.false_accept_rate, references);
        self.model.as_ref().map(|tail| tail.inverse(q))
    }

    /// The gallery's own threshold, once it holds [`MIN_GALLERY_PAIRS`] member pairs. With a
    /// model calibration: the model's threshold moved up by as much as the members' scores lie
    /// above the model's at the deepest level they measure well ([`GALLERY_PAIRS_ABOVE`] pairs
    /// above it), so a population of look-alikes raises it and no small-sample tail is
    /// extrapolated. Without one: the members' own fitted tail.
    pub fn gallery_threshold(&self, pairs: &ScoreHistogram, references: usize) -> Option<f64> {
        if pairs.total() < MIN_GALLERY_PAIRS {
            return None;
        }
        let own = pairs.tail()?;
        let q = per_comparison_rate(self.false_accept_rate, references);
        match &self.model {
            Some(model) => {
                let level = GALLERY_PAIRS_ABOVE as f64 / pairs.total() as f64;
                let shift = own.inverse(level) - model.inverse(level);
                Some(model.inverse(q) + shift)
            }
            None => Some(own.inverse(q)),
        }
    }

    /// The threshold in force for a gallery of `people` with `references` in all, whose
    /// members' pairs are `pairs`. Where a calibrated gallery is large enough, the margin rule
    /// measured on it (no independence assumed); else the model's threshold. Either is raised
    /// by as much as the gallery's own scores lie above the model's ([`Rule::gallery_threshold`]).
    pub fn derive(
        &self,
        pairs: &ScoreHistogram,
        people: usize,
        references: usize,
    ) -> OperatingPoint {
        let (value, margin, source) = if let Some(t) = self.configured {
            (
                f64::from(t.value()),
                self.configured_margin,
                Source::Configured,
            )
        } else {
            let model = self.model_threshold(references);
            let gallery = self.gallery_threshold(pairs, references);
            // A row that let no genuine probe through is not a rule but a sign of mislabelled
            // strangers in its galleries (LFW has one man under two names, scoring 0.997): the
            // model's threshold answers there.
            let sampled = margin_row(&self.margins, people, references, self.false_accept_rate)
                .filter(|row| self.model.is_some() && row.true_accept_rate > 0.0);
            match (model, gallery, sampled) {
                (Some(m), gallery, Some(row)) => match gallery.map(|g| g - m) {
                    Some(shift) if shift > 0.0 => {
                        (row.threshold + shift, row.margin, Source::Gallery)
                    }
                    _ => (row.threshold, row.margin, Source::Sampled),
                },
                (Some(m), Some(g), None) if g > m => (g, 0.0, Source::Gallery),
                (Some(m), _, None) => (m, 0.0, Source::Model),
                (None, Some(g), _) => (g, 0.0, Source::Gallery),
                (None, None, _) => (f64::from(self.default.value()), 0.0, Source::Default),
            }
        };
        OperatingPoint {
            // Derived values are bin edges or a fitted tail's point: clamped into the range.
            threshold: Threshold::new((value as f32).clamp(-1.0, 1.0)).unwrap_or(self.default),
            margin: if margin.is_finite() {
                margin.clamp(0.0, 2.0)
            } else {
                0.0
            },
            false_accept_rate: self.false_accept_rate,
            source,
            people,
            references,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Impostor scores with an exponential tail: n scores spread so that q(t) = e^(−(t−0.5)·40)
    /// above 0.5.
    fn exponential(n: u64) -> ScoreHistogram {
        let mut h = ScoreHistogram::default();
        for i in 0..n {
            let u = (i as f64 + 0.5) / n as f64; // survival of this score
            h.add(0.5 - u.ln() / 40.0);
        }
        h
    }

    #[test]
    fn the_per_comparison_rate_falls_with_references_and_rises_with_the_far() {
        let q1 = per_comparison_rate(1e-3, 1);
        assert!((q1 - 1e-3).abs() < 1e-15);
        let q100 = per_comparison_rate(1e-3, 100);
        assert!(q100 < q1 / 99.0 && q100 > q1 / 101.0, "{q100}");
        assert!(per_comparison_rate(1e-2, 100) > q100);
        // 1 − (1 − q)^R gives back the FAR.
        assert!((1.0 - (1.0 - q100).powi(100) - 1e-3).abs() < 1e-12);
    }

    #[test]
    fn the_inverse_inverts_the_survival_inside_and_past_the_data() {
        let tail = exponential(200_000).tail().unwrap();
        for p in [1e-2, 1e-3, 1e-4, 1e-6, 1e-8] {
            let t = tail.inverse(p);
            let expected = 0.5 - p.ln() / 40.0;
            assert!((t - expected).abs() < 0.003, "p {p}: {t} vs {expected}");
            assert!(tail.survival(t) <= p * 1.0001, "q({t}) > {p}");
        }
    }

    #[test]
    fn thresholds_rise_with_the_gallery_and_fall_with_the_far() {
        let rule = Rule {
            false_accept_rate: 1e-3,
            configured: None,
            default: Threshold::new(0.55).unwrap(),
            model: exponential(100_000).tail(),
            margins: Vec::new(),
            configured_margin: 0.0,
        };
        let t = |far: f64, r: usize| {
            Rule {
                false_accept_rate: far,
                ..rule.clone()
            }
            .model_threshold(r)
            .unwrap()
        };
        assert!(t(1e-3, 10) < t(1e-3, 100) && t(1e-3, 100) < t(1e-3, 1000));
        assert!(t(1e-2, 100) < t(1e-3, 100) && t(1e-3, 100) < t(1e-4, 100));
        let empty = ScoreHistogram::default();
        let point = rule.derive(&empty, 7, 9);
        assert_eq!(point.source, Source::Model);
        assert_eq!(point.threshold.value(), t(1e-3, 9) as f32);
        assert_eq!((point.people, point.references), (7, 9));
    }

    #[test]
    fn an_explicit_threshold_wins_and_the_default_is_the_last_resort() {
        let configured = Threshold::new(0.7).unwrap();
        let rule = Rule {
            false_accept_rate: 1e-3,
            configured: Some(configured),
            default: Threshold::new(0.55).unwrap(),
            model: exponential(100_000).tail(),
            margins: Vec::new(),
            configured_margin: 0.0,
        };
        let point = rule.derive(&exponential(MIN_GALLERY_PAIRS), 300, 300);
        assert_eq!(
            (point.threshold, point.source),
            (configured, Source::Configured)
        );
        let bare = Rule {
            configured: None,
            model: None,
            ..rule
        };
        let small = exponential(MIN_GALLERY_PAIRS - 1);
        assert_eq!(bare.derive(&small, 3, 3).source, Source::Default);
        assert_eq!(bare.derive(&small, 3, 3).threshold.value(), 0.55);
        assert_eq!(
            bare.derive(&exponential(MIN_GALLERY_PAIRS), 3, 3).source,
            Source::Gallery
        );
    }

    #[test]
    fn a_gallery_scoring_higher_than_the_model_raises_the_threshold() {
        let mut lookalikes = ScoreHistogram::default();
        for i in 0..MIN_GALLERY_PAIRS {
            let u = (i as f64 + 0.5) / MIN_GALLERY_PAIRS as f64;
            lookalikes.add(0.6 - u.ln() / 40.0); // the same tail shifted up by 0.1
        }
        let rule = Rule {
            false_accept_rate: 1e-3,
            configured: None,
            default: Threshold::new(0.55).unwrap(),
            model: exponential(100_000).tail(),
            margins: Vec::new(),
            configured_margin: 0.0,
        };
        let point = rule.derive(&lookalikes, 200, 200);
        assert_eq!(point.source, Source::Gallery);
        assert!(f64::from(point.threshold.value()) > rule.model_threshold(200).unwrap() + 0.05);
    }

    #[test]
    fn removing_a_score_undoes_adding_it_and_calibration_round_trips() {
        let mut h = exponential(10_000);
        let before = h.clone();
        h.add(0.93);
        h.remove(0.93);
        assert_eq!(h, before);
        let c = h.to_calibration("m", "test");
        let back = ScoreHistogram::from_calibration(&c);
        assert_eq!(back.total(), h.total());
        let (a, b) = (h.tail().unwrap(), back.tail().unwrap());
        for p in [1e-2, 1e-3, 1e-5] {
            assert_eq!(a.inverse(p), b.inverse(p));
        }
    }

    fn row(people: usize, references: usize, far: f64, threshold: f64) -> MarginRow {
        MarginRow {
            people,
            references,
            false_accept_rate: far,
            threshold,
            margin: 0.01,
            stranger_rate: 0.0,
            true_accept_rate: 0.5,
        }
    }

    #[test]
    fn a_site_reads_the_smallest_calibrated_gallery_at_least_as_large_at_the_rate_below() {
        let rows = vec![
            row(50, 1, 1e-3, 0.950),
            row(100, 1, 1e-3, 0.951),
            row(50, 3, 1e-3, 0.952),
            row(200, 3, 1e-3, 0.953),
            row(50, 1, 1e-2, 0.940),
        ];
        let of = |people, references, far| {
            margin_row(&rows, people, references, far)
                .map(|r| (r.people, r.references, r.threshold))
        };
        assert_eq!(of(50, 50, 1e-3), Some((50, 1, 0.950)));
        assert_eq!(of(51, 51, 1e-3), Some((100, 1, 0.951)));
        assert_eq!(
            of(60, 120, 1e-3),
            Some((200, 3, 0.953)),
            "two references each"
        );
        assert_eq!(
            of(40, 200, 1e-3),
            Some((50, 3, 0.952)),
            "more references than calibrated"
        );
        assert_eq!(of(0, 0, 1e-3), Some((50, 1, 0.950)), "an empty gallery");
        assert_eq!(of(201, 201, 1e-3), None, "past the largest");
        // A rate between two tabulated ones reads the lower; below them all, nothing.
        assert_eq!(of(50, 50, 5e-3), Some((50, 1, 0.950)));
        assert_eq!(of(50, 50, 1e-2), Some((50, 1, 0.940)));
        assert_eq!(of(50, 50, 1e-4), None);
    }

    #[test]
    fn the_margin_rule_applies_where_calibrated_and_the_gallery_raises_it() {
        let rule = Rule {
            false_accept_rate: 1e-3,
            configured: None,
            default: Threshold::new(0.55).unwrap(),
            model: exponential(100_000).tail(),
            margins: vec![row(100, 1, 1e-3, 0.62)],
            configured_margin: 0.0,
        };
        let empty = ScoreHistogram::default();
        let point = rule.derive(&empty, 100, 100);
        assert_eq!(point.source, Source::Sampled);
        assert_eq!((point.threshold.value(), point.margin), (0.62, 0.01));
        // Past the calibrated galleries: the model's threshold, no margin.
        let past = rule.derive(&empty, 101, 101);
        assert_eq!((past.source, past.margin), (Source::Model, 0.0));
        assert_eq!(
            past.threshold.value(),
            rule.model_threshold(101).unwrap() as f32
        );
        // A row under which no genuine probe passed is not used either.
        let useless = Rule {
            margins: vec![MarginRow {
                true_accept_rate: 0.0,
                ..row(100, 1, 1e-3, 0.997)
            }],
            ..rule.clone()
        };
        assert_eq!(useless.derive(&empty, 100, 100).source, Source::Model);
        // Members scoring 0.1 higher than the model's people raise the sampled threshold too.
        let mut lookalikes = ScoreHistogram::default();
        for i in 0..MIN_GALLERY_PAIRS {
            let u = (i as f64 + 0.5) / MIN_GALLERY_PAIRS as f64;
            lookalikes.add(0.6 - u.ln() / 40.0);
        }
        let raised = rule.derive(&lookalikes, 100, 100);
        assert_eq!(raised.source, Source::Gallery);
        assert_eq!(raised.margin, 0.01);
        assert!(
            (f64::from(raised.threshold.value()) - 0.72).abs() < 0.005,
            "{raised:?}"
        );
        // A configured threshold comes with its configured margin, or none.
        let configured = Rule {
            configured: Some(Threshold::new(0.7).unwrap()),
            configured_margin: 0.03,
            ..rule.clone()
        }
        .derive(&empty, 100, 100);
        assert_eq!(
            (configured.source, configured.margin),
            (Source::Configured, 0.03)
        );
    }
}
