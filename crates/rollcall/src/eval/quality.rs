//! `rollcall eval --quality`: how each registration quality measure relates to recognition, to
//! set the cuts of [`crate::quality`] from data. Two tables:
//!
//! - **Degraded references**: each person's first photo made worse step by step (downscaled,
//!   blurred, darkened, brightened), then registered as the server would (the subject, its
//!   measures, its embedding) and matched against the person's other, untouched photos. A row
//!   gives the median measure at that step and the share of those genuine photos accepted.
//! - **Photos as they are**: every photo as a reference against the same person's other photos,
//!   grouped by each measure: how many a cut would refuse and how well they and the rest are
//!   recognised.

use super::dataset::Dataset;
use crate::matching::{accepts, cosine};
use crate::subject::subject_index;
use rayon::prelude::*;
use rollcall_vision::crop::pil_bilinear_resize;
use rollcall_vision::quality::{measure, FaceMeasures};
use rollcall_vision::{FacePipeline, RgbImage};
use std::fmt::Write;

/// One way of making a reference photo worse, at one strength.
#[derive(Clone, Copy, Debug)]
enum Degradation {
    None,
    /// Both sides times this factor (Pillow's bilinear filter, antialiased).
    Scale(f32),
    /// A box blur of this radius, three passes (close to a Gaussian of σ ≈ radius).
    Blur(u32),
    /// Every channel times this factor.
    Dark(f32),
    /// This fraction of the way to white.
    Bright(f32),
}

const STEPS: &[Degradation] = &[
    Degradation::None,
    Degradation::Scale(0.5),
    Degradation::Scale(0.35),
    Degradation::Scale(0.28),
    Degradation::Scale(0.22),
    Degradation::Scale(0.16),
    Degradation::Blur(1),
    Degradation::Blur(2),
    Degradation::Blur(3),
    Degradation::Blur(4),
    Degradation::Blur(6),
    Degradation::Dark(0.5),
    Degradation::Dark(0.3),
    Degradation::Dark(0.2),
    Degradation::Dark(0.12),
    Degradation::Dark(0.07),
    Degradation::Bright(0.3),
    Degradation::Bright(0.5),
    Degradation::Bright(0.7),
    Degradation::Bright(0.85),
];

impl std::fmt::Display for Degradation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Degradation::None => write!(f, "as is"),
            Degradation::Scale(s) => write!(f, "scaled ×{s}"),
            Degradation::Blur(r) => write!(f, "blurred r={r}"),
            Degradation::Dark(k) => write!(f, "darkened ×{k}"),
            Degradation::Bright(k) => write!(f, "brightened {k}"),
        }
    }
}

fn degrade(image: &RgbImage, d: Degradation) -> RgbImage {
    let map = |f: &dyn Fn(f32) -> f32| RgbImage {
        width: image.width,
        height: image.height,
        data: image
            .data
            .iter()
            .map(|&v| f(f32::from(v)).round().clamp(0.0, 255.0) as u8)
            .collect(),
    };
    match d {
        Degradation::None => image.clone(),
        Degradation::Scale(s) => {
            let w = ((image.width as f32 * s).round() as u32).max(1);
            let h = ((image.height as f32 * s).round() as u32).max(1);
            pil_bilinear_resize(image, w, h)
        }
        Degradation::Blur(r) => (0..3).fold(image.clone(), |img, _| box_blur(&img, r as usize)),
        Degradation::Dark(k) => map(&|v| v * k),
        Degradation::Bright(k) => map(&|v| v + (255.0 - v) * k),
    }
}

/// A separable box blur of radius `r`, edges clamped.
fn box_blur(image: &RgbImage, r: usize) -> RgbImage {
    let (w, h) = (image.width as usize, image.height as usize);
    let pass = |src: &[u8], horizontal: bool| -> Vec<u8> {
        let mut out = vec![0u8; src.len()];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut sum = 0u32;
                    for k in 0..=2 * r {
                        let (xx, yy) = if horizontal {
                            ((x + k).saturating_sub(r).min(w - 1), y)
                        } else {
                            (x, (y + k).saturating_sub(r).min(h - 1))
                        };
                        sum += u32::from(src[(yy * w + xx) * 3 + c]);
                    }
                    out[(y * w + x) * 3 + c] = (sum / (2 * r as u32 + 1)) as u8;
                }
            }
        }
        out
    };
    let data = pass(&pass(&image.data, true), false);
    RgbImage {
        width: image.width,
        height: image.height,
        data,
    }
}

/// A photo registered as the server would: the subject's measures and embedding.
#[derive(Clone, Debug)]
struct Registered {
    measures: FaceMeasures,
    embedding: Vec<f32>,
}

fn register(pipeline: &FacePipeline, image: &RgbImage) -> Option<Registered> {
    let mut faces = pipeline.find_faces(image);
    let subject = subject_index(&faces, image.width, image.height)?;
    let detection = faces.swap_remove(subject);
    let measures = measure(image, &detection);
    let embedded = pipeline.embed_faces(image, vec![detection]).ok()?;
    let embedding = embedded.into_iter().next()?.embedding?.into_vec();
    Some(Registered {
        measures,
        embedding,
    })
}

/// A degraded reference's measures and its accepted genuine comparisons (count, total).
type Step = Option<(FaceMeasures, (usize, usize))>;

/// Accepted genuine comparisons of `reference` with `others` (count, total).
fn accepted(reference: &[f32], others: &[&Registered], threshold: f64) -> (usize, usize) {
    let hits = others
        .iter()
        .filter(|o| accepts(cosine(reference, &o.embedding), threshold))
        .count();
    (hits, others.len())
}

fn rate((hits, total): (usize, usize)) -> String {
    if total == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * hits as f64 / total as f64)
    }
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Run the measurement and return the report as Markdown tables.
pub fn report(
    pipeline: &FacePipeline,
    dataset: &Dataset,
    threads: usize,
    threshold: f64,
) -> anyhow::Result<String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    let people: Vec<_> = dataset
        .people
        .iter()
        .filter(|p| p.photos.len() >= 2)
        .collect();
    eprintln!(
        "eval --quality: {} people with two or more photos, {} steps per reference",
        people.len(),
        STEPS.len()
    );
    // Every photo as it is.
    let registered: Vec<Vec<Option<Registered>>> = pool.install(|| {
        people
            .par_iter()
            .map(|p| {
                p.photos
                    .iter()
                    .map(|photo| {
                        let bytes = std::fs::read(&photo.path).ok()?;
                        let image = pipeline.decode(&bytes).ok()?;
                        register(pipeline, &image)
                    })
                    .collect()
            })
            .collect()
    });
    // Each person's first photo, degraded step by step, against their other photos.
    let steps: Vec<Vec<Step>> = pool.install(|| {
        people
            .par_iter()
            .zip(&registered)
            .map(|(p, regs)| {
                let others: Vec<&Registered> = regs[1..].iter().flatten().collect();
                let image = std::fs::read(&p.photos[0].path)
                    .ok()
                    .and_then(|b| pipeline.decode(&b).ok());
                STEPS
                    .iter()
                    .map(|&d| {
                        let r = register(pipeline, &degrade(image.as_ref()?, d))?;
                        Some((r.measures, accepted(&r.embedding, &others, threshold)))
                    })
                    .collect()
            })
            .collect()
    });

    let mut out = String::new();
    writeln!(out, "Threshold {threshold}; {} people.\n", people.len())?;
    writeln!(
        out,
        "| reference | face found | median side px | median sharpness | median brightness | genuine accepted |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for (i, &d) in STEPS.iter().enumerate() {
        let found: Vec<&(FaceMeasures, (usize, usize))> =
            steps.iter().filter_map(|s| s[i].as_ref()).collect();
        let mut hits = (0, 0);
        for (_, (h, t)) in &found {
            hits.0 += h;
            hits.1 += t;
        }
        let med =
            |f: &dyn Fn(&FaceMeasures) -> f32| median(found.iter().map(|(m, _)| f(m)).collect());
        writeln!(
            out,
            "| {d} | {}/{} | {:.0} | {:.3} | {:.0} | {} |",
            found.len(),
            people.len(),
            med(&|m| m.side),
            med(&|m| m.sharpness),
            med(&|m| m.brightness),
            rate(hits)
        )?;
    }

    // Photos as they are: every photo as a reference, grouped by each measure's cut.
    let mut refs: Vec<(FaceMeasures, (usize, usize))> = Vec::new();
    for regs in &registered {
        for (i, r) in regs.iter().enumerate() {
            let Some(r) = r else { continue };
            let others: Vec<&Registered> = regs
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .filter_map(|(_, o)| o.as_ref())
                .collect();
            refs.push((r.measures, accepted(&r.embedding, &others, threshold)));
        }
    }
    writeln!(
        out,
        "\nEvery photo as a reference ({} photos with a face): what a cut refuses.\n",
        refs.len()
    )?;
    writeln!(
        out,
        "| cut | refused | genuine accepted, refused | genuine accepted, kept |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    type Cut = (&'static str, f32, fn(&FaceMeasures, f32) -> bool);
    let cuts: &[Cut] = &[
        ("side <", 40.0, |m, c| m.side < c),
        ("side <", 60.0, |m, c| m.side < c),
        ("sharpness <", 0.05, |m, c| m.sharpness < c),
        ("sharpness <", 0.1, |m, c| m.sharpness < c),
        ("sharpness <", 0.2, |m, c| m.sharpness < c),
        ("brightness <", 30.0, |m, c| m.brightness < c),
        ("brightness <", 50.0, |m, c| m.brightness < c),
        ("brightness >", 190.0, |m, c| m.brightness > c),
        ("brightness >", 210.0, |m, c| m.brightness > c),
        ("abs(yaw) >", 0.2, |m, c| m.yaw.abs() > c),
        ("abs(yaw) >", 0.25, |m, c| m.yaw.abs() > c),
        ("abs(yaw) >", 0.3, |m, c| m.yaw.abs() > c),
        ("abs(yaw) >", 0.35, |m, c| m.yaw.abs() > c),
        ("abs(yaw) >", 0.45, |m, c| m.yaw.abs() > c),
    ];
    for (name, cut, refused) in cuts {
        let (mut bad, mut good, mut n) = ((0, 0), (0, 0), 0);
        for (m, (h, t)) in &refs {
            if refused(m, *cut) {
                n += 1;
                bad.0 += h;
                bad.1 += t;
            } else {
                good.0 += h;
                good.1 += t;
            }
        }
        writeln!(
            out,
            "| {name} {cut} | {n} ({:.1}%) | {} | {} |",
            100.0 * n as f64 / refs.len().max(1) as f64,
            rate(bad),
            rate(good)
        )?;
    }
    Ok(out)
}
