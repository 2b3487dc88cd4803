//! From embeddings to the two test scenarios: scored verification pairs, and the attendance
//! kiosk (a gallery of enrolled people, probes that are either enrolled people or strangers).

use super::dataset::{Dataset, Pair, PhotoId};
use super::embed::Embeddings;
use super::metrics::{ProbeMatch, Scored};
use crate::matching;

/// Each fold's pairs with their similarity (`None` when a photo had no face).
pub fn score_pairs(folds: &[Vec<Pair>], embeddings: &Embeddings) -> Vec<Vec<Scored>> {
    folds
        .iter()
        .map(|fold| {
            fold.iter()
                .map(|p| {
                    let score = match (embeddings.embedding(p.a), embeddings.embedding(p.b)) {
                        (Some(a), Some(b)) => Some(matching::cosine(a, b)),
                        _ => None,
                    };
                    Scored {
                        score,
                        same: p.same,
                    }
                })
                .collect()
        })
        .collect()
}

/// Who is enrolled with which photos, and who walks up to the kiosk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// (person, reference photos) for every enrolled person.
    pub gallery: Vec<(usize, Vec<PhotoId>)>,
    /// (photo, the person if enrolled / `None` for a stranger).
    pub probes: Vec<(PhotoId, Option<usize>)>,
}

/// (person, the embeddings of their references): a gallery as the server holds it.
pub type EmbeddedGallery<'e> = Vec<(usize, Vec<&'e [f32]>)>;

impl Split {
    /// The gallery as the server would hold it: (person, the embeddings of their references with
    /// a face) for everyone with at least one, and the enrolled people left out for having none.
    pub fn enrolled_references<'e>(
        &self,
        embeddings: &'e Embeddings,
    ) -> (EmbeddedGallery<'e>, Vec<usize>) {
        let mut gallery = Vec::with_capacity(self.gallery.len());
        let mut not_enrolled = Vec::new();
        for (person, refs) in &self.gallery {
            let vectors: Vec<&[f32]> = refs
                .iter()
                .filter_map(|&id| embeddings.embedding(id))
                .collect();
            if vectors.is_empty() {
                not_enrolled.push(*person);
            } else {
                gallery.push((*person, vectors));
            }
        }
        (gallery, not_enrolled)
    }
}

/// The attendance scenario: everyone with two or more photos is enrolled with their first
/// `references` photos by LFW number (at most all but one, so each keeps a probe); their other
/// photos are genuine probes. People with exactly one photo are strangers, never enrolled.
pub fn attendance_split(dataset: &Dataset, references: usize) -> Split {
    split_with(dataset, |n| n >= 2, |n| references.max(1).min(n - 1), |_| 0)
}

/// A probe set that stays the same whatever the number of references, to compare 1, 2, 3…:
/// genuine probes are the photos after the first `max_references` of people with more than
/// `max_references` photos; the gallery holds everyone with two or more photos, each with up to
/// `references` photos (from their first `max_references`, or all but one).
pub fn fixed_probe_split(dataset: &Dataset, references: usize, max_references: usize) -> Split {
    let max_references = max_references.max(1);
    split_with(
        dataset,
        |n| n >= 2,
        |n| references.max(1).min(max_references).min(n - 1),
        |n| {
            if n > max_references {
                max_references
            } else {
                n
            }
        },
    )
}

/// `enrolled(n)`: is a person with n photos enrolled; `refs(n)`: how many reference photos;
/// `probes_from(n)`: index of their first genuine probe (n = none, for a fixed probe set;
/// 0 = right after the references).
fn split_with(
    dataset: &Dataset,
    enrolled: impl Fn(usize) -> bool,
    refs: impl Fn(usize) -> usize,
    probes_from: impl Fn(usize) -> usize,
) -> Split {
    let mut split = Split::default();
    for (person, p) in dataset.people.iter().enumerate() {
        let n = p.photos.len();
        if enrolled(n) {
            let r = refs(n);
            split
                .gallery
                .push((person, (0..r).map(|i| (person, i)).collect()));
            let first_probe = probes_from(n).max(r);
            split
                .probes
                .extend((first_probe..n).map(|i| ((person, i), Some(person))));
        } else {
            split.probes.extend((0..n).map(|i| ((person, i), None)));
        }
    }
    split
}

/// The kiosk's answer for each probe: the enrolled person the server would name
/// ([`matching::best_match`]: best of their references, ties to the earlier person). Enrolled
/// people none of whose references has a face are left out of the gallery and returned (their
/// probes can then only be rejected or misidentified).
pub fn match_probes(split: &Split, embeddings: &Embeddings) -> (Vec<ProbeMatch>, Vec<usize>) {
    let (gallery, not_enrolled) = split.enrolled_references(embeddings);
    let matches = split
        .probes
        .iter()
        .map(|&(photo, truth)| {
            let ranked = embeddings
                .embedding(photo)
                .and_then(|probe| super::margin::best_two(probe, &gallery));
            ProbeMatch {
                truth,
                best: ranked.map(|(who, score, _)| (who, score)),
                runner_up: ranked.and_then(|(_, _, second)| second),
            }
        })
        .collect();
    (matches, not_enrolled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::dataset::{Person, Photo};

    fn dataset(counts: &[usize]) -> Dataset {
        let people = counts
            .iter()
            .enumerate()
            .map(|(k, &n)| Person {
                name: format!("P{k}"),
                photos: (0..n)
                    .map(|i| Photo {
                        path: format!("P{k}/{i}").into(),
                        number: Some(i as u32 + 1),
                    })
                    .collect(),
            })
            .collect();
        Dataset {
            root: ".".into(),
            people,
        }
    }

    #[test]
    fn attendance_split_enrols_first_photos_and_keeps_a_probe() {
        let d = dataset(&[3, 1, 2]);
        let s = attendance_split(&d, 2);
        assert_eq!(
            s.gallery,
            vec![(0, vec![(0, 0), (0, 1)]), (2, vec![(2, 0)])]
        );
        assert_eq!(
            s.probes,
            vec![((0, 2), Some(0)), ((1, 0), None), ((2, 1), Some(2))]
        );
    }

    #[test]
    fn fixed_probe_split_does_not_depend_on_references() {
        let d = dataset(&[5, 1, 2, 4]);
        let one = fixed_probe_split(&d, 1, 3);
        let three = fixed_probe_split(&d, 3, 3);
        assert_eq!(one.probes, three.probes);
        assert_eq!(
            one.probes,
            vec![
                ((0, 3), Some(0)),
                ((0, 4), Some(0)),
                ((1, 0), None),
                ((3, 3), Some(3))
            ]
        );
        assert_eq!(three.gallery[1], (2, vec![(2, 0)]));
        assert_eq!(three.gallery[0].1.len(), 3);
    }
}
