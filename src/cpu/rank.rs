//! Rank filters (median, percentile, minimum, maximum) with scipy boundary modes.
//!
//! The taps of a run of outputs are gathered as the stencil gathers them
//! ([`over_taps`]); each run is then cut into tiles of [`LANES`] outputs, every tap's
//! values for a tile are copied side by side, and the selection network of
//! [`Rank::network`] runs on whole tiles: one comparator is a `min` and a `max` over
//! `LANES` lanes, which the compiler turns into vector instructions. A 3×3×3 median
//! is about 150 such comparators per tile, with no branch on the data.

use super::stencil::over_taps;
use crate::block::Block;
use crate::dtype::Element;
use crate::region::AxisSet;
use crate::stage::{Comparator, Rank};

/// Outputs per tile: the lanes every comparator works on at once.
const LANES: usize = 64;

/// The `rank`-th smallest of the values under `r`'s footprint, for the output indices
/// `out` of an input of `in_shape`.
pub(crate) fn rank<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    in_shape: &[usize],
    r: &Rank,
) -> Block<'static, T> {
    let network = r.network();
    let n = r.taps();
    let mut tiles = vec![T::default(); n * LANES];
    over_taps(
        input,
        out,
        in_shape,
        &r.window,
        T::from_f64(r.cval),
        |dst: &mut [T], taps: &[(&[T], &[f32])]| {
            let len = dst.len();
            let mut rows: Vec<&[T]> = Vec::with_capacity(n);
            for &(row, w) in taps {
                for (j, &wj) in w.iter().enumerate() {
                    if wj != 0.0 {
                        rows.push(&row[j..j + len]);
                    }
                }
            }
            debug_assert_eq!(rows.len(), n);
            select(dst, &rows, &network, r.rank, &mut tiles);
        },
    )
}

/// Writes into `out[i]` the `k`-th smallest of `rows[t][i]` over `t`.
fn select<T: Element>(
    out: &mut [T],
    rows: &[&[T]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { select_avx2(out, rows, network, k, tiles) };
        }
    }
    select_tiles(out, rows, network, k, tiles)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn select_avx2<T: Element>(
    out: &mut [T],
    rows: &[&[T]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [T],
) {
    select_tiles(out, rows, network, k, tiles)
}

#[inline(always)]
fn select_tiles<T: Element>(
    out: &mut [T],
    rows: &[&[T]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [T],
) {
    let len = out.len();
    let mut i = 0;
    while i < len {
        let w = LANES.min(len - i);
        for (t, row) in rows.iter().enumerate() {
            tiles[t * LANES..t * LANES + w].copy_from_slice(&row[i..i + w]);
        }
        for c in network {
            let (low, high) = tiles.split_at_mut(c.hi * LANES);
            let a: &mut [T; LANES] = (&mut low[c.lo * LANES..(c.lo + 1) * LANES])
                .try_into()
                .expect("a whole tile");
            let b: &mut [T; LANES] = (&mut high[..LANES]).try_into().expect("a whole tile");
            match (c.min, c.max) {
                (true, true) => {
                    for l in 0..LANES {
                        let (x, y) = (a[l], b[l]);
                        let less = y < x;
                        a[l] = if less { y } else { x };
                        b[l] = if less { x } else { y };
                    }
                }
                (true, false) => {
                    for l in 0..LANES {
                        let (x, y) = (a[l], b[l]);
                        a[l] = if y < x { y } else { x };
                    }
                }
                _ => {
                    for l in 0..LANES {
                        let (x, y) = (a[l], b[l]);
                        b[l] = if y < x { x } else { y };
                    }
                }
            }
        }
        out[i..i + w].copy_from_slice(&tiles[k * LANES..k * LANES + w]);
        i += w;
    }
}
