//! The scan's arithmetic: int8 quantisation of unit vectors with a per-vector scale and a bound
//! on what it loses, and int8 dot products of one probe against many vectors (AVX2 when the CPU
//! has it, found at run time; otherwise a loop the compiler vectorises for the baseline target).
//! Integer dot products are exact, so the only error of a quantised score is the quantisation's,
//! which [`Quantised::error`] bounds.

/// A vector as `scale · codes`, codes in [-127, 127] (never -128: the AVX2 kernel negates them).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantised {
    pub codes: Vec<i8>,
    pub scale: f32,
    /// An upper bound on ‖x − scale·codes‖₂, the length of what rounding to codes lost.
    pub error: f32,
}

/// Quantise `x` with the scale that maps its largest magnitude to 127.
pub fn quantise(x: &[f32]) -> Quantised {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let codes: Vec<i8> = x
        .iter()
        .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let lost: f64 = x
        .iter()
        .zip(&codes)
        .map(|(&v, &c)| {
            let e = f64::from(v) - f64::from(scale) * f64::from(c);
            e * e
        })
        .sum();
    // Rounded up, so that the stored f32 is never below the f64 it stands for.
    let error = (lost.sqrt() * (1.0 + 1e-6) + 1e-12) as f32;
    Quantised {
        codes,
        scale,
        error,
    }
}

/// `out[j]` = codes of vector j (the `j`-th `dim`-sized block of `vectors`) · `probe`.
pub fn dots(probe: &[i8], vectors: &[i8], out: &mut [i32]) {
    let dim = probe.len();
    debug_assert_eq!(vectors.len(), dim * out.len());
    #[cfg(target_arch = "x86_64")]
    if dim & 31 == 0 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above) and the sizes are as `dots_avx2` needs.
        unsafe { dots_avx2(probe, vectors, out) };
        return;
    }
    dots_portable(probe, vectors, out);
}

/// The reference the AVX2 kernel is tested against, and the kernel without AVX2.
pub fn dots_portable(probe: &[i8], vectors: &[i8], out: &mut [i32]) {
    let dim = probe.len();
    for (o, v) in out.iter_mut().zip(vectors.chunks_exact(dim)) {
        *o = probe
            .iter()
            .zip(v)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum();
    }
}

/// 32 values at a time: `maddubs` multiplies unsigned by signed bytes, so the probe goes in as
/// |p| and its signs move onto the vector (`sign`); pairs of products (at most 2·127² < 2¹⁵)
/// land in i16 lanes, which `madd` against ones widens to i32. Four vectors at once share
/// one horizontal sum.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(probe: &[i8], vectors: &[i8], out: &mut [i32]) {
    use std::arch::x86_64::*;
    let dim = probe.len();
    let blocks = dim / 32;
    let ones = _mm256_set1_epi16(1);
    let load = |p: *const i8| _mm256_loadu_si256(p as *const __m256i);
    let n = out.len();
    let mut j = 0;
    while j + 4 <= n {
        let base = vectors.as_ptr().add(j * dim);
        let mut acc = [_mm256_setzero_si256(); 4];
        for b in 0..blocks {
            let p = load(probe.as_ptr().add(b * 32));
            let abs = _mm256_abs_epi8(p);
            for (v, a) in acc.iter_mut().enumerate() {
                let x = load(base.add(v * dim + b * 32));
                let pairs = _mm256_maddubs_epi16(abs, _mm256_sign_epi8(x, p));
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(pairs, ones));
            }
        }
        let h = _mm256_hadd_epi32(
            _mm256_hadd_epi32(acc[0], acc[1]),
            _mm256_hadd_epi32(acc[2], acc[3]),
        );
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128(out.as_mut_ptr().add(j) as *mut __m128i, sums);
        j += 4;
    }
    dots_portable(probe, &vectors[j * dim..], &mut out[j..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(n: usize, seed: u64) -> Vec<i8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 56) as i8).max(-127)
            })
            .collect()
    }

    #[test]
    fn the_simd_kernel_equals_the_plain_loop_including_extremes() {
        for dim in [32, 128, 512] {
            let n = 4 * 5 + 3; // blocks of four and a remainder
            let probe = codes(dim, dim as u64);
            let mut vectors = codes(n * dim, 99);
            // Every product at its largest magnitude, both signs.
            vectors[..dim].fill(127);
            vectors[dim..2 * dim].fill(-127);
            let extreme: Vec<i8> = (0..dim)
                .map(|i| if i % 2 == 0 { 127 } else { -127 })
                .collect();
            let (mut fast, mut plain) = (vec![0; n], vec![0; n]);
            dots(&extreme, &vectors, &mut fast);
            dots_portable(&extreme, &vectors, &mut plain);
            assert_eq!(fast, plain);
            dots(&probe, &vectors, &mut fast);
            dots_portable(&probe, &vectors, &mut plain);
            assert_eq!(fast, plain, "dim {dim}");
        }
    }

    #[test]
    fn the_stored_error_bounds_what_quantisation_lost() {
        let x = [0.6f32, -0.8, 0.0, 0.001];
        let q = quantise(&x);
        assert_eq!(q.codes[..2], [95, -127]);
        let lost: f64 = x
            .iter()
            .zip(&q.codes)
            .map(|(&v, &c)| (f64::from(v) - f64::from(q.scale) * f64::from(c)).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            f64::from(q.error) >= lost && lost > 0.0,
            "{} {lost}",
            q.error
        );
        assert_eq!(quantise(&[0.0, 0.0]).codes, vec![0, 0]);
    }
}
