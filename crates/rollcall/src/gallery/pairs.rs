//! The members' impostor pairs for the threshold ([`crate::operating_point`]), at a cost that
//! stays bounded as the gallery grows. Every pair of references of two different members of the
//! *sample* is counted; the sample is everyone while the gallery holds at most `cap` people,
//! and past that the people whose id hashes (splitmix64) to `level` leading zero bits, i.e. a
//! deterministic 2^-level share, with `level` the smallest that keeps the sample's expected size
//! at or under `cap`. So the pairs counted stay under ~cap²/2 (2 million at the default), and
//! two galleries holding the same people hold the same sample whatever order they were built
//! in (servers over one database agree on their threshold).
//!
//! The histogram is of the sample's pairs, not scaled up to the population's: what the
//! threshold reads from it are shares of pairs above a score and how many pairs back them (a
//! measurement's precision), and a random subset of people has the population's shares.
//!
//! A member's arrival counts its references against the sample's others; its departure takes
//! out exactly those pairs again (the same vectors score the same, bit for bit). When the
//! gallery's size crosses a power-of-two multiple of `cap` the level changes and the sample is
//! counted afresh (at most cap²/2 comparisons, in parallel), which the halving or doubling of
//! the gallery since the last change pays for.

use crate::domain::Embedding;
use crate::matching;
use crate::operating_point::ScoreHistogram;
use rayon::prelude::*;
use std::collections::HashMap;

/// Members of the gallery counted in full below this many people.
pub const SAMPLE_PEOPLE: usize = 2048;

#[derive(Debug, Clone)]
pub struct PairSample {
    cap: usize,
    level: u32,
    members: HashMap<i64, Vec<Embedding>>,
    histogram: ScoreHistogram,
}

/// splitmix64's finaliser: ids in sequence spread over all 64 bits.
fn mix(id: i64) -> u64 {
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `id` is in the sample at `level` (the samples nest: a higher level keeps a subset).
pub fn in_sample(id: i64, level: u32) -> bool {
    level == 0 || mix(id).leading_zeros() >= level
}

/// Scores of `a`'s references against `b`'s of the same size, into (or out of) `histogram`.
fn count(histogram: &mut ScoreHistogram, a: &[Embedding], b: &[Embedding], add: bool) {
    for x in a {
        for y in b {
            if x.values().len() != y.values().len() {
                continue;
            }
            let score = matching::cosine(x.values(), y.values());
            if add {
                histogram.add(score);
            } else {
                histogram.remove(score);
            }
        }
    }
}

impl PairSample {
    pub fn new(cap: usize) -> Self {
        PairSample {
            cap: cap.max(1),
            level: 0,
            members: HashMap::new(),
            histogram: ScoreHistogram::default(),
        }
    }

    pub fn histogram(&self) -> &ScoreHistogram {
        &self.histogram
    }

    pub fn level(&self) -> u32 {
        self.level
    }

    /// People counted in full; the sample's expected size past that.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// People in the sample now.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// The level a gallery of `people` calls for.
    pub fn level_for(&self, people: usize) -> u32 {
        let mut level = 0;
        while people > self.cap << level {
            level += 1;
        }
        level
    }

    pub fn wants(&self, id: i64) -> bool {
        in_sample(id, self.level)
    }

    /// `refs` of `id` joined the gallery (a new person or more references of a known one).
    pub fn add(&mut self, id: i64, refs: &[Embedding]) {
        if !self.wants(id) {
            return;
        }
        for (other, theirs) in &self.members {
            if *other != id {
                count(&mut self.histogram, refs, theirs, true);
            }
        }
        self.members
            .entry(id)
            .or_default()
            .extend(refs.iter().cloned());
    }

    /// `id` left the gallery.
    pub fn remove(&mut self, id: i64) {
        let Some(refs) = self.members.remove(&id) else {
            return;
        };
        for theirs in self.members.values() {
            count(&mut self.histogram, &refs, theirs, false);
        }
    }

    /// Count the sample of `level` afresh: `members` are its people with their references.
    pub fn rebuild(&mut self, level: u32, members: HashMap<i64, Vec<Embedding>>) {
        let mut people: Vec<(&i64, &Vec<Embedding>)> = members.iter().collect();
        people.sort_unstable_by_key(|(id, _)| **id);
        let histogram = (0..people.len())
            .into_par_iter()
            .fold(ScoreHistogram::default, |mut h, i| {
                for (_, theirs) in &people[i + 1..] {
                    count(&mut h, people[i].1, theirs, true);
                }
                h
            })
            .reduce(ScoreHistogram::default, |mut a, b| {
                a.merge(&b);
                a
            });
        self.level = level;
        self.histogram = histogram;
        self.members = members;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_nest_and_keep_their_share() {
        let ids = 0..200_000i64;
        let at = |level| ids.clone().filter(|&id| in_sample(id, level)).count();
        assert_eq!(at(0), 200_000);
        for level in 1..6 {
            let expected = 200_000.0 / f64::from(1u32 << level);
            let n = at(level) as f64;
            assert!((n - expected).abs() < 4.0 * expected.sqrt(), "{level}: {n}");
            assert!(ids
                .clone()
                .all(|id| !in_sample(id, level) || in_sample(id, level - 1)));
        }
        let sample = PairSample::new(2048);
        assert_eq!(sample.level_for(2048), 0);
        assert_eq!(sample.level_for(2049), 1);
        assert_eq!(sample.level_for(1_000_000), 9);
    }
}
