//! Connected components of one block, as `scipy.ndimage.label` numbers them: the
//! foreground is cut into runs along the last axis, runs that touch through the
//! structure are joined by a union-find (each root is its component's first run), and
//! labels count the components in raster order of their first voxel.

use crate::stage::{RowStep, Structure};

/// The components of one block: its foreground runs and their labels.
pub(crate) struct Labelled {
    /// The block's length on the last axis.
    pub nx: usize,
    /// Where each row's runs begin in `runs` (rows in C order), and the end.
    pub row_start: Vec<usize>,
    /// The runs `[x0, x1)` along the last axis, in raster order.
    pub runs: Vec<(u32, u32)>,
    /// Each run's label, from 1, in raster order of each component's first voxel.
    pub label: Vec<u32>,
    /// The number of components.
    pub count: u32,
    /// Each component's first run (its first voxel begins it), by label − 1.
    pub first_run: Vec<u32>,
    /// How many components begin on each row.
    pub row_new: Vec<u32>,
}

/// Labels the foreground (`fg`) of `data`, a C-order block of shape `lens`, joined
/// through `structure`.
///
/// # Panics
/// If the block has more than `u32::MAX` runs (callers cut larger arrays into blocks).
pub(crate) fn label_block<T: Copy>(
    data: &[T],
    lens: &[usize],
    structure: &Structure,
    fg: impl Fn(T) -> bool,
) -> Labelled {
    let ndim = lens.len();
    let nx = lens[ndim - 1];
    let rows: usize = lens[..ndim - 1].iter().product();
    let whole_runs = structure.joins_along_rows();
    // At most one run per two voxels of a row: reserved whole (only what is written is
    // touched), so the vector never grows by copying.
    let mut runs: Vec<(u32, u32)> = Vec::with_capacity(rows * nx.div_ceil(2));
    crate::in_memory::advise_huge_pages(&mut runs);
    let mut row_start = Vec::with_capacity(rows + 1);
    // With whole runs, the rows as bit masks: runs and their joins are then found with
    // word operations, without a branch per voxel or per run.
    let bits = whole_runs.then(|| RowBits::new(data, nx, rows, &fg, &mut runs, &mut row_start));
    if !whole_runs {
        for line in data.chunks_exact(nx.max(1)).take(rows) {
            row_start.push(runs.len());
            for (x, &v) in line.iter().enumerate() {
                if fg(v) {
                    runs.push((x as u32, x as u32 + 1));
                }
            }
        }
    }
    while row_start.len() < rows + 1 {
        row_start.push(runs.len());
    }
    assert!(
        runs.len() < u32::MAX as usize,
        "a block of more than 2^32 runs"
    );

    let mut parent: Vec<u32> = Vec::with_capacity(runs.len());
    crate::in_memory::advise_huge_pages(&mut parent);
    parent.extend(0..runs.len() as u32);
    let row_lens = &lens[..ndim - 1];
    let steps: Vec<Backward> = structure
        .row_steps()
        .into_iter()
        .filter(RowStep::backward)
        .map(|s| {
            let mut delta = 0isize;
            let mut stride = 1isize;
            for a in (0..ndim - 1).rev() {
                delta += isize::from(s.row[a]) * stride;
                stride *= row_lens[a] as isize;
            }
            Backward {
                pieces: s.pieces(),
                row: s.row,
                delta,
            }
        })
        .collect();
    let mut c = vec![0usize; ndim - 1];
    for r in 0..rows {
        let here = row_start[r]..row_start[r + 1];
        if !here.is_empty() {
            for step in &steps {
                let inside = (0..ndim - 1).all(|a| {
                    let v = c[a] as isize + isize::from(step.row[a]);
                    v >= 0 && v < row_lens[a] as isize
                });
                if !inside {
                    continue;
                }
                let n = (r as isize + step.delta) as usize;
                let there = row_start[n]..row_start[n + 1];
                for &(lo, hi) in &step.pieces {
                    match &bits {
                        Some(b) => b.join(r, n, lo, hi, &runs, &row_start, &mut parent),
                        None => join_rows(&runs, here.clone(), there.clone(), lo, hi, &mut parent),
                    }
                }
            }
        }
        for a in (0..ndim - 1).rev() {
            c[a] += 1;
            if c[a] < row_lens[a] {
                break;
            }
            c[a] = 0;
        }
    }

    // Every parent precedes its child (a union keeps the smaller root), so one pass in
    // order turns each entry into its label: a root takes the next number, any other
    // run its parent's, already numbered.
    let mut label = parent;
    let mut count = 0u32;
    let mut first_run = Vec::new();
    let mut row_new = vec![0u32; rows];
    for r in 0..rows {
        for i in row_start[r]..row_start[r + 1] {
            let p = label[i] as usize;
            if p == i {
                count += 1;
                label[i] = count;
                first_run.push(i as u32);
                row_new[r] += 1;
            } else {
                label[i] = label[p];
            }
        }
    }
    Labelled {
        nx,
        row_start,
        runs,
        label,
        count,
        first_run,
        row_new,
    }
}

/// The rows of a block as bit masks along the last axis (bit `x % 64` of word
/// `x / 64` is voxel `x`), with, before each word, how many of the row's runs begin
/// and how many end: the index of the run at any voxel is then a population count.
struct RowBits {
    /// Words per row.
    words: usize,
    /// The foreground, `words` per row; bits past the row's end are 0.
    fg: Vec<u64>,
    /// Per word: the runs of its row that begin before it.
    starts_before: Vec<u32>,
    /// Per word: the runs of its row that end (have their last voxel) before it.
    ends_before: Vec<u32>,
}

impl RowBits {
    /// The masks of the `rows` rows of `nx` voxels of `data`, appending each row's
    /// whole runs to `runs` and where they begin to `row_start`.
    fn new<T: Copy>(
        data: &[T],
        nx: usize,
        rows: usize,
        fg: impl Fn(T) -> bool,
        runs: &mut Vec<(u32, u32)>,
        row_start: &mut Vec<usize>,
    ) -> RowBits {
        let words = nx.div_ceil(64);
        let mut bits = RowBits {
            words,
            fg: vec![0; rows * words],
            starts_before: vec![0; rows * words],
            ends_before: vec![0; rows * words],
        };
        if nx == 0 {
            return bits;
        }
        for (r, line) in data.chunks_exact(nx).take(rows).enumerate() {
            let base = runs.len();
            row_start.push(base);
            let row = r * words..(r + 1) * words;
            for (w, piece) in bits.fg[row.clone()].iter_mut().zip(line.chunks(64)) {
                let mut m = 0u64;
                for (k, &v) in piece.iter().enumerate() {
                    m |= u64::from(fg(v)) << k;
                }
                *w = m;
            }
            let fgw = &bits.fg[row.clone()];
            let (mut began, mut ended) = (0u32, 0u32);
            for w in 0..words {
                bits.starts_before[row.start + w] = began;
                bits.ends_before[row.start + w] = ended;
                let x = (w * 64) as u32;
                let mut s = starts(fgw, w);
                began += s.count_ones();
                while s != 0 {
                    runs.push((x + s.trailing_zeros(), 0));
                    s &= s - 1;
                }
                let mut e = ends(fgw, w);
                ended += e.count_ones();
                let mut k = base + (ended - e.count_ones()) as usize;
                while e != 0 {
                    runs[k].1 = x + e.trailing_zeros() + 1;
                    k += 1;
                    e &= e - 1;
                }
            }
        }
        bits
    }

    /// Joins the runs of row `a` with those of the earlier row `b` that touch with a
    /// last-axis step in `lo..=hi`.
    ///
    /// Run `[a0, a1)` of `a` reaches `[a0 + lo, a1 + hi)`. The voxels that some reach
    /// of `a` and a run of `b` share form segments, each inside one run of `b`; the runs
    /// of `a` whose reach meets a segment are consecutive, and each pair of touching
    /// runs shares exactly one segment.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &self,
        a: usize,
        b: usize,
        lo: i64,
        hi: i64,
        runs: &[(u32, u32)],
        row_start: &[usize],
        parent: &mut [u32],
    ) {
        let words = self.words;
        if words == 0 {
            return;
        }
        let fa = &self.fg[a * words..(a + 1) * words];
        let fb = &self.fg[b * words..(b + 1) * words];
        // The reach of `a`: bit x set when some d in lo..=hi (each −1, 0 or 1) has
        // voxel x − d set.
        let reach = |w: usize| -> u64 {
            let mut m = 0u64;
            for d in lo..=hi {
                m |= match d {
                    0 => fa[w],
                    1 => (fa[w] << 1) | if w > 0 { fa[w - 1] >> 63 } else { 0 },
                    _ => (fa[w] >> 1) | fa.get(w + 1).map_or(0, |&n| n << 63),
                };
            }
            m
        };
        let mut previous = 0u64;
        let mut open = 0u32;
        let mut next = reach(0) & fb[0];
        for w in 0..words {
            let shared = next;
            next = if w + 1 < words {
                reach(w + 1) & fb[w + 1]
            } else {
                0
            };
            let mut s = shared & !((shared << 1) | (previous >> 63));
            let mut e = shared & !((shared >> 1) | (next << 63));
            previous = shared;
            // Segments alternate: a start, then its end (in this word or a later one).
            while s | e != 0 {
                let (ts, te) = (s.trailing_zeros(), e.trailing_zeros());
                if s != 0 && ts <= te {
                    open = (w * 64) as u32 + ts;
                    s &= s - 1;
                } else {
                    let last = (w * 64) as u32 + te;
                    e &= e - 1;
                    self.segment(a, b, lo, hi, open, last, runs, row_start, parent);
                }
            }
        }
    }

    /// Joins the run of row `b` holding voxels `first..=last` with every run of row `a`
    /// whose reach meets them.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &self,
        a: usize,
        b: usize,
        lo: i64,
        hi: i64,
        first: u32,
        last: u32,
        runs: &[(u32, u32)],
        row_start: &[usize],
        parent: &mut [u32],
    ) {
        let words = self.words;
        let a_end = row_start[a + 1];
        // The run of `b` that holds `first`: the runs of `b` beginning at or before it.
        let (w, k) = ((first / 64) as usize, first % 64);
        let fb = &self.fg[b * words..(b + 1) * words];
        let began = self.starts_before[b * words + w]
            + (starts(fb, w) & (2u64 << k).wrapping_sub(1)).count_ones();
        let j = (row_start[b] + began as usize - 1) as u32;
        // The first run of `a` whose reach ends at or after `first`: those before it
        // have their last voxel before `first − hi`.
        let q = i64::from(first) - hi;
        let fa = &self.fg[a * words..(a + 1) * words];
        let before = if q <= 0 {
            0
        } else {
            let q = q as usize;
            let (w, k) = (q / 64, q % 64);
            if w >= words {
                (a_end - row_start[a]) as u32
            } else {
                self.ends_before[a * words + w] + (ends(fa, w) & ((1u64 << k) - 1)).count_ones()
            }
        };
        let mut i = row_start[a] + before as usize;
        let mut root = find(parent, j);
        loop {
            let ra = find(parent, i as u32);
            root = link(parent, ra, root);
            i += 1;
            if i >= a_end || i64::from(runs[i].0) + lo > i64::from(last) {
                break;
            }
        }
    }
}

/// The voxels of word `w` of a row's mask that begin a run.
fn starts(row: &[u64], w: usize) -> u64 {
    let carry = if w > 0 { row[w - 1] >> 63 } else { 0 };
    row[w] & !((row[w] << 1) | carry)
}

/// The voxels of word `w` of a row's mask that end a run (its last voxel).
fn ends(row: &[u64], w: usize) -> u64 {
    let carry = row.get(w + 1).map_or(0, |&n| n << 63);
    row[w] & !((row[w] >> 1) | carry)
}

/// A row step back in C order: the step, its distance in rows, and the last-axis
/// steps it allows as contiguous ranges.
struct Backward {
    row: Vec<i8>,
    delta: isize,
    pieces: Vec<(i64, i64)>,
}

/// Joins the runs of rows `a` and `b` that touch with a last-axis step in `lo..=hi`.
pub(crate) fn join_rows(
    runs: &[(u32, u32)],
    a: std::ops::Range<usize>,
    b: std::ops::Range<usize>,
    lo: i64,
    hi: i64,
    parent: &mut [u32],
) {
    let (mut i, mut j) = (a.start, b.start);
    // The root of run `i`, found once per run however many runs it touches.
    let mut root: Option<u32> = None;
    while i < a.end && j < b.end {
        let (a0, a1) = (i64::from(runs[i].0) + lo, i64::from(runs[i].1) + hi);
        let (b0, b1) = (i64::from(runs[j].0), i64::from(runs[j].1));
        if a1 <= b0 {
            i += 1;
            root = None;
        } else if b1 <= a0 {
            j += 1;
        } else {
            let ra = match root {
                Some(r) => find(parent, r),
                None => find(parent, i as u32),
            };
            let rb = find(parent, j as u32);
            root = Some(link(parent, ra, rb));
            if a1 <= b1 {
                i += 1;
                root = None;
            } else {
                j += 1;
            }
        }
    }
}

/// The root of `i`, halving the path on the way.
pub(crate) fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let g = parent[parent[i as usize] as usize];
        parent[i as usize] = g;
        i = g;
    }
    i
}

/// Joins the sets of `a` and `b`; the smaller root stays the root.
pub(crate) fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    link(parent, ra, rb);
}

/// Joins the sets whose roots are `ra` and `rb` under the smaller; returns it.
fn link(parent: &mut [u32], ra: u32, rb: u32) -> u32 {
    let (lo, hi) = (ra.min(rb), ra.max(rb));
    parent[hi as usize] = lo;
    lo
}

impl Labelled {
    /// The row of run `i`.
    pub fn row_of(&self, i: u32) -> usize {
        self.row_start.partition_point(|&s| s <= i as usize) - 1
    }

    /// Writes `value(label)` over every run of `out` (a C-order block of the labelled
    /// shape); the background is left as it is.
    pub fn fill<U: Copy>(&self, out: &mut [U], value: impl Fn(u32) -> U) {
        for r in 0..self.row_start.len() - 1 {
            let line = &mut out[r * self.nx..(r + 1) * self.nx];
            for i in self.row_start[r]..self.row_start[r + 1] {
                let (x0, x1) = self.runs[i];
                line[x0 as usize..x1 as usize].fill(value(self.label[i]));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Labels by flood fill, numbered in raster order of the first voxel: the
    /// definition the run-based labelling must meet.
    pub(crate) fn flood(mask: &[bool], lens: &[usize], structure: &Structure) -> Vec<u32> {
        let n = mask.len();
        let ndim = lens.len();
        let mut out = vec![0u32; n];
        let mut count = 0;
        let unravel = |mut i: usize| {
            let mut c = vec![0isize; ndim];
            for a in (0..ndim).rev() {
                c[a] = (i % lens[a]) as isize;
                i /= lens[a];
            }
            c
        };
        for start in 0..n {
            if !mask[start] || out[start] != 0 {
                continue;
            }
            count += 1;
            out[start] = count;
            let mut stack = vec![start];
            while let Some(i) = stack.pop() {
                let c = unravel(i);
                for o in structure.offsets() {
                    let mut j = 0usize;
                    let mut inside = true;
                    for a in 0..ndim {
                        let v = c[a] + isize::from(o[a]);
                        if v < 0 || v >= lens[a] as isize {
                            inside = false;
                            break;
                        }
                        j = j * lens[a] + v as usize;
                    }
                    if inside && mask[j] && out[j] == 0 {
                        out[j] = count;
                        stack.push(j);
                    }
                }
            }
        }
        out
    }

    /// A reproducible random mask of the given density.
    pub(crate) fn random_mask(n: usize, density: f64, seed: u64) -> Vec<bool> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f64 / (1u64 << 31) as f64) < density
            })
            .collect()
    }

    #[test]
    fn runs_label_like_a_flood_fill() {
        for (lens, seed) in [
            (vec![37], 1u64),
            (vec![13, 17], 2),
            (vec![6, 9, 11], 3),
            (vec![3, 4, 5, 6], 4),
            // Rows of one word, of several, and ending inside a word.
            (vec![9, 64], 5),
            (vec![7, 129], 6),
            (vec![3, 5, 150], 7),
        ] {
            let n: usize = lens.iter().product();
            for density in [0.1, 0.3, 0.6] {
                let mask = random_mask(n, density, seed);
                for k in 1..=lens.len() {
                    let s = Structure::connectivity(lens.len(), k).unwrap();
                    let l = label_block(&mask, &lens, &s, |m| m);
                    let mut out = vec![0u32; n];
                    l.fill(&mut out, |v| v);
                    let want = flood(&mask, &lens, &s);
                    assert_eq!(out, want, "{lens:?} density {density} connectivity {k}");
                    assert_eq!(l.count, want.iter().copied().max().unwrap_or(0));
                    assert_eq!(l.row_new.iter().sum::<u32>(), l.count);
                    for (k, &i) in l.first_run.iter().enumerate() {
                        assert_eq!(l.label[i as usize], k as u32 + 1);
                        assert!(l.row_start[l.row_of(i)] <= i as usize);
                        assert!(l.row_start[l.row_of(i) + 1] > i as usize);
                    }
                }
            }
        }
    }

    #[test]
    fn a_structure_without_row_neighbours_labels_voxels() {
        // Only the vertical neighbours: each column's runs are objects.
        let mut v = vec![false; 9];
        v[1] = true;
        v[7] = true;
        let s = Structure::from_mask(&[3, 3], &v).unwrap();
        let mask = random_mask(8 * 9, 0.5, 9);
        let l = label_block(&mask, &[8, 9], &s, |m| m);
        let mut out = vec![0u32; 72];
        l.fill(&mut out, |v| v);
        assert_eq!(out, flood(&mask, &[8, 9], &s));
    }
}
