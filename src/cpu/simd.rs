//! The inner loop of every stencil, compiled for the widest vector unit the CPU has.
//!
//! Each output element is `Σ_taps Σ_k w[k] · row[i + k]`, summed in tap order with a
//! fused multiply-add per tap (one rounding, one instruction where a separate multiply
//! and add take two: the passes of a σ = 2 Gaussian are bound by them). Every
//! instruction set fuses, and so does the scalar tail (`mul_add`, correctly rounded in
//! software on a CPU without FMA), so all give the same bits.

/// One tap row and its weights along the last axis: output `i` reads `row[i + k]` with `w[k]`.
pub(crate) type Tap<'a, F = f32> = (&'a [F], &'a [F]);

/// An element type the stencils compute in (f32, and f64 for float64 input), with the
/// lane widths of its vector loops on each instruction set.
pub(crate) trait Lane:
    Copy + Default + PartialEq + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + 'static
{
    /// `self + w · x`, fused (rounded once).
    fn madd(self, w: Self, x: Self) -> Self;

    /// [`accumulate`] for this type, on the widest vector unit the CPU has.
    fn accumulate(out: &mut [Self], taps: &[Tap<'_, Self>]);

    /// [`Strip::compute`] for this type.
    fn strip(strip: &Strip<'_, Self>, out: &mut [Self], w: &[Self]);

    /// `f` on this thread's scratch for [`accumulate_strided`]'s strips.
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
}

/// Implements [`Lane`] for `$t`: `[W, M, V]` lanes of [`accumulate_lanes`] and `[W, V]`
/// of [`Strip::planes`], for AVX-512, AVX2 and scalar code.
macro_rules! lane {
    ($t:ty, $scratch:ident,
     acc: [$a5:literal, $b5:literal, $c5:literal] [$a2:literal, $b2:literal, $c2:literal] [$a0:literal, $b0:literal, $c0:literal],
     strip: [$s5:literal, $t5:literal] [$s2:literal, $t2:literal] [$s0:literal, $t0:literal]) => {
        thread_local! {
            /// The strips of [`accumulate_strided`]'s input planes.
            static $scratch: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }

        impl Lane for $t {
            #[inline(always)]
            fn madd(self, w: $t, x: $t) -> $t {
                w.mul_add(x, self)
            }

            fn accumulate(out: &mut [$t], taps: &[Tap<'_, $t>]) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx512f,fma")]
                    fn avx512(out: &mut [$t], taps: &[Tap<'_, $t>]) {
                        accumulate_lanes::<$t, $a5, $b5, $c5>(out, taps)
                    }
                    #[target_feature(enable = "avx2,fma")]
                    fn avx2(out: &mut [$t], taps: &[Tap<'_, $t>]) {
                        accumulate_lanes::<$t, $a2, $b2, $c2>(out, taps)
                    }
                    if std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
                        return unsafe { avx512(out, taps) };
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                        return unsafe { avx2(out, taps) };
                    }
                }
                accumulate_lanes::<$t, $a0, $b0, $c0>(out, taps)
            }

            fn strip(strip: &Strip<'_, $t>, out: &mut [$t], w: &[$t]) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx512f,fma")]
                    fn avx512(strip: &Strip<'_, $t>, out: &mut [$t], w: &[$t]) {
                        strip.planes::<$s5, $t5>(out, w)
                    }
                    #[target_feature(enable = "avx2,fma")]
                    fn avx2(strip: &Strip<'_, $t>, out: &mut [$t], w: &[$t]) {
                        strip.planes::<$s2, $t2>(out, w)
                    }
                    if std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
                        return unsafe { avx512(strip, out, w) };
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                        return unsafe { avx2(strip, out, w) };
                    }
                }
                strip.planes::<$s0, $t0>(out, w)
            }

            fn with_scratch<R>(f: impl FnOnce(&mut Vec<$t>) -> R) -> R {
                $scratch.with_borrow_mut(f)
            }
        }
    };
}

lane!(f32, STRIP_SCRATCH_F32, acc: [256, 64, 16] [64, 32, 8] [32, 8, 4], strip: [64, 16] [16, 8] [16, 4]);
lane!(f64, STRIP_SCRATCH_F64, acc: [128, 32, 8] [32, 16, 4] [16, 4, 2], strip: [32, 8] [8, 4] [8, 2]);

/// `out[i] = Σ_(row, w) Σ_k w[k] · row[i + k]`; each row holds `out.len() + w.len() - 1` values.
pub(crate) fn accumulate<F: Lane>(out: &mut [F], taps: &[Tap<'_, F>]) {
    F::accumulate(out, taps)
}

/// Wide chunks of `W` lanes (many independent sums: each tap's loop overhead is spread
/// over more work), then chunks of `M` lanes (still enough independent sums to hide the
/// adder's latency, for rows shorter than `W`), then of `V` lanes (one vector), then
/// scalars.
#[inline(always)]
fn accumulate_lanes<F: Lane, const W: usize, const M: usize, const V: usize>(
    out: &mut [F],
    taps: &[Tap<'_, F>],
) {
    let i = accumulate_chunks::<F, W>(out, taps, 0);
    let i = accumulate_chunks::<F, M>(out, taps, i);
    let i = accumulate_chunks::<F, V>(out, taps, i);
    accumulate_chunks::<F, 1>(out, taps, i);
}

/// Computes `out[from..]` in chunks of `W` lanes; returns where the chunks stop.
#[inline(always)]
fn accumulate_chunks<F: Lane, const W: usize>(
    out: &mut [F],
    taps: &[Tap<'_, F>],
    from: usize,
) -> usize {
    let n = out.len();
    let mut i = from;
    while i + W <= n {
        let mut acc = [F::default(); W];
        for &(row, w) in taps {
            for (k, &wk) in w.iter().enumerate() {
                let src: &[F; W] = row[i + k..i + k + W].try_into().unwrap();
                for l in 0..W {
                    acc[l] = acc[l].madd(wk, src[l]);
                }
            }
        }
        out[i..i + W].copy_from_slice(&acc);
        i += W;
    }
    i
}

/// `out[i] = Σ_k w[k] · src[i + k·stride]` for every `i`, where `out` holds whole
/// planes of `stride` elements: output plane `j` reads input planes `j..j + w.len()`,
/// as [`accumulate`] would from the tap rows `src[k·stride..]` (one weight each).
///
/// Each output's sum is the one [`accumulate`] forms (same products, same order), so
/// the bits are the same. What changes is the memory traffic:
/// - the planes are cut into strips of [`STRIP`] lanes, and a strip of every input
///   plane is first copied into a small scratch whose planes are not a power of two
///   bytes apart (planes of 2^k bytes map every tap to the same cache sets, so a tap
///   evicts the one before it and every load comes from the shared cache);
/// - [`STRIDED_PLANES`] consecutive output planes are computed together from the
///   scratch, each input vector loaded once for all of them.
pub(crate) fn accumulate_strided<F: Lane>(out: &mut [F], src: &[F], stride: usize, w: &[F]) {
    assert!(
        stride > 0 && out.len().is_multiple_of(stride),
        "out holds whole planes"
    );
    let planes = out.len() / stride;
    let in_planes = planes + w.len().saturating_sub(1);
    assert!(
        w.is_empty() || src.len() >= in_planes * stride,
        "src holds every plane the taps read"
    );
    if !(stride * std::mem::size_of::<F>()).is_multiple_of(ALIASING_BYTES) {
        // Planes that do not share cache sets are read where they are.
        let rows: Vec<&[F]> = (0..in_planes).map(|r| &src[r * stride..]).collect();
        return accumulate_planes(out, stride, &rows, w);
    }
    F::with_scratch(|scratch| {
        scratch.resize(in_planes * STRIP_STRIDE, F::default());
        let mut c = 0;
        while c < stride {
            let lanes = STRIP.min(stride - c);
            for r in 0..in_planes {
                scratch[r * STRIP_STRIDE..r * STRIP_STRIDE + lanes]
                    .copy_from_slice(&src[r * stride + c..r * stride + c + lanes]);
            }
            let rows: Vec<&[F]> = (0..in_planes)
                .map(|r| &scratch[r * STRIP_STRIDE..])
                .collect();
            let strip = Strip {
                rows: &rows,
                out_stride: stride,
                out_from: c,
                lanes,
                planes,
            };
            strip.compute(out, w);
            c += lanes;
        }
    });
}

/// `out` holds planes of `plane_len` elements; output plane `j` is set to
/// `Σ_k w[k] · rows[j + k][..plane_len]`, as [`accumulate`] would sum the rows `j..`
/// with one weight each (the same bits), [`STRIDED_PLANES`] output planes at a time,
/// each input vector loaded once for all of them.
pub(crate) fn accumulate_planes<F: Lane>(out: &mut [F], plane_len: usize, rows: &[&[F]], w: &[F]) {
    assert!(
        plane_len > 0 && out.len().is_multiple_of(plane_len),
        "out holds whole planes"
    );
    let planes = out.len() / plane_len;
    assert!(
        w.is_empty() || rows.len() >= planes + w.len() - 1,
        "a row for every plane the taps read"
    );
    let strip = Strip {
        rows,
        out_stride: plane_len,
        out_from: 0,
        lanes: plane_len,
        planes,
    };
    strip.compute(out, w);
}

/// Planes a multiple of this many bytes apart map to the same sets of a core's first
/// level cache (and, from 64 KiB, of its second).
const ALIASING_BYTES: usize = 4096;

/// Lanes per strip of [`accumulate_strided`] (a kibibyte of each plane) ...
const STRIP: usize = 256;

/// ... held in the scratch this many elements apart (a cache line more than a strip).
const STRIP_STRIDE: usize = STRIP + 16;

/// Output planes computed together by [`accumulate_strided`].
const STRIDED_PLANES: usize = 4;

/// One strip of every plane: input plane `r` at `rows[r][..lanes]`, output plane `j`
/// at `out[j · out_stride + out_from..][..lanes]`.
pub(crate) struct Strip<'a, F> {
    rows: &'a [&'a [F]],
    out_stride: usize,
    out_from: usize,
    lanes: usize,
    planes: usize,
}

impl<F: Lane> Strip<'_, F> {
    /// Computes the strip of every output plane, with the widest vectors the CPU has.
    fn compute(&self, out: &mut [F], w: &[F]) {
        F::strip(self, out, w)
    }

    /// Groups of [`STRIDED_PLANES`] output planes, then single planes.
    #[inline(always)]
    fn planes<const W: usize, const V: usize>(&self, out: &mut [F], w: &[F]) {
        let mut j = 0;
        while j + STRIDED_PLANES <= self.planes {
            self.lanes::<STRIDED_PLANES, W, V>(out, w, j);
            j += STRIDED_PLANES;
        }
        while j < self.planes {
            self.lanes::<1, W, V>(out, w, j);
            j += 1;
        }
    }

    /// Output planes `first..first + P`, in chunks of `W`, `V` and 1 lanes.
    #[inline(always)]
    fn lanes<const P: usize, const W: usize, const V: usize>(
        &self,
        out: &mut [F],
        w: &[F],
        first: usize,
    ) {
        let mut c = 0;
        while c + W <= self.lanes {
            self.chunk::<P, W>(out, w, first, c);
            c += W;
        }
        while c + V <= self.lanes {
            self.chunk::<P, V>(out, w, first, c);
            c += V;
        }
        while c < self.lanes {
            self.chunk::<P, 1>(out, w, first, c);
            c += 1;
        }
    }

    /// Lanes `c..c + L` of output planes `first..first + P`: input plane `first + r`
    /// is loaded once and added, with weight `w[r - j]`, to every output plane
    /// `first + j` whose taps reach it (so each output sums its taps in tap order).
    #[inline(always)]
    fn chunk<const P: usize, const L: usize>(
        &self,
        out: &mut [F],
        w: &[F],
        first: usize,
        c: usize,
    ) {
        let k = w.len();
        let mut acc = [[F::default(); L]; P];
        for r in 0..k + P - 1 {
            let v: [F; L] = self.rows[first + r][c..c + L].try_into().unwrap();
            for (j, acc) in acc.iter_mut().enumerate() {
                if r >= j && r - j < k {
                    let wk = w[r - j];
                    for l in 0..L {
                        acc[l] = acc[l].madd(wk, v[l]);
                    }
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            let at = (first + j) * self.out_stride + self.out_from + c;
            out[at..at + L].copy_from_slice(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights that read the same backwards (`sym`) or not.
    fn weights(k: usize, sym: bool) -> Vec<f32> {
        (0..k)
            .map(|t| {
                let u = if sym { t.min(k - 1 - t) } else { t };
                0.3 + (u as f32 * 0.71).sin()
            })
            .collect()
    }

    /// The planes computed together (read in place or through the strips' scratch) give
    /// the bits of one tap row at a time, for any number of planes (groups and single
    /// ones) and any row length (every lane width), and equal the sums in f64.
    #[test]
    fn strided_planes_equal_tap_rows_bitwise() {
        for (stride, planes, k) in [
            (100, 11, 17),
            (37, 4, 3),
            (8, 6, 1),
            (600, 9, 2),
            (1000, 5, 17),
            (1024, 6, 17),
            (2048, 5, 4),
        ] {
            for sym in [false, true] {
                let src: Vec<f32> = (0..(planes + k - 1) * stride)
                    .map(|i| ((i * 53 % 97) as f32).cos() * 11.0)
                    .collect();
                let w = weights(k, sym);
                let mut fast = vec![f32::NAN; planes * stride];
                accumulate_strided(&mut fast, &src, stride, &w);
                let rows: Vec<Tap<'_>> =
                    (0..k).map(|t| (&src[t * stride..], &w[t..t + 1])).collect();
                let mut slow = vec![0.0; planes * stride];
                accumulate_chunks::<f32, 1>(&mut slow, &rows, 0);
                assert_eq!(
                    fast, slow,
                    "stride {stride} planes {planes} k {k} sym {sym}"
                );
                for (i, got) in fast.iter().enumerate() {
                    let want: f64 = (0..k)
                        .map(|t| f64::from(w[t]) * f64::from(src[i + t * stride]))
                        .sum();
                    assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
                }
            }
        }
    }

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
        accumulate_chunks::<f32, 1>(&mut slow, &taps, 0);
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
