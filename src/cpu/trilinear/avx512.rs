//! [`four`](super::four) on eight lanes: whole groups of eight outputs of a row, with
//! AVX-512F, each lane's taps gathered (a pair of adjacent float32 or uint16 samples
//! per gather lane). The same f64 operations in the same order as the scalar and the
//! AVX2 paths, so the same bits.

use std::arch::x86_64::{
    __m256i, __m512d, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_LT_OQ, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEG_INF,
    _mm256_add_epi32, _mm256_and_si256, _mm256_castsi256_ps, _mm256_cvtepi32_ps,
    _mm256_i32gather_epi32, _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_srli_epi32,
    _mm512_add_pd, _mm512_cmp_pd_mask, _mm512_cvtepi64_epi32, _mm512_cvtps_pd, _mm512_cvttpd_epi32,
    _mm512_i32gather_epi64, _mm512_mask_blend_pd, _mm512_mul_pd, _mm512_roundscale_pd,
    _mm512_set1_pd, _mm512_setr_pd, _mm512_setzero_pd, _mm512_srli_epi64, _mm512_storeu_pd,
    _mm512_sub_pd,
};

use super::Trilinear;
use crate::dtype::{DType, Element};

/// [`eight`] over the row's whole groups of eight, into `out`: the start of each group
/// it cannot compute is pushed to `missed`; returns where the groups end.
#[target_feature(enable = "avx512f,avx2")]
pub(super) fn eights<V: Element>(
    k: &Trilinear<'_, V>,
    steps: [(usize, usize); 3],
    xs: &[usize],
    out: &mut [f64],
    missed: &mut Vec<usize>,
) -> usize {
    let mut j = 0;
    let (Some(&start), Some(&end)) = (xs.first(), xs.last()) else {
        return 0;
    };
    // Consecutive indices (the common case): the eight as one vector, stepped by eight
    // (each exact, as a conversion of each would be).
    let consecutive = end - start + 1 == xs.len();
    let eight_more = _mm512_set1_pd(8.0);
    let mut next = _mm512_add_pd(
        _mm512_set1_pd(start as f64),
        _mm512_setr_pd(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0),
    );
    while j + 8 <= xs.len() {
        let x = if consecutive {
            next
        } else {
            let at = |l: usize| xs[j + l] as f64;
            _mm512_setr_pd(at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7))
        };
        next = _mm512_add_pd(next, eight_more);
        // SAFETY: `eight` reads `k.data` only at the offsets of taps it has checked lie
        // inside the array (or the first samples held), each below its length as the
        // tables' are.
        match unsafe { eight(k, steps, x) } {
            // SAFETY: `j + 8 <= out.len()` (`out` has one place per index).
            Some(t) => unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(j), t) },
            None => missed.push(j),
        }
        j += 8;
    }
    j
}

/// Eight outputs of `k`'s row at last-axis indices `xv`, where all their taps lie
/// inside the array (else `None`), as `four` computes four.
///
/// # Safety
/// `k`'s tables and progressions describe `k.data`.
#[target_feature(enable = "avx512f,avx2")]
#[inline]
unsafe fn eight<V: Element>(
    k: &Trilinear<'_, V>,
    steps: [(usize, usize); 3],
    xv: __m512d,
) -> Option<__m512d> {
    let one = _mm512_set1_pd(1.0);
    let zero = _mm512_setzero_pd();
    let (mut inside, mut outside) = (u8::MAX, 0u8);
    let mut c = [0, 1, 2].map(|h| {
        _mm512_add_pd(
            _mm512_set1_pd(k.base[h]),
            _mm512_mul_pd(xv, _mm512_set1_pd(k.slope[h])),
        )
    });
    for (h, (&ch, &upper)) in c.iter().zip(&k.upper).enumerate() {
        if h < 2 && k.fixed[h].is_some() {
            continue;
        }
        let upper = _mm512_set1_pd(upper);
        inside &= _mm512_cmp_pd_mask::<_CMP_GE_OQ>(ch, zero)
            & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(ch, upper);
        outside |= _mm512_cmp_pd_mask::<_CMP_LT_OQ>(ch, zero)
            | _mm512_cmp_pd_mask::<_CMP_GT_OQ>(ch, upper);
    }
    match k.cval {
        Some(cval) if inside == 0 && outside == u8::MAX => return Some(_mm512_set1_pd(cval)),
        Some(_) if inside | outside == u8::MAX => {}
        None if inside == u8::MAX => {}
        _ => return None,
    }
    // Lanes outside read the first samples held (a lane inside shows that every axis
    // holds two), and are replaced by the constant below.
    for (ch, &first) in c.iter_mut().zip(&k.first) {
        *ch = _mm512_mask_blend_pd(inside, _mm512_set1_pd(first as f64), *ch);
    }
    let mut w0 = [one; 3];
    let mut w1 = [one; 3];
    let mut off = [_mm256_set1_epi32(0); 3];
    let mut n = [2usize; 3];
    for h in 0..3 {
        if h < 2
            && let Some(f) = k.fixed[h]
        {
            off[h] = _mm256_set1_epi32(f as i32);
            n[h] = 1;
            continue;
        }
        let f = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c[h]);
        w0[h] = _mm512_sub_pd(one, _mm512_sub_pd(c[h], f));
        w1[h] = _mm512_sub_pd(one, w0[h]);
        // Inside the array, so the index and its offset fit 32 bits (checked when the
        // path was allowed).
        let i = _mm256_add_epi32(
            _mm512_cvttpd_epi32(f),
            _mm256_set1_epi32(-(k.first[h] as i32)),
        );
        let (start, step) = steps[h];
        off[h] = _mm256_add_epi32(
            _mm256_set1_epi32(start as i32),
            _mm256_mullo_epi32(i, _mm256_set1_epi32(step as i32)),
        );
    }
    // Each lane's first tap; the others are a step along z, y or x from it.
    let first = _mm256_add_epi32(_mm256_add_epi32(off[0], off[1]), off[2]);
    let (sz, sy, sx) = (steps[0].1, steps[1].1, steps[2].1);
    let mut t = zero;
    for a in 0..n[0] {
        let wz = if a == 0 { w0[0] } else { w1[0] };
        for b in 0..n[1] {
            let wy = if b == 0 { w0[1] } else { w1[1] };
            let at = _mm256_add_epi32(first, _mm256_set1_epi32((a * sz + b * sy) as i32));
            // SAFETY: every lane's taps (or, for a lane outside, the first samples
            // held) lie below `k.data.len()`.
            let (v0, v1) = unsafe { pairs(k.data, at, sx) };
            let p0 = _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(v0, wz), wy), w0[2]);
            t = _mm512_add_pd(t, p0);
            let p1 = _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(v1, wz), wy), w1[2]);
            t = _mm512_add_pd(t, p1);
        }
    }
    if let Some(cval) = k.cval {
        t = _mm512_mask_blend_pd(inside, _mm512_set1_pd(cval), t);
    }
    Some(t)
}

/// Each lane's two taps along x, at offset `at` and `sx` further, as f64 (through
/// float32, exact for the float32 and uint16 samples the vector path takes).
///
/// # Safety
/// Every offset read lies below `data.len()`.
#[target_feature(enable = "avx512f,avx2")]
#[inline]
unsafe fn pairs<V: Element>(data: &[V], at: __m256i, sx: usize) -> (__m512d, __m512d) {
    match (V::DTYPE, sx) {
        // Adjacent float32 pairs: one 64-bit gather lane each, split into firsts and
        // seconds.
        (DType::F32, 1) => {
            // SAFETY: the caller's (each lane reads its two samples).
            let pair = unsafe { _mm512_i32gather_epi64::<4>(at, data.as_ptr().cast()) };
            let lo = _mm512_cvtepi64_epi32(pair);
            let hi = _mm512_cvtepi64_epi32(_mm512_srli_epi64::<32>(pair));
            (
                _mm512_cvtps_pd(_mm256_castsi256_ps(lo)),
                _mm512_cvtps_pd(_mm256_castsi256_ps(hi)),
            )
        }
        // Adjacent uint16 pairs: one 32-bit gather lane each, widened to float32.
        (DType::U16, 1) => {
            // SAFETY: the caller's (each lane reads its two samples).
            let pair = unsafe { _mm256_i32gather_epi32::<2>(data.as_ptr().cast(), at) };
            let lo = _mm256_and_si256(pair, _mm256_set1_epi32(0xffff));
            let hi = _mm256_srli_epi32::<16>(pair);
            (
                _mm512_cvtps_pd(_mm256_cvtepi32_ps(lo)),
                _mm512_cvtps_pd(_mm256_cvtepi32_ps(hi)),
            )
        }
        _ => {
            let mut lanes = [0i32; 8];
            // SAFETY: `lanes` holds eight i32.
            unsafe { std::arch::x86_64::_mm256_storeu_si256(lanes.as_mut_ptr().cast(), at) };
            let get = |l: usize, d: usize| f64::from(data[lanes[l] as usize + d].to_f64() as f32);
            let side = |d: usize| {
                _mm512_setr_pd(
                    get(0, d),
                    get(1, d),
                    get(2, d),
                    get(3, d),
                    get(4, d),
                    get(5, d),
                    get(6, d),
                    get(7, d),
                )
            };
            (side(0), side(sx))
        }
    }
}
