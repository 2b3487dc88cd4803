//! The registered faces in memory: every person's reference embeddings of the active model,
//! loaded at start and kept current on register, add-face and delete. Matching is exact — the
//! answer of [`matching::best_match`], the rule `rollcall eval` measures, over every reference —
//! but computed at scale: references sit in per-size [`arena`]s as int8 codes scanned with SIMD
//! dot products across cores, and only the few slots whose exact score could be the best are
//! re-ranked with their exact f32 values (kept off the heap past [`exact::SPILL_BYTES`]).
//! docs/performance.md ("Gallery at scale") has the figures up to a million people.
//!
//! Beside them, the scores of pairs of references of two different members (impostor pairs of
//! this very population) in a histogram kept current as people come and go — every pair up to
//! [`pairs::SAMPLE_PEOPLE`] people, a deterministic sample of people past that ([`pairs`]) —
//! and the threshold in force that they and the model's calibration call for
//! ([`operating_point`]), recomputed under the same lock so a verification never sees a gallery
//! with another gallery's threshold.

mod arena;
mod exact;
mod kernel;
mod pairs;

use crate::domain::{Embedding, Similarity};
use crate::operating_point::{OperatingPoint, Rule, ScoreHistogram};
use crate::store::EmbeddingRow;
use arena::Arena;
use pairs::PairSample;
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// Where one reference lives: an arena (one per embedding size) and a slot in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotRef {
    arena: u32,
    slot: u32,
}

/// A person's references; most people have one, which then needs no allocation of its own.
#[derive(Debug, Clone)]
enum Slots {
    One(SlotRef),
    Many(Vec<SlotRef>),
}

impl Slots {
    fn as_slice(&self) -> &[SlotRef] {
        match self {
            Slots::One(s) => std::slice::from_ref(s),
            Slots::Many(v) => v,
        }
    }

    fn push(&mut self, s: SlotRef) {
        match self {
            Slots::Many(v) if v.is_empty() => *self = Slots::One(s),
            Slots::Many(v) => v.push(s),
            Slots::One(first) => *self = Slots::Many(vec![*first, s]),
        }
    }

    fn replace(&mut self, from: SlotRef, to: SlotRef) {
        match self {
            Slots::One(s) if *s == from => *s = to,
            Slots::Many(v) => {
                if let Some(s) = v.iter_mut().find(|s| **s == from) {
                    *s = to;
                }
            }
            Slots::One(_) => {}
        }
    }
}

#[derive(Debug, Clone)]
struct Person {
    /// First and last name in one allocation; the first is `first_len` bytes long.
    names: Box<str>,
    first_len: u32,
    slots: Slots,
}

impl Person {
    fn new(first: &str, last: &str) -> Person {
        Person {
            names: format!("{first}{last}").into_boxed_str(),
            first_len: first.len() as u32,
            slots: Slots::Many(Vec::new()),
        }
    }

    fn first_name(&self) -> &str {
        &self.names[..self.first_len as usize]
    }

    fn last_name(&self) -> &str {
        &self.names[self.first_len as usize..]
    }
}

/// The person most similar to a face, whether or not above the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub user_id: i64,
    pub first_name: String,
    pub last_name: String,
    /// The best similarity over the person's references.
    pub similarity: Similarity,
}

/// A face judged against the gallery ([`Gallery::judge`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judgement {
    /// The most similar person, accepted or not; `None` for an empty gallery.
    pub best: Option<Candidate>,
    /// The most similar *other* person's similarity, when the margin rule had to look (the
    /// best reached the threshold and the margin is not 0).
    pub runner_up: Option<Similarity>,
    /// `best` is accepted: at or above the threshold, and ahead of the runner-up by the margin.
    pub matched: bool,
}

/// What loading found besides the usable embeddings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub people: usize,
    pub embeddings: usize,
    /// People with at least one embedding of another model (not matched until `reindex`).
    pub people_other_model: usize,
    pub embeddings_other_model: usize,
    /// Rows whose bytes are not a valid embedding.
    pub unreadable: usize,
}

/// How the gallery holds its references (for `rollcall bench --gallery` and the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of codes and per-reference arrays in memory (not the people's names and ids).
    pub arena_bytes: usize,
    /// Whether exact values live in the unlinked temporary file.
    pub spilled: bool,
    /// People in the pair sample and its level (2^-level of the people past the cap).
    pub sampled_people: usize,
    pub sample_level: u32,
}

/// Embeddings of one model; others are never compared.
#[derive(Debug)]
pub struct Gallery {
    model: String,
    rule: Rule,
    members: RwLock<Members>,
}

/// What one lock guards: the people, their references, their pairs' scores and the threshold
/// they call for.
#[derive(Debug)]
struct Members {
    people: HashMap<i64, Person>,
    arenas: Vec<Arena>,
    pairs: PairSample,
    references: usize,
    point: OperatingPoint,
    spill_bytes: usize,
}

impl Members {
    fn new(rule: &Rule, spill_bytes: usize, sample_people: usize) -> Members {
        let pairs = PairSample::new(sample_people);
        let point = rule.derive(pairs.histogram(), 0, 0);
        Members {
            people: HashMap::new(),
            arenas: Vec::new(),
            pairs,
            references: 0,
            point,
            spill_bytes,
        }
    }

    /// Store `refs` for `user_id` (who must be in `people`) in the arenas of their sizes.
    fn store(&mut self, user_id: i64, refs: &[Embedding]) {
        for r in refs {
            let values = r.values();
            let index = match self.arenas.iter().position(|a| a.dim() == values.len()) {
                Some(i) => i,
                None => {
                    self.arenas.push(Arena::new(values.len(), self.spill_bytes));
                    self.arenas.len() - 1
                }
            };
            let slot = self.arenas[index].push(user_id, values);
            let at = SlotRef {
                arena: index as u32,
                slot,
            };
            if let Some(person) = self.people.get_mut(&user_id) {
                person.slots.push(at);
            }
        }
        self.references += refs.len();
    }

    /// A member (who must be in `people`) as a match of `similarity`.
    fn candidate(&self, user_id: i64, similarity: Similarity) -> Candidate {
        let person = &self.people[&user_id];
        Candidate {
            user_id,
            first_name: person.first_name().to_owned(),
            last_name: person.last_name().to_owned(),
            similarity,
        }
    }

    /// The references of `user_id` with their exact values.
    fn references_of(&self, user_id: i64) -> Vec<Embedding> {
        let Some(person) = self.people.get(&user_id) else {
            return Vec::new();
        };
        person
            .slots
            .as_slice()
            .iter()
            .filter_map(|at| self.arenas[at.arena as usize].exact(at.slot))
            .filter_map(Embedding::new)
            .collect()
    }

    /// Count the pair sample afresh if the number of people calls for another level.
    fn resample_if_needed(&mut self, force: bool) {
        let level = self.pairs.level_for(self.people.len());
        if level == self.pairs.level() && !force {
            return;
        }
        let members: HashMap<i64, Vec<Embedding>> = self
            .people
            .keys()
            .filter(|&&id| pairs::in_sample(id, level))
            .map(|&id| (id, self.references_of(id)))
            .collect();
        self.pairs.rebuild(level, members);
    }

    fn recompute(&mut self, rule: &Rule) {
        self.point = rule.derive(self.pairs.histogram(), self.people.len(), self.references);
    }

    /// Add references of a person (new or known); the threshold is the caller's to recompute.
    fn insert(&mut self, user_id: i64, first_name: &str, last_name: &str, refs: &[Embedding]) {
        self.people
            .entry(user_id)
            .or_insert_with(|| Person::new(first_name, last_name));
        self.store(user_id, refs);
        if self.pairs.level_for(self.people.len()) == self.pairs.level() {
            self.pairs.add(user_id, refs);
        } else {
            self.resample_if_needed(false);
        }
    }

    /// Take a person out (false: not here); the threshold is the caller's to recompute.
    fn take_out(&mut self, user_id: i64) -> bool {
        let Some(person) = self.people.remove(&user_id) else {
            return false;
        };
        // Highest slot first: then the last slot, which moves into a freed one, is never one of
        // this person's still to be freed.
        let mut slots = person.slots.as_slice().to_vec();
        slots.sort_unstable_by_key(|at| std::cmp::Reverse((at.arena, at.slot)));
        for at in slots {
            let arena = &mut self.arenas[at.arena as usize];
            // The last slot moved into the freed one: its owner's record must follow.
            if let Some(owner) = arena.swap_remove(at.slot) {
                let from = SlotRef {
                    arena: at.arena,
                    slot: arena.len() as u32,
                };
                if let Some(p) = self.people.get_mut(&owner) {
                    p.slots.replace(from, at);
                }
            }
        }
        self.references -= person.slots.as_slice().len();
        if self.pairs.level_for(self.people.len()) == self.pairs.level() {
            self.pairs.remove(user_id);
        } else {
            self.resample_if_needed(false);
        }
        true
    }
}

impl Gallery {
    /// An empty gallery of `model`'s embeddings whose threshold follows `rule`.
    pub fn new(model: impl Into<String>, rule: Rule) -> Self {
        Gallery::with_limits(model, rule, exact::SPILL_BYTES, pairs::SAMPLE_PEOPLE)
    }

    /// With where exact values spill to disk and how many people the pair sample counts in full
    /// (the defaults, smaller in tests).
    fn with_limits(
        model: impl Into<String>,
        rule: Rule,
        spill_bytes: usize,
        sample_people: usize,
    ) -> Self {
        Gallery {
            model: model.into(),
            members: RwLock::new(Members::new(&rule, spill_bytes, sample_people)),
            rule,
        }
    }

    /// The threshold in force for the people registered now, and what it was derived for.
    pub fn operating_point(&self) -> OperatingPoint {
        self.read().point
    }

    /// How the threshold is derived.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The scores of the members' impostor pairs (of the pair sample: see [`pairs`]).
    pub fn member_pairs(&self) -> ScoreHistogram {
        self.read().pairs.histogram().clone()
    }

    /// How the references are held.
    pub fn footprint(&self) -> Footprint {
        let m = self.read();
        Footprint {
            arena_bytes: m.arenas.iter().map(Arena::resident_bytes).sum(),
            spilled: m.arenas.iter().any(Arena::spilled),
            sampled_people: m.pairs.members(),
            sample_level: m.pairs.level(),
        }
    }

    /// The model whose embeddings this gallery holds.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Replace the contents with `rows`, keeping those of this gallery's model.
    pub fn load(&self, rows: Vec<EmbeddingRow>) -> LoadReport {
        let mut loader = self.loader();
        for row in rows {
            loader.push(row);
        }
        loader.finish()
    }

    /// Replace the contents with rows handed over one at a time (from a database stream), so
    /// that they are never all in memory at once; nothing changes until [`Loader::finish`].
    pub fn loader(&self) -> Loader<'_> {
        let (spill_bytes, sample_people) = {
            let m = self.read();
            (m.spill_bytes, m.pairs.cap())
        };
        Loader {
            gallery: self,
            members: Members::new(&self.rule, spill_bytes, sample_people),
            other_model_people: HashSet::new(),
            report: LoadReport::default(),
        }
    }

    /// Add reference embeddings of a person (new or known).
    pub fn add(&self, user_id: i64, first_name: &str, last_name: &str, refs: Vec<Embedding>) {
        let mut members = self.write();
        members.insert(user_id, first_name, last_name, &refs);
        members.recompute(&self.rule);
    }

    pub fn remove(&self, user_id: i64) {
        let mut members = self.write();
        if members.take_out(user_id) {
            members.recompute(&self.rule);
        }
    }

    /// Put `refs` in place of whatever the person had (none: the person goes), under one
    /// lock: a search never sees the person missing half way.
    pub fn replace(&self, user_id: i64, first_name: &str, last_name: &str, refs: Vec<Embedding>) {
        let mut members = self.write();
        members.take_out(user_id);
        if !refs.is_empty() {
            members.insert(user_id, first_name, last_name, &refs);
        }
        members.recompute(&self.rule);
    }

    pub fn len(&self) -> usize {
        self.read().people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most similar person ([`matching::best_match`]: best over each person's references,
    /// ties to the smaller id); `None` for an empty gallery or an embedding of another size.
    pub fn best(&self, face: &Embedding) -> Option<Candidate> {
        let members = self.read();
        let arena = members.arenas.iter().find(|a| a.dim() == face.dim())?;
        let (user_id, similarity) = arena.best(face.values())?;
        Some(members.candidate(user_id, Similarity(similarity as f32)))
    }

    /// Judge `face` under `point`: the most similar person, accepted when their similarity
    /// reaches the threshold and (under a margin) beats the runner-up's by the margin. One read
    /// of the gallery for both, so a registration in between cannot split them.
    pub fn judge(&self, face: &Embedding, point: &OperatingPoint) -> Judgement {
        let members = self.read();
        let Some(arena) = members.arenas.iter().find(|a| a.dim() == face.dim()) else {
            return Judgement::default();
        };
        let Some((user_id, similarity)) = arena.best(face.values()) else {
            return Judgement::default();
        };
        let similarity = Similarity(similarity as f32);
        let threshold = point.threshold.value();
        // The runner-up only matters to a face the threshold already lets in.
        let runner_up = (point.margin > 0.0 && point.threshold.accepts(similarity))
            .then(|| arena.best_except(face.values(), Some(user_id)))
            .flatten()
            .map(|(_, s)| Similarity(s as f32));
        let matched = crate::matching::accepts_with_margin(
            f64::from(similarity.0),
            runner_up.map(|s| f64::from(s.0)),
            f64::from(threshold),
            point.margin,
        );
        Judgement {
            best: Some(members.candidate(user_id, similarity)),
            runner_up,
            matched,
        }
    }

    /// The best similarity of anyone but `except` (the runner-up to a match); `None` when
    /// nobody else has a comparable reference.
    pub fn runner_up(&self, face: &Embedding, except: i64) -> Option<Similarity> {
        let members = self.read();
        let arena = members.arenas.iter().find(|a| a.dim() == face.dim())?;
        let (_, similarity) = arena.best_except(face.values(), Some(except))?;
        Some(Similarity(similarity as f32))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Members> {
        // Nothing inside the lock panics short of a bug (cosine of same-sized unit vectors,
        // counts that were added before being taken back), so a poisoned lock is still usable.
        self.members.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Members> {
        self.members.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A load in progress ([`Gallery::loader`]): rows go straight into fresh arenas; the pair
/// sample is counted once, at the end, for the people then known.
pub struct Loader<'g> {
    gallery: &'g Gallery,
    members: Members,
    other_model_people: HashSet<i64>,
    report: LoadReport,
}

impl Loader<'_> {
    pub fn push(&mut self, row: EmbeddingRow) {
        if row.model != self.gallery.model {
            self.report.embeddings_other_model += 1;
            self.other_model_people.insert(row.user_id);
            return;
        }
        let Some(embedding) = Embedding::from_le_bytes(&row.embedding) else {
            self.report.unreadable += 1;
            return;
        };
        self.report.embeddings += 1;
        self.members
            .people
            .entry(row.user_id)
            .or_insert_with(|| Person::new(&row.first_name, &row.last_name));
        self.members
            .store(row.user_id, std::slice::from_ref(&embedding));
    }

    /// Count the pairs, derive the threshold and put the new contents in place.
    pub fn finish(mut self) -> LoadReport {
        self.report.people = self.members.people.len();
        self.report.people_other_model = self.other_model_people.len();
        self.members.resample_if_needed(true);
        self.members.recompute(&self.gallery.rule);
        *self.gallery.write() = self.members;
        self.report
    }
}
#[cfg(test)]
mod tests;
