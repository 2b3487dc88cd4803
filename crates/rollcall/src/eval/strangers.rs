//! Galleries of several sizes drawn from one half of the people, each probed by its members'
//! other photos and by every photo of the half's people not drawn: on the calibration half
//! (people at even positions by name, as the impostor tail) the margin rule's calibration
//! ([`super::margin_rule`]); on the measurement half, the same galleries to measure the rule on
//! ([`held_out`]), many draws rather than one site per size.

use super::dataset::{Dataset, PhotoId};
use super::embed::Embeddings;
use super::margin::best_two;
use super::margin_rule::{Bound, MarginCalibration, SampledGalleries};
pub use super::sites::Half;
use super::sites::{faces_of, shuffle};
use serde::Serialize;

/// Gallery sizes (people) drawn.
pub const SIZES: [usize; 8] = [10, 25, 50, 100, 200, 300, 400, 800];
/// References per person drawn.
pub const REFERENCES: [usize; 3] = [1, 2, 3];
/// Draws of each size (each with its own people, so its own strangers).
pub const DRAWS: usize = 4;
/// The seed of the first draw.
pub const SEED: u64 = 1515;

/// Draw the galleries from `half` and record the (best, gap) of their probes whose best reaches
/// `floor` ([`super::margin_rule::FLOOR`] for real models).
pub fn margin_calibration(
    dataset: &Dataset,
    embeddings: &Embeddings,
    half: Half,
    model: &str,
    floor: f64,
    bound: Option<Bound>,
) -> MarginCalibration {
    let people = faces_of(dataset, embeddings, half);
    let mut galleries = Vec::new();
    for &refs in &REFERENCES {
        let eligible: Vec<usize> = (0..people.len())
            .filter(|&k| people[k].1.len() >= refs)
            .collect();
        for &size in &SIZES {
            // A quarter of the half at least stays out of the gallery, as strangers.
            if size > eligible.len() || 4 * size > 3 * people.len() {
                continue;
            }
            let mut sampled = SampledGalleries {
                people: size,
                references: refs,
                draws: DRAWS,
                stranger_probes: 0,
                genuine_probes: 0,
                strangers: Vec::new(),
                genuine: Vec::new(),
                stranger_people: Vec::new(),
                stranger_probes_by_person: Vec::new(),
            };
            let mut by_person = std::collections::BTreeMap::new();
            for draw in 0..DRAWS {
                let mut order = eligible.clone();
                let seed = SEED + (draw as u64) + 100 * (size as u64) + 100_000 * (refs as u64);
                shuffle(&mut order, seed);
                let mut enrolled = vec![false; people.len()];
                for &k in &order[..size] {
                    enrolled[k] = true;
                }
                probe(
                    &people,
                    &enrolled,
                    refs,
                    embeddings,
                    floor,
                    &mut sampled,
                    &mut by_person,
                );
            }
            sampled.stranger_probes_by_person = by_person.into_iter().collect();
            galleries.push(sampled);
        }
    }
    let photos: usize = people.iter().map(|(_, ids)| ids.len()).sum();
    MarginCalibration {
        model: model.to_owned(),
        made_from: format!(
            "galleries drawn {DRAWS} times at each size from the {} people ({photos} photos) at \
             {} positions by name of {} people",
            people.iter().filter(|(_, ids)| !ids.is_empty()).count(),
            match half {
                Half::Calibration => "even",
                Half::Measurement => "odd",
            },
            dataset.people.len()
        ),
        floor,
        bound,
        galleries,
    }
}

fn probe(
    people: &[(usize, Vec<PhotoId>)],
    enrolled: &[bool],
    refs: usize,
    embeddings: &Embeddings,
    floor: f64,
    into: &mut SampledGalleries,
    by_person: &mut std::collections::BTreeMap<u32, u64>,
) {
    let vector = |id: PhotoId| embeddings.embedding(id).unwrap_or(&[]);
    let gallery: Vec<(usize, Vec<&[f32]>)> = people
        .iter()
        .zip(enrolled)
        .filter(|(_, e)| **e)
        .map(|((p, ids), _)| (*p, ids[..refs].iter().map(|&id| vector(id)).collect()))
        .collect();
    let round = |x: f64| (x * 1e5).round() / 1e5;
    for ((person, ids), &is_enrolled) in people.iter().zip(enrolled) {
        let probes = if is_enrolled { &ids[refs..] } else { &ids[..] };
        for &id in probes {
            let Some((best, score, second)) = best_two(vector(id), &gallery) else {
                continue;
            };
            let gap = second.map_or(1.0, |s| score - s);
            if is_enrolled {
                into.genuine_probes += 1;
                if best == *person && score >= floor {
                    into.genuine.push((round(score), round(gap)));
                }
            } else {
                into.stranger_probes += 1;
                *by_person.entry(*person as u32).or_insert(0) += 1;
                if score >= floor {
                    into.strangers.push((round(score), round(gap)));
                    into.stranger_people.push(*person as u32);
                }
            }
        }
    }
}

/// One gallery size of the measurement half at the points the calibration half gives for it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HeldOutRow {
    pub people: usize,
    pub references: usize,
    pub draws: usize,
    pub stranger_probes: u64,
    pub genuine_probes: u64,
    /// The false-accept rate the points were read for.
    pub requested_false_accept_rate: f64,
    /// The threshold of the calibration half's galleries of this size, no margin.
    pub threshold: f64,
    pub stranger_accept_rate: f64,
    pub true_accept_rate: f64,
    /// The (threshold, margin) picked on the calibration half.
    pub margin_threshold: f64,
    pub margin: f64,
    pub margin_stranger_accept_rate: f64,
    pub margin_true_accept_rate: f64,
    /// Without a margin, at the lowest threshold letting in no more of these strangers than the
    /// margin rule did: what the margin adds at the same held-out stranger rate.
    pub same_rate_threshold: Option<f64>,
    pub same_rate_true_accept_rate: Option<f64>,
}

/// Each size of the measurement half's galleries at the points of the calibration half's
/// galleries of the same size and references, for the false-accept rate `far`.
pub fn held_out(
    calibration: &MarginCalibration,
    measurement: &MarginCalibration,
    far: f64,
) -> Vec<HeldOutRow> {
    let share = |points: &[(f64, f64)], of: u64, t: f64, m: f64| {
        let n = points.iter().filter(|(b, g)| *b >= t && *g >= m).count();
        if of == 0 {
            0.0
        } else {
            n as f64 / of as f64
        }
    };
    let mut rows = Vec::new();
    for odd in &measurement.galleries {
        let Some(even) = calibration
            .galleries
            .iter()
            .find(|g| (g.people, g.references) == (odd.people, odd.references))
        else {
            continue;
        };
        let Some((plain, picked)) = calibration.plain_and_picked(even, far) else {
            continue;
        };
        let let_in = odd
            .strangers
            .iter()
            .filter(|(b, g)| *b >= picked.threshold && *g >= picked.margin)
            .count();
        // The lowest plain threshold with at most `let_in` of these strangers above it.
        let same = odd.threshold_for(
            0.0,
            (let_in as f64 + 0.5) / odd.stranger_probes.max(1) as f64,
            measurement.floor,
        );
        rows.push(HeldOutRow {
            people: odd.people,
            references: odd.references,
            draws: odd.draws,
            stranger_probes: odd.stranger_probes,
            genuine_probes: odd.genuine_probes,
            requested_false_accept_rate: far,
            threshold: plain.threshold,
            stranger_accept_rate: share(&odd.strangers, odd.stranger_probes, plain.threshold, 0.0),
            true_accept_rate: share(&odd.genuine, odd.genuine_probes, plain.threshold, 0.0),
            margin_threshold: picked.threshold,
            margin: picked.margin,
            margin_stranger_accept_rate: share(
                &odd.strangers,
                odd.stranger_probes,
                picked.threshold,
                picked.margin,
            ),
            margin_true_accept_rate: share(
                &odd.genuine,
                odd.genuine_probes,
                picked.threshold,
                picked.margin,
            ),
            same_rate_threshold: same,
            same_rate_true_accept_rate: same
                .map(|t| share(&odd.genuine, odd.genuine_probes, t, 0.0)),
        });
    }
    rows
}
