//! Would a margin rule help? Accept the best person only when they also beat the second-best
//! *other* person by a margin: measured on the attendance scenario, for each margin, as the true
//! accepts at the lowest threshold keeping the false-accept rate (wrong names / all probes)
//! within a bound, both picked on the same photos (in-sample; the server's rule is picked on
//! one half and measured on the other: [`super::margin_rule`]).

use super::embed::Embeddings;
use super::scenario::Split;
use crate::matching;
use serde::Serialize;

/// The margins compared (0: the rule in use).
pub const MARGINS: [f64; 7] = [0.0, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05];

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MarginRow {
    pub margin: f64,
    /// The lowest threshold with at most `false_accept_rate` wrong names per probe.
    pub threshold: f64,
    pub true_accept_rate: f64,
    pub false_accepts: usize,
}

/// One probe: who it is (`None`: a stranger), the best person, their score, the runner-up's.
struct Ranked {
    truth: Option<usize>,
    best: usize,
    first: f64,
    second: f64,
}

/// The best person for `probe` with their score, and the second-best other person's score
/// (`None` with one person); `None` with nobody comparable.
pub(crate) fn best_two(
    probe: &[f32],
    gallery: &[(usize, Vec<&[f32]>)],
) -> Option<(usize, f64, Option<f64>)> {
    let mut top: [(f64, usize); 2] = [(f64::NEG_INFINITY, usize::MAX); 2];
    for (person, refs) in gallery {
        let Some(s) = matching::best_of_references(probe, refs.iter().copied()) else {
            continue;
        };
        // Ties to the smaller person, as [`matching::best_match`].
        let beats = |(t, who): (f64, usize)| s > t || (s == t && *person < who);
        if beats(top[0]) {
            top = [(s, *person), top[0]];
        } else if beats(top[1]) {
            top[1] = (s, *person);
        }
    }
    (top[0].1 != usize::MAX).then(|| {
        let second = (top[1].1 != usize::MAX).then_some(top[1].0);
        (top[0].1, top[0].0, second)
    })
}

/// The best and second-best person for every probe with a face.
fn rank(split: &Split, embeddings: &Embeddings) -> Vec<Ranked> {
    let (gallery, _) = split.enrolled_references(embeddings);
    split
        .probes
        .iter()
        .filter_map(|&(photo, truth)| {
            let (best, first, second) = best_two(embeddings.embedding(photo)?, &gallery)?;
            Some(Ranked {
                truth,
                best,
                first,
                second: second.unwrap_or(f64::NEG_INFINITY),
            })
        })
        .collect()
}

/// For each of [`MARGINS`]: the most true accepts any threshold gives with at most
/// `far` × probes wrong names.
pub fn margin_rule(split: &Split, embeddings: &Embeddings, far: f64) -> Vec<MarginRow> {
    let ranked = rank(split, embeddings);
    let genuine = split.probes.iter().filter(|p| p.1.is_some()).count();
    let allowed = (far * split.probes.len() as f64).floor() as usize;
    MARGINS
        .iter()
        .map(|&margin| {
            let mut passing: Vec<&Ranked> = ranked
                .iter()
                .filter(|r| r.first - r.second >= margin)
                .collect();
            passing.sort_by(|a, b| b.first.total_cmp(&a.first));
            let (mut right, mut wrong) = (0usize, 0usize);
            let mut best = (f64::INFINITY, 0usize, 0usize);
            let mut i = 0;
            while i < passing.len() {
                // Probes with the same score are accepted together.
                let t = passing[i].first;
                while i < passing.len() && passing[i].first == t {
                    if passing[i].truth == Some(passing[i].best) {
                        right += 1;
                    } else {
                        wrong += 1;
                    }
                    i += 1;
                }
                if wrong > allowed {
                    break;
                }
                best = (t, right, wrong);
            }
            MarginRow {
                margin,
                threshold: best.0,
                true_accept_rate: if genuine == 0 {
                    0.0
                } else {
                    best.1 as f64 / genuine as f64
                },
                false_accepts: best.2,
            }
        })
        .collect()
}
