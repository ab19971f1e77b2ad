//! Rank filters (median, percentile, minimum, maximum) with scipy boundary modes.
//!
//! The taps of a run of outputs are gathered as the stencil gathers them
//! ([`over_taps`]); each run is then cut into tiles of [`LANES`] outputs, every tap's
//! values for a tile are copied side by side, and the selection network of
//! [`Rank::network`] runs on whole tiles: one comparator is a `min` and a `max` over
//! `LANES` lanes, which the compiler turns into vector instructions. A 3×3×3 median
//! is about 150 such comparators per tile, with no branch on the data.

use super::median27;
use super::stencil::over_taps;
use crate::block::Block;
use crate::dtype::Element;
use crate::keys::f32_key;
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
    #[cfg(target_arch = "x86_64")]
    if median27::applies(r) && median27::available() && T::DTYPE.size() < 8 {
        return box_median(input, out, in_shape, r);
    }
    let network = r.network();
    let n = r.taps();
    let mut tiles = vec![T::default(); n * LANES];
    let mut keys = if T::DTYPE == crate::dtype::DType::F32 {
        vec![0i32; n * LANES]
    } else {
        Vec::new()
    };
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
            select(dst, &rows, &network, r.rank, &mut tiles, &mut keys);
        },
    )
}

/// A median over a whole 3×3×3 box ([`median27`]), comparing the keys [`select`]
/// compares (float32 by its bits' total order), so the same bits. Not for float64,
/// which the selection network compares as floats.
#[cfg(target_arch = "x86_64")]
fn box_median<T: Element>(
    input: &Block<'_, T>,
    out: &[AxisSet],
    in_shape: &[usize],
    r: &Rank,
) -> Block<'static, T> {
    use crate::dtype::DType;
    use median27::{F32Keys, Ints, median27};

    /// Runs [`median27`] with keys `V` on `T`'s values seen as `V::S`.
    ///
    /// # Safety
    /// `T` and `V::S` have the same layout, every `T` bit pattern a valid `V::S`.
    unsafe fn keyed<T, V: median27::Keys>(dst: &mut [T], rows: &[&[T]], cols: &mut Vec<V::S>) {
        // SAFETY: the caller's contract.
        let (dst, rows) = unsafe { as_bits::<T, V::S>(dst, rows) };
        median27::<V>(dst, &rows, cols);
    }

    let mut cols8 = Vec::new();
    let mut cols16 = Vec::new();
    let mut cols32 = Vec::new();
    let mut cols_i8 = Vec::new();
    let mut cols_i16 = Vec::new();
    let mut cols_i32 = Vec::new();
    let mut cols_f32 = Vec::new();
    over_taps(
        input,
        out,
        in_shape,
        &r.window,
        T::from_f64(r.cval),
        |dst: &mut [T], taps: &[(&[T], &[f32])]| {
            let rows: Vec<&[T]> = taps.iter().map(|&(row, _)| row).collect();
            // SAFETY: each arm's key type stores values of exactly `T`'s type.
            unsafe {
                match T::DTYPE {
                    DType::U8 => keyed::<T, Ints<u8>>(dst, &rows, &mut cols8),
                    DType::I8 => keyed::<T, Ints<i8>>(dst, &rows, &mut cols_i8),
                    DType::U16 => keyed::<T, Ints<u16>>(dst, &rows, &mut cols16),
                    DType::I16 => keyed::<T, Ints<i16>>(dst, &rows, &mut cols_i16),
                    DType::U32 => keyed::<T, Ints<u32>>(dst, &rows, &mut cols32),
                    DType::I32 => keyed::<T, Ints<i32>>(dst, &rows, &mut cols_i32),
                    DType::F32 => keyed::<T, F32Keys>(dst, &rows, &mut cols_f32),
                    DType::U64 | DType::I64 | DType::F64 => {
                        unreachable!("64-bit types take the selection network")
                    }
                }
            }
        },
    )
}

/// Writes into `out[i]` the `k`-th smallest of `rows[t][i]` over `t`.
///
/// float32 values are ordered by their bits' total order (`-0.0` below `0.0`, NaNs
/// beyond the infinities by their sign), through order-preserving `i32` keys:
/// comparing and selecting integers vectorises where `f32`'s `<` did not (a 3×3×3
/// float32 median took 6.6 times as long as a uint16 one). The GPU kernel compares the
/// same keys.
fn select<T: Element>(
    out: &mut [T],
    rows: &[&[T]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [T],
    keys: &mut [i32],
) {
    if T::DTYPE == crate::dtype::DType::F32 {
        // SAFETY: T is f32 (its DTYPE says so), which has the layout of u32.
        let (out, rows) = unsafe { as_bits::<T, u32>(out, rows) };
        let back = |k: i32| f32_key(k as u32) as u32;
        dispatch(out, &rows, network, k, keys, f32_key, back);
    } else {
        dispatch(out, rows, network, k, tiles, |x| x, |x| x);
    }
}

/// `out` and `rows` of `T` seen as their bits `B`.
///
/// # Safety
/// `T` and `B` must have the same size and alignment, every `T` bit pattern a valid `B`.
unsafe fn as_bits<'a, 'b, T, B>(out: &'a mut [T], rows: &[&'b [T]]) -> (&'a mut [B], Vec<&'b [B]>) {
    // SAFETY: the caller guarantees that T and B have the same layout.
    unsafe {
        (
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<B>(), out.len()),
            rows.iter()
                .map(|r| std::slice::from_raw_parts(r.as_ptr().cast::<B>(), r.len()))
                .collect(),
        )
    }
}

/// Runs [`select_tiles`] compiled for AVX2 where the CPU has it.
fn dispatch<S: Copy, K: Copy + PartialOrd>(
    out: &mut [S],
    rows: &[&[S]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [K],
    key: impl Fn(S) -> K + Copy,
    back: impl Fn(K) -> S + Copy,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { select_avx2(out, rows, network, k, tiles, key, back) };
        }
    }
    select_tiles(out, rows, network, k, tiles, key, back)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn select_avx2<S: Copy, K: Copy + PartialOrd>(
    out: &mut [S],
    rows: &[&[S]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [K],
    key: impl Fn(S) -> K + Copy,
    back: impl Fn(K) -> S + Copy,
) {
    select_tiles(out, rows, network, k, tiles, key, back)
}

/// Tile by tile: each row's values for the tile copied in as keys, the network run on
/// whole tiles, wire `k` copied out.
#[inline(always)]
fn select_tiles<S: Copy, K: Copy + PartialOrd>(
    out: &mut [S],
    rows: &[&[S]],
    network: &[Comparator],
    k: usize,
    tiles: &mut [K],
    key: impl Fn(S) -> K + Copy,
    back: impl Fn(K) -> S + Copy,
) {
    let len = out.len();
    let mut i = 0;
    while i < len {
        let w = LANES.min(len - i);
        for (t, row) in rows.iter().enumerate() {
            for (d, &x) in tiles[t * LANES..t * LANES + w]
                .iter_mut()
                .zip(&row[i..i + w])
            {
                *d = key(x);
            }
        }
        for c in network {
            let (low, high) = tiles.split_at_mut(c.hi * LANES);
            let a: &mut [K; LANES] = (&mut low[c.lo * LANES..(c.lo + 1) * LANES])
                .try_into()
                .expect("a whole tile");
            let b: &mut [K; LANES] = (&mut high[..LANES]).try_into().expect("a whole tile");
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
        for (o, &x) in out[i..i + w]
            .iter_mut()
            .zip(&tiles[k * LANES..k * LANES + w])
        {
            *o = back(x);
        }
        i += w;
    }
}
