//! How a face is matched against registered people, written once for the server
//! (the gallery) and for `rollcall eval`, so that a threshold calibrated by `eval` is
//! computed by the code that applies it:
//!
//! - [`cosine`]: the similarity of two L2-normalised embeddings;
//! - [`best_of_references`]: a person's score is the best over their reference embeddings;
//! - [`best_match`]: the most similar person, ties to the smaller key;
//! - [`accepts`]: a match is accepted when its similarity is at or above the threshold;
//! - [`accepts_with_margin`]: and, under the margin rule, beats the runner-up by the margin.

/// Cosine similarity of two unit vectors (the one definition, beside [`Embedding`]).
///
/// [`Embedding`]: rollcall_vision::Embedding
pub use rollcall_vision::embedding::cosine;

/// A person's similarity to `probe`: the best over their references. References of another
/// size than the probe never match; `None` when no reference is left.
pub fn best_of_references<'a>(
    probe: &[f32],
    references: impl IntoIterator<Item = &'a [f32]>,
) -> Option<f64> {
    references
        .into_iter()
        .filter(|r| r.len() == probe.len())
        .map(|r| cosine(probe, r))
        .max_by(f64::total_cmp)
}

/// The person most similar to `probe` (by [`best_of_references`]) and that similarity, whether
/// or not it is accepted. Two people with the same similarity: the smaller key wins, so the
/// answer does not depend on the order `people` come in. `None` when nobody has a comparable
/// reference.
pub fn best_match<'a, K, R>(
    probe: &[f32],
    people: impl IntoIterator<Item = (K, R)>,
) -> Option<(K, f64)>
where
    K: Ord,
    R: IntoIterator<Item = &'a [f32]>,
{
    let mut best: Option<(K, f64)> = None;
    for (key, references) in people {
        let Some(similarity) = best_of_references(probe, references) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((best_key, best_similarity)) => similarity
                .total_cmp(best_similarity)
                .then_with(|| best_key.cmp(&key))
                .is_gt(),
        };
        if better {
            best = Some((key, similarity));
        }
    }
    best
}

/// The accept rule: the same person when the similarity is at or above the threshold.
pub fn accepts(similarity: f64, threshold: f64) -> bool {
    similarity >= threshold
}

/// The accept rule with a margin: the best person's similarity reaches the threshold and beats
/// the runner-up's (the best *other* person; none: nobody to confuse them with) by at least the
/// margin. A margin of 0 is [`accepts`].
pub fn accepts_with_margin(best: f64, runner_up: Option<f64>, threshold: f64, margin: f64) -> bool {
    accepts(best, threshold) && (margin <= 0.0 || runner_up.is_none_or(|r| best - r >= margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_the_dot_product_of_unit_vectors() {
        // (0.6, 0.8)·(0.8, 0.6) = 0.48 + 0.48.
        assert!((cosine(&[0.6, 0.8], &[0.8, 0.6]) - 0.96).abs() < 1e-7);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0, 0.0], &[-1.0, 0.0]), -1.0);
        // Summed in f64: in f32, 1 + 2⁻²⁴ rounds back to 1 (half a step, to even), twice over.
        let tiny = 2f32.powi(-24);
        assert_eq!(
            cosine(&[1.0, 1.0, 1.0], &[1.0, tiny, tiny]),
            1.0 + 2.0 * f64::from(tiny)
        );
    }

    #[test]
    fn a_person_scores_their_best_reference_of_the_probes_size() {
        let probe = [0.6, 0.8];
        let refs: [&[f32]; 3] = [&[1.0, 0.0], &[0.0, 1.0], &[0.0, 0.0, 1.0]];
        // 0.6 and 0.8; the three-value reference is of another model.
        let best = best_of_references(&probe, refs).unwrap();
        assert!((best - 0.8).abs() < 1e-7, "{best}");
        assert_eq!(best_of_references(&probe, [&[1.0f32, 0.0, 0.0][..]]), None);
        assert_eq!(best_of_references(&probe, []), None);
    }

    #[test]
    fn the_best_person_wins_and_ties_go_to_the_smaller_key() {
        let probe = [0.6, 0.8];
        let a: Vec<&[f32]> = vec![&[1.0, 0.0]]; // 0.6
        let b: Vec<&[f32]> = vec![&[0.0, 1.0], &[1.0, 0.0]]; // best 0.8
        let c: Vec<&[f32]> = vec![&[0.0, 1.0]]; // 0.8, ties with b
        let other_model: Vec<&[f32]> = vec![&[0.0, 0.0, 1.0]];
        let (who, s) =
            best_match(&probe, [(1, a.clone()), (3, c.clone()), (2, b.clone())]).unwrap();
        assert_eq!(who, 2);
        assert!((s - 0.8).abs() < 1e-7);
        // The same answer whatever the order.
        assert_eq!(
            best_match(&probe, [(2, b), (3, c), (1, a)]).map(|m| m.0),
            Some(2)
        );
        assert_eq!(best_match(&probe, [(7, other_model)]), None);
        assert_eq!(best_match(&probe, Vec::<(i64, Vec<&[f32]>)>::new()), None);
    }

    #[test]
    fn a_similarity_equal_to_the_threshold_is_accepted() {
        assert!(accepts(0.962, 0.962));
        assert!(accepts(0.97, 0.962));
        assert!(!accepts(0.9619999, 0.962));
        assert!(accepts(-1.0, -1.0));
    }

    #[test]
    fn under_a_margin_the_runner_up_must_be_left_behind_by_it() {
        assert!(accepts_with_margin(0.96, Some(0.94), 0.95, 0.02));
        assert!(!accepts_with_margin(0.96, Some(0.945), 0.95, 0.02));
        assert!(
            !accepts_with_margin(0.949, Some(0.5), 0.95, 0.02),
            "below the threshold"
        );
        assert!(
            accepts_with_margin(0.96, None, 0.95, 0.02),
            "nobody else registered"
        );
        assert!(
            accepts_with_margin(0.96, Some(0.96), 0.95, 0.0),
            "no margin: a tie passes"
        );
    }
}
