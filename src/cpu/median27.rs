//! The median of a whole 3×3×3 box (`median --size 3` on a volume), from sorted
//! columns.
//!
//! A row of outputs along the last axis reads 9 input rows (3 along each leading
//! axis). Each position of those rows is one column of 9 values, and an output's box
//! is the 3 columns at its own position and its neighbours'. So:
//! 1. every column is sorted once (a 25-comparator network), for the 3 outputs that
//!    read it;
//! 2. for an output, the 3 sorted columns are the columns of a 9×3 matrix; sorting
//!    its rows keeps the columns sorted, so the entry in row `i` and column `j` has at
//!    least `(i + 1)(j + 1)` of the 27 values at or below it and `(9 - i)(3 - j)` at
//!    or above it. Only 13 entries can be the 14th smallest: the row minima of rows
//!    5–8, the row medians of rows 2–6 and the row maxima of rows 0–3, each list
//!    sorted; the median is the 7th smallest of those;
//! 3. the minima and maxima are merged (Batcher's 4 + 4 merge), and the 7th smallest
//!    of that list and the 5 medians is `min_i max(x_i, m_(7-i))`.
//!
//! Every step is a `min` or a `max` over whole vectors of outputs, about 15 per output
//! against about 150 for a selection network over the 27 values. Each step is a
//! monotone function of the values, so ties give what they would give any exact
//! selection: the result is the 14th smallest, the same bits as the network's.

/// The output of [`applies`] rank stages: the 14th smallest of 27.
const MEDIAN: usize = 13;

/// Whether `r` is a median over a whole 3×3×3 box on the last three axes.
pub(crate) fn applies(r: &crate::stage::Rank) -> bool {
    let shape = &r.window.shape;
    let n = shape.len();
    n >= 3
        && shape[n - 3..] == [3, 3, 3]
        && r.window.centre[n - 3..] == [1, 1, 1]
        && shape[..n - 3].iter().all(|&e| e == 1)
        && r.window.weights.iter().all(|&w| w != 0.0)
        && r.rank == MEDIAN
}

/// Compare-exchanges wires `(lo, hi)` of `v` in turn, so that `v[lo] <= v[hi]`;
/// written out, so that every wire stays in a register.
macro_rules! network {
    ($v:ident; $(($lo:literal, $hi:literal)),* $(,)?) => {
        $({
            let (a, b) = ($v[$lo], $v[$hi]);
            $v[$lo] = a.min(b);
            $v[$hi] = a.max(b);
        })*
    };
}

/// Sorts 9 wires: the 25 comparators of a 7-layer network.
macro_rules! sort9 {
    ($v:ident) => {
        network!($v;
            (0, 3), (1, 7), (2, 5), (4, 8),
            (0, 7), (2, 4), (3, 8), (5, 6),
            (0, 2), (1, 3), (4, 5), (7, 8),
            (1, 4), (3, 6), (5, 7),
            (0, 1), (2, 4), (3, 5), (6, 8),
            (2, 3), (4, 5), (6, 7),
            (1, 2), (3, 4), (5, 6),
        )
    };
}

/// Batcher's merge of two sorted lists of 4 (wires 0–3 and 4–7) into one.
macro_rules! merge44 {
    ($v:ident) => {
        network!($v;
            (0, 4), (1, 5), (2, 6), (3, 7),
            (2, 4), (3, 5),
            (1, 2), (3, 4), (5, 6),
        )
    };
}

/// A vector register of keys: the values a comparator orders, as many as fit in 256
/// bits, loaded from and stored to the values (`S`) they stand for.
pub(crate) trait Keys: Copy {
    /// The values, as stored.
    type S: Copy + Default;
    /// Keys per vector.
    const LANES: usize;
    /// Loads `LANES` values from `p` as keys.
    ///
    /// # Safety
    /// `p` is valid for reading `LANES` values; the CPU has AVX2.
    unsafe fn load(p: *const Self::S) -> Self;
    /// Stores the keys as the values they stand for.
    ///
    /// # Safety
    /// `p` is valid for writing `LANES` values; the CPU has AVX2.
    unsafe fn store(self, p: *mut Self::S);
    /// Loads keys stored by [`Keys::store_keys`].
    ///
    /// # Safety
    /// As [`Keys::load`].
    unsafe fn load_keys(p: *const Self::S) -> Self;
    /// Stores the keys themselves.
    ///
    /// # Safety
    /// As [`Keys::store`].
    unsafe fn store_keys(self, p: *mut Self::S);
    /// The lane-wise smaller key.
    ///
    /// # Safety
    /// The CPU has AVX2.
    unsafe fn min(self, other: Self) -> Self;
    /// The lane-wise larger key.
    ///
    /// # Safety
    /// The CPU has AVX2.
    unsafe fn max(self, other: Self) -> Self;
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::{F32Keys, Ints};

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::marker::PhantomData;

    use super::Keys;

    /// float32 values (as their bits), ordered by the order-preserving `i32` key of
    /// [`crate::keys::f32_key`] (its own inverse).
    #[derive(Clone, Copy)]
    pub(crate) struct F32Keys(__m256i);

    impl F32Keys {
        #[target_feature(enable = "avx2")]
        #[inline]
        fn flip(x: __m256i) -> __m256i {
            _mm256_xor_si256(x, _mm256_srli_epi32::<1>(_mm256_srai_epi32::<31>(x)))
        }
    }

    impl Keys for F32Keys {
        type S = u32;
        const LANES: usize = 8;
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn load(p: *const u32) -> Self {
            // SAFETY: the caller's contract.
            F32Keys(Self::flip(unsafe { _mm256_loadu_si256(p.cast()) }))
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn store(self, p: *mut u32) {
            // SAFETY: the caller's contract.
            unsafe { _mm256_storeu_si256(p.cast(), Self::flip(self.0)) }
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn load_keys(p: *const u32) -> Self {
            // SAFETY: the caller's contract.
            F32Keys(unsafe { _mm256_loadu_si256(p.cast()) })
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn store_keys(self, p: *mut u32) {
            // SAFETY: the caller's contract.
            unsafe { _mm256_storeu_si256(p.cast(), self.0) }
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn min(self, other: Self) -> Self {
            F32Keys(_mm256_min_epi32(self.0, other.0))
        }
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn max(self, other: Self) -> Self {
            F32Keys(_mm256_max_epi32(self.0, other.0))
        }
    }

    /// Integers, their own keys.
    #[derive(Clone, Copy)]
    pub(crate) struct Ints<T>(__m256i, PhantomData<T>);

    macro_rules! ints {
        ($t:ty, $min:ident, $max:ident) => {
            impl Keys for Ints<$t> {
                type S = $t;
                const LANES: usize = 32 / std::mem::size_of::<$t>();
                #[target_feature(enable = "avx2")]
                #[inline]
                unsafe fn load(p: *const $t) -> Self {
                    // SAFETY: the caller's contract.
                    Ints(unsafe { _mm256_loadu_si256(p.cast()) }, PhantomData)
                }
                #[target_feature(enable = "avx2")]
                #[inline]
                unsafe fn store(self, p: *mut $t) {
                    // SAFETY: the caller's contract.
                    unsafe { _mm256_storeu_si256(p.cast(), self.0) }
                }
                #[target_feature(enable = "avx2")]
                #[inline]
                unsafe fn load_keys(p: *const $t) -> Self {
                    // SAFETY: the caller's contract.
                    unsafe { Self::load(p) }
                }
                #[target_feature(enable = "avx2")]
                #[inline]
                unsafe fn store_keys(self, p: *mut $t) {
                    // SAFETY: the caller's contract.
                    unsafe { self.store(p) }
                }
                #[target_feature(enable = "avx2")]
                #[inline]
                unsafe fn min(self, other: Self) -> Self {
                    Ints($min(self.0, other.0), PhantomData)
                }
                #[target_feature(enable = "avx2")]
                #[inline]
                unsafe fn max(self, other: Self) -> Self {
                    Ints($max(self.0, other.0), PhantomData)
                }
            }
        };
    }

    ints!(u8, _mm256_min_epu8, _mm256_max_epu8);
    ints!(i8, _mm256_min_epi8, _mm256_max_epi8);
    ints!(u16, _mm256_min_epu16, _mm256_max_epu16);
    ints!(i16, _mm256_min_epi16, _mm256_max_epi16);
    ints!(u32, _mm256_min_epu32, _mm256_max_epu32);
    ints!(i32, _mm256_min_epi32, _mm256_max_epi32);
}

/// Whether [`median27`] can run here (it needs AVX2; elsewhere the selection network
/// computes the same values).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Writes into `out[i]` the median of `rows[t][i + d]` (9 rows, `d` < 3: each row holds
/// `out.len() + 2` values), a vector of outputs at a time; `cols` is scratch.
///
/// # Panics
/// If the CPU lacks AVX2 ([`available`]).
pub(crate) fn median27<V: Keys>(out: &mut [V::S], rows: &[&[V::S]], cols: &mut Vec<V::S>) {
    assert!(available(), "the 3×3×3 median needs AVX2");
    assert_eq!(rows.len(), 9, "a 3×3×3 box has 9 rows");
    assert!(
        rows.iter().all(|r| r.len() >= out.len() + 2),
        "each row holds its outputs' taps"
    );
    // SAFETY: the CPU has AVX2 (asserted above); the lengths are checked.
    unsafe { median27_avx2::<V>(out, rows, cols) }
}

/// [`median27`], compiled for AVX2.
///
/// # Safety
/// The CPU has AVX2; every row holds `out.len() + 2` values.
#[target_feature(enable = "avx2")]
unsafe fn median27_avx2<V: Keys>(out: &mut [V::S], rows: &[&[V::S]], cols: &mut Vec<V::S>) {
    let lanes = V::LANES;
    let n = out.len();
    let m = n + 2;
    // Column `x`'s `r`-th smallest key at `cols[r * stride + x]`, in whole vectors.
    let stride = m.div_ceil(lanes) * lanes + lanes;
    // A kept output lane reads only its own three columns, all before `m` and written
    // below; the rest of the buffer feeds only lanes that are dropped. So a buffer of
    // the right length is reused as it is, stale values and all (no fill per row).
    if cols.len() != 9 * stride {
        cols.clear();
        cols.resize(9 * stride, V::S::default());
    }
    // A last, partial vector of a row is read from (and an output's written to) here.
    let mut spare = [V::S::default(); 32];
    // SAFETY (every load and store below): the CPU has AVX2 (the caller's contract);
    // each touches `lanes` values inside a row of at least `m` values, inside `cols`'
    // `9 * stride` values, inside `out`, or inside `spare` (32 ≥ lanes).
    unsafe {
        let mut x = 0;
        while x < m {
            let w = lanes.min(m - x);
            let load = |t: usize, spare: &mut [V::S; 32]| {
                if w == lanes {
                    V::load(rows[t][x..].as_ptr())
                } else {
                    spare[..w].copy_from_slice(&rows[t][x..x + w]);
                    V::load(spare.as_ptr())
                }
            };
            let mut v = [load(0, &mut spare); 9];
            for (t, v) in v.iter_mut().enumerate().skip(1) {
                *v = load(t, &mut spare);
            }
            sort9!(v);
            for (r, v) in v.iter().enumerate() {
                v.store_keys(cols[r * stride + x..].as_mut_ptr());
            }
            x += lanes;
        }
        let mut i = 0;
        while i < n {
            let at = |r: usize, d: usize| V::load_keys(cols[r * stride + i + d..].as_ptr());
            let (mut a, mut b, mut c) = ([at(0, 0); 9], [at(0, 1); 9], [at(0, 2); 9]);
            for r in 1..9 {
                (a[r], b[r], c[r]) = (at(r, 0), at(r, 1), at(r, 2));
            }
            // Rows 5–8's minima and rows 0–3's maxima, merged (wires 0–3 and 4–7).
            let mut x = [a[0]; 8];
            for j in 0..4 {
                x[j] = a[5 + j].min(b[5 + j]).min(c[5 + j]);
                x[4 + j] = a[j].max(b[j]).max(c[j]);
            }
            merge44!(x);
            // Rows 2–6's medians: max(min(a, b), min(max(a, b), c)).
            let mut md = [a[0]; 5];
            for (j, md) in md.iter_mut().enumerate() {
                let r = 2 + j;
                *md = a[r].min(b[r]).max(a[r].max(b[r]).min(c[r]));
            }
            // The 7th smallest of x (8) and md (5): min over s = 2..=7 of
            // max(x_s, md_(7-s)), 1-based, with md_0 below everything.
            let mut kth = x[6];
            for s in 2..=6 {
                kth = kth.min(x[s - 1].max(md[7 - s - 1]));
            }
            let w = lanes.min(n - i);
            if w == lanes {
                kth.store(out[i..].as_mut_ptr());
            } else {
                kth.store(spare.as_mut_ptr());
                out[i..i + w].copy_from_slice(&spare[..w]);
            }
            i += lanes;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A comparator on plain bytes, for checking the networks.
    #[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
    struct Bit(u8);

    impl Bit {
        fn min(self, o: Bit) -> Bit {
            if o < self { o } else { self }
        }
        fn max(self, o: Bit) -> Bit {
            if o < self { self } else { o }
        }
    }

    /// The networks sort every input of 0s and 1s (so every input: the 0-1 principle).
    #[test]
    fn networks_sort() {
        for bits in 0u32..1 << 9 {
            let mut v: [Bit; 9] = std::array::from_fn(|t| Bit(((bits >> t) & 1) as u8));
            sort9!(v);
            assert!(v.windows(2).all(|p| p[0] <= p[1]), "{bits:09b}");
        }
        for bits in 0u32..1 << 8 {
            let mut v: [Bit; 8] = std::array::from_fn(|t| Bit(((bits >> t) & 1) as u8));
            v[..4].sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[4..].sort_by(|a, b| a.partial_cmp(b).unwrap());
            merge44!(v);
            assert!(v.windows(2).all(|p| p[0] <= p[1]), "{bits:08b}");
        }
    }

    /// The 14th smallest of the sorted box, for `f`'s rows of values.
    fn check<V: Keys>(
        n: usize,
        value: impl Fn(usize, usize) -> V::S,
        order: impl Fn(&V::S, &V::S) -> std::cmp::Ordering,
    ) {
        let rows: Vec<Vec<V::S>> = (0..9)
            .map(|t| (0..n + 2).map(|x| value(t, x)).collect())
            .collect();
        let refs: Vec<&[V::S]> = rows.iter().map(|r| &r[..]).collect();
        // The column buffer as earlier rows leave it: of the length this row needs, and
        // full of stale values, here the smallest and then the largest of the row's
        // values. None may reach an output.
        let stride = (n + 2).div_ceil(V::LANES) * V::LANES + V::LANES;
        let mut flat: Vec<V::S> = rows.iter().flatten().copied().collect();
        flat.sort_by(&order);
        for stale in [flat[0], flat[flat.len() - 1]] {
            let mut out = vec![V::S::default(); n];
            median27::<V>(&mut out, &refs, &mut vec![stale; 9 * stride]);
            for (i, got) in out.iter().enumerate() {
                let mut all: Vec<V::S> = rows.iter().flat_map(|r| r[i..i + 3].to_vec()).collect();
                all.sort_by(&order);
                assert!(order(got, &all[MEDIAN]).is_eq(), "n {n} output {i}");
            }
        }
    }

    /// The median of every box equals the 14th smallest of its 27 values, with ties
    /// (few distinct values), at every length (whole vectors and a partial one), for
    /// every key type; float32 by its bits' total order (NaNs, signed zeros).
    #[test]
    fn equals_the_sorted_boxes() {
        if !available() {
            // Nothing to run: the vector keys are AVX2 types. Without AVX2 a 3×3×3
            // median takes the selection network (`rank::select`), which the golden
            // median cases check on every CPU; the networks above are checked here.
            eprintln!(
                "notice: this CPU lacks AVX2: the 3×3×3 median's vector path is not run \
                 (the selection network, tested by the golden cases, computes it)"
            );
            return;
        }
        let mix =
            |t: usize, x: usize, levels: usize| (t * 7919 + x * 104_729 + t * x * 31) % levels;
        for (n, levels) in [(1, 3), (5, 1000), (16, 4), (37, 2), (70, 100)] {
            check::<Ints<u16>>(n, |t, x| mix(t, x, levels) as u16 * 61, Ord::cmp);
            check::<Ints<i16>>(n, |t, x| mix(t, x, levels) as i16 - 50, Ord::cmp);
            check::<Ints<u8>>(n, |t, x| mix(t, x, levels) as u8, Ord::cmp);
            check::<Ints<i8>>(n, |t, x| (mix(t, x, levels) % 256) as u8 as i8, Ord::cmp);
            check::<Ints<u32>>(n, |t, x| mix(t, x, levels) as u32 * 4_000_000, Ord::cmp);
            check::<Ints<i32>>(n, |t, x| mix(t, x, levels) as i32 - 7, Ord::cmp);
            let special = [f32::NAN, -f32::NAN, 0.0, -0.0, f32::INFINITY, -1.5, 2.25];
            check::<F32Keys>(
                n,
                |t, x| {
                    let k = mix(t, x, levels);
                    if k % 5 == 0 {
                        special[k % special.len()]
                    } else {
                        k as f32 - 3.5
                    }
                    .to_bits()
                },
                |a, b| {
                    let key = |b: u32| crate::keys::f32_key(b);
                    key(*a).cmp(&key(*b))
                },
            );
        }
    }
}
