//! The margin rule, as measured by `eval` and tabulated for the server
//! ([`crate::operating_point::MarginRow`], written by `eval --write-calibration`): accept the
//! best person only when they also beat the second-best *other* person by a margin, with the
//! threshold and the margin picked for a gallery from the requested false-accept rate.
//!
//! [`crate::operating_point`] predicts a stranger's best score over R references from one
//! comparison's distribution, assuming the comparisons independent; it says nothing of the gap
//! to the runner-up. Here both are measured directly instead: `rollcall eval` draws galleries of
//! several sizes from the calibration half (people at even positions by name, as the impostor
//! tail; [`super::strangers`]), and records for every stranger probe its best score and its gap
//! (best − runner-up), and the same for every genuine probe whose best is the right person
//! ([`MarginCalibration`]).
//!
//! For a gallery of P people with r references each, [`MarginCalibration::pick`] takes the
//! smallest calibrated gallery at least as large in people and references (a larger gallery
//! only raises strangers' best scores), and for each margin of [`MARGINS`] the lowest threshold
//! at which at most FAR of its stranger probes pass both; of those pairs, the one under which
//! most genuine probes pass. docs/accuracy.md has the measurements on the other half.

use crate::operating_point::MarginRow;
use serde::{Deserialize, Serialize};

/// The margins considered (0: the best person alone decides).
pub const MARGINS: [f64; 11] = [
    0.0, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03,
];
/// Scores below this are not recorded: no threshold is ever set this low for these models, and
/// a rule that would need one is refused (nothing is known of the strangers below it).
pub const FLOOR: f64 = 0.92;
/// The threshold's grid (the impostor tail's bin width).
const STEP: f64 = crate::operating_point::BIN_WIDTH;

/// Stranger and genuine (best, gap) of galleries drawn at several sizes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MarginCalibration {
    pub model: String,
    /// Which photos the galleries were drawn from (identity-disjoint from eval's measurements).
    pub made_from: String,
    /// Probes whose best score lay below this were not recorded ([`FLOOR`] for real models).
    pub floor: f64,
    /// How a threshold is read from the strangers: `None`, where exactly the rate of them
    /// passes; else the bound that holds when the stranger people are drawn again.
    #[serde(default)]
    pub bound: Option<Bound>,
    pub galleries: Vec<SampledGalleries>,
}

/// A threshold that keeps the rate when the stranger *people* are drawn again, with
/// replacement: the `quantile` of the thresholds of `resamples` such draws (fixed seed). A few
/// people who resemble many others set the tail; a threshold read exactly at the calibration's
/// own rate is optimistic for other people, and more so when the best of several margins is
/// picked on the same strangers.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bound {
    pub resamples: usize,
    pub quantile: f64,
    pub seed: u64,
}

/// The bound `eval` calibrates the shipped margin rule with.
pub const BOUND: Bound = Bound {
    resamples: 200,
    quantile: 0.95,
    seed: 1516,
};

/// Galleries of one size, drawn several times.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SampledGalleries {
    pub people: usize,
    /// References per person.
    pub references: usize,
    pub draws: usize,
    /// Every stranger probe, over all draws (those below the floor included).
    pub stranger_probes: u64,
    /// Every genuine probe, over all draws.
    pub genuine_probes: u64,
    /// (best, best − runner-up) of each stranger probe whose best reached the floor, rounded
    /// to 1e-5.
    pub strangers: Vec<(f64, f64)>,
    /// The same of each genuine probe whose best was the right person.
    pub genuine: Vec<(f64, f64)>,
    /// The person of each entry of `strangers` (their dataset index), to draw people again.
    #[serde(default)]
    pub stranger_people: Vec<u32>,
    /// Every stranger person's probes over all draws (those below the floor included).
    #[serde(default)]
    pub stranger_probes_by_person: Vec<(u32, u64)>,
}

/// The (threshold, margin) picked for a gallery, with what the calibration predicts there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarginPoint {
    pub threshold: f64,
    pub margin: f64,
    /// Strangers passing both, over the calibration's stranger probes.
    pub predicted_stranger_rate: f64,
    /// Genuine probes passing both as the right person, over the calibration's genuine probes.
    pub predicted_true_accept_rate: f64,
    /// The calibrated gallery it came from (people, references each).
    pub calibrated: (usize, usize),
}

/// The stranger people of some galleries drawn again for a [`Bound`]: per draw, how many times
/// each person came (indexed as `stranger_probes_by_person`) and the probes they bring.
struct Redraws {
    slot: std::collections::HashMap<u32, usize>,
    weights: Vec<Vec<u64>>,
    probes: Vec<u64>,
    quantile: f64,
}

impl SampledGalleries {
    /// The lowest threshold on the grid at which at most `far` of the stranger probes have a
    /// best score at or above it and a gap of at least `margin`; `None` when that would lie at
    /// or below `floor` (the strangers there are not recorded).
    pub fn threshold_for(&self, margin: f64, far: f64, floor: f64) -> Option<f64> {
        let allowed = (far * self.stranger_probes as f64).floor() as usize;
        let mut passing: Vec<f64> = self
            .strangers
            .iter()
            .filter(|(_, gap)| *gap >= margin)
            .map(|(best, _)| *best)
            .collect();
        passing.sort_by(|a, b| b.total_cmp(a));
        // The (allowed + 1)-th best must fall below the threshold: the next grid edge above it.
        let first_refused = *passing.get(allowed)?;
        let t = grid_above(first_refused);
        (t > floor).then_some(t)
    }

    /// The [`Bound`] on [`SampledGalleries::threshold_for`]: the stranger people are drawn
    /// again `resamples` times (as many as there are, with replacement; each brings all their
    /// probes), the threshold keeping `far` of each draw's probes is found, and the `quantile`
    /// of those is the answer. Without the people recorded, the plain threshold.
    pub fn threshold_bound(&self, margin: f64, far: f64, floor: f64, bound: Bound) -> Option<f64> {
        match self.redraws(bound) {
            Some(redraws) => self.threshold_under(&redraws, margin, far, floor),
            None => self.threshold_for(margin, far, floor),
        }
    }

    /// The draws of a [`Bound`], made once for every margin and rate asked of these galleries
    /// (the same draws for all: their thresholds differ by the margin and rate alone); `None`
    /// without the stranger people recorded, or without resamples.
    fn redraws(&self, bound: Bound) -> Option<Redraws> {
        if self.stranger_people.len() != self.strangers.len()
            || self.stranger_probes_by_person.is_empty()
            || bound.resamples == 0
        {
            return None;
        }
        let slot = self
            .stranger_probes_by_person
            .iter()
            .enumerate()
            .map(|(k, &(person, _))| (person, k))
            .collect();
        let counts: Vec<u64> = self.stranger_probes_by_person.iter().map(|p| p.1).collect();
        let mut rng = super::dataset::SplitMix64(bound.seed);
        let mut weights = Vec::with_capacity(bound.resamples);
        let mut probes = Vec::with_capacity(bound.resamples);
        for _ in 0..bound.resamples {
            let mut weight = vec![0u64; counts.len()];
            for _ in 0..counts.len() {
                weight[rng.below(counts.len())] += 1;
            }
            probes.push(counts.iter().zip(&weight).map(|(c, w)| c * w).sum());
            weights.push(weight);
        }
        Some(Redraws {
            slot,
            weights,
            probes,
            quantile: bound.quantile,
        })
    }

    /// [`SampledGalleries::threshold_bound`] over draws already made.
    fn threshold_under(&self, redraws: &Redraws, margin: f64, far: f64, floor: f64) -> Option<f64> {
        let mut passing: Vec<(f64, usize)> = self
            .strangers
            .iter()
            .zip(&self.stranger_people)
            .filter(|((_, gap), _)| *gap >= margin)
            .filter_map(|(&(best, _), person)| Some((best, *redraws.slot.get(person)?)))
            .collect();
        passing.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut thresholds: Vec<f64> = redraws
            .weights
            .iter()
            .zip(&redraws.probes)
            .map(|(weight, &probes)| {
                let allowed = (far * probes as f64).floor() as u64;
                let mut passed = 0u64;
                for &(best, k) in &passing {
                    passed += weight[k];
                    if passed > allowed {
                        return grid_above(best);
                    }
                }
                // Every stranger of the draw within the rate: the threshold may go to the floor.
                f64::NEG_INFINITY
            })
            .collect();
        thresholds.sort_by(f64::total_cmp);
        let n = thresholds.len();
        let k = ((redraws.quantile * n as f64).ceil() as usize).clamp(1, n);
        let t = thresholds[k - 1];
        (t > floor).then_some(t)
    }

    fn share(points: &[(f64, f64)], of: u64, threshold: f64, margin: f64) -> f64 {
        if of == 0 {
            return 0.0;
        }
        let n = points
            .iter()
            .filter(|(best, gap)| *best >= threshold && *gap >= margin)
            .count();
        n as f64 / of as f64
    }

    /// The point of `margin` at `far`, if it can be set above `floor`: its threshold read
    /// exactly (`redraws` `None`), or under the bound those draws were made for.
    fn point_under(
        &self,
        redraws: Option<&Redraws>,
        margin: f64,
        far: f64,
        floor: f64,
    ) -> Option<MarginPoint> {
        let threshold = match redraws {
            Some(r) => self.threshold_under(r, margin, far, floor)?,
            None => self.threshold_for(margin, far, floor)?,
        };
        Some(MarginPoint {
            threshold,
            margin,
            predicted_stranger_rate: Self::share(
                &self.strangers,
                self.stranger_probes,
                threshold,
                margin,
            ),
            predicted_true_accept_rate: Self::share(
                &self.genuine,
                self.genuine_probes,
                threshold,
                margin,
            ),
            calibrated: (self.people, self.references),
        })
    }
}

/// The smallest edge of the threshold grid strictly above `score`.
fn grid_above(score: f64) -> f64 {
    // The nearest edge, moved up one when it is not above the score (an edge in binary is
    // a hair off its decimal: compared with a tolerance).
    let mut k = (score / STEP).round();
    if k * STEP <= score + 1e-9 {
        k += 1.0;
    }
    ((k * STEP) * 1e6).round() / 1e6
}

impl MarginCalibration {
    /// The (threshold, margin) for a gallery of `people` holding `references` in all: of the
    /// margins of [`MARGINS`] whose threshold keeps the strangers within `far`, the one passing
    /// most genuine probes (ties: the smaller margin). `None` when no calibrated gallery is
    /// large enough (or none of those has a threshold above the floor at `far`).
    pub fn pick(&self, people: usize, references: usize, far: f64) -> Option<MarginPoint> {
        self.best_of(people, references, far, &MARGINS)
    }

    /// The threshold with no margin, from the same sampled galleries: the strangers' best over
    /// a whole gallery measured, not predicted from one comparison.
    pub fn without_margin(
        &self,
        people: usize,
        references: usize,
        far: f64,
    ) -> Option<MarginPoint> {
        self.best_of(people, references, far, &[0.0])
    }

    /// On one of its galleries, under one set of draws: the point with no margin, and
    /// [`MarginCalibration::pick`]'s (`None` when either cannot be set above the floor).
    pub fn plain_and_picked(
        &self,
        galleries: &SampledGalleries,
        far: f64,
    ) -> Option<(MarginPoint, MarginPoint)> {
        let redraws = self.redraws_of(galleries);
        let plain = galleries.point_under(redraws.as_ref(), 0.0, far, self.floor)?;
        let picked = self.best_in(galleries, far, &MARGINS, redraws.as_ref())?;
        Some((plain, picked))
    }

    fn best_of(
        &self,
        people: usize,
        references: usize,
        far: f64,
        margins: &[f64],
    ) -> Option<MarginPoint> {
        // Read from the rows as the server reads the shipped table, so that eval measures
        // the server's choice of calibrated gallery.
        let rows = self.rows(&[far], margins);
        let row = crate::operating_point::margin_row(&rows, people, references, far)?;
        Some(MarginPoint {
            threshold: row.threshold,
            margin: row.margin,
            predicted_stranger_rate: row.stranger_rate,
            predicted_true_accept_rate: row.true_accept_rate,
            calibrated: (row.people, row.references),
        })
    }

    /// The margin rule as the server takes it ([`crate::operating_point::Calibration`]): for
    /// each rate and calibrated gallery, the pick of [`MARGINS`]. A gallery with no threshold
    /// above the floor at a rate has no row there (a site that size reads the next larger).
    pub fn table(&self, rates: &[f64]) -> Vec<MarginRow> {
        self.rows(rates, &MARGINS)
    }

    fn rows(&self, rates: &[f64], margins: &[f64]) -> Vec<MarginRow> {
        let redraws: Vec<Option<Redraws>> =
            self.galleries.iter().map(|g| self.redraws_of(g)).collect();
        let mut rows = Vec::new();
        for &far in rates {
            for (galleries, redraws) in self.galleries.iter().zip(&redraws) {
                if let Some(p) = self.best_in(galleries, far, margins, redraws.as_ref()) {
                    rows.push(MarginRow {
                        people: galleries.people,
                        references: galleries.references,
                        false_accept_rate: far,
                        threshold: p.threshold,
                        margin: p.margin,
                        stranger_rate: p.predicted_stranger_rate,
                        true_accept_rate: p.predicted_true_accept_rate,
                    });
                }
            }
        }
        rows
    }

    fn best_in(
        &self,
        galleries: &SampledGalleries,
        far: f64,
        margins: &[f64],
        redraws: Option<&Redraws>,
    ) -> Option<MarginPoint> {
        let mut best: Option<MarginPoint> = None;
        for &m in margins {
            let Some(point) = galleries.point_under(redraws, m, far, self.floor) else {
                continue;
            };
            if best.is_none_or(|b| point.predicted_true_accept_rate > b.predicted_true_accept_rate)
            {
                best = Some(point);
            }
        }
        best
    }

    /// The draws of this calibration's bound for `galleries` (`None`: thresholds read exactly).
    fn redraws_of(&self, galleries: &SampledGalleries) -> Option<Redraws> {
        self.bound.and_then(|b| galleries.redraws(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn galleries(strangers: Vec<(f64, f64)>, genuine: Vec<(f64, f64)>) -> SampledGalleries {
        SampledGalleries {
            people: 100,
            references: 1,
            draws: 1,
            stranger_probes: 1000,
            genuine_probes: 10,
            strangers,
            genuine,
            stranger_people: Vec::new(),
            stranger_probes_by_person: Vec::new(),
        }
    }

    #[test]
    fn the_threshold_lets_through_at_most_the_rate_of_strangers_passing_the_margin() {
        // 1,000 strangers, FAR 0.002: two may pass.
        let g = galleries(
            vec![
                (0.97, 0.001),
                (0.96, 0.02),
                (0.955, 0.03),
                (0.95, 0.001),
                (0.94, 0.02),
            ],
            vec![],
        );
        // No margin: the third best (0.955) must be refused.
        assert_eq!(g.threshold_for(0.0, 0.002, FLOOR), Some(0.9555));
        // Margin 0.01: 0.96, 0.955 pass, 0.94 is the first refused.
        assert_eq!(g.threshold_for(0.01, 0.002, FLOOR), Some(0.9405));
        // Only two strangers have a gap of 0.025: the threshold would fall to the floor.
        assert_eq!(g.threshold_for(0.025, 0.002, FLOOR), None);
    }

    #[test]
    fn the_pick_passes_most_genuine_probes_at_the_requested_rate() {
        let g = galleries(
            vec![
                (0.97, 0.001),
                (0.96, 0.0),
                (0.955, 0.03),
                (0.95, 0.001),
                (0.94, 0.02),
            ],
            // Clear winners of the genuine probes: a margin of 0.01 costs none of them.
            vec![(0.95, 0.02), (0.945, 0.015), (0.96, 0.02), (0.93, 0.001)],
        );
        let c = MarginCalibration {
            model: "m".into(),
            made_from: "test".into(),
            floor: FLOOR,
            bound: None,
            galleries: vec![g],
        };
        let none = c.without_margin(50, 50, 0.001).unwrap();
        assert_eq!((none.threshold, none.margin), (0.9605, 0.0));
        assert_eq!(none.predicted_true_accept_rate, 0.0);
        let picked = c.pick(50, 50, 0.001).unwrap();
        // From 0.0025 on, the strangers with a gap (0.955, 0.94) leave 0.9405: three genuine
        // pass, and no larger margin passes more.
        assert_eq!((picked.threshold, picked.margin), (0.9405, 0.0025));
        assert!((picked.predicted_true_accept_rate - 0.3).abs() < 1e-12);
        assert!(picked.predicted_stranger_rate <= 0.001);
        // Past the largest calibrated gallery: nothing.
        assert_eq!(c.pick(101, 101, 0.001), None);
    }

    #[test]
    fn the_bound_holds_when_the_stranger_people_are_drawn_again() {
        // 1,000 stranger probes of 100 people, FAR 0.002: two may pass. One person (7) brings
        // the three best scores; everyone else scores low.
        let mut g = galleries(
            vec![(0.97, 0.03), (0.965, 0.03), (0.96, 0.03), (0.93, 0.03)],
            vec![],
        );
        g.stranger_people = vec![7, 7, 7, 8];
        g.stranger_probes_by_person = (0..100).map(|p| (p, 10)).collect();
        let exact = g.threshold_for(0.0, 0.002, FLOOR);
        assert_eq!(exact, Some(0.9605), "the third best is refused");
        // Drawn again, person 7 often comes twice (six high scores) and the threshold must
        // refuse all of theirs; it is never lower than without them.
        let bound = g.threshold_bound(0.0, 0.002, FLOOR, BOUND).unwrap();
        assert!(bound >= 0.9605, "{bound}");
        assert_eq!(
            bound, 0.9705,
            "over 95 % of the draws need all of person 7 refused"
        );
        // The same draws every time.
        assert_eq!(g.threshold_bound(0.0, 0.002, FLOOR, BOUND), Some(bound));
        // Without the people recorded: the exact threshold.
        g.stranger_people.clear();
        assert_eq!(g.threshold_bound(0.0, 0.002, FLOOR, BOUND), exact);
    }
}
