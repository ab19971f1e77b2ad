//! The per-axis tables the kernels of both backends read, each built by one function
//! here: stencil taps with the boundary mode folded in ([`tap_table`]), downsample
//! windows ([`windows`]) and upsample corners ([`corners`]; their denominator is
//! [`denominator`](super::denominator)).
//!
//! Entries are element offsets into the stage's input block. The CPU builds its
//! tables with `usize` offsets (an in-memory input may exceed 2^32 elements) and reads
//! them as they are; the GPU builds them with `u32` offsets (a storage binding holds
//! fewer than 2^32 words) and uploads them as they are, so the WGSL kernels read the
//! same layout (documented in each shader).

use bytemuck::{Pod, Zeroable};

use super::resample::{UpMethod, linear_source, linear_weights};
use super::stencil::Stencil;
use crate::region::AxisSet;

/// The integer type of a table's entries: `usize` on the CPU, `u32` on the GPU.
pub(crate) trait Offset: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The entry standing for "no input element here: use the constant" (`cval`);
    /// `NONE` in the shaders.
    const NONE: Self;

    /// `v` as an entry.
    ///
    /// # Panics
    /// If `v` does not fit (for `u32`: a value of `u32::MAX` or more, which no
    /// offset into a storage binding reaches).
    fn of(v: usize) -> Self;

    /// The value, or `None` for [`Offset::NONE`].
    fn get(self) -> Option<usize>;
}

impl Offset for usize {
    const NONE: usize = usize::MAX;

    fn of(v: usize) -> usize {
        v
    }

    fn get(self) -> Option<usize> {
        (self != Self::NONE).then_some(self)
    }
}

impl Offset for u32 {
    const NONE: u32 = u32::MAX;

    fn of(v: usize) -> u32 {
        u32::try_from(v)
            .ok()
            .filter(|&x| x != Self::NONE)
            .expect("a table entry of a device stage fits in 32 bits")
    }

    fn get(self) -> Option<usize> {
        (self != Self::NONE).then_some(self as usize)
    }
}

/// A stencil's taps along one axis, the boundary mode folded in: for the `p`-th output
/// index (in the output set's order) and tap `k`, `entries[p * taps + k]` is the
/// input's element offset along the axis (the index's position in the input block
/// times the axis' stride), or [`Offset::NONE`] where the mode supplies `cval`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TapTable<I> {
    /// Taps per output index: the stencil's extent on the axis.
    pub taps: usize,
    /// `taps` entries per output index.
    pub entries: Vec<I>,
}

impl<I: Offset> TapTable<I> {
    /// The offset of tap `k` of the `p`-th output index (`None`: `cval`).
    pub fn at(&self, p: usize, k: usize) -> Option<usize> {
        self.entries[p * self.taps + k].get()
    }

    /// The entries of the `p`-th output index, one per tap.
    pub fn of(&self, p: usize) -> &[I] {
        &self.entries[p * self.taps..(p + 1) * self.taps]
    }

    /// For each output index, the offset of its first tap where every tap reads the
    /// input one `stride` after the previous (inside the array), else [`Offset::NONE`]
    /// (near the edge): a kernel walks the first kind with plain strides.
    pub fn firsts(&self, stride: usize) -> Vec<I> {
        (0..self.entries.len() / self.taps)
            .map(|p| {
                let row = self.of(p);
                match row[0].get() {
                    Some(f)
                        if row
                            .iter()
                            .enumerate()
                            .all(|(k, e)| e.get() == Some(f + k * stride)) =>
                    {
                        I::of(f)
                    }
                    _ => I::NONE,
                }
            })
            .collect()
    }
}

/// The taps of `st` along `axis` for the output indices `out`, reading an input block
/// that holds the indices `held` on that axis with element stride `stride`, on an axis
/// of length `n`.
///
/// # Panics
/// If a tap's index is missing from `held`: the planner guarantees it is there.
pub(crate) fn tap_table<I: Offset>(
    st: &Stencil,
    axis: usize,
    held: &AxisSet,
    stride: usize,
    out: &AxisSet,
    n: usize,
) -> TapTable<I> {
    let entries = out
        .iter()
        .flat_map(|o| {
            st.offsets(axis).map(move |d| {
                st.mode.map(o as i64 + d, n).map_or(I::NONE, |i| {
                    let p = held
                        .position(i)
                        .expect("planner bug: a stencil tap is missing from the footprint");
                    I::of(p * stride)
                })
            })
        })
        .collect();
    TapTable {
        taps: st.shape[axis],
        entries,
    }
}

/// A downsample window along one axis: its first element's offset in the input block
/// and its length (partial at the array's edge).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window<I> {
    /// Element offset of the window's first index.
    pub first: I,
    /// Indices in the window.
    pub len: I,
}

// SAFETY: two `u32`s, `repr(C)`: no padding, every bit pattern valid.
unsafe impl Zeroable for Window<u32> {}
// SAFETY: as above.
unsafe impl Pod for Window<u32> {}

/// The windows of a downsample by `f` along one axis, one per output index of `out`,
/// reading an input block that holds `held` with element stride `stride`, on an axis
/// of length `n`.
pub(crate) fn windows<I: Offset>(
    held: &AxisSet,
    stride: usize,
    out: &AxisSet,
    n: usize,
    f: usize,
) -> Vec<Window<I>> {
    out.iter()
        .map(|o| {
            let start = o * f;
            let p = held
                .position(start)
                .expect("planner bug: a footprint misses a window");
            Window {
                first: I::of(p * stride),
                len: I::of(f.min(n - start)),
            }
        })
        .collect()
}

/// The two input samples of an upsampled index along one axis, with their weights as
/// numerators over `2f`. Nearest has one sample, weight `2f`, and a second of weight 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Corners<I> {
    /// Element offset of the lower sample.
    pub lo: I,
    /// Its weight numerator.
    pub lo_weight: I,
    /// Element offset of the upper sample (0 when its weight is 0).
    pub hi: I,
    /// Its weight numerator.
    pub hi_weight: I,
}

// SAFETY: four `u32`s, `repr(C)`: no padding, every bit pattern valid.
unsafe impl Zeroable for Corners<u32> {}
// SAFETY: as above.
unsafe impl Pod for Corners<u32> {}

const _: () = assert!(std::mem::size_of::<Window<u32>>() == 8);
const _: () = assert!(std::mem::size_of::<Corners<u32>>() == 16);

/// The corners of an upsample by `f` with `method` along one axis, one per output
/// index of `out`, reading an input block that holds `held` with element stride
/// `stride`, on an axis of length `n`.
pub(crate) fn corners<I: Offset>(
    held: &AxisSet,
    stride: usize,
    out: &AxisSet,
    n: usize,
    f: usize,
    method: UpMethod,
) -> Vec<Corners<I>> {
    let offset = |i: usize| {
        let p = held
            .position(i)
            .expect("planner bug: a footprint misses an upsample source");
        I::of(p * stride)
    };
    out.iter()
        .map(|o| match method {
            UpMethod::Nearest => Corners {
                lo: offset(o / f),
                lo_weight: I::of(2 * f),
                hi: I::of(0),
                hi_weight: I::of(0),
            },
            UpMethod::Linear => {
                let (i0, i1) = linear_source(o, f, n);
                let (_, m) = linear_weights(o, f);
                Corners {
                    lo: offset(i0),
                    lo_weight: I::of(2 * f - m as usize),
                    hi: offset(i1),
                    hi_weight: I::of(m as usize),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::Boundary;

    #[test]
    fn taps_fold_the_boundary_in_and_agree_in_both_widths() {
        // A 3-tap stencil centred at 1 on an axis of 5, the input holding 0..5 with
        // stride 10; output indices 0 and 4 reach past both edges.
        let st = Stencil::new(vec![3], vec![1], vec![1.0; 3], Boundary::Constant, 0.0);
        let held = AxisSet::from_range(0..5);
        let out = AxisSet::from_ranges([0..1, 4..5]);
        let wide = tap_table::<usize>(&st, 0, &held, 10, &out, 5);
        assert_eq!(wide.at(0, 0), None);
        assert_eq!(wide.of(0)[1..], [0, 10]);
        assert_eq!(wide.of(1)[..2], [30, 40]);
        assert_eq!(wide.at(1, 2), None);
        let narrow = tap_table::<u32>(&st, 0, &held, 10, &out, 5);
        let same: Vec<Option<usize>> = narrow.entries.iter().map(|e| e.get()).collect();
        let want: Vec<Option<usize>> = wide.entries.iter().map(|e| e.get()).collect();
        assert_eq!(same, want);

        let st = Stencil {
            mode: Boundary::Reflect,
            ..st
        };
        let reflected = tap_table::<usize>(&st, 0, &held, 1, &out, 5);
        assert_eq!(reflected.entries, vec![0, 0, 1, 3, 4, 4]);
        // Both outputs reach past an edge; an inside one walks with plain strides.
        assert_eq!(reflected.firsts(1), vec![usize::NONE, usize::NONE]);
        let inside = tap_table::<u32>(&st, 0, &held, 10, &AxisSet::from_range(1..4), 5);
        assert_eq!(inside.firsts(10), vec![0, 10, 20]);
    }

    #[test]
    fn windows_are_partial_at_the_edge() {
        let held = AxisSet::from_range(4..10);
        let w = windows::<u32>(&held, 3, &AxisSet::from_range(1..3), 10, 4);
        assert_eq!(
            w,
            vec![Window { first: 0, len: 4 }, Window { first: 12, len: 2 }]
        );
    }

    #[test]
    fn corners_weigh_the_two_nearest_centres() {
        let held = AxisSet::from_range(0..5);
        let out = AxisSet::from_range(0..4);
        let c = corners::<usize>(&held, 1, &out, 5, 2, UpMethod::Linear);
        // Output 0 sits at source -0.25 (clamped to 0), 3 at 1.25: 3/4 of 1, 1/4 of 2.
        assert_eq!(
            c[0],
            Corners {
                lo: 0,
                lo_weight: 1,
                hi: 0,
                hi_weight: 3
            }
        );
        assert_eq!(
            c[3],
            Corners {
                lo: 1,
                lo_weight: 3,
                hi: 2,
                hi_weight: 1
            }
        );
        let c = corners::<u32>(&held, 1, &out, 5, 2, UpMethod::Nearest);
        assert_eq!(
            c[3],
            Corners {
                lo: 1,
                lo_weight: 4,
                hi: 0,
                hi_weight: 0
            }
        );
    }
}
