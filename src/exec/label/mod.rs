//! Connected components across chunks, numbered as `scipy.ndimage.label` numbers the
//! whole array (labels in raster order of each object's first voxel), with memory
//! bounded by the chunks in flight and the objects that touch a chunk face.
//!
//! Three steps, each resumable and the first split into parts:
//! 1. **label** each chunk on its own (`Labelling::summarise`): kept are its count of
//!    objects, how many begin on each of its rows, its runs on faces shared with
//!    another chunk, and where each object on such a face begins;
//! 2. **merge** (`Labelling::merge`): face runs of neighbouring chunks that touch
//!    through the structure are joined by a union-find over the face objects; an
//!    object spread over chunks is numbered at its first voxel, and each chunk row's
//!    first label follows from how many objects begin on every row before it;
//! 3. **relabel** (`Labelling::relabel`): each chunk is labelled again and every
//!    local label replaced by its global one.

pub mod memory;
mod state;

use std::collections::HashMap;
use std::sync::Arc;

use crate::block::{Block, BlockAny};
use crate::cpu::label::{Labelled, label_block};
use crate::dtype::{DType, Element, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::region::{Grid, Region, unravel};
use crate::stage::{Foreground, Structure};

#[cfg(test)]
use state::MemoryState;
pub(crate) use state::{ChunkNumbers, ChunkSummary, DirState, LabelState, StateObjects};

/// A labelling of an array of `shape` cut into the chunks of `grid`.
pub(crate) struct Labelling {
    /// The chunks labelled on their own (step 1) and relabelled (step 3).
    pub grid: Grid,
    /// Which neighbours connect.
    pub structure: Structure,
    /// Which voxels are objects.
    pub foreground: Foreground,
    /// The label type written.
    pub dtype: DType,
}

/// The face runs of one chunk by global row: `(x0, x1, node)` in global `x`.
type FaceRows = HashMap<u64, Vec<(u64, u64, u32)>>;

impl Labelling {
    fn shape(&self) -> &[usize] {
        self.grid.shape()
    }

    fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The chunk's region.
    pub fn region(&self, chunk: usize) -> Region {
        self.grid
            .chunk_region(&unravel(chunk, &self.grid.grid_shape()))
    }

    /// Labels `block` (the data of chunk `chunk`) on its own.
    pub fn label(&self, block: &BlockAny<'_>) -> Result<Labelled> {
        let lens: Vec<usize> = block.sets().iter().map(|s| s.len()).collect();
        let s = &self.structure;
        match (self.foreground, block.dtype()) {
            (Foreground::NonZero, t) if t.is_float() => Err(Error::InvalidParameter {
                op: "label",
                message: format!(
                    "the input is {t}, not a mask: give a threshold (--above T) to say which voxels are objects"
                ),
            }),
            (Foreground::NonZero, _) => {
                Ok(match_any!(block, BlockAny, b => nonzero(&b.data, &lens, s)))
            }
            (Foreground::Above(t), _) => Ok(match_any!(block, BlockAny, b => {
                label_block(&b.data, &lens, s, |x| x.to_f64() > t)
            })),
        }
    }

    /// Step 1 for chunk `chunk`, whose data is `block`.
    pub fn summarise(&self, chunk: usize, block: &BlockAny<'_>) -> Result<ChunkSummary> {
        Ok(self.summary_of(chunk, &self.label(block)?))
    }

    /// Step 1 for chunk `chunk`, labelled on its own as `l`.
    pub fn summary_of(&self, chunk: usize, l: &Labelled) -> ChunkSummary {
        let region = self.region(chunk);
        let shape = self.shape();
        let n = self.ndim();
        let lens = &region.shape;
        let end = region.end();
        let rows = l.row_start.len() - 1;
        let (x_low, x_high) = (region.start[n - 1] > 0, end[n - 1] < shape[n - 1]);
        let nx = lens[n - 1] as u32;
        let mut faces = Vec::new();
        let mut c = vec![0usize; n - 1];
        for r in 0..rows {
            let row_face = (0..n - 1).any(|a| {
                (c[a] == 0 && region.start[a] > 0) || (c[a] + 1 == lens[a] && end[a] < shape[a])
            });
            let runs = l.row_start[r]..l.row_start[r + 1];
            if row_face {
                faces.extend(runs.map(|i| [r as u32, l.runs[i].0, l.runs[i].1, l.label[i]]));
            } else if !runs.is_empty() {
                // Only a row's first and last runs can touch the faces across x.
                let (i, j) = (runs.start, runs.end - 1);
                if x_low && l.runs[i].0 == 0 {
                    faces.push([r as u32, l.runs[i].0, l.runs[i].1, l.label[i]]);
                }
                if x_high && l.runs[j].1 == nx && (j != i || !(x_low && l.runs[i].0 == 0)) {
                    faces.push([r as u32, l.runs[j].0, l.runs[j].1, l.label[j]]);
                }
            }
            advance(&mut c, &lens[..n - 1]);
        }
        let mut on_face: Vec<u32> = faces.iter().map(|f| f[3]).collect();
        on_face.sort_unstable();
        on_face.dedup();
        let first = on_face
            .iter()
            .map(|&label| {
                let i = l.first_run[label as usize - 1];
                [label, l.row_of(i) as u32, l.runs[i as usize].0]
            })
            .collect();
        ChunkSummary {
            count: l.count,
            row_new: l.row_new.clone(),
            faces,
            first,
        }
    }

    /// The global row (index over every axis but the last) of each of the chunk's rows.
    fn global_rows(&self, region: &Region) -> Vec<u64> {
        let n = self.ndim();
        let shape = &self.shape()[..n - 1];
        let lens = &region.shape[..n - 1];
        let rows: usize = lens.iter().product();
        let mut c = vec![0usize; n - 1];
        (0..rows)
            .map(|_| {
                let mut g = 0u64;
                for a in 0..n - 1 {
                    g = g * shape[a] as u64 + (region.start[a] + c[a]) as u64;
                }
                advance(&mut c, lens);
                g
            })
            .collect()
    }

    /// The bands of chunks along the first axis (every chunk, for a 1-D array), in
    /// chunk order: each band's rows (every axis but the last) are consecutive in
    /// raster order.
    fn bands(&self) -> Vec<Band> {
        let n = self.ndim();
        let chunks = self.grid.num_chunks();
        if n == 1 {
            return vec![Band {
                chunks: 0..chunks,
                first_row: 0,
                rows: 1,
            }];
        }
        let per_band = chunks / self.grid.grid_shape()[0];
        let plane: usize = self.shape()[1..n - 1].iter().product();
        (0..self.grid.grid_shape()[0])
            .map(|k| {
                let region = self.region(k * per_band);
                Band {
                    chunks: k * per_band..(k + 1) * per_band,
                    first_row: (region.start[0] * plane) as u64,
                    rows: region.shape[0] * plane,
                }
            })
            .collect()
    }

    /// Step 2: joins the chunks' face objects, numbers every object and hands each
    /// chunk its numbers; returns the number of objects.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a chunk has not been through step 1, or the
    /// objects outnumber the label type.
    pub fn merge(&self, state: &dyn LabelState) -> Result<u64> {
        let chunks = self.grid.num_chunks();
        let n = self.ndim();
        let nx = self.shape()[n - 1] as u64;
        let summary = |c: usize| -> Result<Arc<ChunkSummary>> {
            state.summary(c)?.ok_or_else(|| Error::InvalidParameter {
                op: "label",
                message: format!(
                    "chunk {:?} has not been labelled yet: run every part before the merge",
                    unravel(c, &self.grid.grid_shape())
                ),
            })
        };
        // One pass over the summaries: the objects, and the face objects (the
        // union-find's nodes), chunk by chunk.
        let mut objects = 0u64;
        let mut base = vec![0usize; chunks + 1];
        let mut node_first: Vec<u64> = Vec::new();
        for c in 0..chunks {
            let s = summary(c)?;
            objects += u64::from(s.count);
            let region = self.region(c);
            let rows = self.global_rows(&region);
            let x0 = region.start[n - 1] as u64;
            node_first.extend(
                s.first
                    .iter()
                    .map(|f| rows[f[1] as usize] * nx + x0 + u64::from(f[2])),
            );
            base[c + 1] = node_first.len();
        }
        if node_first.len() >= u32::MAX as usize {
            return Err(Error::InvalidParameter {
                op: "label",
                message: "more than 2^32 objects touch chunk faces: use larger chunks".into(),
            });
        }
        let mut parent: Vec<u32> = (0..node_first.len() as u32).collect();
        self.join_faces(state, &base, &mut parent)?;

        // Each object takes its number where it begins: its node with the first voxel.
        let mut best: Vec<u32> = (0..parent.len() as u32).collect();
        for i in 0..parent.len() as u32 {
            let r = crate::cpu::label::find(&mut parent, i) as usize;
            if node_first[i as usize] < node_first[best[r] as usize] {
                best[r] = i;
            }
        }
        let winner: Vec<u32> = (0..parent.len() as u32)
            .map(|i| best[crate::cpu::label::find(&mut parent, i) as usize])
            .collect();
        drop(best);
        drop(node_first);
        let not_start = |i: usize| winner[i] as usize != i;

        // An object spread over chunks begins once.
        let total = objects - (0..winner.len()).filter(|&i| not_start(i)).count() as u64;
        let max = label_max(self.dtype);
        if total > max {
            return Err(Error::InvalidParameter {
                op: "label",
                message: format!(
                    "{total} objects do not fit in {} labels (at most {max}): choose a wider label type (--dtype, up to uint64)",
                    self.dtype
                ),
            });
        }

        // Twice through the chunks: the numbers of the objects that begin in each,
        // then each chunk's hand-over (its face objects may begin in a later chunk).
        // The labels before each row are counted one band of chunks along the first
        // axis at a time (its rows are consecutive in raster order), so memory holds
        // one count per row of a band, not of the array.
        let mut global = vec![0u64; parent.len()];
        let x_chunks = self.grid.grid_shape()[n - 1];
        for hand_over in [false, true] {
            let mut done = 0u64;
            for band in self.bands() {
                let mut summaries = Vec::with_capacity(band.chunks.len());
                let mut before = vec![0u64; band.rows];
                for c in band.chunks.clone() {
                    let s = summary(c)?;
                    let rows = self.global_rows(&self.region(c));
                    let local = |r: usize| (rows[r] - band.first_row) as usize;
                    for (r, &k) in s.row_new.iter().enumerate() {
                        before[local(r)] += u64::from(k);
                    }
                    for i in (base[c]..base[c + 1]).filter(|&i| not_start(i)) {
                        before[local(s.first[i - base[c]][1] as usize)] -= 1;
                    }
                    summaries.push((s, rows));
                }
                for b in &mut before {
                    let k = *b;
                    *b = done;
                    done += k;
                }
                let mut running: Vec<u64> = Vec::new();
                for (c, (s, rows)) in band.chunks.clone().zip(summaries) {
                    if c % x_chunks == 0 {
                        running = vec![0; rows.len()];
                    }
                    let nodes = base[c]..base[c + 1];
                    let mut skipped = vec![0u32; rows.len()];
                    for i in nodes.clone().filter(|&i| not_start(i)) {
                        skipped[s.first[i - base[c]][1] as usize] += 1;
                    }
                    let offsets: Vec<u64> = (0..rows.len())
                        .map(|r| before[(rows[r] - band.first_row) as usize] + running[r])
                        .collect();
                    for r in 0..rows.len() {
                        running[r] += u64::from(s.row_new[r] - skipped[r]);
                    }
                    if !hand_over {
                        let mut row_first = Vec::with_capacity(rows.len());
                        let mut next = 1u32;
                        for &k in &s.row_new {
                            row_first.push(next);
                            next += k;
                        }
                        // Face objects come in label order; count the skipped ones per row.
                        let mut skipped_so_far = vec![0u32; rows.len()];
                        for i in nodes {
                            let [label, r, _] = s.first[i - base[c]];
                            let r = r as usize;
                            if not_start(i) {
                                skipped_so_far[r] += 1;
                            } else {
                                let rank = label - row_first[r] - skipped_so_far[r];
                                global[i] = offsets[r] + u64::from(rank) + 1;
                            }
                        }
                    } else {
                        let faces = nodes
                            .map(|i| {
                                (
                                    s.first[i - base[c]][0],
                                    global[winner[i] as usize],
                                    !not_start(i),
                                )
                            })
                            .collect();
                        state.put_numbers(c, &ChunkNumbers { offsets, faces })?;
                    }
                }
            }
            debug_assert_eq!(done, total);
        }
        Ok(total)
    }

    /// Joins the face objects of every pair of chunks that touch through the
    /// structure, each pair once. A chunk's face runs are kept while a later chunk may
    /// still need them.
    fn join_faces(&self, state: &dyn LabelState, base: &[usize], parent: &mut [u32]) -> Result<()> {
        let n = self.ndim();
        let grid_shape = self.grid.grid_shape();
        let chunks = self.grid.num_chunks();
        let reach = self.structure.reach();
        // The chunk steps forward in C order that the structure can cross.
        let steps: Vec<Vec<i64>> = (0..3usize.pow(n as u32))
            .map(|i| {
                let mut d = vec![0i64; n];
                let mut i = i;
                for a in (0..n).rev() {
                    d[a] = (i % 3) as i64 - 1;
                    i /= 3;
                }
                d
            })
            .filter(|d| {
                d.iter().find(|&&v| v != 0) == Some(&1)
                    && d.iter().filter(|&&v| v != 0).count() <= reach
            })
            .collect();
        // Every row step of the structure, the zero one included (across x faces).
        let mut row_steps = self.structure.row_steps();
        let same_row: Vec<i8> = self
            .structure
            .offsets()
            .iter()
            .filter(|o| o[..n - 1].iter().all(|&d| d == 0))
            .map(|o| o[n - 1])
            .collect();
        if !same_row.is_empty() {
            let mut dx = same_row;
            dx.sort_unstable();
            row_steps.push(crate::stage::RowStep {
                row: vec![0; n - 1],
                dx,
            });
        }
        let pieces: Vec<Vec<(i64, i64)>> = row_steps.iter().map(|s| s.pieces()).collect();
        let row_shape = &self.shape()[..n - 1];
        let mut kept: HashMap<usize, Arc<FaceRows>> = HashMap::new();
        for a in 0..chunks {
            kept.retain(|&c, _| c >= a);
            let ia = unravel(a, &grid_shape);
            let fa = self.face_rows(state, a, base, &mut kept)?;
            if fa.is_empty() {
                continue;
            }
            for d in &steps {
                let ib: Option<Vec<usize>> = (0..n)
                    .map(|k| {
                        let v = ia[k] as i64 + d[k];
                        (v >= 0 && v < grid_shape[k] as i64).then_some(v as usize)
                    })
                    .collect();
                let Some(ib) = ib else { continue };
                let b = self.grid.ravel(&ib);
                let fb = self.face_rows(state, b, base, &mut kept)?;
                if fb.is_empty() {
                    continue;
                }
                let rb = self.grid.chunk_region(&ib);
                for (&row, runs_a) in fa.iter() {
                    let ca = unravel(row as usize, row_shape);
                    for (step, pieces) in row_steps.iter().zip(&pieces) {
                        let mut g = 0u64;
                        let mut inside = true;
                        for k in 0..n - 1 {
                            let v = ca[k] as i64 + i64::from(step.row[k]);
                            if v < rb.start[k] as i64 || v >= (rb.start[k] + rb.shape[k]) as i64 {
                                inside = false;
                                break;
                            }
                            g = g * row_shape[k] as u64 + v as u64;
                        }
                        if !inside {
                            continue;
                        }
                        let Some(runs_b) = fb.get(&g) else { continue };
                        for &(lo, hi) in pieces {
                            for &(a0, a1, na) in runs_a {
                                let (a0, a1) = (a0 as i64 + lo, a1 as i64 + hi);
                                for &(b0, b1, nb) in runs_b {
                                    if a0 < b1 as i64 && (b0 as i64) < a1 {
                                        crate::cpu::label::union(parent, na, nb);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Chunk `c`'s face runs by global row, loaded once into `kept`.
    fn face_rows(
        &self,
        state: &dyn LabelState,
        c: usize,
        base: &[usize],
        kept: &mut HashMap<usize, Arc<FaceRows>>,
    ) -> Result<Arc<FaceRows>> {
        if let Some(f) = kept.get(&c) {
            return Ok(f.clone());
        }
        let s = state.summary(c)?.expect("checked by the merge");
        let region = self.region(c);
        let rows = self.global_rows(&region);
        let x0 = region.start[self.ndim() - 1] as u64;
        let mut out: FaceRows = HashMap::new();
        for &[r, a, b, label] in &s.faces {
            let at = s
                .first
                .binary_search_by_key(&label, |f| f[0])
                .expect("every face label has its first voxel");
            out.entry(rows[r as usize]).or_default().push((
                x0 + u64::from(a),
                x0 + u64::from(b),
                (base[c] + at) as u32,
            ));
        }
        let out = Arc::new(out);
        kept.insert(c, out.clone());
        Ok(out)
    }

    /// Step 3 for a chunk (data `block`): the chunk's global labels.
    pub fn relabel(
        &self,
        block: &BlockAny<'_>,
        numbers: &ChunkNumbers,
    ) -> Result<BlockAny<'static>> {
        let l = self.label(block)?;
        let global = globals(&l, numbers);
        let sets = block.sets().to_vec();
        let len: usize = sets.iter().map(|s| s.len()).product();
        Ok(with_dtype!(self.dtype, U => {
            let mut out = vec![U::default(); len];
            l.fill(&mut out, |v| U::from_u64(global[v as usize]));
            Block::new(sets, std::borrow::Cow::Owned(out)).into_any()
        }))
    }
}

/// A band of chunks along the first axis: its chunks, and its rows (every axis but
/// the last) as a range of global rows.
struct Band {
    chunks: std::ops::Range<usize>,
    first_row: u64,
    rows: usize,
}

/// The global label of each of a chunk's local labels (`l`, index 0 unused), from the
/// merge's `numbers`.
pub(super) fn globals(l: &Labelled, numbers: &ChunkNumbers) -> Vec<u64> {
    let mut global = vec![0u64; l.count as usize + 1];
    let mut next = 1u32;
    let mut faces = numbers.faces.iter().peekable();
    for (r, &k) in l.row_new.iter().enumerate() {
        let mut rank = 0u64;
        for _ in 0..k {
            match faces.peek() {
                Some(&&(label, g, start)) if label == next => {
                    faces.next();
                    global[next as usize] = g;
                    rank += u64::from(start);
                }
                _ => {
                    rank += 1;
                    global[next as usize] = numbers.offsets[r] + rank;
                }
            }
            next += 1;
        }
    }
    global
}

/// Labels the voxels of `data` that are not zero.
fn nonzero<T: Element>(data: &[T], lens: &[usize], s: &Structure) -> Labelled {
    let zero = T::default();
    label_block(data, lens, s, |x| x != zero)
}

/// The largest label a type holds (exactly, for the float types: 2^53).
pub(crate) fn label_max(dtype: DType) -> u64 {
    match dtype {
        DType::U8 => u8::MAX.into(),
        DType::U16 => u16::MAX.into(),
        DType::U32 => u32::MAX.into(),
        DType::I8 => i8::MAX as u64,
        DType::I16 => i16::MAX as u64,
        DType::I32 => i32::MAX as u64,
        DType::U64 => u64::MAX,
        DType::I64 => i64::MAX as u64,
        DType::F32 => 1 << 24,
        DType::F64 => 1 << 53,
    }
}

/// Steps the C-order counter `c` over `lens`.
fn advance(c: &mut [usize], lens: &[usize]) {
    for a in (0..c.len()).rev() {
        c[a] += 1;
        if c[a] < lens[a] {
            return;
        }
        c[a] = 0;
    }
}

#[cfg(test)]
mod tests;
