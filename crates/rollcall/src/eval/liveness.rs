//! `rollcall eval-liveness`: how often the sequence check ([`crate::liveness::sequence`])
//! accepts an attack (APCER) and refuses a real person (BPCER), the names of ISO/IEC 30107-3,
//! on data made from a labelled folder-per-person photo set, since no spoofing data set can be
//! had: *bona fide* sequences are one person's photos ordered by measured yaw (out to the
//! asked side and back); *attacks* are one flat photo of them seen as a held-up picture
//! (perspective tilts, shifts, scale, shake, blur, JPEG; [`crate::liveness::synth`]), a
//! still photo, and bona fide sequences replayed against the other challenge. Seeded: the
//! same root and options give the same figures.

use super::dataset::{Dataset, SplitMix64};
use crate::liveness::pose::yaw;
use crate::liveness::sequence::{self, Cuts, Frame, Refusal, MAX_FRAMES};
use crate::liveness::synth::{blur, jpeg, warp, Pose};
use crate::liveness::Instruction;
use crate::subject::clear_subject;
use rayon::prelude::*;
use rollcall_vision::{Detection, Embedding, FacePipeline, RgbImage};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What to measure on.
#[derive(Debug, Clone)]
pub struct Options {
    /// People with fewer usable photos (one clear face) make no bona fide sequence.
    pub min_photos: usize,
    /// At most this many such people (the first by name).
    pub limit: Option<usize>,
    /// Frames of each synthesised attack.
    pub frames: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_photos: 8,
            limit: None,
            frames: 10,
            seed: 13,
        }
    }
}

/// One kind of attack's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttackFigures {
    pub attacks: usize,
    pub accepted: usize,
    pub apcer: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivenessReport {
    /// Attacks accepted, over all attacks.
    pub apcer: f64,
    /// Bona fide sequences refused, over all of them.
    pub bpcer: f64,
    pub attacks: usize,
    pub bona_fide: usize,
    pub by_attack: BTreeMap<&'static str, AttackFigures>,
    /// Why bona fide sequences were refused (`reason` → count).
    pub bona_fide_refusals: BTreeMap<&'static str, usize>,
    pub people: usize,
    /// The agreement asked of the frames: the threshold in force on a fresh server.
    pub identity_threshold: f32,
    /// Recognition from the best single frame of a bona fide sequence against the fused
    /// embedding of all its frames.
    pub fusion: Fusion,
}

/// Recognition by one frame or by the sequence: each person's reference photo (their first
/// usable photo by name, as if registered with it) is set aside, and a bona fide sequence is
/// made of the rest as for the liveness figures (the photos that agree); the sequence is
/// compared with the reference (genuine) and every other person's sequence is (a stranger,
/// impostor). At the threshold in force and at equal false-accept rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fusion {
    /// Genuine comparisons (one a person).
    pub genuine: usize,
    /// Impostor comparisons (each person's sequence against every other person's reference).
    pub impostor: usize,
    /// The threshold in force (as `identity_threshold`).
    pub threshold: f32,
    /// The sequence's most frontal frame (the smallest |yaw|): the photo a single-frame kiosk
    /// would take.
    pub single_frame: Recognition,
    /// The re-normalised mean of the sequence's frames' embeddings (what the server matches).
    pub fused: Recognition,
}

/// True and false accepts of one way of matching.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recognition {
    /// At the threshold in force.
    pub true_accepts: usize,
    pub tar: f64,
    pub false_accepts: usize,
    pub far: f64,
    /// The genuine similarities' mean and the impostor similarities' highest.
    pub genuine_mean: f32,
    pub impostor_max: f32,
    /// The true-accept rate with the threshold set from the impostors themselves, so that
    /// at most this false-accept rate is allowed: the comparison at equal FAR.
    pub at_far: Vec<AtFar>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtFar {
    pub far: f64,
    /// A genuine similarity must be above this impostor similarity (null: above none).
    pub above: Option<f32>,
    pub tar: f64,
}

/// The false-accept rates the comparison is made at (0: above every impostor).
pub const FUSION_FARS: [f64; 3] = [0.0, 0.01, 0.05];

/// One person's probe: their reference and their sequence's two faces.
struct Probe {
    reference: Embedding,
    single: Embedding,
    fused: Embedding,
}

/// The reference and the two faces of the sequence made of `rest` (indices into `seen`).
/// `None` when fewer than three photos make the sequence (a turn out and back needs them).
fn probe(reference: usize, rest: &[usize], seen: &[Seen]) -> Option<Probe> {
    let embedding = |i: usize| seen[i].subject.as_ref().map(|(_, e)| e.clone());
    if rest.len() < 3 {
        return None;
    }
    let frames: Vec<Embedding> = rest.iter().filter_map(|&i| embedding(i)).collect();
    let frontal = *rest.iter().min_by(|&&a, &&b| {
        let y = |i: usize| yaw(&seen[i].faces[0].landmarks).abs();
        y(a).total_cmp(&y(b))
    })?;
    Some(Probe {
        reference: embedding(reference)?,
        single: embedding(frontal)?,
        fused: sequence::fuse(&frames)?,
    })
}

fn recognition(genuine: &[f32], impostor: &[f32], threshold: f32) -> Recognition {
    let accepted = |scores: &[f32], t: f32| scores.iter().filter(|&&s| s >= t).count();
    let true_accepts = accepted(genuine, threshold);
    let false_accepts = accepted(impostor, threshold);
    let mut sorted = impostor.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let at_far = FUSION_FARS
        .iter()
        .map(|&far| {
            // At most `allowed` impostors may pass: a genuine score passes when it is above the
            // next one.
            let allowed = (far * sorted.len() as f64).floor() as usize;
            let above = sorted.get(allowed).copied();
            let passed = genuine
                .iter()
                .filter(|&&g| above.is_none_or(|a| g > a))
                .count();
            AtFar {
                far,
                above,
                tar: rate(passed, genuine.len()),
            }
        })
        .collect();
    Recognition {
        true_accepts,
        tar: rate(true_accepts, genuine.len()),
        false_accepts,
        far: rate(false_accepts, impostor.len()),
        genuine_mean: if genuine.is_empty() {
            0.0
        } else {
            genuine.iter().sum::<f32>() / genuine.len() as f32
        },
        impostor_max: sorted.first().copied().unwrap_or(f32::NEG_INFINITY),
        at_far,
    }
}

fn fusion(probes: &[Probe], threshold: f32) -> Fusion {
    let mut genuine = (Vec::new(), Vec::new());
    let mut impostor = (Vec::new(), Vec::new());
    for (p, probe) in probes.iter().enumerate() {
        for (r, reference) in probes.iter().enumerate() {
            let scores = if p == r { &mut genuine } else { &mut impostor };
            scores
                .0
                .push(probe.single.similarity(&reference.reference).0);
            scores
                .1
                .push(probe.fused.similarity(&reference.reference).0);
        }
    }
    Fusion {
        genuine: genuine.0.len(),
        impostor: impostor.0.len(),
        threshold,
        single_frame: recognition(&genuine.0, &impostor.0, threshold),
        fused: recognition(&genuine.1, &impostor.1, threshold),
    }
}

/// One frame as the server sees it: its faces and the clear subject's embedding.
struct Seen {
    faces: Vec<Detection>,
    width: u32,
    height: u32,
    subject: Option<(usize, Embedding)>,
}

fn see(pipeline: &FacePipeline, image: &RgbImage) -> Seen {
    let faces = pipeline.find_faces(image);
    let subject = clear_subject(&faces, image.width, image.height).and_then(|s| {
        let face = pipeline.embed_faces(image, vec![faces[s].clone()]).ok()?;
        Some((s, face.into_iter().next()?.embedding?))
    });
    Seen {
        faces,
        width: image.width,
        height: image.height,
        subject,
    }
}

/// The server's verdict on a sequence of seen frames.
fn judge(frames: &[&Seen], instruction: Instruction, identity: f32) -> Result<(), Refusal> {
    let cuts = Cuts::DEFAULT;
    let views: Vec<Frame> = frames
        .iter()
        .map(|s| Frame {
            faces: &s.faces,
            width: s.width,
            height: s.height,
        })
        .collect();
    let subjects = sequence::track(&views, &cuts)?;
    let mut embeddings = Vec::with_capacity(frames.len());
    let mut landmarks = Vec::with_capacity(frames.len());
    for (i, (seen, &s)) in frames.iter().zip(&subjects).enumerate() {
        match &seen.subject {
            Some((index, e)) if *index == s => embeddings.push(e.clone()),
            _ => return Err(Refusal::NoFace { frame: i }),
        }
        landmarks.push(seen.faces[s].landmarks);
    }
    sequence::identity(&embeddings, identity)?;
    sequence::motion(instruction, &landmarks, &cuts).map(|_| ())
}

/// The order of a bona fide turn: from the photo furthest to the side opposite the movement,
/// out to the other side, and back. At most [`MAX_FRAMES`]: with more photos than fit out and
/// back, evenly spaced ones in yaw order (the two ends always), so the turn still comes back.
pub fn turn_order(yaws: &[f32], instruction: Instruction) -> Vec<usize> {
    let mut order: Vec<usize> = (0..yaws.len()).collect();
    let s = instruction.yaw_sign();
    order.sort_by(|&a, &b| (s * yaws[a]).total_cmp(&(s * yaws[b])));
    let most = MAX_FRAMES.div_ceil(2);
    if order.len() > most {
        let last = order.len() - 1;
        order = (0..most).map(|k| order[k * last / (most - 1)]).collect();
    }
    let back: Vec<usize> = order.iter().rev().skip(1).copied().collect();
    order.extend(back);
    order
}

/// The kinds of synthesised attack, in the report's order.
pub const ATTACKS: [&str; 8] = [
    "still",
    "tilt",
    "tilt_both",
    "shift_scale",
    "shake",
    "blur",
    "jpeg",
    "replay",
];

/// Uniform in [lo, hi).
fn uniform(rng: &mut SplitMix64, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * ((rng.next() >> 40) as f32 / (1u64 << 24) as f32)
}

/// The poses of a picture over `n` frames for an attack kind: a tilt out and back (the
/// nearest a picture comes to a turning head), or a still, a shift and scale, a shake.
fn poses(kind: &str, n: usize, rng: &mut SplitMix64) -> Vec<Pose> {
    let side = if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
    let yaw = side * uniform(rng, 20.0, 50.0);
    let pitch = uniform(rng, -25.0, 25.0);
    let (dx, dy, ds) = (
        uniform(rng, -0.06, 0.06),
        uniform(rng, -0.06, 0.06),
        uniform(rng, -0.15, 0.2),
    );
    (0..n)
        .map(|i| {
            let t = (i as f32 / (n.max(2) - 1) as f32 * std::f32::consts::PI).sin();
            let mut pose = Pose {
                scale: 1.0,
                ..Pose::default()
            };
            match kind {
                "tilt" | "blur" | "jpeg" => pose.yaw_deg = yaw * t,
                "tilt_both" => {
                    pose.yaw_deg = yaw * t;
                    pose.pitch_deg = pitch * t;
                }
                "shift_scale" => {
                    pose.shift = [dx * t, dy * t];
                    pose.scale = 1.0 + ds * t;
                }
                "shake" => {
                    pose.yaw_deg = uniform(rng, -8.0, 8.0);
                    pose.pitch_deg = uniform(rng, -8.0, 8.0);
                    pose.shift = [uniform(rng, -0.02, 0.02), uniform(rng, -0.02, 0.02)];
                }
                _ => {}
            }
            pose
        })
        .collect()
}

/// The frames of one synthesised attack on `photo`.
fn attack_frames(
    pipeline: &FacePipeline,
    photo: &RgbImage,
    kind: &str,
    n: usize,
    rng: &mut SplitMix64,
) -> Vec<Seen> {
    let radius = 1 + (rng.next() % 2) as u32;
    let quality = uniform(rng, 30.0, 60.0);
    let frames: Vec<RgbImage> = poses(kind, n, rng)
        .into_iter()
        .filter_map(|pose| {
            let h = pose.homography(photo.width, photo.height)?;
            let warped = warp(photo, &h)?;
            match kind {
                "blur" => Some(blur(&warped, radius)),
                "jpeg" => {
                    let bytes = jpeg(&warped, quality).ok()?;
                    pipeline.decode(&bytes).ok()
                }
                _ => Some(warped),
            }
        })
        .collect();
    frames.par_iter().map(|f| see(pipeline, f)).collect()
}

/// Measure on the people of `root` with at least `min_photos` usable photos.
pub fn evaluate(
    pipeline: &FacePipeline,
    root: &Path,
    options: &Options,
) -> anyhow::Result<LivenessReport> {
    let dataset = Dataset::scan(root, None)?;
    let identity = identity_threshold(pipeline);
    let mut rng = SplitMix64(options.seed);
    let mut by_attack: BTreeMap<&'static str, AttackFigures> = ATTACKS
        .iter()
        .map(|k| (*k, AttackFigures::default()))
        .collect();
    let mut bona_fide = 0;
    let mut bona_fide_refused = 0;
    let mut refusals: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut people = 0;
    let mut probes = Vec::new();
    for person in dataset
        .people
        .iter()
        .filter(|p| p.photos.len() >= options.min_photos)
    {
        if options.limit.is_some_and(|l| people >= l) {
            break;
        }
        let images: Vec<RgbImage> = person
            .photos
            .iter()
            .filter_map(|p| pipeline.decode(&std::fs::read(&p.path).ok()?).ok())
            .collect();
        let seen: Vec<Seen> = images.par_iter().map(|i| see(pipeline, i)).collect();
        let usable = usable(&seen);
        if usable.len() < options.min_photos {
            continue;
        }
        // Frames of one session agree far more than photos of one person from different days:
        // the bona fide sequence is made of the photos that agree at the identity threshold.
        let agree = agreeing(&usable, &seen, identity);
        people += 1;
        let sequence = agreeing(&usable[1..], &seen, identity);
        probes.extend(probe(usable[0], &sequence, &seen));
        let yaws = yaws(&agree, &seen);
        for instruction in Instruction::ALL {
            let order = turn_order(&yaws, instruction);
            let frames: Vec<&Seen> = order.iter().map(|&k| &seen[agree[k]]).collect();
            bona_fide += 1;
            if let Err(r) = judge(&frames, instruction, identity) {
                bona_fide_refused += 1;
                *refusals.entry(r.reason()).or_default() += 1;
            }
            // The same sequence replayed when the other movement is asked.
            let other = match instruction {
                Instruction::TurnLeft => Instruction::TurnRight,
                Instruction::TurnRight => Instruction::TurnLeft,
            };
            count(
                &mut by_attack,
                "replay",
                judge(&frames, other, identity).is_ok(),
            );
        }
        // The picture an attacker would hold up: the most frontal photo.
        let frontal = (0..agree.len())
            .min_by(|&a, &b| yaws[a].abs().total_cmp(&yaws[b].abs()))
            .map_or(usable[0], |k| agree[k]);
        let photo = &images[frontal];
        for kind in ATTACKS.iter().filter(|k| **k != "replay") {
            let frames = attack_frames(pipeline, photo, kind, options.frames, &mut rng);
            let refs: Vec<&Seen> = frames.iter().collect();
            for instruction in Instruction::ALL {
                count(
                    &mut by_attack,
                    kind,
                    judge(&refs, instruction, identity).is_ok(),
                );
            }
        }
    }
    if people == 0 {
        anyhow::bail!(
            "no person under {} has {} photos with one clear face: nothing to measure",
            root.display(),
            options.min_photos
        );
    }
    let attacks: usize = by_attack.values().map(|f| f.attacks).sum();
    let accepted: usize = by_attack.values().map(|f| f.accepted).sum();
    for f in by_attack.values_mut() {
        f.apcer = rate(f.accepted, f.attacks);
    }
    Ok(LivenessReport {
        apcer: rate(accepted, attacks),
        bpcer: rate(bona_fide_refused, bona_fide),
        attacks,
        bona_fide,
        by_attack,
        bona_fide_refusals: refusals,
        people,
        identity_threshold: identity,
        fusion: fusion(&probes, identity),
    })
}

/// The photos with one face, and an embedding for it.
fn usable(seen: &[Seen]) -> Vec<usize> {
    (0..seen.len())
        .filter(|&i| seen[i].faces.len() == 1 && seen[i].subject.is_some())
        .collect()
}

/// The measured yaw of each of `photos` (usable ones).
fn yaws(photos: &[usize], seen: &[Seen]) -> Vec<f32> {
    photos
        .iter()
        .map(|&i| yaw(&seen[i].faces[0].landmarks))
        .collect()
}

/// A bona fide turn made of `images`, one person's photos, as the evaluation makes its
/// sequences: the photos with one face that agree at the threshold in force, ordered by their
/// measured yaw out to the side `instruction` asks and back (indices into `images`). For the
/// tests that need a person turning their head where there are only photos.
pub fn bona_fide_order(
    pipeline: &FacePipeline,
    images: &[RgbImage],
    instruction: Instruction,
) -> Vec<usize> {
    let seen: Vec<Seen> = images.par_iter().map(|i| see(pipeline, i)).collect();
    let agree = agreeing(&usable(&seen), &seen, identity_threshold(pipeline));
    turn_order(&yaws(&agree, &seen), instruction)
        .into_iter()
        .map(|k| agree[k])
        .collect()
}

/// The largest set of `photos` (found greedily, from the one closest to all the others) whose
/// embeddings agree pairwise at `min`.
fn agreeing(photos: &[usize], seen: &[Seen], min: f32) -> Vec<usize> {
    let embedding = |i: usize| seen[i].subject.as_ref().map(|(_, e)| e);
    let similarity = |a: usize, b: usize| match (embedding(a), embedding(b)) {
        (Some(x), Some(y)) => x.similarity(y).0,
        _ => -1.0,
    };
    let mut order: Vec<(f32, usize)> = photos
        .iter()
        .map(|&a| (photos.iter().map(|&b| similarity(a, b)).sum::<f32>(), a))
        .collect();
    order.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut chosen: Vec<usize> = Vec::new();
    for (_, a) in order {
        if chosen.iter().all(|&b| similarity(a, b) >= min) {
            chosen.push(a);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// The threshold in force on a fresh server with this model at the default false-accept rate:
/// what the server asks of the frames' agreement.
fn identity_threshold(pipeline: &FacePipeline) -> f32 {
    let default = crate::domain::Threshold::new(pipeline.default_threshold());
    match default {
        Ok(default) => {
            let rule = crate::operating_point::Rule::for_model(
                pipeline.model_id(),
                crate::operating_point::DEFAULT_FALSE_ACCEPT_RATE,
                default,
            );
            crate::gallery::Gallery::new(pipeline.model_id(), rule)
                .operating_point()
                .threshold
                .value()
        }
        Err(_) => pipeline.default_threshold(),
    }
}

fn count(by_attack: &mut BTreeMap<&'static str, AttackFigures>, kind: &str, accepted: bool) {
    if let Some(f) = by_attack.get_mut(kind) {
        f.attacks += 1;
        f.accepted += usize::from(accepted);
    }
}

fn rate(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

/// The report as a table for a person.
pub fn text(r: &LivenessReport) -> String {
    let mut out = format!(
        "liveness on {} people: {} bona fide sequences, {} attacks\n\
         APCER {:.2}% (attacks accepted)   BPCER {:.2}% (bona fide refused)\n\n\
         attack        attacks  accepted  APCER\n",
        r.people,
        r.bona_fide,
        r.attacks,
        100.0 * r.apcer,
        100.0 * r.bpcer
    );
    for (kind, f) in &r.by_attack {
        out.push_str(&format!(
            "{kind:<13} {:>7}  {:>8}  {:>5.2}%\n",
            f.attacks,
            f.accepted,
            100.0 * f.apcer
        ));
    }
    if !r.bona_fide_refusals.is_empty() {
        let why: Vec<String> = r
            .bona_fide_refusals
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!("\nbona fide refused: {}\n", why.join(", ")));
    }
    let f = &r.fusion;
    out.push_str(&format!(
        "\nrecognition, {} genuine and {} impostor comparisons (threshold {:.4}):\n\
         probe          TAR      FAR   genuine mean  impostor max",
        f.genuine, f.impostor, f.threshold
    ));
    for far in FUSION_FARS {
        out.push_str(&format!("  TAR@FAR {:.0}%", 100.0 * far));
    }
    out.push('\n');
    for (name, m) in [("single frame", &f.single_frame), ("fused", &f.fused)] {
        out.push_str(&format!(
            "{name:<13} {:>5.1}%  {:>5.2}%  {:>12.4}  {:>12.4}",
            100.0 * m.tar,
            100.0 * m.far,
            m.genuine_mean,
            m.impostor_max
        ));
        for a in &m.at_far {
            out.push_str(&format!("  {:>10.1}%", 100.0 * a.tar));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_goes_out_to_the_asked_side_and_back() {
        let yaws = [0.1, -0.2, 0.3, 0.0];
        assert_eq!(
            turn_order(&yaws, Instruction::TurnLeft),
            [1, 3, 0, 2, 0, 3, 1]
        );
        assert_eq!(
            turn_order(&yaws, Instruction::TurnRight),
            [2, 0, 3, 1, 3, 0, 2]
        );
    }

    #[test]
    fn a_turn_of_many_photos_still_comes_back() {
        let yaws: Vec<f32> = (0..40).map(|i| i as f32 / 40.0).collect();
        let order = turn_order(&yaws, Instruction::TurnLeft);
        assert!(order.len() <= MAX_FRAMES, "{order:?}");
        assert_eq!((order[0], order[order.len() - 1]), (0, 0), "{order:?}");
        assert!(order.contains(&39), "out to the far end: {order:?}");
    }
}
