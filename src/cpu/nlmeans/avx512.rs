//! Fast mode's box sums fused in AVX-512 registers: for each shift, sixteen outputs
//! of a row at a time, the squared differences summed along the row by lane shifts
//! (`valignd`), along the column in a window of registers, and across planes from a
//! ring of one stored plane per patch plane; then the weights, straight from the
//! registers. The generic path (`fast_tile_lanes`) stores and reloads every stage.
//!
//! The additions run in the generic path's order (squares along the row, then rows,
//! then planes, each in index order), the weights are its arithmetic lane for lane,
//! and the distances near the cut-off go to the same f64 decision: the results are
//! the generic path's, bit for bit (a unit test holds them to it).

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_LE_OQ, _CMP_LT_OQ, _mm512_add_epi32,
    _mm512_add_ps, _mm512_alignr_epi32, _mm512_castps_si512, _mm512_castsi512_ps,
    _mm512_cmp_ps_mask, _mm512_cvttps_epi32, _mm512_loadu_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_maskz_mov_ps, _mm512_maskz_mul_ps, _mm512_mul_ps,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32, _mm512_storeu_ps,
    _mm512_sub_epi32, _mm512_sub_ps,
};

use super::{EXP_A, EXP_BC, Geometry, REBASE, TILE, Tile, finish, flush};

/// The most rows a tile has.
const TILE_ROWS: usize = TILE[1];

/// Fast mode on one output tile, as `fast_tile_lanes` computes it, where the CPU has
/// AVX-512F and the patch is 3, 5, 7 or 9 wide (the box 2, 4, 6 or 8); `None`
/// otherwise.
pub(super) fn fast_tile(
    g: &Geometry,
    padded: &[f32],
    start: [usize; 3],
    len: [usize; 3],
) -> Option<Vec<f64>> {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return None;
    }
    let t = Tile::new(g, start, len);
    // SAFETY (each arm): the CPU supports AVX-512F (checked just above).
    unsafe {
        match t.blen[2] {
            2 => Some(tile::<2>(g, &t, padded)),
            4 => Some(tile::<4>(g, &t, padded)),
            6 => Some(tile::<6>(g, &t, padded)),
            8 => Some(tile::<8>(g, &t, padded)),
            _ => None,
        }
    }
}

/// The lanes below `n` (all sixteen from 16 on).
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { u16::MAX } else { (1u16 << n) - 1 }
}

/// `Σ_{k < N} v[i + k]` for the sixteen lanes `i` of `lo`, `hi` holding the next
/// sixteen values, summed in `k` order.
#[inline]
#[target_feature(enable = "avx512f")]
fn box_along_row<const N: usize>(lo: __m512, hi: __m512) -> __m512 {
    let (l, h): (__m512i, __m512i) = (_mm512_castps_si512(lo), _mm512_castps_si512(hi));
    let mut acc = lo;
    macro_rules! add_shifted {
        ($($k:literal)*) => {$(
            if N > $k {
                acc = _mm512_add_ps(acc, _mm512_castsi512_ps(_mm512_alignr_epi32::<$k>(h, l)));
            }
        )*};
    }
    add_shifted!(1 2 3 4 5 6 7);
    acc
}

/// The weights' constants (`Weights`, and `weight_of`'s) in registers.
#[derive(Clone, Copy)]
struct Consts {
    subtract: __m512,
    inv: __m512,
    low: __m512,
    high: __m512,
    exp_a: __m512,
    exp_bc: __m512i,
    rebase: __m512i,
}

/// Where one tile's pass over a shift reads and writes (raw, as the strips' vectors
/// are loaded and stored through pointers), and its extents.
struct Pass {
    /// The padded box.
    padded: *const f32,
    /// The f32 sums of this window plane, tile-shaped.
    weights: *mut f32,
    sums: *mut f32,
    /// One plane of column-and-row box sums per patch plane, rows of whole strips.
    ring: *mut f32,
    /// The tile's rows and row length, and the ring's row length.
    rows: usize,
    row: usize,
    ring_row: usize,
    /// Patch-box rows per output plane (`rows + N - 1`), and columns (`row + N - 1`).
    box_rows: usize,
    box_cols: usize,
    /// Patch planes (1 in 2-D).
    nz: usize,
}

/// Fast mode on tile `t` with a patch box `N` wide along rows and columns (and `N` or
/// 1 across planes).
#[target_feature(enable = "avx512f")]
fn tile<const N: usize>(g: &Geometry, t: &Tile, padded: &[f32]) -> Vec<f64> {
    let Tile { pd, len, blen, .. } = *t;
    let nz = blen[0];
    let row = len[2];
    let strips = row.div_ceil(16);
    let count = len[0] * len[1] * row;
    let centre = t.centres(padded);
    let (mut weights, mut sums) = (vec![0f64; count], vec![0f64; count]);
    let (mut weights32, mut sums32) = (vec![0f32; count], vec![0f32; count]);
    let mut ring = vec![0f32; nz * len[1] * strips * 16];
    let c = t.consts;
    let k = Consts {
        subtract: _mm512_set1_ps(c.subtract),
        inv: _mm512_set1_ps(c.inv),
        low: _mm512_set1_ps(c.low),
        high: _mm512_set1_ps(c.high),
        exp_a: _mm512_set1_ps(EXP_A as f32),
        exp_bc: _mm512_set1_epi32(EXP_BC),
        rebase: _mm512_set1_epi32(REBASE),
    };
    let pass = Pass {
        padded: padded.as_ptr(),
        weights: weights32.as_mut_ptr(),
        sums: sums32.as_mut_ptr(),
        ring: ring.as_mut_ptr(),
        rows: len[1],
        row,
        ring_row: strips * 16,
        box_rows: len[1] + N - 1,
        box_cols: row + N - 1,
        nz,
    };
    // A row's lanes near the cut-off, per row of the tile.
    debug_assert!(len[1] <= TILE_ROWS);
    let mut near = [0; TILE_ROWS];
    let d = g.distance;
    for tz in -(d[0] as isize)..=d[0] as isize {
        for ty in -(d[1] as isize)..=d[1] as isize {
            for tx in -(d[2] as isize)..=d[2] as isize {
                let shift = (tz * pd[1] as isize + ty) * pd[2] as isize + tx;
                for ez in 0..len[0] + nz - 1 {
                    // The output plane whose boxes are complete with plane `ez`.
                    let z = (ez + 1).checked_sub(nz);
                    for s in 0..strips {
                        let x0 = 16 * s;
                        // SAFETY: `pass` points into this tile's buffers, which outlive
                        // the call, and `t` describes them.
                        let any = unsafe { strip::<N>(&pass, t, k, [ez, x0], z, shift, &mut near) };
                        if !any {
                            continue;
                        }
                        // Distances within rounding of the cut-off, decided in f64.
                        let z = z.unwrap_or(ez);
                        for (y, &unsure) in near.iter().enumerate().take(len[1]) {
                            for lane in 0..16 {
                                if unsure & (1 << lane) != 0 {
                                    t.decide(
                                        padded,
                                        [z, y, x0 + lane],
                                        shift,
                                        &mut weights,
                                        &mut sums,
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        flush(&mut weights, &mut weights32);
        flush(&mut sums, &mut sums32);
    }
    finish(&sums, &weights, &centre)
}

/// One strip of sixteen columns from `x0`, for one shift and patch-box plane `ez`: its
/// row boxes (squared differences summed along the row), summed down `N` rows in a
/// window of registers, stored in the ring (in 3-D) and, once output plane `z`'s boxes
/// are complete, summed across its planes and weighed. `near[y]` gets the lanes of
/// output row `y` whose distance lies within rounding of the cut-off; returns whether
/// there are any.
///
/// # Safety
///
/// `pass` points into live buffers of tile `t` (its padded box, f32 sums and ring),
/// `x0` is a multiple of 16 below the tile's row length, and `shift` keeps the search
/// window inside the padded box.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn strip<const N: usize>(
    pass: &Pass,
    t: &Tile,
    k: Consts,
    at: [usize; 2],
    z: Option<usize>,
    shift: isize,
    near: &mut [__mmask16; TILE_ROWS],
) -> bool {
    let [ez, x0] = at;
    let p = pass.padded;
    // The box's columns that lie in this strip and in the next sixteen, and the
    // outputs that do.
    let lo_mask = lanes(pass.box_cols - x0);
    let hi_mask = lanes(pass.box_cols.saturating_sub(x0 + 16).min(N - 1));
    let valid = lanes(pass.row - x0);
    let step = t.pd[2];
    let a0 = t.box_at(ez, 0, x0);
    // Where the ring's planes lie: this plane's, and output plane `z`'s in order.
    let plane = pass.rows * pass.ring_row;
    let slot = (ez % pass.nz) * plane + x0;
    let mut planes = [0; 8];
    for (i, at) in planes.iter_mut().enumerate().take(pass.nz) {
        *at = ((z.unwrap_or(0) + i) % pass.nz) * plane + x0;
    }
    let middle = &planes[1..pass.nz.max(2) - 1];
    let mut any = 0;
    let zero = _mm512_setzero_ps();
    // The row boxes of the last `N` rows, oldest first, in `w[8 - N..]`.
    #[allow(unused_assignments)] // `w0` is read only for the widest box
    let [
        mut w0,
        mut w1,
        mut w2,
        mut w3,
        mut w4,
        mut w5,
        mut w6,
        mut w7,
    ] = [zero; 8];
    for ey in 0..pass.box_rows {
        let a = a0 + ey * step;
        let b = a.wrapping_add_signed(shift);
        // SAFETY: the lanes of `lo_mask` and `hi_mask` lie within the patch boxes of
        // the tile's row, inside the padded box, at `a` and `shift` away.
        let (dl, dh) = unsafe {
            (
                _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(lo_mask, p.wrapping_add(a)),
                    _mm512_maskz_loadu_ps(lo_mask, p.wrapping_add(b)),
                ),
                _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(hi_mask, p.wrapping_add(a + 16)),
                    _mm512_maskz_loadu_ps(hi_mask, p.wrapping_add(b + 16)),
                ),
            )
        };
        (w0, w1, w2, w3, w4, w5, w6) = (w1, w2, w3, w4, w5, w6, w7);
        w7 = box_along_row::<N>(_mm512_mul_ps(dl, dl), _mm512_mul_ps(dh, dh));
        let Some(y) = (ey + 1).checked_sub(N) else {
            continue;
        };
        let mut boxes = match N {
            8 => w0,
            6 => w2,
            4 => w4,
            _ => w6,
        };
        if N >= 8 {
            boxes = _mm512_add_ps(_mm512_add_ps(boxes, w1), w2);
        }
        if N >= 6 {
            boxes = _mm512_add_ps(_mm512_add_ps(boxes, w3), w4);
        }
        if N >= 4 {
            boxes = _mm512_add_ps(_mm512_add_ps(boxes, w5), w6);
        }
        boxes = _mm512_add_ps(boxes, w7);
        // The planes' sums in turn, this plane's (in `boxes`) last.
        let (z, dist) = if pass.nz == 1 {
            (ez, boxes)
        } else {
            let r = y * pass.ring_row;
            // SAFETY: each plane's row `y` is within the ring (rows of whole strips).
            unsafe {
                _mm512_storeu_ps(pass.ring.add(slot + r), boxes);
                let Some(z) = z else { continue };
                let mut dist = _mm512_loadu_ps(pass.ring.add(planes[0] + r));
                for &at in middle {
                    dist = _mm512_add_ps(dist, _mm512_loadu_ps(pass.ring.add(at + r)));
                }
                (z, _mm512_add_ps(dist, boxes))
            }
        };
        let o = (z * pass.rows + y) * pass.row + x0;
        // The outputs' own values and their neighbours', read from the padded box (the
        // box rows above have just brought them into the cache).
        let c = t.value_at(z, y, x0);
        let v = c.wrapping_add_signed(shift);
        // SAFETY: the lanes of `valid` lie within the tile's row: in the tile-shaped
        // buffers from `o`, and in the padded box from `v`.
        let unsure = unsafe {
            weigh(
                k,
                dist,
                _mm512_maskz_loadu_ps(valid, p.wrapping_add(v)),
                _mm512_maskz_loadu_ps(valid, p.wrapping_add(c)),
                valid,
                [pass.weights.add(o), pass.sums.add(o)],
            )
        };
        if let Some(n) = near.get_mut(y) {
            *n = unsure;
        }
        any |= unsure;
    }
    any != 0
}

/// One shift's weights of sixteen outputs from their box sums `dist`, added to the
/// f32 weights and weighted values (relative to the outputs' own, `centres`), as
/// `accumulate` does; returns the lanes near the cut-off (weighed 0 here).
///
/// # Safety
///
/// The lanes of `valid` are readable and writable from `weights` and `sums`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn weigh(
    k: Consts,
    dist: __m512,
    values: __m512,
    centres: __m512,
    valid: __mmask16,
    [weights, sums]: [*mut f32; 2],
) -> __mmask16 {
    let zero = _mm512_setzero_ps();
    let x = _mm512_sub_ps(dist, k.subtract);
    let dist = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero), x, k.inv);
    let unsure = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(dist, k.low)
        & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(dist, k.high)
        & valid;
    let inside = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(dist, k.low);
    // `weight_of(dist)`: the double's high word, rebased to f32.
    let scaled = _mm512_cvttps_epi32(_mm512_mul_ps(k.exp_a, _mm512_sub_ps(zero, dist)));
    let bits = _mm512_slli_epi32::<3>(_mm512_sub_epi32(
        _mm512_add_epi32(scaled, k.exp_bc),
        k.rebase,
    ));
    let weight = _mm512_maskz_mov_ps(inside, _mm512_castsi512_ps(bits));
    // SAFETY: the caller's.
    unsafe {
        if valid == u16::MAX {
            // Whole strips without masks: AMD's masked stores are slow.
            let w = _mm512_loadu_ps(weights);
            _mm512_storeu_ps(weights, _mm512_add_ps(w, weight));
            let sum = _mm512_loadu_ps(sums);
            let term = _mm512_mul_ps(weight, _mm512_sub_ps(values, centres));
            _mm512_storeu_ps(sums, _mm512_add_ps(sum, term));
        } else {
            let w = _mm512_maskz_loadu_ps(valid, weights);
            _mm512_mask_storeu_ps(weights, valid, _mm512_add_ps(w, weight));
            let sum = _mm512_maskz_loadu_ps(valid, sums);
            let term = _mm512_mul_ps(weight, _mm512_sub_ps(values, centres));
            _mm512_mask_storeu_ps(sums, valid, _mm512_add_ps(sum, term));
        }
    }
    unsure
}
