//! The registered faces in memory: every person's reference embeddings of the active model,
//! loaded at start and kept current on register, add-face and delete. Matching ([`matching`],
//! the rules `rollcall eval` measures) is a linear scan of cosine similarities, which for the
//! few thousand people of a school or office takes well under a millisecond.

use crate::domain::{Embedding, Similarity};
use crate::matching;
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
    people: RwLock<HashMap<i64, Person>>,
}

impl Gallery {
    pub fn new(model: impl Into<String>) -> Self {
        Gallery {
            model: model.into(),
            people: RwLock::new(HashMap::new()),
        }
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
        *self.write() = people;
        report
    }

    /// Add reference embeddings of a person (new or known).
    pub fn add(&self, user_id: i64, first_name: &str, last_name: &str, refs: Vec<Embedding>) {
        self.write()
            .entry(user_id)
            .or_insert_with(|| Person {
                first_name: first_name.to_owned(),
                last_name: last_name.to_owned(),
                references: Vec::new(),
            })
            .references
            .extend(refs);
    }

    pub fn remove(&self, user_id: i64) {
        self.write().remove(&user_id);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most similar person ([`matching::best_match`]: best over each person's references,
    /// ties to the smaller id); `None` for an empty gallery or an embedding of another size.
    pub fn best(&self, face: &Embedding) -> Option<Candidate> {
        let people = self.read();
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i64, Person>> {
        // A panic while holding the lock cannot leave the map half-updated (each update is one
        // insert/remove/assignment), so a poisoned lock is still consistent.
        self.people.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i64, Person>> {
        self.people.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let g = Gallery::new("m1");
        let report = g.load(vec![
            row(1, "m1", &[1.0, 0.0, 0.0]),
            row(1, "m1", &[0.0, 1.0, 0.0]),
            row(2, "m1", &[0.6, 0.8, 0.0]),
            row(3, "m2", &[0.0, 1.0, 0.0]),
        ]);
        assert_eq!(report.people, 2);
        assert_eq!(report.people_other_model, 1);
        assert_eq!((g.len(), g.is_empty()), (2, false));
        assert!(Gallery::new("m1").is_empty());
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
        assert!(Gallery::new("m1").best(&probe).is_none());
    }

    /// The start-up log says how many people and embeddings were left out, and why.
    #[test]
    fn loading_counts_what_it_leaves_out() {
        let mut torn = row(5, "m1", &[1.0, 0.0, 0.0]);
        torn.embedding.truncate(3);
        let report = Gallery::new("m1").load(vec![
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
}
