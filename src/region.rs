//! N-D boxes, regular chunk grids, and the per-axis index sets the planner works with.
//! (Layer: the foundations; see the layer map in `docs/ARCHITECTURE.md`.)

use std::ops::Range;

use crate::error::{Error, Result};

/// An N-D box: `start[i] .. start[i] + shape[i]` on every axis.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// First index on each axis.
    pub start: Vec<usize>,
    /// Extent on each axis.
    pub shape: Vec<usize>,
}

impl Region {
    /// A region from its start and shape (same length).
    pub fn new(start: Vec<usize>, shape: Vec<usize>) -> Self {
        assert_eq!(start.len(), shape.len(), "start and shape differ in rank");
        Region { start, shape }
    }

    /// The region `0..shape` on every axis.
    pub fn whole(shape: &[usize]) -> Self {
        Region::new(vec![0; shape.len()], shape.to_vec())
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// One past the last index on each axis.
    pub fn end(&self) -> Vec<usize> {
        self.start
            .iter()
            .zip(&self.shape)
            .map(|(s, n)| s + n)
            .collect()
    }

    /// The index range on `axis`.
    pub fn range(&self, axis: usize) -> Range<usize> {
        self.start[axis]..self.start[axis] + self.shape[axis]
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the region holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the region's elements start in a C-order array of `shape`, if they are
    /// contiguous there (every axis after the first one longer than 1 whole) and there
    /// are any.
    pub fn contiguous_offset(&self, shape: &[usize]) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let last = self.ndim().saturating_sub(1);
        let first = self.shape.iter().position(|&n| n > 1).unwrap_or(last);
        let whole =
            (first + 1..shape.len()).all(|a| self.start[a] == 0 && self.shape[a] == shape[a]);
        whole.then(|| {
            self.start
                .iter()
                .zip(shape)
                .fold(0, |offset, (&i, &n)| offset * n + i)
        })
    }

    /// The smallest region holding every index of `sets` (one set per axis).
    pub fn bounding(sets: &[AxisSet]) -> Self {
        let (start, shape) = sets
            .iter()
            .map(|s| {
                let b = s.bounds();
                (b.start, b.len())
            })
            .unzip();
        Region { start, shape }
    }

    /// The region's indices, one run per axis.
    pub fn sets(&self) -> Vec<AxisSet> {
        (0..self.ndim())
            .map(|a| AxisSet::from_range(self.range(a)))
            .collect()
    }

    /// The region without axis `axis` (one rank fewer).
    pub fn without_axis(&self, axis: usize) -> Region {
        let mut r = self.clone();
        r.start.remove(axis);
        r.shape.remove(axis);
        r
    }

    /// The common part of two regions of the same rank (possibly empty).
    pub fn intersect(&self, other: &Region) -> Region {
        let (start, shape) = (0..self.ndim())
            .map(|a| {
                let lo = self.start[a].max(other.start[a]);
                let hi = (self.start[a] + self.shape[a]).min(other.start[a] + other.shape[a]);
                (lo, hi.saturating_sub(lo))
            })
            .unzip();
        Region { start, shape }
    }
}

/// A regular chunk grid over an array: chunks of `chunk` elements, partial at the far edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    shape: Vec<usize>,
    chunk: Vec<usize>,
}

impl Grid {
    /// A grid over an array of `shape`, chunked by `chunk` (same rank, chunk sizes ≥ 1).
    pub fn new(shape: &[usize], chunk: &[usize]) -> Result<Self> {
        if shape.len() != chunk.len() {
            return Err(Error::Shape(format!(
                "array shape {shape:?} and chunk shape {chunk:?} differ in rank"
            )));
        }
        if chunk.contains(&0) {
            return Err(Error::Shape(format!(
                "chunk shape {chunk:?} has a zero extent"
            )));
        }
        count("the array", "elements", shape)?;
        let grid: Vec<usize> = shape
            .iter()
            .zip(chunk)
            .map(|(n, c)| n.div_ceil(*c))
            .collect();
        count("the chunk grid", "chunks", &grid)?;
        Ok(Grid {
            shape: shape.to_vec(),
            chunk: chunk.to_vec(),
        })
    }

    /// The array shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The chunk shape.
    pub fn chunk_shape(&self) -> &[usize] {
        &self.chunk
    }

    /// Number of chunks along each axis (`ceil(shape / chunk)`).
    pub fn grid_shape(&self) -> Vec<usize> {
        self.shape
            .iter()
            .zip(&self.chunk)
            .map(|(n, c)| n.div_ceil(*c))
            .collect()
    }

    /// Total number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.grid_shape().iter().product()
    }

    /// The region of the chunk at grid index `index`, clipped to the array.
    pub fn chunk_region(&self, index: &[usize]) -> Region {
        let (start, shape) = index
            .iter()
            .zip(&self.chunk)
            .zip(&self.shape)
            .map(|((i, c), n)| {
                let s = i * c;
                (s, (s + c).min(*n).saturating_sub(s))
            })
            .unzip();
        Region { start, shape }
    }

    /// The grid indices of the chunks holding any index of `sets` (one set per axis,
    /// inside the array), C order: zarrs' `chunks_in_array_subset` for index sets. A
    /// box passes `region.sets()`.
    pub fn chunks_touching(&self, sets: &[AxisSet]) -> Vec<Vec<usize>> {
        let per_axis: Vec<Vec<usize>> = sets
            .iter()
            .zip(&self.chunk)
            .map(|(set, &c)| {
                let mut ids: Vec<usize> = set
                    .runs()
                    .iter()
                    .flat_map(|r| r.start / c..=(r.end - 1) / c)
                    .collect();
                ids.dedup();
                ids
            })
            .collect();
        let counts: Vec<usize> = per_axis.iter().map(Vec::len).collect();
        (0..counts.iter().product())
            .map(|flat| {
                unravel(flat, &counts)
                    .iter()
                    .zip(&per_axis)
                    .map(|(&i, ids)| ids[i])
                    .collect()
            })
            .collect()
    }

    /// The C-order number of the chunk at grid index `index`.
    pub fn ravel(&self, index: &[usize]) -> usize {
        index
            .iter()
            .zip(self.grid_shape())
            .fold(0, |flat, (&i, n)| flat * n + i)
    }

    /// All chunk regions in C order (last axis fastest), edge chunks clipped.
    pub fn chunks(&self) -> impl Iterator<Item = Region> + '_ {
        let grid = self.grid_shape();
        let total: usize = grid.iter().product();
        (0..total).map(move |flat| self.chunk_region(&unravel(flat, &grid)))
    }
}

/// The C-order multi-index of `flat` in an array of `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        index[a] = flat % shape[a];
        flat /= shape[a];
    }
    index
}

/// The number of `what` in `extents` (their product), or [`Error::Shape`] naming `whole`
/// when it passes what a `usize` counts: never a wrapped count.
pub fn count(whole: &str, what: &str, extents: &[usize]) -> Result<usize> {
    extents
        .iter()
        .try_fold(1usize, |n, &e| n.checked_mul(e))
        .ok_or_else(|| {
            let bits: f64 = extents.iter().map(|&e| (e as f64).log2()).sum();
            Error::Shape(format!(
                "{whole} ({extents:?}) has about 2^{bits:.1} {what}, more than this build can count (2^{})",
                usize::BITS
            ))
        })
}

/// The bytes of an array of `shape` with elements of `size` bytes, or [`Error::Shape`]
/// when they pass what a `u64` counts.
pub fn checked_bytes(shape: &[usize], size: usize) -> Result<u64> {
    let elements = count("the array", "elements", shape)?;
    (elements as u64)
        .checked_mul(size as u64)
        .ok_or_else(|| {
            let bits = shape.iter().map(|&e| (e as f64).log2()).sum::<f64>() + (size as f64).log2();
            Error::Shape(format!(
                "the array ({shape:?}, {size}-byte elements) has about 2^{bits:.1} bytes, more than this build can count (2^64)"
            ))
        })
}

/// A sorted set of indices along one axis, kept as disjoint, non-adjacent runs.
///
/// Most sets are one run (a block grown by its halo). Boundary modes that fetch data
/// from the far side of the array (`wrap`, and reflections longer than the axis) add
/// runs, so a footprint is not always a box.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AxisSet {
    runs: Vec<Range<usize>>,
}

impl AxisSet {
    /// The set holding `range` (empty if the range is empty).
    pub fn from_range(range: Range<usize>) -> Self {
        let mut s = AxisSet::default();
        if !range.is_empty() {
            s.runs.push(range);
        }
        s
    }

    /// The set holding the given ranges (in any order, overlapping or not).
    pub fn from_ranges(ranges: impl IntoIterator<Item = Range<usize>>) -> Self {
        let mut ranges: Vec<_> = ranges.into_iter().filter(|r| !r.is_empty()).collect();
        ranges.sort_by_key(|r| r.start);
        let mut runs: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match runs.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => runs.push(r),
            }
        }
        AxisSet { runs }
    }

    /// The maximal runs of consecutive indices, ascending.
    pub fn runs(&self) -> &[Range<usize>] {
        &self.runs
    }

    /// Number of indices in the set.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.len()).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The smallest range holding the whole set.
    pub fn bounds(&self) -> Range<usize> {
        match (self.runs.first(), self.runs.last()) {
            (Some(a), Some(b)) => a.start..b.end,
            _ => 0..0,
        }
    }

    /// The indices, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.runs.iter().flat_map(|r| r.clone())
    }

    /// The rank of `index` in the set (its position in a dense array over the set).
    pub fn position(&self, index: usize) -> Option<usize> {
        let mut before = 0;
        for r in &self.runs {
            if index < r.start {
                return None;
            }
            if index < r.end {
                return Some(before + index - r.start);
            }
            before += r.len();
        }
        None
    }

    /// Whether every index of `other` is in `self`.
    pub fn contains_set(&self, other: &AxisSet) -> bool {
        other.runs.iter().all(|r| {
            self.runs
                .iter()
                .any(|s| s.start <= r.start && r.end <= s.end)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_regions_and_their_offsets() {
        let shape = [4, 5, 6];
        let at = |start: [usize; 3], extent: [usize; 3]| {
            Region::new(start.to_vec(), extent.to_vec()).contiguous_offset(&shape)
        };
        // Rows of whole planes, a plane's rows, part of one row, one element.
        assert_eq!(at([1, 0, 0], [2, 5, 6]), Some(30));
        assert_eq!(at([2, 1, 0], [1, 3, 6]), Some(2 * 30 + 6));
        assert_eq!(at([3, 4, 2], [1, 1, 3]), Some(3 * 30 + 4 * 6 + 2));
        assert_eq!(at([3, 4, 5], [1, 1, 1]), Some(119));
        // Rows cut short, planes cut short, nothing.
        assert_eq!(at([0, 1, 0], [1, 2, 5]), None);
        assert_eq!(at([0, 0, 0], [2, 4, 6]), None);
        assert_eq!(at([0, 0, 0], [1, 0, 6]), None);
    }

    #[test]
    fn grid_iterates_chunks_in_c_order_with_partial_edges() {
        let g = Grid::new(&[5, 3], &[2, 2]).unwrap();
        assert_eq!(g.grid_shape(), vec![3, 2]);
        let chunks: Vec<_> = g.chunks().collect();
        assert_eq!(chunks.len(), 6);
        assert_eq!(chunks[0], Region::new(vec![0, 0], vec![2, 2]));
        assert_eq!(chunks[1], Region::new(vec![0, 2], vec![2, 1]));
        assert_eq!(chunks[5], Region::new(vec![4, 2], vec![1, 1]));
        let covered: usize = chunks.iter().map(Region::len).sum();
        assert_eq!(covered, 15);
    }

    #[test]
    fn chunks_touching_a_wrapped_footprint() {
        let grid = Grid::new(&[10, 10], &[4, 4]).unwrap();
        let sets = [
            AxisSet::from_ranges([0..2, 9..10]),
            AxisSet::from_range(3..5),
        ];
        // Rows: chunks {0, 2}; columns: chunks {0, 1}; the grid is 3 x 3.
        let touched = grid.chunks_touching(&sets);
        assert_eq!(
            touched,
            vec![vec![0, 0], vec![0, 1], vec![2, 0], vec![2, 1]]
        );
        let flat: Vec<usize> = touched.iter().map(|c| grid.ravel(c)).collect();
        assert_eq!(flat, vec![0, 1, 6, 7]);
        assert!(
            grid.chunks_touching(&[AxisSet::from_range(0..0), AxisSet::from_range(0..1)])
                .is_empty()
        );
    }

    #[test]
    fn grid_rejects_zero_chunks_and_rank_mismatch() {
        assert!(Grid::new(&[5, 3], &[0, 2]).is_err());
        assert!(Grid::new(&[5, 3], &[2]).is_err());
    }

    #[test]
    fn axis_set_merges_and_ranks() {
        let s = AxisSet::from_ranges([8..10, 0..3, 2..4, 4..5]);
        assert_eq!(s.runs(), &[0..5, 8..10]);
        assert_eq!(s.len(), 7);
        assert_eq!(s.position(4), Some(4));
        assert_eq!(s.position(6), None);
        assert_eq!(s.position(9), Some(6));
        assert!(s.contains_set(&AxisSet::from_ranges([1..3, 8..9])));
        assert!(!s.contains_set(&AxisSet::from_range(4..9)));
        assert_eq!(s.bounds(), 0..10);
    }
}
