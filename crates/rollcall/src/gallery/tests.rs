//! The gallery against the plain scan it replaces, and its pair sample against a fresh count.

use super::*;
use crate::domain::Threshold;
use crate::operating_point::Source;

fn rule() -> Rule {
    Rule {
        false_accept_rate: 1e-3,
        configured: None,
        default: Threshold::new(0.55).unwrap(),
        model: None,
        margins: Vec::new(),
        configured_margin: 0.0,
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
fn a_judgement_names_the_best_person_only_when_ahead_of_the_next_by_the_margin() {
    let g = Gallery::new(
        "m",
        Rule {
            configured: Some(Threshold::new(0.5).unwrap()),
            configured_margin: 0.1,
            ..rule()
        },
    );
    let point = g.operating_point();
    assert_eq!((point.threshold.value(), point.margin), (0.5, 0.1));
    let probe = Embedding::new(vec![0.8, 0.6, 0.0]).unwrap();
    assert_eq!(
        g.judge(&probe, &point),
        Judgement::default(),
        "nobody registered"
    );
    g.add(
        1,
        "A",
        "A",
        vec![Embedding::new(vec![1.0, 0.0, 0.0]).unwrap()],
    ); // 0.8
    let alone = g.judge(&probe, &point);
    assert_eq!(alone.best.as_ref().map(|c| c.user_id), Some(1));
    assert!(alone.matched && alone.runner_up.is_none(), "{alone:?}");
    g.add(
        2,
        "B",
        "B",
        vec![Embedding::new(vec![0.0, 1.0, 0.0]).unwrap()],
    ); // 0.6: 0.2 behind
    let ahead = g.judge(&probe, &point);
    assert!(ahead.matched, "{ahead:?}");
    assert!((ahead.runner_up.unwrap().0 - 0.6).abs() < 1e-6, "{ahead:?}");
    g.add(
        3,
        "C",
        "C",
        vec![Embedding::new(vec![0.3639, 0.9314, 0.0]).unwrap()],
    ); // 0.85
    let close = g.judge(&Embedding::new(vec![0.8, 0.6, 0.0]).unwrap(), &point);
    assert_eq!(close.best.as_ref().map(|c| c.user_id), Some(3));
    assert!(!close.matched, "person 1 is within 0.1: {close:?}");
    // Below the threshold nobody is named, and the runner-up is not looked for.
    let far = g.judge(&Embedding::new(vec![0.0, 0.0, 1.0]).unwrap(), &point);
    assert!(!far.matched && far.runner_up.is_none(), "{far:?}");
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
/// `cargo test -p rollcall --lib -- --ignored --nocapture recompute_cost`. Not run by default.
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
    // 10,000 > 2048·2²: one person in 2³ is sampled.
    let sampled = g.footprint().sampled_people as u64;
    assert_eq!(g.footprint().sample_level, 3);
    assert_eq!(g.member_pairs().total(), sampled * (sampled - 1) / 2);
}

// --- exactness against the plain scan --------------------------------------------------------

/// A small deterministic generator (the tests need no crate for it).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Roughly normal values (a sum of uniforms), so that the unit vectors point anywhere.
    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim)
            .map(|_| {
                (0..4)
                    .map(|_| (self.next() as f32) / (1u64 << 53) as f32 - 0.5)
                    .sum()
            })
            .collect()
    }

    fn unit(&mut self, dim: usize) -> Embedding {
        Embedding::new(self.vector(dim)).unwrap()
    }

    /// `base` moved by a tiny step: a near-tie with it.
    fn nudge(&mut self, base: &Embedding, size: f32) -> Embedding {
        let v: Vec<f32> = base
            .values()
            .iter()
            .map(|&x| x + size * ((self.next() % 3) as f32 - 1.0))
            .collect();
        Embedding::new(v).unwrap()
    }
}

/// The answer of the scan this gallery replaced: `matching::best_match` over every reference.
fn naive(people: &HashMap<i64, Vec<Embedding>>, probe: &Embedding) -> Option<(i64, f32)> {
    crate::matching::best_match(
        probe.values(),
        people
            .iter()
            .map(|(id, refs)| (*id, refs.iter().map(Embedding::values))),
    )
    .map(|(id, s)| (id, s as f32))
}

/// People with one to three references, many of them exact duplicates or near-duplicates of
/// someone else's (ties and near-ties), registered one by one.
fn random_gallery(
    rng: &mut Rng,
    g: &Gallery,
    people: usize,
    dim: usize,
) -> HashMap<i64, Vec<Embedding>> {
    let mut truth: HashMap<i64, Vec<Embedding>> = HashMap::new();
    let mut all: Vec<Embedding> = Vec::new();
    for k in 0..people {
        let id = (rng.below(1_000_000) as i64) * 7 + k as i64;
        let refs: Vec<Embedding> = (0..1 + rng.below(3))
            .map(|_| match (all.is_empty(), rng.below(4)) {
                (false, 0) => all[rng.below(all.len())].clone(),
                (false, 1) => {
                    let base = all[rng.below(all.len())].clone();
                    rng.nudge(&base, 1e-6)
                }
                _ => rng.unit(dim),
            })
            .collect();
        all.extend(refs.iter().cloned());
        g.add(id, "F", "L", refs.clone());
        truth.entry(id).or_default().extend(refs);
    }
    truth
}

fn probes(
    rng: &mut Rng,
    truth: &HashMap<i64, Vec<Embedding>>,
    dim: usize,
    n: usize,
) -> Vec<Embedding> {
    let refs: Vec<&Embedding> = truth.values().flatten().collect();
    (0..n)
        .map(|i| match i % 3 {
            0 => rng.unit(dim),
            1 => refs[rng.below(refs.len())].clone(),
            _ => {
                let base = refs[rng.below(refs.len())].clone();
                rng.nudge(&base, 1e-3)
            }
        })
        .collect()
}

fn assert_same_answers(g: &Gallery, truth: &HashMap<i64, Vec<Embedding>>, probes: &[Embedding]) {
    for probe in probes {
        let fast = g.best(probe).map(|c| (c.user_id, c.similarity.0));
        assert_eq!(fast, naive(truth, probe), "{probe:?}");
        // The runner-up to that answer: the best of everyone else.
        if let Some((winner, _)) = fast {
            let mut others = truth.clone();
            others.remove(&winner);
            let expected = naive(&others, probe).map(|(_, s)| Similarity(s));
            assert_eq!(g.runner_up(probe, winner), expected, "{probe:?}");
        }
    }
}

#[test]
fn best_equals_the_plain_scan_with_ties_near_ties_and_removals() {
    for (seed, dim, people, spill) in [
        (1, 3, 40, usize::MAX),
        (2, 16, 300, usize::MAX),
        (3, 128, 400, usize::MAX),
        // Exact values in the temporary file from the 10th reference on.
        (4, 32, 200, 32 * 4 * 10),
    ] {
        let mut rng = Rng(seed);
        let g = Gallery::with_limits("m", rule(), spill, pairs::SAMPLE_PEOPLE);
        let mut truth = random_gallery(&mut rng, &g, people, dim);
        assert_eq!(g.len(), truth.len());
        assert_eq!(g.footprint().spilled, spill != usize::MAX);
        let probes = probes(&mut rng, &truth, dim, 150);
        assert_same_answers(&g, &truth, &probes);

        // Remove a third (their slots refilled from the end of the arena), add some back.
        let mut ids: Vec<i64> = truth.keys().copied().collect();
        ids.sort_unstable();
        for id in ids.iter().filter(|_| rng.below(3) == 0) {
            g.remove(*id);
            truth.remove(id);
        }
        assert_eq!(g.len(), truth.len());
        assert_same_answers(&g, &truth, &probes);
        let more = random_gallery(&mut rng, &g, people / 4, dim);
        for (id, refs) in more {
            truth.entry(id).or_default().extend(refs);
        }
        assert_same_answers(&g, &truth, &probes);
        // A probe of another size matches nobody.
        assert_eq!(g.best(&rng.unit(dim + 1)), None);
    }
}

/// A basis vector quantises without error, so the whole margin is the references' own bound:
/// 500 people whose exact scores lie within 0.001 of each other, while rounding their codes
/// moves the scan's scores by up to 0.003 (the scan's order is not the exact order).
#[test]
fn near_ties_hidden_by_quantisation_are_resolved_exactly() {
    let mut rng = Rng(9);
    let dim = 16;
    let g = Gallery::of("m");
    let mut truth = HashMap::new();
    for id in 0..500i64 {
        let mut v = rng.vector(dim);
        v[0] = 0.0;
        v[1] = 0.0;
        let rest = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x *= 0.5 / rest);
        // The largest value sets the scale (0.7/127), the probe reads the first.
        v[1] = 0.7;
        v[0] = 0.3 + rng.below(1000) as f32 * 1e-6;
        let e = Embedding::new(v).unwrap();
        g.add(id, "F", "L", vec![e.clone()]);
        truth.insert(id, vec![e]);
    }
    let mut basis = vec![0f32; dim];
    basis[0] = 1.0;
    assert_same_answers(&g, &truth, &[Embedding::new(basis).unwrap()]);
}

/// Large enough that the scan is split across threads (where the machine has more than one).
#[test]
fn a_parallel_scan_answers_as_the_plain_scan_does() {
    let mut rng = Rng(11);
    let g = Gallery::of("m");
    let mut truth: HashMap<i64, Vec<Embedding>> = HashMap::new();
    let rows: Vec<EmbeddingRow> = (0..20_000i64)
        .map(|id| {
            let e = if id >= 10_000 && id % 1000 == 7 {
                // Exact ties between people far apart in the arena.
                truth[&(id - 10_000)][0].clone()
            } else {
                rng.unit(128)
            };
            // What the gallery holds: loading normalises the stored bytes once more.
            let loaded = Embedding::from_le_bytes(&e.to_le_bytes()).unwrap();
            truth.entry(id).or_default().push(loaded);
            EmbeddingRow {
                user_id: id,
                first_name: "F".into(),
                last_name: "L".into(),
                model: "m".into(),
                embedding: e.to_le_bytes(),
            }
        })
        .collect();
    g.load(rows);
    let probes = probes(&mut rng, &truth, 128, 30);
    assert_same_answers(&g, &truth, &probes);
    assert_eq!(g.best(&truth[&19_007][0]).unwrap().user_id, 9_007);
}

// --- the pair sample ---------------------------------------------------------------------------

/// Every pair of references of two different sampled people, counted the plain way.
fn plain_count(truth: &HashMap<i64, Vec<Embedding>>, level: u32) -> ScoreHistogram {
    let mut h = ScoreHistogram::default();
    let ids: Vec<i64> = truth
        .keys()
        .copied()
        .filter(|&id| pairs::in_sample(id, level))
        .collect();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            for x in &truth[a] {
                for y in &truth[b] {
                    h.add(crate::matching::cosine(x.values(), y.values()));
                }
            }
        }
    }
    h
}

/// With the sample capped at 8 people, 40 registrations cross levels 0 to 3 and back: the
/// histogram always equals a fresh count of the sample, which a fresh load of the same people
/// also builds, and a registration undone leaves it as it was.
#[test]
fn the_pair_sample_follows_registrations_and_deletions_across_levels() {
    let mut rng = Rng(5);
    let g = Gallery::with_limits("m", rule(), usize::MAX, 8);
    let mut truth: HashMap<i64, Vec<Embedding>> = HashMap::new();
    let check = |g: &Gallery, truth: &HashMap<i64, Vec<Embedding>>| {
        let level = g.footprint().sample_level;
        let pairs = g.member_pairs();
        assert_eq!(pairs, plain_count(truth, level), "level {level}");
        let fresh = Gallery::with_limits("m", rule(), usize::MAX, 8);
        let rows = truth
            .iter()
            .flat_map(|(id, refs)| refs.iter().map(|e| row(*id, "m", e.values())))
            .collect();
        fresh.load(rows);
        assert_eq!(fresh.member_pairs(), pairs);
        assert_eq!(fresh.operating_point(), g.operating_point());
    };
    for id in 0..40i64 {
        let refs: Vec<Embedding> = (0..1 + rng.below(2)).map(|_| rng.unit(8)).collect();
        g.add(id, "F", "L", refs.clone());
        truth.insert(id, refs);
        check(&g, &truth);
    }
    assert_eq!(g.footprint().sample_level, 3);
    let before = g.member_pairs();
    g.add(1000, "F", "L", vec![rng.unit(8)]);
    g.remove(1000);
    assert_eq!(g.member_pairs(), before);
    // More references for a sampled person are counted like a new person's.
    let sampled = *truth.keys().find(|&&id| pairs::in_sample(id, 3)).unwrap();
    let extra = rng.unit(8);
    g.add(sampled, "F", "L", vec![extra.clone()]);
    truth.get_mut(&sampled).unwrap().push(extra);
    check(&g, &truth);
    for id in 0..38i64 {
        g.remove(id);
        truth.remove(&id);
        check(&g, &truth);
    }
    assert_eq!(g.footprint().sample_level, 0);
}
