//! The registered faces in memory: every person's reference embeddings of the active model,
//! loaded at start and kept current on register, add-face and delete. Matching ([`matching`],
//! the rules `rollcall eval` measures) is a linear scan of cosine similarities, which for the
//! few thousand people of a school or office takes well under a millisecond.
//!
//! Beside them, the scores of every pair of references of two different members (impostor pairs
//! of this very population) in a histogram kept current as people come and go (a change costs
//! one comparison per reference held, never a rescan), and the threshold in force that they and
//! the model's calibration call for ([`operating_point`]), recomputed under the same lock so a
//! verification never sees a gallery with another gallery's threshold.

use crate::domain::{Embedding, Similarity};
use crate::matching;
use crate::operating_point::{OperatingPoint, Rule, ScoreHistogram};
use crate::store::EmbeddingRow;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Clone)]
struct Person {
    first_name: String,
    last_name: String,
    references: Vec<Embedding>,
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

/// Embeddings of one model; others are never compared.
#[derive(Debug)]
pub struct Gallery {
    model: String,
    rule: Rule,
    members: RwLock<Members>,
}

/// What one lock guards: the people, their pairs' scores and the threshold they call for.
#[derive(Debug)]
struct Members {
    people: HashMap<i64, Person>,
    /// Scores of reference pairs of two different people.
    pairs: ScoreHistogram,
    references: usize,
    point: OperatingPoint,
}

impl Members {
    /// `refs` of `user_id` scored against every reference of everyone else, into (or, with
    /// `add` false, out of) the pair histogram.
    fn count_pairs(&mut self, user_id: i64, refs: &[Embedding], add: bool) {
        for (id, other) in &self.people {
            if *id == user_id {
                continue;
            }
            for a in refs {
                for b in &other.references {
                    if a.values().len() != b.values().len() {
                        continue;
                    }
                    let score = matching::cosine(a.values(), b.values());
                    if add {
                        self.pairs.add(score);
                    } else {
                        self.pairs.remove(score);
                    }
                }
            }
        }
    }

    fn recompute(&mut self, rule: &Rule) {
        self.point = rule.derive(&self.pairs, self.people.len(), self.references);
    }
}

impl Gallery {
    /// An empty gallery of `model`'s embeddings whose threshold follows `rule`.
    pub fn new(model: impl Into<String>, rule: Rule) -> Self {
        let pairs = ScoreHistogram::default();
        let point = rule.derive(&pairs, 0, 0);
        Gallery {
            model: model.into(),
            members: RwLock::new(Members {
                people: HashMap::new(),
                pairs,
                references: 0,
                point,
            }),
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

    /// The scores of the members' impostor pairs (for checks and measurements).
    pub fn member_pairs(&self) -> ScoreHistogram {
        self.read().pairs.clone()
    }

    /// The model whose embeddings this gallery holds.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Replace the contents with `rows`, keeping those of this gallery's model.
    pub fn load(&self, rows: Vec<EmbeddingRow>) -> LoadReport {
        let mut report = LoadReport::default();
        let mut people: HashMap<i64, Person> = HashMap::new();
        let mut other_model_people = std::collections::HashSet::new();
        for row in rows {
            if row.model != self.model {
                report.embeddings_other_model += 1;
                other_model_people.insert(row.user_id);
                continue;
            }
            let Some(embedding) = Embedding::from_le_bytes(&row.embedding) else {
                report.unreadable += 1;
                continue;
            };
            report.embeddings += 1;
            people
                .entry(row.user_id)
                .or_insert_with(|| Person {
                    first_name: row.first_name,
                    last_name: row.last_name,
                    references: Vec::new(),
                })
                .references
                .push(embedding);
        }
        report.people = people.len();
        report.people_other_model = other_model_people.len();
        let mut members = self.write();
        members.people = HashMap::new();
        members.pairs = ScoreHistogram::default();
        members.references = 0;
        // Person by person, as they would have been registered: the same histogram.
        let mut ids: Vec<i64> = people.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(person) = people.remove(&id) {
                members.count_pairs(id, &person.references, true);
                members.references += person.references.len();
                members.people.insert(id, person);
            }
        }
        members.recompute(&self.rule);
        report
    }

    /// Add reference embeddings of a person (new or known).
    pub fn add(&self, user_id: i64, first_name: &str, last_name: &str, refs: Vec<Embedding>) {
        let mut members = self.write();
        members.count_pairs(user_id, &refs, true);
        members.references += refs.len();
        members
            .people
            .entry(user_id)
            .or_insert_with(|| Person {
                first_name: first_name.to_owned(),
                last_name: last_name.to_owned(),
                references: Vec::new(),
            })
            .references
            .extend(refs);
        members.recompute(&self.rule);
    }

    pub fn remove(&self, user_id: i64) {
        let mut members = self.write();
        if let Some(person) = members.people.remove(&user_id) {
            members.count_pairs(user_id, &person.references, false);
            members.references -= person.references.len();
            members.recompute(&self.rule);
        }
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
        let people = &members.people;
        let (user_id, similarity) = matching::best_match(
            face.values(),
            people
                .iter()
                .map(|(id, p)| (*id, p.references.iter().map(Embedding::values))),
        )?;
        let person = &people[&user_id];
        Some(Candidate {
            user_id,
            first_name: person.first_name.clone(),
            last_name: person.last_name.clone(),
            similarity: Similarity(similarity as f32),
        })
    }

    /// The best similarity of anyone but `except` (the runner-up to a match); `None` when
    /// nobody else has a comparable reference.
    pub fn runner_up(&self, face: &Embedding, except: i64) -> Option<Similarity> {
        let members = self.read();
        let others = members
            .people
            .iter()
            .filter(|(id, _)| **id != except)
            .map(|(id, p)| (*id, p.references.iter().map(Embedding::values)));
        let (_, similarity) = matching::best_match(face.values(), others)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Threshold;
    use crate::operating_point::Source;

    fn rule() -> Rule {
        Rule {
            false_accept_rate: 1e-3,
            configured: None,
            default: Threshold::new(0.55).unwrap(),
            model: None,
        }
    }

    impl Gallery {
        fn of(model: &str) -> Gallery {
            Gallery::new(model, rule())
        }
    }

    fn row(user_id: i64, model: &str, v: &[f32]) -> EmbeddingRow {
        EmbeddingRow {
            user_id,
            first_name: format!("F{user_id}"),
            last_name: format!("L{user_id}"),
            model: model.into(),
            embedding: Embedding::new(v.to_vec()).unwrap().to_le_bytes(),
        }
    }

    #[test]
    fn best_match_takes_each_persons_best_reference_of_the_same_model() {
        let g = Gallery::of("m1");
        let report = g.load(vec![
            row(1, "m1", &[1.0, 0.0, 0.0]),
            row(1, "m1", &[0.0, 1.0, 0.0]),
            row(2, "m1", &[0.6, 0.8, 0.0]),
            row(3, "m2", &[0.0, 1.0, 0.0]),
        ]);
        assert_eq!(report.people, 2);
        assert_eq!(report.people_other_model, 1);
        assert_eq!((g.len(), g.is_empty()), (2, false));
        assert!(Gallery::of("m1").is_empty());
        let probe = Embedding::new(vec![0.0, 1.0, 0.1]).unwrap();
        let best = g.best(&probe).unwrap();
        assert_eq!(best.user_id, 1);
        assert!(best.similarity.0 > 0.99);

        g.remove(1);
        assert_eq!(g.best(&probe).unwrap().user_id, 2);
        g.add(
            4,
            "A",
            "B",
            vec![Embedding::new(vec![0.0, 1.0, 0.1]).unwrap()],
        );
        assert_eq!(g.best(&probe).unwrap().user_id, 4);
        assert!(Gallery::of("m1").best(&probe).is_none());
    }

    /// The start-up log says how many people and embeddings were left out, and why.
    #[test]
    fn loading_counts_what_it_leaves_out() {
        let mut torn = row(5, "m1", &[1.0, 0.0, 0.0]);
        torn.embedding.truncate(3);
        let report = Gallery::of("m1").load(vec![
            row(1, "m1", &[1.0, 0.0, 0.0]),
            row(1, "m1", &[0.0, 1.0, 0.0]),
            row(2, "m1", &[0.6, 0.8, 0.0]),
            row(3, "m2", &[0.0, 1.0, 0.0]),
            row(3, "m2", &[1.0, 0.0, 0.0]),
            row(4, "m2", &[1.0, 0.0, 0.0]),
            torn,
        ]);
        assert_eq!(
            report,
            LoadReport {
                people: 2,
                embeddings: 3,
                people_other_model: 2,
                embeddings_other_model: 3,
                unreadable: 1,
            }
        );
    }

    fn unit(v: &[f32]) -> Embedding {
        Embedding::new(v.to_vec()).unwrap()
    }

    /// Registering and deleting keep the same pair histogram a fresh load of the same people
    /// builds, and the threshold follows the number of references.
    #[test]
    fn member_pairs_follow_registrations_and_deletions() {
        let g = Gallery::of("m1");
        g.add(
            1,
            "A",
            "A",
            vec![unit(&[1.0, 0.0, 0.0]), unit(&[0.9, 0.1, 0.0])],
        );
        g.add(2, "B", "B", vec![unit(&[0.0, 1.0, 0.0])]);
        g.add(3, "C", "C", vec![unit(&[0.6, 0.8, 0.0])]);
        g.add(2, "B", "B", vec![unit(&[0.0, 0.9, 0.3])]);
        // 1–2: 2×2, 1–3: 2×1, 2–3: 2×1; never a person's references against each other.
        assert_eq!(g.member_pairs().total(), 8);
        let point = g.operating_point();
        assert_eq!(
            (point.people, point.references, point.source),
            (3, 5, Source::Default)
        );

        g.remove(2);
        let reloaded = Gallery::of("m1");
        reloaded.load(vec![
            row(1, "m1", &[1.0, 0.0, 0.0]),
            row(1, "m1", &[0.9, 0.1, 0.0]),
            row(3, "m1", &[0.6, 0.8, 0.0]),
        ]);
        assert_eq!(g.member_pairs(), reloaded.member_pairs());
        assert_eq!(g.member_pairs().total(), 2);
        assert_eq!(g.operating_point(), reloaded.operating_point());
        assert_eq!(g.operating_point().references, 3);
        g.remove(99);
        assert_eq!(g.member_pairs().total(), 2);
    }

    /// What keeping the threshold current costs at 10,000 people (128-d, one reference each):
    /// `cargo test -p rollcall --lib -- --ignored --nocapture recompute_cost`. Not run by default
    /// (the load compares 50 million pairs).
    #[test]
    #[ignore]
    fn recompute_cost_at_ten_thousand_people() {
        let mut state = 7u64;
        let mut vector = || {
            let v: Vec<f32> = (0..128)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect();
            Embedding::new(v).unwrap()
        };
        let rows: Vec<EmbeddingRow> = (0..10_000)
            .map(|id| EmbeddingRow {
                user_id: id,
                first_name: "F".into(),
                last_name: "L".into(),
                model: "m1".into(),
                embedding: vector().to_le_bytes(),
            })
            .collect();
        let g = Gallery::of("m1");
        let started = std::time::Instant::now();
        g.load(rows);
        let loaded = started.elapsed();
        let started = std::time::Instant::now();
        g.add(10_000, "A", "B", vec![vector()]);
        let added = started.elapsed();
        let started = std::time::Instant::now();
        g.remove(10_000);
        let removed = started.elapsed();
        eprintln!("10,000 people: load {loaded:?}, register {added:?}, delete {removed:?}");
        assert_eq!(g.member_pairs().total(), 10_000 * 9_999 / 2);
    }
}
