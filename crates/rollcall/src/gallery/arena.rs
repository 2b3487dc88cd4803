//! The references of one size in contiguous arrays (struct of arrays, one slot per reference):
//! int8 codes with their scale and error bound, the owner's id, and the exact f32 values in an
//! [`ExactStore`]. A search scans the codes (split across cores for large arenas), keeps every
//! slot whose exact score could still be the best, and re-ranks those few with the exact values
//! by [`matching::cosine`], so its answer is [`matching::best_match`]'s over all references.
//!
//! Why the kept slots provably hold the best: with probe p and reference x (unit vectors,
//! ‖·‖ ≤ 1 + δ in f32), p̂ = s_p·c_p and x̂ = s_x·c_x their quantised forms, f = p − p̂ and
//! e = x − x̂, the scan's score a = s_p·s_x·(c_p·c_x) (an exact integer dot product) is p̂·x̂, and
//!
//!   |p·x − a| = |f·x + p̂·e| ≤ ‖f‖·‖x‖ + ‖p̂‖·‖e‖ ≤ (1+δ)‖f‖ + (1+δ+‖f‖)‖e‖ =: B(x)
//!
//! (Cauchy–Schwarz, ‖p̂‖ ≤ ‖p‖ + ‖f‖), plus ε for the f64 rounding of a and of the exact cosine.
//! So the exact best is at least L = max(a − B − ε), and a slot with a + B + ε < L scores
//! strictly below the best: dropping it cannot change the answer, not even a tie. The scan drops
//! a slot once a + B_max + ε is under the running L (B_max: B at the arena's largest ‖e‖), and
//! filters the rest against the final L. At 128-d ‖e‖ ≈ 0.008, so the kept slots are those
//! within ≈ 0.03 of the best: a handful, unless many references are near-duplicates (then all
//! of them, still exact).

use super::exact::ExactStore;
use super::kernel::{dots, quantise};
use crate::matching;
use std::sync::OnceLock;

/// |‖x‖ − 1| for the f32 unit vectors `Embedding` makes (its f32 norm may be off by ~d·2⁻²⁴), with room to spare.
const NORM_SLACK: f64 = 1e-3;
/// The f64 rounding of the scan's score and of the exact cosine, with room to spare.
const ROUNDING: f64 = 1e-9;
/// Codes scanned per thread at least: below this a thread costs more than it saves.
const PARALLEL_BYTES: usize = 2 << 20;
/// Slots whose dot products are computed at once before their scores are looked at.
const BLOCK: usize = 256;

#[derive(Debug)]
pub struct Arena {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    errors: Vec<f32>,
    owners: Vec<i64>,
    /// At least every slot's error (kept on removal: a bound may be loose, never short).
    max_error: f32,
    exact: ExactStore,
}

/// The probe's quantised form and the terms of B.
struct Probe {
    codes: Vec<i8>,
    scale: f64,
    /// (1+δ)‖f‖ + ε.
    fixed: f64,
    /// 1 + δ + ‖f‖, the factor of a slot's ‖e‖.
    per_error: f64,
}

impl Probe {
    fn of(values: &[f32]) -> Probe {
        let q = quantise(values);
        let f = f64::from(q.error);
        Probe {
            codes: q.codes,
            scale: f64::from(q.scale),
            fixed: (1.0 + NORM_SLACK) * f + ROUNDING,
            per_error: 1.0 + NORM_SLACK + f,
        }
    }
}

/// Slots still in the running, and the lower bound on the best they were kept against.
struct Kept {
    floor: f64,
    slots: Vec<(f64, u32)>,
}

fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Arena {
    pub fn new(dim: usize, spill_bytes: usize) -> Self {
        Arena {
            dim,
            codes: Vec::new(),
            scales: Vec::new(),
            errors: Vec::new(),
            owners: Vec::new(),
            max_error: 0.0,
            exact: ExactStore::new(dim, spill_bytes),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Bytes held in memory by the codes and per-slot arrays (not the exact copy).
    pub fn resident_bytes(&self) -> usize {
        self.codes.capacity()
            + 4 * (self.scales.capacity() + self.errors.capacity())
            + 8 * self.owners.capacity()
    }

    /// Whether the exact values were moved to the temporary file.
    pub fn spilled(&self) -> bool {
        self.exact.spilled()
    }

    /// Store a reference of `owner`; its slot.
    pub fn push(&mut self, owner: i64, values: &[f32]) -> u32 {
        debug_assert_eq!(values.len(), self.dim);
        let q = quantise(values);
        self.codes.extend_from_slice(&q.codes);
        self.scales.push(q.scale);
        self.errors.push(q.error);
        self.max_error = self.max_error.max(q.error);
        self.owners.push(owner);
        self.exact.push(values);
        (self.owners.len() - 1) as u32
    }

    /// Remove `slot` by moving the last slot into it; the owner of the moved slot, if one moved.
    pub fn swap_remove(&mut self, slot: u32) -> Option<i64> {
        let slot = slot as usize;
        let last = self.len() - 1;
        let dim = self.dim;
        self.codes
            .copy_within(last * dim..(last + 1) * dim, slot * dim);
        self.codes.truncate(last * dim);
        self.scales.swap_remove(slot);
        self.errors.swap_remove(slot);
        self.owners.swap_remove(slot);
        if let Err(e) = self.exact.swap_remove(slot) {
            tracing::error!("gallery: moving an exact record on disk failed: {e}");
        }
        (slot != last).then(|| self.owners[slot])
    }

    /// The exact values of `slot`.
    pub fn exact(&self, slot: u32) -> Option<Vec<f32>> {
        let mut out = vec![0f32; self.dim];
        match self.exact.read(slot as usize, &mut out) {
            Ok(()) => Some(out),
            Err(e) => {
                tracing::error!("gallery: reading an exact record failed: {e}");
                None
            }
        }
    }

    /// The owner of the reference most similar to `probe` and that cosine, exactly as
    /// [`matching::best_match`] over all references would answer (ties to the smaller owner).
    pub fn best(&self, probe: &[f32]) -> Option<(i64, f64)> {
        self.best_except(probe, None)
    }

    /// [`Arena::best`] over every owner but `except`.
    pub fn best_except(&self, probe: &[f32], except: Option<i64>) -> Option<(i64, f64)> {
        if self.owners.is_empty() || probe.len() != self.dim {
            return None;
        }
        let p = Probe::of(probe);
        let kept = self.scan(&p, except);
        let mut best: Option<(i64, f64)> = None;
        let mut values = vec![0f32; self.dim];
        for (a, slot) in kept.slots {
            if a + p.fixed + p.per_error * f64::from(self.errors[slot as usize]) < kept.floor {
                continue;
            }
            if let Err(e) = self.exact.read(slot as usize, &mut values) {
                tracing::error!("gallery: reading an exact record failed: {e}");
                continue;
            }
            let score = matching::cosine(probe, &values);
            let owner = self.owners[slot as usize];
            let better = match best {
                None => true,
                Some((id, s)) => score.total_cmp(&s).then_with(|| id.cmp(&owner)).is_gt(),
            };
            if better {
                best = Some((owner, score));
            }
        }
        best
    }

    /// The slots that may hold the best, over all slots, in parallel when worth it.
    fn scan(&self, p: &Probe, except: Option<i64>) -> Kept {
        let n = self.len();
        let parts = threads().min((n * self.dim / PARALLEL_BYTES).max(1));
        if parts == 1 {
            return self.scan_range(p, except, 0, n);
        }
        let step = n.div_ceil(parts);
        let parts: Vec<Kept> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .step_by(step)
                .skip(1)
                .map(|start| {
                    s.spawn(move || self.scan_range(p, except, start, (start + step).min(n)))
                })
                .collect();
            let mut all = vec![self.scan_range(p, except, 0, step.min(n))];
            all.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a scan thread")),
            );
            all
        });
        let floor = parts
            .iter()
            .map(|k| k.floor)
            .fold(f64::NEG_INFINITY, f64::max);
        Kept {
            floor,
            slots: parts.into_iter().flat_map(|k| k.slots).collect(),
        }
    }

    fn scan_range(&self, p: &Probe, except: Option<i64>, start: usize, end: usize) -> Kept {
        let dim = self.dim;
        let reach = p.fixed + p.per_error * f64::from(self.max_error);
        let mut kept = Kept {
            floor: f64::NEG_INFINITY,
            slots: Vec::new(),
        };
        let mut pruned_at = 64;
        let mut dot = [0i32; BLOCK];
        let mut from = start;
        while from < end {
            let to = (from + BLOCK).min(end);
            let out = &mut dot[..to - from];
            dots(&p.codes, &self.codes[from * dim..to * dim], out);
            for (k, &d) in out.iter().enumerate() {
                let j = from + k;
                if except == Some(self.owners[j]) {
                    continue;
                }
                let a = p.scale * f64::from(self.scales[j]) * f64::from(d);
                if a + reach < kept.floor {
                    continue;
                }
                let lower = a - p.fixed - p.per_error * f64::from(self.errors[j]);
                kept.floor = kept.floor.max(lower);
                kept.slots.push((a, j as u32));
            }
            if kept.slots.len() > pruned_at {
                let floor = kept.floor;
                kept.slots.retain(|(a, _)| a + reach >= floor);
                pruned_at = (kept.slots.len() * 2).max(64);
            }
            from = to;
        }
        kept
    }
}
