//! What a site will see with the threshold derived for its gallery ([`operating_point`]), and
//! the impostor calibration that derivation starts from.
//!
//! The photo set is cut in two by identity: people at even positions by name make the
//! calibration ([`calibration_pairs`]), people at odd positions the sites ([`sites`]), so that no
//! figure is measured on the photos its threshold was derived from.

use super::dataset::{Dataset, PhotoId, SplitMix64};
use super::embed::Embeddings;
use super::margin::best_two;
use super::margin_rule::{self, MarginCalibration};
use crate::matching;
use crate::operating_point::{OperatingPoint, Rule, ScoreHistogram};
use serde::Serialize;

/// Gallery sizes of the site table (`None`: every eligible person).
pub const SITE_SIZES: [Option<usize>; 4] = [Some(50), Some(100), Some(300), None];
/// Reference photos per person in the site table.
pub const SITE_REFERENCES: [usize; 3] = [1, 2, 3];
/// The seed of the draw of each site's people.
pub const SITE_SEED: u64 = 15;

/// Which half of the people a figure uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// Even positions by name: the calibration.
    Calibration,
    /// Odd positions: the measurements.
    Measurement,
}

impl Half {
    fn holds(self, person: usize) -> bool {
        person.is_multiple_of(2) == (self == Half::Calibration)
    }
}

/// The photos with a face of one half, by person.
pub(super) fn faces_of(
    dataset: &Dataset,
    embeddings: &Embeddings,
    half: Half,
) -> Vec<(usize, Vec<PhotoId>)> {
    (0..dataset.people.len())
        .filter(|&p| half.holds(p))
        .map(|p| {
            let ids = (0..dataset.people[p].photos.len())
                .map(|i| (p, i))
                .filter(|&id| embeddings.embedding(id).is_some())
                .collect();
            (p, ids)
        })
        .collect()
}

/// Every pair of photos of two different people of the calibration half, scored: the model's
/// per-comparison impostor distribution. Also returns (people, photos) used.
pub fn calibration_pairs(
    dataset: &Dataset,
    embeddings: &Embeddings,
) -> (ScoreHistogram, usize, usize) {
    let people = faces_of(dataset, embeddings, Half::Calibration);
    let photos: Vec<(usize, &[f32])> = people
        .iter()
        .flat_map(|(p, ids)| {
            ids.iter()
                .filter_map(move |&id| Some((*p, embeddings.embedding(id)?)))
        })
        .collect();
    let mut histogram = ScoreHistogram::default();
    for (i, (pa, a)) in photos.iter().enumerate() {
        for (pb, b) in &photos[i + 1..] {
            if pa != pb {
                histogram.add(matching::cosine(a, b));
            }
        }
    }
    let with_photos = people.iter().filter(|(_, ids)| !ids.is_empty()).count();
    (histogram, with_photos, photos.len())
}

/// The threshold `rule` derives for a gallery of (person, reference vectors).
pub fn derive_for(rule: &Rule, gallery: &[(usize, Vec<&[f32]>)]) -> OperatingPoint {
    let mut pairs = ScoreHistogram::default();
    for (i, (_, a)) in gallery.iter().enumerate() {
        for (_, b) in &gallery[i + 1..] {
            for x in a {
                for y in b {
                    pairs.add(matching::cosine(x, y));
                }
            }
        }
    }
    let references = gallery.iter().map(|(_, r)| r.len()).sum();
    rule.derive(&pairs, gallery.len(), references)
}

/// One row of the site table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SiteRow {
    pub enrolled: usize,
    pub references: usize,
    pub requested_false_accept_rate: f64,
    /// The server's rule for this gallery: its threshold and margin.
    pub threshold: f64,
    pub margin: f64,
    pub threshold_source: &'static str,
    pub genuine_probes: usize,
    pub stranger_probes: usize,
    /// Strangers accepted as anyone / strangers: to compare with the requested rate.
    pub stranger_accept_rate: f64,
    pub strangers_accepted: usize,
    /// Different people among the strangers accepted (a stranger's photos come together).
    pub stranger_people_accepted: usize,
    /// Genuine probes accepted as someone else / genuine probes.
    pub misidentification_rate: f64,
    /// Genuine probes accepted as themselves / genuine probes.
    pub true_accept_rate: f64,
    /// The same site at the threshold measured on sampled galleries of the calibration half
    /// (no margin); `None` without a margin calibration large enough for the site.
    pub sampled: Option<RuleRow>,
    /// The same site under the margin rule picked for it from the requested rate.
    pub margin_rule: Option<RuleRow>,
}

/// A site under a (threshold, margin) of [`super::margin_rule`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RuleRow {
    pub threshold: f64,
    pub margin: f64,
    /// (people, references each) of the calibrated galleries it was read from.
    pub calibrated_people: usize,
    pub calibrated_references: usize,
    /// What the calibration half predicts for strangers and genuine probes.
    pub predicted_stranger_rate: f64,
    pub predicted_true_accept_rate: f64,
    pub stranger_accept_rate: f64,
    pub strangers_accepted: usize,
    pub stranger_people_accepted: usize,
    pub misidentification_rate: f64,
    pub true_accept_rate: f64,
}

/// The attendance scenario of the measurement half at each size of [`SITE_SIZES`] and
/// [`SITE_REFERENCES`]: people with more photos than references are drawn (fixed seed) and
/// enrolled with their first photos, their others probe; every photo of a measurement-half
/// person not enrolled is a stranger. Each site at the threshold `rule` derives for it, and
/// with `margin`, at the points [`MarginCalibration`] picks for it.
pub fn sites(
    dataset: &Dataset,
    embeddings: &Embeddings,
    rule: &Rule,
    margin: Option<&MarginCalibration>,
) -> Vec<SiteRow> {
    let people = faces_of(dataset, embeddings, Half::Measurement);
    let mut rows = Vec::new();
    for &refs in &SITE_REFERENCES {
        let mut eligible: Vec<usize> = (0..people.len())
            .filter(|&k| people[k].1.len() > refs)
            .collect();
        shuffle(&mut eligible, SITE_SEED);
        for size in SITE_SIZES {
            let n = size.unwrap_or(eligible.len());
            if n > eligible.len() {
                continue;
            }
            let mut enrolled = vec![false; people.len()];
            for &k in &eligible[..n] {
                enrolled[k] = true;
            }
            rows.push(site(&people, &enrolled, refs, embeddings, rule, margin));
        }
    }
    rows
}

/// One probe of a site: who it is (`None`: a stranger, else the person), the best person, their
/// score, the runner-up's.
struct SiteProbe {
    truth: Option<usize>,
    stranger_person: usize,
    best: usize,
    score: f64,
    runner_up: Option<f64>,
}

/// The counts of one (threshold, margin) over a site's probes.
struct Outcome {
    right: usize,
    wrong: usize,
    strangers_accepted: usize,
    stranger_people: usize,
}

fn outcome(probes: &[SiteProbe], threshold: f64, margin: f64) -> Outcome {
    let (mut right, mut wrong, mut strangers_accepted) = (0, 0, 0);
    let mut stranger_people = std::collections::BTreeSet::new();
    for p in probes {
        if !crate::matching::accepts_with_margin(p.score, p.runner_up, threshold, margin) {
            continue;
        }
        match p.truth {
            Some(who) if who == p.best => right += 1,
            Some(_) => wrong += 1,
            None => {
                strangers_accepted += 1;
                stranger_people.insert(p.stranger_person);
            }
        }
    }
    Outcome {
        right,
        wrong,
        strangers_accepted,
        stranger_people: stranger_people.len(),
    }
}

fn rate(k: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

fn site(
    people: &[(usize, Vec<PhotoId>)],
    enrolled: &[bool],
    refs: usize,
    embeddings: &Embeddings,
    rule: &Rule,
    margin: Option<&MarginCalibration>,
) -> SiteRow {
    let vector = |id: PhotoId| embeddings.embedding(id).unwrap_or(&[]);
    let gallery: Vec<(usize, Vec<&[f32]>)> = people
        .iter()
        .zip(enrolled)
        .filter(|(_, e)| **e)
        .map(|((p, ids), _)| (*p, ids[..refs].iter().map(|&id| vector(id)).collect()))
        .collect();
    let point = derive_for(rule, &gallery);
    let threshold = f64::from(point.threshold.value());
    let (mut genuine, mut strangers) = (0usize, 0usize);
    let mut probes = Vec::new();
    for ((person, ids), &is_enrolled) in people.iter().zip(enrolled) {
        let own = if is_enrolled { &ids[refs..] } else { &ids[..] };
        for &id in own {
            if is_enrolled {
                genuine += 1;
            } else {
                strangers += 1;
            }
            if let Some((best, score, runner_up)) = best_two(vector(id), &gallery) {
                probes.push(SiteProbe {
                    truth: is_enrolled.then_some(*person),
                    stranger_person: *person,
                    best,
                    score,
                    runner_up,
                });
            }
        }
    }
    let in_force = outcome(&probes, threshold, point.margin);
    let references: usize = gallery.iter().map(|(_, r)| r.len()).sum();
    let far = point.false_accept_rate;
    let row = |picked: Option<margin_rule::MarginPoint>| {
        picked.map(|p| {
            let o = outcome(&probes, p.threshold, p.margin);
            RuleRow {
                threshold: p.threshold,
                margin: p.margin,
                calibrated_people: p.calibrated.0,
                calibrated_references: p.calibrated.1,
                predicted_stranger_rate: p.predicted_stranger_rate,
                predicted_true_accept_rate: p.predicted_true_accept_rate,
                stranger_accept_rate: rate(o.strangers_accepted, strangers),
                strangers_accepted: o.strangers_accepted,
                stranger_people_accepted: o.stranger_people,
                misidentification_rate: rate(o.wrong, genuine),
                true_accept_rate: rate(o.right, genuine),
            }
        })
    };
    SiteRow {
        enrolled: gallery.len(),
        references: refs,
        requested_false_accept_rate: far,
        threshold: (threshold * 1e6).round() / 1e6,
        margin: point.margin,
        threshold_source: point.source.as_str(),
        genuine_probes: genuine,
        stranger_probes: strangers,
        stranger_accept_rate: rate(in_force.strangers_accepted, strangers),
        strangers_accepted: in_force.strangers_accepted,
        stranger_people_accepted: in_force.stranger_people,
        misidentification_rate: rate(in_force.wrong, genuine),
        true_accept_rate: rate(in_force.right, genuine),
        sampled: row(margin.and_then(|c| c.without_margin(gallery.len(), references, far))),
        margin_rule: row(margin.and_then(|c| c.pick(gallery.len(), references, far))),
    }
}

/// Fisher–Yates with the fixed-seed generator.
pub(super) fn shuffle(items: &mut [usize], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}
