//! Recognition metrics on similarity scores: verification (ROC, AUC, accuracy with a
//! cross-validated threshold, TAR at a fixed FAR) and open-set identification (the attendance
//! kiosk: best gallery match per probe, accepted or not).
//!
//! Everywhere a pair or probe is *accepted* by the server's rule, [`matching::accepts`]
//! (similarity `>= threshold`).

use crate::matching;
use serde::Serialize;

/// A verification pair's similarity; `score` is `None` when a photo of the pair had no face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub score: Option<f64>,
    pub same: bool,
}

impl Scored {
    pub fn new(score: f64, same: bool) -> Self {
        Scored {
            score: Some(score),
            same,
        }
    }

    /// The score as the metrics see it. A pair with a no-face photo is wrong at every threshold:
    /// a same-person pair is never accepted (-∞), a different-person pair always is (+∞).
    fn effective(&self) -> f64 {
        match (self.score, self.same) {
            (Some(s), _) => s,
            (None, true) => f64::NEG_INFINITY,
            (None, false) => f64::INFINITY,
        }
    }
}

/// Scores ascending (with their labels) and the candidate thresholds between them.
struct Sorted {
    /// (effective score, same), ascending by score.
    items: Vec<(f64, bool)>,
}

impl Sorted {
    fn new(pairs: &[Scored]) -> Self {
        let mut items: Vec<(f64, bool)> = pairs.iter().map(|p| (p.effective(), p.same)).collect();
        items.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Sorted { items }
    }

    /// Every distinct way a threshold can split the sorted scores: `(threshold, k)` where the
    /// first `k` items are rejected and the rest accepted. Thresholds sit midway between
    /// neighbouring distinct finite scores; the ends are the lowest score itself (accept all
    /// finite) and just above the highest.
    fn splits(&self) -> Vec<(f64, usize)> {
        let finite: Vec<(usize, f64)> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, (s, _))| s.is_finite())
            .map(|(i, (s, _))| (i, *s))
            .collect();
        let Some(&(first, lowest)) = finite.first() else {
            // Only no-face pairs: the single split is "reject the -∞ ones".
            let k = self
                .items
                .iter()
                .take_while(|(s, _)| *s == f64::NEG_INFINITY)
                .count();
            return vec![(0.0, k)];
        };
        let mut out = vec![(lowest, first)];
        for w in finite.windows(2) {
            let ((_, a), (i, b)) = (w[0], w[1]);
            if b > a {
                out.push(((a + b) / 2.0, i));
            }
        }
        let &(last, highest) = finite.last().unwrap_or(&(first, lowest));
        out.push((next_up(highest), last + 1));
        out
    }
}

/// The smallest f64 above `x` (for a threshold that rejects exactly the scores `<= x`).
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// Fraction of pairs classified right at `threshold`.
pub fn accuracy_at(pairs: &[Scored], threshold: f64) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let right = pairs
        .iter()
        .filter(|p| matching::accepts(p.effective(), threshold) == p.same)
        .count();
    right as f64 / pairs.len() as f64
}

/// A threshold and the accuracy it gives.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThresholdAccuracy {
    pub threshold: f64,
    pub accuracy: f64,
}

/// The threshold with the highest accuracy on `pairs`. Several thresholds often tie; the
/// median of the tying ones is taken, so the choice sits inside the best region, not at its
/// edge. `None` when there are no pairs.
pub fn best_threshold(pairs: &[Scored]) -> Option<ThresholdAccuracy> {
    if pairs.is_empty() {
        return None;
    }
    let sorted = Sorted::new(pairs);
    let total_same = sorted.items.iter().filter(|(_, s)| *s).count();
    // Prefix counts: below[k] = (same, different) among the first k (rejected) items.
    let mut below = Vec::with_capacity(sorted.items.len() + 1);
    let (mut same, mut diff) = (0usize, 0usize);
    below.push((0, 0));
    for &(_, is_same) in &sorted.items {
        if is_same {
            same += 1;
        } else {
            diff += 1;
        }
        below.push((same, diff));
    }
    let scored: Vec<(f64, usize)> = sorted
        .splits()
        .into_iter()
        .map(|(t, k)| {
            let (same_rejected, diff_rejected) = below[k];
            (t, diff_rejected + total_same - same_rejected)
        })
        .collect();
    let best = scored.iter().map(|&(_, right)| right).max()?;
    let tying: Vec<f64> = scored
        .iter()
        .filter(|&&(_, r)| r == best)
        .map(|&(t, _)| t)
        .collect();
    Some(ThresholdAccuracy {
        threshold: tying[(tying.len() - 1) / 2],
        accuracy: best as f64 / pairs.len() as f64,
    })
}

/// One point of the ROC curve: at `threshold`, the fraction of different-person pairs accepted
/// (`far`) and of same-person pairs accepted (`tar`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub far: f64,
    pub tar: f64,
}

/// The ROC curve from (0, 0) (threshold +∞) to (1, 1), one point per distinct score; tied
/// scores move both rates at once (a diagonal step).
pub fn roc(pairs: &[Scored]) -> Vec<RocPoint> {
    let positives = pairs.iter().filter(|p| p.same).count();
    let negatives = pairs.len() - positives;
    let rate = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let mut items: Vec<(f64, bool)> = pairs.iter().map(|p| (p.effective(), p.same)).collect();
    items.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = vec![RocPoint {
        threshold: f64::INFINITY,
        far: 0.0,
        tar: 0.0,
    }];
    let (mut tp, mut fp) = (0, 0);
    let mut i = 0;
    while i < items.len() {
        let score = items[i].0;
        while i < items.len() && items[i].0 == score {
            if items[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push(RocPoint {
            threshold: score,
            far: rate(fp, negatives),
            tar: rate(tp, positives),
        });
    }
    out
}

/// Area under the ROC curve (trapezoids, so ties count one half). `None` without both kinds of
/// pair.
pub fn auc(pairs: &[Scored]) -> Option<f64> {
    let positives = pairs.iter().filter(|p| p.same).count();
    if positives == 0 || positives == pairs.len() {
        return None;
    }
    let curve = roc(pairs);
    Some(
        curve
            .windows(2)
            .map(|w| (w[1].far - w[0].far) * (w[1].tar + w[0].tar) / 2.0)
            .sum(),
    )
}

/// Accuracy under k-fold cross-validation (LFW's protocol): for each fold, the best threshold
/// on the other folds, applied to this one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrossValidated {
    pub mean: f64,
    /// Population standard deviation over the folds (as LFW results are usually reported).
    pub std: f64,
    pub folds: Vec<ThresholdAccuracy>,
}

/// `None` with fewer than two non-empty folds (nothing to cross-validate).
pub fn cross_validated_accuracy(folds: &[Vec<Scored>]) -> Option<CrossValidated> {
    let folds: Vec<&Vec<Scored>> = folds.iter().filter(|f| !f.is_empty()).collect();
    if folds.len() < 2 {
        return None;
    }
    let results: Vec<ThresholdAccuracy> = (0..folds.len())
        .map(|test| {
            let train: Vec<Scored> = folds
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != test)
                .flat_map(|(_, f)| f.iter().copied())
                .collect();
            // Non-empty folds make a non-empty training set.
            let threshold = best_threshold(&train).map_or(0.0, |b| b.threshold);
            ThresholdAccuracy {
                threshold,
                accuracy: accuracy_at(folds[test], threshold),
            }
        })
        .collect();
    let (mean, std) = mean_std(results.iter().map(|r| r.accuracy));
    Some(CrossValidated {
        mean,
        std,
        folds: results,
    })
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The true-accept rate at the lowest threshold whose false-accept rate is at most `target`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TarAtFar {
    pub target_far: f64,
    pub threshold: f64,
    pub tar: f64,
    /// The FAR actually reached (a multiple of 1 / different-person pairs, ≤ target unless
    /// no-face pairs alone exceed it).
    pub far: f64,
}

/// `None` without both kinds of pair.
pub fn tar_at_far(pairs: &[Scored], target: f64) -> Option<TarAtFar> {
    let sorted = Sorted::new(pairs);
    let negatives = sorted.items.iter().filter(|(_, s)| !*s).count();
    let positives = sorted.items.len() - negatives;
    if negatives == 0 || positives == 0 {
        return None;
    }
    // Splits ascend by threshold, so the first one within target is the lowest threshold.
    let n = sorted.items.len();
    let mut accepted_diff = vec![0usize; n + 1];
    let mut accepted_same = vec![0usize; n + 1];
    for k in (0..n).rev() {
        let same = sorted.items[k].1;
        accepted_diff[k] = accepted_diff[k + 1] + usize::from(!same);
        accepted_same[k] = accepted_same[k + 1] + usize::from(same);
    }
    let far = |k: usize| accepted_diff[k] as f64 / negatives as f64;
    let tar = |k: usize| accepted_same[k] as f64 / positives as f64;
    let splits = sorted.splits();
    let (threshold, k) = splits
        .iter()
        .copied()
        .find(|&(_, k)| far(k) <= target)
        .unwrap_or_else(|| splits[splits.len() - 1]);
    Some(TarAtFar {
        target_far: target,
        threshold,
        tar: tar(k),
        far: far(k),
    })
}

/// One attendance attempt: who the probe really is (`Some(person)` when that person is
/// enrolled, `None` for a stranger) and the best gallery match (`None` when no face was found).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeMatch {
    pub truth: Option<usize>,
    pub best: Option<(usize, f64)>,
    /// The second-best *other* person's score (`None` with nobody else comparable).
    pub runner_up: Option<f64>,
}

/// Open-set identification rates at one threshold. A probe is *accepted* when its best match
/// scores `>= threshold`; then the kiosk names that person.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OpenSetRates {
    pub threshold: f64,
    /// Genuine probes accepted as the right person / genuine probes.
    pub true_accept_rate: f64,
    /// Wrong names given / all probes: strangers accepted as anyone plus genuine probes accepted
    /// as someone else, over every attempt (genuine and stranger).
    pub false_accept_rate: f64,
    /// Genuine probes not accepted as anyone (no face, or best score below the threshold) /
    /// genuine probes.
    pub false_reject_rate: f64,
    /// Strangers accepted as anyone / strangers.
    pub stranger_accept_rate: f64,
    /// Genuine probes accepted as someone else / genuine probes.
    pub misidentification_rate: f64,
    /// (right accepts + strangers rejected) / all probes.
    pub accuracy: f64,
    pub true_accepts: usize,
    pub false_accepts: usize,
    pub false_rejects: usize,
    pub strangers_accepted: usize,
    pub misidentified: usize,
}

/// Threshold-free summary of a probe set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProbeCounts {
    pub genuine: usize,
    pub strangers: usize,
    /// Genuine probes whose best match is the right person (at any threshold).
    pub rank1_correct: usize,
}

impl ProbeCounts {
    pub fn of(probes: &[ProbeMatch]) -> Self {
        let genuine = probes.iter().filter(|p| p.truth.is_some()).count();
        let rank1_correct = probes
            .iter()
            .filter(|p| p.truth.is_some() && p.truth == p.best.map(|b| b.0))
            .count();
        ProbeCounts {
            genuine,
            strangers: probes.len() - genuine,
            rank1_correct,
        }
    }

    /// Genuine probes whose best match is the right person / genuine probes.
    pub fn rank1(&self) -> f64 {
        ratio(self.rank1_correct, self.genuine)
    }
}

fn ratio(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

pub fn open_set_at(probes: &[ProbeMatch], threshold: f64) -> OpenSetRates {
    open_set_under(probes, threshold, 0.0)
}

/// [`open_set_at`] under the margin rule: the best person is accepted only when they also
/// beat the runner-up by `margin` ([`matching::accepts_with_margin`]).
pub fn open_set_under(probes: &[ProbeMatch], threshold: f64, margin: f64) -> OpenSetRates {
    let (mut ta, mut mis, mut fr, mut sa) = (0, 0, 0, 0);
    for p in probes {
        let accepted = p
            .best
            .filter(|&(_, s)| matching::accepts_with_margin(s, p.runner_up, threshold, margin))
            .map(|(who, _)| who);
        match (p.truth, accepted) {
            (Some(t), Some(who)) if t == who => ta += 1,
            (Some(_), Some(_)) => mis += 1,
            (Some(_), None) => fr += 1,
            (None, Some(_)) => sa += 1,
            (None, None) => {}
        }
    }
    let counts = ProbeCounts::of(probes);
    let strangers_rejected = counts.strangers - sa;
    OpenSetRates {
        threshold,
        true_accept_rate: ratio(ta, counts.genuine),
        false_accept_rate: ratio(sa + mis, probes.len()),
        false_reject_rate: ratio(fr, counts.genuine),
        stranger_accept_rate: ratio(sa, counts.strangers),
        misidentification_rate: ratio(mis, counts.genuine),
        accuracy: ratio(ta + strangers_rejected, probes.len()),
        true_accepts: ta,
        false_accepts: sa + mis,
        false_rejects: fr,
        strangers_accepted: sa,
        misidentified: mis,
    }
}

/// Candidate thresholds for a probe set, ascending: each distinct best score, and just above
/// the highest (accept nobody).
fn probe_thresholds(probes: &[ProbeMatch]) -> Vec<f64> {
    let mut scores: Vec<f64> = probes.iter().filter_map(|p| p.best.map(|b| b.1)).collect();
    scores.sort_by(f64::total_cmp);
    scores.dedup();
    let mut out = Vec::with_capacity(scores.len() + 1);
    out.push(f64::NEG_INFINITY);
    for w in scores.windows(2) {
        out.push((w[0] + w[1]) / 2.0);
    }
    if let (Some(&lo), Some(&hi)) = (scores.first(), scores.last()) {
        out[0] = lo;
        out.push(next_up(hi));
    }
    out
}

/// The threshold with the highest open-set accuracy (median of the tying thresholds).
pub fn open_set_best(probes: &[ProbeMatch]) -> OpenSetRates {
    let rates: Vec<OpenSetRates> = probe_thresholds(probes)
        .into_iter()
        .map(|t| open_set_at(probes, t))
        .collect();
    // Compare counts, not rounded rates, so ties are exact.
    let right = |r: &OpenSetRates| {
        r.true_accepts + (probes.len() - r.true_accepts - r.false_rejects - r.false_accepts)
    };
    let best = rates.iter().map(right).max().unwrap_or(0);
    let tying: Vec<&OpenSetRates> = rates.iter().filter(|r| right(r) == best).collect();
    *tying[(tying.len() - 1) / 2]
}

/// The lowest threshold at which the open-set false-accept rate is at most `target`.
pub fn open_set_at_far(probes: &[ProbeMatch], target: f64) -> OpenSetRates {
    let candidates = probe_thresholds(probes);
    candidates
        .iter()
        .map(|&t| open_set_at(probes, t))
        .find(|r| r.false_accept_rate <= target)
        .unwrap_or_else(|| open_set_at(probes, f64::INFINITY))
}

/// How far the false-accept point moves with the photos: the edge threshold of
/// [`open_set_at_far`] recomputed on `resamples` bootstrap draws of the probes, drawn by
/// person (a person's probes stay together; strangers are one person each), gallery fixed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ResampledThreshold {
    pub false_accept_rate: f64,
    pub resamples: usize,
    /// Half the draws need a threshold above this one.
    pub median: f64,
    pub quantile: f64,
    /// At this threshold the false-accept rate stays within the bound in `quantile` of the
    /// draws: a threshold chosen from these photos that should hold for others.
    pub threshold: f64,
}

/// See [`ResampledThreshold`]. `people[i]` is the person probe `i` shows. Deterministic:
/// a fixed seed.
pub fn resampled_far_threshold(
    probes: &[ProbeMatch],
    people: &[usize],
    target: f64,
    resamples: usize,
    quantile: f64,
) -> Option<ResampledThreshold> {
    assert_eq!(probes.len(), people.len(), "one person per probe");
    if probes.is_empty() || resamples == 0 {
        return None;
    }
    // Dense group numbers, and each group's probe count.
    let mut ids: Vec<usize> = people.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let group = |p: usize| ids.binary_search(&p).expect("person listed");
    let mut group_size = vec![0usize; ids.len()];
    for &p in people {
        group_size[group(p)] += 1;
    }
    // Probes that would be false accepts if accepted, highest score first.
    let mut wrong: Vec<(f64, usize)> = probes
        .iter()
        .zip(people)
        .filter_map(|(m, &p)| {
            let (who, score) = m.best?;
            (m.truth != Some(who)).then_some((score, group(p)))
        })
        .collect();
    wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
    let lowest = probes
        .iter()
        .filter_map(|m| m.best.map(|b| b.1))
        .min_by(f64::total_cmp)
        .unwrap_or(f64::NEG_INFINITY);

    let mut rng = super::dataset::SplitMix64(0xB007_5742);
    let mut draws = vec![0usize; ids.len()];
    let mut thresholds: Vec<f64> = (0..resamples)
        .map(|_| {
            draws.iter_mut().for_each(|d| *d = 0);
            for _ in 0..ids.len() {
                draws[rng.below(ids.len())] += 1;
            }
            let n: usize = draws.iter().zip(&group_size).map(|(d, s)| d * s).sum();
            let allowed = (target * n as f64).floor() as usize;
            let mut accepted = 0;
            for &(score, g) in &wrong {
                accepted += draws[g];
                if accepted > allowed {
                    return next_up(score);
                }
            }
            lowest
        })
        .collect();
    thresholds.sort_by(f64::total_cmp);
    let at = |q: f64| thresholds[((q * resamples as f64).ceil() as usize).clamp(1, resamples) - 1];
    Some(ResampledThreshold {
        false_accept_rate: target,
        resamples,
        median: at(0.5),
        quantile,
        threshold: at(quantile),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_every_cut() {
        let pairs = [
            Scored::new(0.2, false),
            Scored::new(0.2, true),
            Scored::new(0.8, true),
        ];
        let s = Sorted::new(&pairs).splits();
        assert_eq!(s.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(s[1].0, 0.5);
    }

    fn probe(truth: Option<usize>, who: usize, score: f64) -> ProbeMatch {
        ProbeMatch {
            truth,
            best: Some((who, score)),
            runner_up: None,
        }
    }

    #[test]
    fn resampled_threshold_sits_above_the_false_accepts_the_bound_forbids() {
        // 1,000 probes: 990 right matches at 0.9, ten strangers matched wrongly at 0.5..0.95.
        let mut probes: Vec<ProbeMatch> = (0..990).map(|i| probe(Some(i), i, 0.9)).collect();
        let mut people: Vec<usize> = (0..990).collect();
        for k in 0..10 {
            probes.push(probe(None, 0, 0.5 + 0.05 * k as f64));
            people.push(1000 + k);
        }
        // FAR 1e-3 on 1,000 probes allows one false accept: on the full set the threshold
        // must reject the top two wrong scores... just above the second highest (0.9).
        let plain = open_set_at_far(&probes, 1e-3);
        assert_eq!(plain.false_accepts, 1);
        let r = resampled_far_threshold(&probes, &people, 1e-3, 500, 0.95).expect("probes");
        assert!(
            r.median > 0.85 && r.median <= next_up(0.95),
            "median {}",
            r.median
        );
        assert!(r.threshold >= r.median && r.threshold <= next_up(0.95));
        // The same draws every run.
        assert_eq!(
            Some(r),
            resampled_far_threshold(&probes, &people, 1e-3, 500, 0.95)
        );
        assert_eq!(resampled_far_threshold(&[], &[], 1e-3, 500, 0.95), None);
    }

    #[test]
    fn next_up_is_strictly_above() {
        for x in [-1.0, -0.0, 0.0, 0.3, 1.0] {
            assert!(next_up(x) > x);
        }
    }
}
