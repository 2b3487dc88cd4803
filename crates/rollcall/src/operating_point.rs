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
//! - [`Rule::derive`]: the model's threshold and the gallery's own, the larger in force; an
//!   explicit `--threshold` wins; without either, the embedder's default.
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
}

/// The calibrations shipped with rollcall, by model id.
const CALIBRATIONS: [(&str, &str); 1] = [(
    "face-api-resnet128-flip",
    include_str!("../calibration/face-api-resnet128-flip.json"),
)];

/// The impostor tail measured for `model`, if one is shipped (FaceNet's is not: its weights are
/// not at hand where the calibration was made).
pub fn model_tail(model: &str) -> Option<Tail> {
    let (_, text) = CALIBRATIONS.iter().find(|(id, _)| *id == model)?;
    let calibration: Calibration = serde_json::from_str(text).ok()?;
    ScoreHistogram::from_calibration(&calibration).tail()
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
    /// From the gallery's own member-vs-member scores (higher than the model's, or the model
    /// has no calibration).
    Gallery,
    /// The embedder's documented default: no calibration and too few gallery pairs.
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Configured => "configured",
            Source::Model => "model",
            Source::Gallery => "gallery",
            Source::Default => "default",
        }
    }
}

/// The threshold in force and what it was derived for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OperatingPoint {
    pub threshold: Threshold,
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
    /// The model's impostor tail ([`model_tail`]), if calibrated.
    pub model: Option<Tail>,
}

impl Rule {
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
    /// members' pairs are `pairs`.
    pub fn derive(
        &self,
        pairs: &ScoreHistogram,
        people: usize,
        references: usize,
    ) -> OperatingPoint {
        let (value, source) = if let Some(t) = self.configured {
            (t.value(), Source::Configured)
        } else {
            match (
                self.model_threshold(references),
                self.gallery_threshold(pairs, references),
            ) {
                (Some(m), Some(g)) if g > m => (g as f32, Source::Gallery),
                (Some(m), _) => (m as f32, Source::Model),
                (None, Some(g)) => (g as f32, Source::Gallery),
                (None, None) => (self.default.value(), Source::Default),
            }
        };
        OperatingPoint {
            // Derived values are bin edges or a fitted tail's point: clamped into the range.
            threshold: Threshold::new(value.clamp(-1.0, 1.0)).unwrap_or(self.default),
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
}
