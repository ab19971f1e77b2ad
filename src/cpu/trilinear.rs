//! The common cases of a geometric transform, linear interpolation of a 3-D array (an
//! affine transform or rotation at order 1, with every axis interpolated; a deskew,
//! whose leading axes pass straight through), one output row at a time: the taps of
//! each output inside the array, as scipy sums them, four outputs to a vector where the
//! CPU has AVX2 and the samples are float32.
//!
//! The vector path does the scalar path's operations in the same order (a separate
//! multiply and add for each coordinate, the floor, `1 − (c − f)` and its complement,
//! each tap times the axes' weights in axis order, summed in C order), so both give the
//! same bits, and so does a run cut into other blocks.

#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(target_arch = "x86_64")]
use crate::dtype::DType;
use crate::dtype::Element;
use crate::stage::floor;

/// One row of a 3-D linear transform that interpolates its last axis (and each leading
/// axis, unless read straight through): per axis, the coordinate's partial sum over the
/// row's leading axes and the matrix's last column, the highest coordinate whose two
/// taps lie inside the array, and the taps' offsets.
pub(super) struct Trilinear<'s, V> {
    data: &'s [V],
    base: [f64; 3],
    slope: [f64; 3],
    upper: [f64; 3],
    first: [i64; 3],
    tables: [&'s [usize]; 3],
    /// Per axis, the offset of padded index `first` and the step between indices,
    /// where every axis's table is such a progression and the data fit 32-bit offsets
    /// (the vector path's gathers).
    affine: Option<[(usize, usize); 3]>,
    /// scipy's `constant` mode's value: an output with a coordinate outside
    /// `[0, n − 1]` on any axis is this constant.
    cval: Option<f64>,
    /// The offsets of the leading axes that pass straight through (their coordinate
    /// is the output's index: one tap of weight 1), for this row.
    fixed: [Option<usize>; 2],
    /// Whether eight-lane vectors may be used where the CPU has them (the tests turn
    /// it off to hold the four-lane path to the scalar one too).
    wide: bool,
}

impl<'s, V: Element> Trilinear<'s, V> {
    /// The row whose coordinates' partial sums are `bases`, with the matrix's last column
    /// `slope`, reading `data` through the per-axis offset `tables` (from padded index
    /// `first`) over arrays of `lens` samples per axis.
    pub(super) fn new(
        data: &'s [V],
        bases: &[f64],
        slope: [f64; 3],
        first: &[i64],
        tables: [&'s [usize]; 3],
        lens: &[usize],
    ) -> Self {
        Trilinear {
            data,
            base: [bases[0], bases[1], bases[2]],
            slope,
            upper: [0, 1, 2].map(|h| (lens[h] - 1) as f64),
            first: [first[0], first[1], first[2]],
            tables,
            affine: None,
            cval: None,
            fixed: [None; 2],
            wide: true,
        }
    }

    /// Allows the vector path, given each table's progression ([`progression`]).
    pub(super) fn with_progressions(mut self, steps: &[Option<(usize, usize)>]) -> Self {
        // Its indices and offsets are 32-bit: the array's coordinates and the block's
        // elements must fit.
        let fits = i32::try_from(self.data.len()).is_ok()
            && self.upper.iter().all(|&u| u < i32::MAX as f64);
        if fits && let [Some(a), Some(b), Some(c)] = steps {
            self.affine = Some([*a, *b, *c]);
        }
        self
    }

    /// Reads leading axis `h` (0 or 1) straight through at `offset` for this row.
    pub(super) fn through(mut self, h: usize, offset: usize) -> Self {
        self.fixed[h] = Some(offset);
        self
    }

    /// Sets outputs with a coordinate outside `[0, n − 1]` on any axis to `cval`
    /// without the general path (scipy's `constant` mode).
    pub(super) fn with_constant(mut self, cval: Option<f64>) -> Self {
        self.cval = cval;
        self
    }

    /// The output at last-axis index `x`, where its eight taps lie inside the array
    /// (else `None`).
    #[inline(always)]
    pub(super) fn at(&self, x: f64) -> Option<f64> {
        let mut o = [[0usize; 2]; 3];
        let mut w = [[1.0f64; 2]; 3];
        let mut n = [2usize; 3];
        for h in 0..3 {
            if h < 2
                && let Some(f) = self.fixed[h]
            {
                o[h][0] = f;
                n[h] = 1;
                continue;
            }
            let c = self.base[h] + x * self.slope[h];
            if !(c >= 0.0 && c < self.upper[h]) {
                return None;
            }
            let f = floor(c);
            let i = (f as i64 - self.first[h]) as usize;
            let table = self.tables[h];
            o[h] = [table[i], table[i + 1]];
            w[h][0] = 1.0 - (c - f);
            w[h][1] = 1.0 - w[h][0];
        }
        let v = self.data;
        let mut t = 0.0;
        for a in 0..n[0] {
            for b in 0..n[1] {
                let row = o[0][a] + o[1][b];
                t += v[row + o[2][0]].to_f64() * w[0][a] * w[1][b] * w[2][0];
                t += v[row + o[2][1]].to_f64() * w[0][a] * w[1][b] * w[2][1];
            }
        }
        Some(t)
    }

    /// The row's outputs at last-axis indices `xs`, into `out` (one per index): where
    /// the taps leave the array, `general(j)` computes output `j`.
    pub(super) fn row(
        &self,
        xs: &[usize],
        out: &mut Vec<f64>,
        mut general: impl FnMut(usize) -> f64,
    ) {
        out.clear();
        out.resize(xs.len(), 0.0);
        let (j, missed, width) = self.groups(xs, out);
        for m in missed {
            for l in m..m + width {
                out[l] = self.at(xs[l] as f64).unwrap_or_else(|| general(l));
            }
        }
        for l in j..xs.len() {
            out[l] = self.at(xs[l] as f64).unwrap_or_else(|| general(l));
        }
    }

    /// The vector path over the row's whole groups of eight (AVX-512F) or four (AVX2),
    /// where the CPU and the samples allow it: where the groups end, the start of each
    /// group left to the scalar path, and the groups' width.
    fn groups(&self, xs: &[usize], out: &mut [f64]) -> (usize, Vec<usize>, usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(steps) = self.affine
            && matches!(V::DTYPE, DType::F32 | DType::U16)
            && std::arch::is_x86_feature_detected!("avx2")
        {
            let mut missed = Vec::new();
            if self.wide && std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F and AVX2 (checked above).
                let end = unsafe { avx512::eights(self, steps, xs, out, &mut missed) };
                return (end, missed, 8);
            }
            // SAFETY: the CPU has AVX2 (checked above).
            let end = unsafe { fours(self, steps, xs, out, &mut missed) };
            return (end, missed, 4);
        }
        let _ = (xs, out); // unused where the CPU is not x86-64
        (0, Vec::new(), 0)
    }
}

/// [`four`] over the row's whole groups of four, into `out`: the start of each group it
/// cannot compute is pushed to `missed`; returns where the groups end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fours<V: Element>(
    k: &Trilinear<'_, V>,
    steps: [(usize, usize); 3],
    xs: &[usize],
    out: &mut [f64],
    missed: &mut Vec<usize>,
) -> usize {
    use std::arch::x86_64::*;
    let mut j = 0;
    let (Some(&start), Some(&end)) = (xs.first(), xs.last()) else {
        return 0;
    };
    // Consecutive indices (the common case): the four as one vector, stepped by four
    // (each exact, as a conversion of each would be).
    let consecutive = end - start + 1 == xs.len();
    let four_more = _mm256_set1_pd(4.0);
    let mut next = _mm256_add_pd(
        _mm256_set1_pd(start as f64),
        _mm256_setr_pd(0.0, 1.0, 2.0, 3.0),
    );
    while j + 4 <= xs.len() {
        let x = if consecutive {
            next
        } else {
            _mm256_setr_pd(
                xs[j] as f64,
                xs[j + 1] as f64,
                xs[j + 2] as f64,
                xs[j + 3] as f64,
            )
        };
        next = _mm256_add_pd(next, four_more);
        // SAFETY: `four` reads `k.data` only at the offsets of taps it has checked lie
        // inside the array (or the first samples held), each below its length as the
        // tables' are.
        match unsafe { four(k, steps, x) } {
            // SAFETY: `j + 4 <= out.len()` (`out` has one place per index).
            Some(t) => unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(j), t) },
            None => missed.push(j),
        }
        j += 4;
    }
    j
}

/// A table of offsets as `(table[0], step)` where `table[i] = table[0] + i · step`.
pub(super) fn progression(table: &[usize]) -> Option<(usize, usize)> {
    let (&start, rest) = table.split_first()?;
    let step = rest.first().map_or(0, |&n| n.wrapping_sub(start));
    (0..rest.len())
        .all(|i| rest[i] == start + (i + 1) * step)
        .then_some((start, step))
}

/// Four outputs of `k`'s row at last-axis indices `x`, where all their taps lie inside
/// the array (else `None`): [`Trilinear::at`] on four lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn four<V: Element>(
    k: &Trilinear<'_, V>,
    steps: [(usize, usize); 3],
    xv: std::arch::x86_64::__m256d,
) -> Option<std::arch::x86_64::__m256d> {
    use std::arch::x86_64::*;
    let one = _mm256_set1_pd(1.0);
    let zero = _mm256_setzero_pd();
    let mut inside = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    let mut outside = zero;
    let mut c = [0, 1, 2].map(|h| {
        _mm256_add_pd(
            _mm256_set1_pd(k.base[h]),
            _mm256_mul_pd(xv, _mm256_set1_pd(k.slope[h])),
        )
    });
    for (h, (&ch, &upper)) in c.iter().zip(&k.upper).enumerate() {
        if h < 2 && k.fixed[h].is_some() {
            continue;
        }
        let upper = _mm256_set1_pd(upper);
        let lo = _mm256_cmp_pd::<_CMP_GE_OQ>(ch, zero);
        let hi = _mm256_cmp_pd::<_CMP_LT_OQ>(ch, upper);
        inside = _mm256_and_pd(inside, _mm256_and_pd(lo, hi));
        let below = _mm256_cmp_pd::<_CMP_LT_OQ>(ch, zero);
        let above = _mm256_cmp_pd::<_CMP_GT_OQ>(ch, upper);
        outside = _mm256_or_pd(outside, _mm256_or_pd(below, above));
    }
    let (m_in, m_out) = (_mm256_movemask_pd(inside), _mm256_movemask_pd(outside));
    match k.cval {
        Some(cval) if m_in == 0 && m_out == 0b1111 => return Some(_mm256_set1_pd(cval)),
        Some(_) if m_in | m_out == 0b1111 => {}
        None if m_in == 0b1111 => {}
        _ => return None,
    }
    // Lanes outside read the first samples held (a lane inside shows that every axis
    // holds two), and are replaced by the constant below.
    for (ch, &first) in c.iter_mut().zip(&k.first) {
        *ch = _mm256_blendv_pd(_mm256_set1_pd(first as f64), *ch, inside);
    }
    let mut w0 = [one; 3];
    let mut w1 = [one; 3];
    let mut off = [_mm_setzero_si128(); 3];
    let mut n = [2usize; 3];
    for h in 0..3 {
        if h < 2
            && let Some(f) = k.fixed[h]
        {
            off[h] = _mm_set1_epi32(f as i32);
            n[h] = 1;
            continue;
        }
        let f = _mm256_floor_pd(c[h]);
        w0[h] = _mm256_sub_pd(one, _mm256_sub_pd(c[h], f));
        w1[h] = _mm256_sub_pd(one, w0[h]);
        // Inside the array, so the index and its offset fit 32 bits (checked when the
        // path was allowed).
        let i = _mm_sub_epi32(_mm256_cvttpd_epi32(f), _mm_set1_epi32(k.first[h] as i32));
        let (start, step) = steps[h];
        off[h] = _mm_add_epi32(
            _mm_set1_epi32(start as i32),
            _mm_mullo_epi32(i, _mm_set1_epi32(step as i32)),
        );
    }
    // Each lane's first tap; the others are a step along z, y or x from it, and the
    // two along x are adjacent (x's step is 1 where the tables are dense), read as one
    // pair.
    let first = _mm_add_epi32(_mm_add_epi32(off[0], off[1]), off[2]);
    let mut lanes = [0i32; 4];
    // SAFETY: `lanes` holds four i32.
    unsafe { _mm_storeu_si128(lanes.as_mut_ptr().cast(), first) };
    let (sz, sy, sx) = (steps[0].1, steps[1].1, steps[2].1);
    let mut t = _mm256_setzero_pd();
    for a in 0..n[0] {
        let wz = if a == 0 { w0[0] } else { w1[0] };
        for b in 0..n[1] {
            let wy = if b == 0 { w0[1] } else { w1[1] };
            let d = a * sz + b * sy;
            // SAFETY: every lane's taps (or, for a lane outside, the first samples
            // held) lie below `k.data.len()`.
            let (v0, v1) = unsafe { pairs(k.data, &lanes, d, sx) };
            let (v0, v1) = (_mm256_cvtps_pd(v0), _mm256_cvtps_pd(v1));
            let p0 = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(v0, wz), wy), w0[2]);
            t = _mm256_add_pd(t, p0);
            let p1 = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(v1, wz), wy), w1[2]);
            t = _mm256_add_pd(t, p1);
        }
    }
    if let Some(cval) = k.cval {
        t = _mm256_blendv_pd(_mm256_set1_pd(cval), t, inside);
    }
    Some(t)
}

/// Each lane's two taps along x, at `lanes[l] + d` and `sx` further, as float32 (exact
/// for float32 and uint16 samples, the types the vector path takes): the first taps'
/// vector and the second's.
///
/// # Safety
/// Every offset read lies below `data.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn pairs<V: Element>(
    data: &[V],
    lanes: &[i32; 4],
    d: usize,
    sx: usize,
) -> (std::arch::x86_64::__m128, std::arch::x86_64::__m128) {
    use std::arch::x86_64::*;
    let at = |l: usize| lanes[l] as usize + d;
    match (V::DTYPE, sx) {
        // Adjacent float32 pairs: one 64-bit load each, split into firsts and seconds.
        (DType::F32, 1) => {
            let base = data.as_ptr().cast::<f32>();
            // SAFETY: the caller's.
            let pair =
                |l: usize| unsafe { _mm_castsi128_ps(_mm_loadl_epi64(base.add(at(l)).cast())) };
            let lo = _mm_movelh_ps(pair(0), pair(1));
            let hi = _mm_movelh_ps(pair(2), pair(3));
            (
                _mm_shuffle_ps::<0b10_00_10_00>(lo, hi),
                _mm_shuffle_ps::<0b11_01_11_01>(lo, hi),
            )
        }
        // Adjacent uint16 pairs: one 32-bit load each, widened to float32.
        (DType::U16, 1) => {
            let base = data.as_ptr().cast::<u16>();
            // SAFETY: the caller's.
            let pair = |l: usize| unsafe {
                _mm_cvtsi32_si128(base.add(at(l)).cast::<i32>().read_unaligned())
            };
            let lo = _mm_unpacklo_epi32(pair(0), pair(1));
            let hi = _mm_unpacklo_epi32(pair(2), pair(3));
            let all = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_unpacklo_epi64(lo, hi)));
            let (lo, hi) = (_mm256_castps256_ps128(all), _mm256_extractf128_ps::<1>(all));
            (
                _mm_shuffle_ps::<0b10_00_10_00>(lo, hi),
                _mm_shuffle_ps::<0b11_01_11_01>(lo, hi),
            )
        }
        _ => {
            let get = |o: usize| data[o].to_f64() as f32;
            (
                _mm_setr_ps(get(at(0)), get(at(1)), get(at(2)), get(at(3))),
                _mm_setr_ps(
                    get(at(0) + sx),
                    get(at(1) + sx),
                    get(at(2) + sx),
                    get(at(3) + sx),
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row through a small volume at a slant: the vector path, the scalar path and
    /// a direct sum over the eight neighbours agree bit for bit, and taps outside the
    /// array go to the general path, or, in `constant` mode, give the constant.
    #[test]
    fn rows_equal_the_scalar_sums() {
        // Eight lanes where the CPU has AVX-512F, then four (AVX2).
        for wide in [true, false] {
            let float = |i: usize| ((i * 37) % 101) as f32 * 0.37;
            let without = row_through_a_volume(None, wide, float);
            let with = row_through_a_volume(Some(7.5), wide, float);
            if std::arch::is_x86_feature_detected!("avx2") {
                assert!(with < without, "the constant spares the general path");
            }
            row_through_a_volume(None, wide, |i| ((i * 7919) % 65536) as u16);
            row_through_a_volume(Some(3.0), wide, |i| ((i * 7919) % 65536) as u16);
            row_through_a_volume(None, wide, |i| (i % 200) as u8);
        }
    }

    /// [`rows_equal_the_scalar_sums`] on the samples `sample(i)`, with `cval` (the
    /// general path gives it too); returns how many outputs went to the general path.
    fn row_through_a_volume<V: Element>(
        cval: Option<f64>,
        wide: bool,
        sample: impl Fn(usize) -> V,
    ) -> usize {
        let (nz, ny, nx) = (5usize, 6usize, 40usize);
        let data: Vec<V> = (0..nz * ny * nx).map(sample).collect();
        let tables = dense_tables([nz, ny, nx]);
        let mut k =
            kernel(&data, &tables, &[1.3, 0.2, -3.7], [0.05, 0.11, 0.93]).with_constant(cval);
        assert!(k.affine.is_some());
        k.wide = wide;
        let xs: Vec<usize> = (0..45).collect();
        let mut got = Vec::new();
        let mut general = Vec::new();
        k.row(&xs, &mut got, |j| {
            general.push(j);
            cval.unwrap_or(-1.0)
        });
        assert_eq!(got.len(), xs.len());
        for (j, &t) in got.iter().enumerate() {
            let x = j as f64;
            let c = [0, 1, 2].map(|h| k.base[h] + x * k.slope[h]);
            if c.iter().zip(k.upper).any(|(&c, u)| !(c >= 0.0 && c < u)) {
                match cval {
                    Some(v) => assert_eq!(t, v, "output {j} is outside"),
                    None => assert!(general.contains(&j), "output {j} is outside"),
                }
                continue;
            }
            let f = c.map(floor);
            let w = [0, 1, 2].map(|h| {
                let w0 = 1.0 - (c[h] - f[h]);
                [w0, 1.0 - w0]
            });
            let mut want = 0.0;
            for a in 0..2 {
                for b in 0..2 {
                    for e in 0..2 {
                        let at = (f[0] as usize + a) * ny * nx
                            + (f[1] as usize + b) * nx
                            + f[2] as usize
                            + e;
                        want += data[at].to_f64() * w[0][a] * w[1][b] * w[2][e];
                    }
                }
            }
            assert_eq!(t.to_bits(), want.to_bits(), "output {j}");
        }
        assert!(general.len() < xs.len() / 2);
        general.len()
    }

    /// A deskew's row (z and y read straight through, x interpolated): each output is
    /// its two neighbours' weighted sum, bit for bit, on both paths.
    #[test]
    fn rows_through_leading_axes_interpolate_the_last() {
        let (nz, ny, nx) = (3usize, 4usize, 30usize);
        let data: Vec<u16> = (0..nz * ny * nx)
            .map(|i| ((i * 7919) % 65536) as u16)
            .collect();
        let tables = dense_tables([nz, ny, nx]);
        let (z, y) = (2, 3);
        let mut k = kernel(&data, &tables, &[0.0, 0.0, -2.35], [0.0, 0.0, 1.0])
            .with_constant(Some(0.0))
            .through(0, z * ny * nx)
            .through(1, y * nx);
        let xs: Vec<usize> = (0..34).collect();
        let (mut got, mut narrow) = (Vec::new(), Vec::new());
        k.row(&xs, &mut got, |_| 0.0);
        k.wide = false;
        k.row(&xs, &mut narrow, |_| 0.0);
        assert_eq!(got, narrow);
        for (j, &t) in got.iter().enumerate() {
            let c = -2.35 + j as f64;
            let want = if c >= 0.0 && c < (nx - 1) as f64 {
                let f = floor(c);
                let w0 = 1.0 - (c - f);
                let at = z * ny * nx + y * nx + f as usize;
                data[at] as f64 * w0 + data[at + 1] as f64 * (1.0 - w0)
            } else {
                0.0
            };
            assert_eq!(t.to_bits(), want.to_bits(), "output {j}");
        }
    }

    /// The offset tables of a dense C-order array of `shape`, from index 0.
    fn dense_tables(shape: [usize; 3]) -> Vec<Vec<usize>> {
        let strides = [shape[1] * shape[2], shape[2], 1];
        (0..3)
            .map(|h| (0..shape[h]).map(|i| i * strides[h]).collect())
            .collect()
    }

    /// A row of `data` (dense, read through `tables`) with coordinates `base + x · slope`.
    fn kernel<'s, V: Element>(
        data: &'s [V],
        tables: &'s [Vec<usize>],
        base: &[f64],
        slope: [f64; 3],
    ) -> Trilinear<'s, V> {
        let lens: Vec<usize> = tables.iter().map(Vec::len).collect();
        Trilinear::new(
            data,
            base,
            slope,
            &[0, 0, 0],
            [&tables[0][..], &tables[1][..], &tables[2][..]],
            &lens,
        )
        .with_progressions(&tables.iter().map(|t| progression(t)).collect::<Vec<_>>())
    }

    #[test]
    fn progressions_are_found_and_refused() {
        assert_eq!(progression(&[4, 7, 10]), Some((4, 3)));
        assert_eq!(progression(&[4]), Some((4, 0)));
        assert_eq!(progression(&[4, 7, 11]), None);
        assert_eq!(progression(&[]), None);
    }
}
