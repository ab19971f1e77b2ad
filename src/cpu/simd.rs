//! The inner loop of every stencil, compiled for the widest vector unit the CPU has.
//!
//! Each output element is `Σ_taps Σ_k w[k] · row[i + k]`, summed in tap order with a
//! separate multiply and add (no fused multiply-add), so every instruction set gives
//! the same bits, and so does the scalar tail.

/// One tap row and its weights along the last axis: output `i` reads `row[i + k]` with `w[k]`.
pub(crate) type Tap<'a> = (&'a [f32], &'a [f32]);

/// `out[i] = Σ_(row, w) Σ_k w[k] · row[i + k]`; each row holds `out.len() + w.len() - 1` values.
pub(crate) fn accumulate(out: &mut [f32], taps: &[Tap<'_>]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { accumulate_avx512(out, taps) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { accumulate_avx2(out, taps) };
        }
    }
    accumulate_lanes::<32, 8, 4>(out, taps)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn accumulate_avx512(out: &mut [f32], taps: &[Tap<'_>]) {
    accumulate_lanes::<256, 64, 16>(out, taps)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(out: &mut [f32], taps: &[Tap<'_>]) {
    accumulate_lanes::<64, 32, 8>(out, taps)
}

/// Wide chunks of `W` lanes (many independent sums: each tap's loop overhead is spread
/// over more work), then chunks of `M` lanes (still enough independent sums to hide the
/// adder's latency, for rows shorter than `W`), then of `V` lanes (one vector), then
/// scalars.
#[inline(always)]
fn accumulate_lanes<const W: usize, const M: usize, const V: usize>(
    out: &mut [f32],
    taps: &[Tap<'_>],
) {
    let i = accumulate_chunks::<W>(out, taps, 0);
    let i = accumulate_chunks::<M>(out, taps, i);
    let i = accumulate_chunks::<V>(out, taps, i);
    accumulate_chunks::<1>(out, taps, i);
}

/// Computes `out[from..]` in chunks of `W` lanes; returns where the chunks stop.
#[inline(always)]
fn accumulate_chunks<const W: usize>(out: &mut [f32], taps: &[Tap<'_>], from: usize) -> usize {
    let n = out.len();
    let mut i = from;
    while i + W <= n {
        let mut acc = [0.0f32; W];
        for &(row, w) in taps {
            for (k, &wk) in w.iter().enumerate() {
                let src: &[f32; W] = row[i + k..i + k + W].try_into().unwrap();
                for l in 0..W {
                    acc[l] += wk * src[l];
                }
            }
        }
        out[i..i + W].copy_from_slice(&acc);
        i += W;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_scalar_paths_agree_bitwise() {
        let row: Vec<f32> = (0..300)
            .map(|i| ((i * 37 % 101) as f32).sin() * 7.3)
            .collect();
        let w = [0.1f32, -0.7, 0.33, 1.9, 0.05];
        let row2: Vec<f32> = row.iter().map(|x| x * 0.5 + 1.0).collect();
        let taps = [(&row[..], &w[..]), (&row2[..], &w[1..3])];
        let n = 290;
        let mut fast = vec![0.0; n];
        accumulate(&mut fast, &taps);
        let mut slow = vec![0.0; n];
        accumulate_chunks::<1>(&mut slow, &taps, 0);
        assert_eq!(fast, slow);
        let expect: f32 = w
            .iter()
            .enumerate()
            .map(|(k, w)| w * row[7 + k])
            .sum::<f32>()
            + w[1..3]
                .iter()
                .enumerate()
                .map(|(k, w)| w * row2[7 + k])
                .sum::<f32>();
        assert!((fast[7] - expect).abs() < 1e-4);
    }
}
