//! Decoded chunks kept for reuse. The chunk cache of a Zarr run ([`ChunkCache`]):
//! input chunks, each decoded once and kept while later jobs still need it (and only
//! the part they need), from which every job's footprint is assembled. And the chunks
//! a pass over a whole array keeps for the passes after it ([`KeptChunks`], what
//! statistics read).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::io::Source;
use crate::block::{Block, BlockAny, BlockElement, Placed, box_rows, copy_box, take_buffer};
use crate::dtype::{match_any, with_dtype};
use crate::error::{Error, Result};
use crate::plan::Job;
use crate::region::{AxisSet, Grid, Region, unravel};

/// Decoded input chunks, kept while jobs still need them, and only the part they need.
pub(super) struct ChunkCache<'a> {
    source: &'a dyn Source,
    /// The run's jobs, in the order workers take them.
    pub(super) jobs: &'a [Job],
    grid: Grid,
    entries: Mutex<HashMap<usize, Entry>>,
    budget: AtomicU64,
    held: AtomicU64,
    /// Decoded bytes so far.
    pub(super) bytes_read: AtomicU64,
    /// Chunks decoded so far.
    pub(super) decoded: AtomicU64,
}

/// A chunk's place in the cache: decoded once, by the first worker to ask for it.
#[derive(Default)]
struct Slot {
    /// A worker is decoding (or has decoded) the chunk.
    claimed: AtomicBool,
    value: OnceLock<Result<Arc<Held>, String>>,
}

/// A decoded chunk (or the part of it still needed) as the cache holds it.
enum Held {
    /// Its values, dense over its box.
    Dense(BlockAny<'static>),
    /// A chunk whose elements all have one value, as every chunk that is not stored
    /// (the fill value): its box and that value (a block of one element), no buffer.
    /// Background chunks of sparse volumes, and every chunk of a fill-only array, cost
    /// a part of a huge array no memory.
    Uniform(Region, BlockAny<'static>),
}

impl Held {
    /// A decoded chunk, kept as [`Held::Uniform`] (its buffer recycled) where every
    /// element has the same bits.
    fn new(decoded: BlockAny<'static>) -> Held {
        let single = match_any!(&decoded, BlockAny, b => uniform(&b.data).map(|v| {
            let one = vec![AxisSet::from_range(0..1); b.sets.len()];
            Block::new(one, std::borrow::Cow::Owned(vec![v])).into_any()
        }));
        match single {
            Some(value) => {
                let region = Region::bounding(decoded.sets());
                crate::block::recycle(decoded);
                Held::Uniform(region, value)
            }
            None => Held::Dense(decoded),
        }
    }

    /// The bytes it holds.
    fn bytes(&self) -> u64 {
        match self {
            Held::Dense(b) => bytes_of(b),
            Held::Uniform(..) => 0,
        }
    }

    /// Writes the part of it in `sets` into `data`, a dense block over `sets`.
    fn copy_into<T: BlockElement>(&self, data: &mut [T], sets: &[AxisSet]) {
        match self {
            Held::Dense(b) => {
                let b = b.typed::<T>();
                copy_into(data, sets, &Region::bounding(&b.sets), &b.data);
            }
            Held::Uniform(region, value) => {
                let v = value.typed::<T>().data[0];
                fill_into(data, sets, region, v);
            }
        }
    }
}

/// The value of every element where all have the same bits (compared as unsigned
/// integers of the element's width, so that NaN fill values count too).
fn uniform<T: bytemuck::Pod>(data: &[T]) -> Option<T> {
    fn same<U: bytemuck::Pod + PartialEq>(v: &[U]) -> bool {
        let Some(&first) = v.first() else {
            return false;
        };
        // Blocks of rows, each compared without branching (vectorised), so that a
        // fill-only chunk is checked at memory speed and a real one stops early.
        v.chunks(256)
            .all(|c| c.iter().fold(true, |same, &x| same & (x == first)))
    }
    let all = match size_of::<T>() {
        1 => same(bytemuck::cast_slice::<T, u8>(data)),
        2 => same(bytemuck::cast_slice::<T, u16>(data)),
        4 => same(bytemuck::cast_slice::<T, u32>(data)),
        8 => same(bytemuck::cast_slice::<T, u64>(data)),
        _ => false,
    };
    all.then(|| data[0])
}

type Cell = Arc<Slot>;

struct Entry {
    /// The decoded chunk (or the part of it still needed), once a job asked for it.
    chunk: Cell,
    /// The jobs (indices into the run's jobs) that still need this chunk.
    users: Vec<usize>,
}

impl<'a> ChunkCache<'a> {
    pub(super) fn new(source: &'a dyn Source, jobs: &'a [Job]) -> Result<Self> {
        let grid = Grid::new(source.shape(), &source.read_chunk_shape())?;
        let mut entries: HashMap<usize, Entry> = HashMap::new();
        // The chunks in the order the jobs first need them.
        let mut first_read = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            for c in chunks_of(&grid, job.footprint()) {
                entries
                    .entry(c)
                    .or_insert_with(|| {
                        first_read.push(c);
                        Entry {
                            chunk: Arc::default(),
                            users: Vec::new(),
                        }
                    })
                    .users
                    .push(j);
            }
        }
        source.will_read(&first_read);
        Ok(ChunkCache {
            source,
            jobs,
            grid,
            entries: Mutex::new(entries),
            budget: AtomicU64::new(u64::MAX),
            held: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            decoded: AtomicU64::new(0),
        })
    }

    pub(super) fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// The dense footprint of job `j`, assembled from its chunks.
    pub(super) fn footprint(&self, j: usize) -> Result<BlockAny<'static>> {
        let sets = self.jobs[j].footprint();
        let ids = chunks_of(&self.grid, sets);
        // A footprint that is one whole chunk (a pointwise op or a copy on the input's
        // chunks) is that chunk: taken over, not copied, once no other job needs it.
        if let [id] = ids[..] {
            let chunk = self.get(id)?;
            if let Held::Dense(block) = &*chunk
                && block.sets() == sets
            {
                let block = block.clone();
                drop(chunk);
                self.release(id, j);
                return Ok(block);
            }
        }
        let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
        let len: usize = lens.iter().product();
        // Chunks are copied in one at a time and let go at once, so that a job holds
        // its footprint and a single decoded chunk, not every chunk its halo touches.
        Ok(with_dtype!(self.source.dtype(), T => {
            // The chunks cover the footprint (it lies inside the array): every element
            // is written below.
            let mut data = take_buffer::<T>(len);
            // Chunks another worker is decoding right now come last, so that this
            // worker copies (or decodes) the others meanwhile instead of waiting.
            let (busy, free): (Vec<usize>, Vec<usize>) = ids.into_iter().partition(|&id| self.busy(id));
            for id in free.into_iter().chain(busy) {
                let chunk = self.get(id)?;
                chunk.copy_into::<T>(&mut data, sets);
                // Let go of this job's reference first, so that a chunk no other job
                // needs has its buffer recycled.
                drop(chunk);
                self.release(id, j);
            }
            Block::new(sets.to_vec(), std::borrow::Cow::Owned(data)).into_any()
        }))
    }

    /// The region of chunk `id` (clipped to the array).
    fn region(&self, id: usize) -> Region {
        self.grid
            .chunk_region(&unravel(id, &self.grid.grid_shape()))
    }

    fn slot(&self, id: usize) -> Cell {
        let entries = self.entries.lock().expect("no panic holds it");
        Arc::clone(
            &entries
                .get(&id)
                .expect("every footprint chunk is counted")
                .chunk,
        )
    }

    /// Whether another worker is decoding chunk `id` at this moment.
    fn busy(&self, id: usize) -> bool {
        let slot = self.slot(id);
        slot.claimed.load(Ordering::Relaxed) && slot.value.get().is_none()
    }

    fn get(&self, id: usize) -> Result<Arc<Held>> {
        let cell = self.slot(id);
        cell.claimed.store(true, Ordering::Relaxed);
        // The first reader that fails gets the typed error; others get its message.
        let mut failure = None;
        let value = cell
            .value
            .get_or_init(|| match self.source.read_region(&self.region(id)) {
                Ok(decoded) => {
                    self.bytes_read
                        .fetch_add(bytes_of(&decoded), Ordering::Relaxed);
                    self.decoded.fetch_add(1, Ordering::Relaxed);
                    let held = Held::new(decoded);
                    self.held.fetch_add(held.bytes(), Ordering::Relaxed);
                    Ok(Arc::new(held))
                }
                Err(e) => {
                    let message = e.to_string();
                    failure = Some(e);
                    Err(message)
                }
            });
        if let Some(e) = failure {
            return Err(e);
        }
        value.clone().map_err(Error::Read)
    }

    /// Job `j` is done with chunk `id`. Forget the chunk if no job needs it any more,
    /// or if the cache is over its budget (it is decoded again if needed); else keep
    /// only the box the remaining jobs need, once that is at most half of it (after a
    /// chunk's own jobs, its neighbours need only a halo-wide slab).
    fn release(&self, id: usize, j: usize) {
        let mut entries = self.entries.lock().expect("no panic holds it");
        let over = self.held.load(Ordering::Relaxed) > self.budget.load(Ordering::Relaxed);
        let entry = entries.get_mut(&id).expect("counted");
        if let Some(at) = entry.users.iter().position(|&u| u == j) {
            entry.users.swap_remove(at);
        }
        let Some(Ok(block)) = entry.chunk.value.get().cloned() else {
            if entry.users.is_empty() {
                entries.remove(&id);
            }
            return;
        };
        let size = block.bytes();
        let dropped = if entry.users.is_empty() || over {
            self.held.fetch_sub(size, Ordering::Relaxed);
            if entry.users.is_empty() {
                entries.remove(&id).map(|e| e.chunk)
            } else {
                Some(std::mem::take(&mut entry.chunk))
            }
        } else if let Held::Dense(dense) = &*block {
            let held = Region::bounding(dense.sets());
            let needed = self.needed(&entry.users, &held);
            (needed.len() * 2 <= held.len()).then(|| {
                let cropped = Held::Dense(crop(dense, &held, &needed));
                self.held
                    .fetch_sub(size - cropped.bytes(), Ordering::Relaxed);
                std::mem::replace(
                    &mut entry.chunk,
                    Arc::new(Slot {
                        claimed: AtomicBool::new(true),
                        value: OnceLock::from(Ok(Arc::new(cropped))),
                    }),
                )
            })
        } else {
            None
        };
        drop((entries, block));
        if let Some(cell) = dropped {
            recycle_cell(cell);
        }
    }

    /// The bounding box, within `held`, of what `users` need of it.
    fn needed(&self, users: &[usize], held: &Region) -> Region {
        let ranges: Vec<std::ops::Range<usize>> = (0..held.ndim())
            .map(|a| {
                let r = held.range(a);
                users
                    .iter()
                    .filter_map(|&u| {
                        let b = self.jobs[u].footprint()[a].bounds();
                        let (lo, hi) = (b.start.max(r.start), b.end.min(r.end));
                        (lo < hi).then_some(lo..hi)
                    })
                    .reduce(|x, y| x.start.min(y.start)..x.end.max(y.end))
                    .unwrap_or(r.start..r.start)
            })
            .collect();
        Region::new(
            ranges.iter().map(|r| r.start).collect(),
            ranges.iter().map(|r| r.len()).collect(),
        )
    }
}

/// A source's chunks over `grid`, read one at a time by passes over the whole array:
/// those decoded by the first pass are kept for the later ones while they fit the
/// budget (the passes then decode each kept chunk once).
pub(crate) struct KeptChunks<'a> {
    source: &'a dyn Source,
    grid: Grid,
    kept: Vec<OnceLock<BlockAny<'static>>>,
    used: AtomicU64,
    budget: u64,
}

impl<'a> KeptChunks<'a> {
    /// `source`'s chunks of `grid` (over the source's shape), keeping up to `budget`
    /// bytes of them decoded.
    pub(crate) fn new(source: &'a dyn Source, grid: Grid, budget: u64) -> Self {
        // A slot per chunk only where chunks are to be kept.
        let slots = if budget > 0 { grid.num_chunks() } else { 0 };
        KeptChunks {
            kept: (0..slots).map(|_| OnceLock::new()).collect(),
            source,
            grid,
            used: AtomicU64::new(0),
            budget,
        }
    }

    /// The source read.
    pub(crate) fn source(&self) -> &dyn Source {
        self.source
    }

    /// The number of chunks.
    pub(crate) fn len(&self) -> usize {
        self.grid.num_chunks()
    }

    /// Chunk `i` in C order of the grid: the kept one, or decoded (and kept if it fits
    /// the budget).
    pub(crate) fn chunk(&self, i: usize) -> Result<BlockAny<'_>> {
        let slot = self.kept.get(i);
        if let Some(b) = slot.and_then(OnceLock::get) {
            return Ok(borrowed(b));
        }
        let index = unravel(i, &self.grid.grid_shape());
        let b = self.source.read_region(&self.grid.chunk_region(&index))?;
        let Some(slot) = slot else {
            return Ok(b);
        };
        let bytes = bytes_of(&b);
        if self.used.fetch_add(bytes, Ordering::Relaxed) + bytes <= self.budget {
            let _ = slot.set(b);
            return Ok(borrowed(slot.get().expect("just set")));
        }
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        Ok(b)
    }
}

/// A block borrowing `b`'s data.
fn borrowed<'a>(b: &'a BlockAny<'static>) -> BlockAny<'a> {
    match_any!(b, BlockAny, x => {
        Block::new(x.sets.clone(), std::borrow::Cow::Borrowed(&x.data[..])).into_any()
    })
}

/// Returns the buffer of a chunk let go of to this thread's pool, for the next chunk
/// decoded here, if nothing else holds it (another worker may still be copying from
/// it; then it is simply freed when that worker lets go).
fn recycle_cell(cell: Cell) {
    let block = Arc::try_unwrap(cell)
        .ok()
        .and_then(|slot| slot.value.into_inner())
        .and_then(|value| value.ok())
        .and_then(|held| Arc::try_unwrap(held).ok());
    if let Some(Held::Dense(block)) = block {
        crate::block::recycle(block);
    }
}

/// Decoded bytes of a block.
fn bytes_of(block: &BlockAny<'_>) -> u64 {
    let len: usize = block.sets().iter().map(AxisSet::len).product();
    (len * block.dtype().size()) as u64
}

/// The part `inner` of `block`, a dense block over the box `outer`.
fn crop(block: &BlockAny<'_>, outer: &Region, inner: &Region) -> BlockAny<'static> {
    let sets = inner.sets();
    match_any!(block, BlockAny, b => {
        let mut data = vec![Default::default(); inner.len()];
        copy_into(&mut data, &sets, outer, &b.data);
        Block::new(sets, std::borrow::Cow::Owned(data)).into_any()
    })
}

/// C-order numbers of the chunks of `grid` holding any index of `sets`.
fn chunks_of(grid: &Grid, sets: &[AxisSet]) -> Vec<usize> {
    grid.chunks_touching(sets)
        .iter()
        .map(|c| grid.ravel(c))
        .collect()
}

/// Copies the part of a chunk (dense over the box `region`) that lies in `sets` into
/// `data`, a dense block over `sets`: one box copy per combination of the sets' runs
/// that meets the chunk (a single one but where `wrap` brings the far side in).
fn copy_into<T: Copy>(data: &mut [T], sets: &[AxisSet], region: &Region, src: &[T]) {
    let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
    for_each_piece(sets, region, |shape, from, to| {
        copy_box(
            shape,
            src,
            Placed::at(&region.shape, from),
            data,
            Placed::at(&lens, to),
        );
    });
}

/// Sets the part of the box `region` that lies in `sets` to `value` in `data`, a dense
/// block over `sets` (as [`copy_into`] copies a chunk all of whose elements are `value`).
fn fill_into<T: Copy>(data: &mut [T], sets: &[AxisSet], region: &Region, value: T) {
    let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
    for_each_piece(sets, region, |shape, _, to| {
        let at = Placed::at(&lens, to);
        box_rows(shape, at, at, |_, d, n| data[d..d + n].fill(value));
    });
}

/// Calls `f(shape, from, to)` for each box where the runs of `sets` meet `region`: its
/// extents, its first index in `region` and its first position in the dense block over
/// `sets`.
fn for_each_piece(
    sets: &[AxisSet],
    region: &Region,
    mut f: impl FnMut(&[usize], &[usize], &[usize]),
) {
    // Per axis: (position in `sets`, index in the chunk, length) of each run's overlap.
    let pieces: Vec<Vec<(usize, usize, usize)>> = (0..sets.len())
        .map(|a| {
            let r = region.range(a);
            sets[a]
                .runs()
                .iter()
                .filter_map(|run| {
                    let lo = run.start.max(r.start);
                    let hi = run.end.min(r.end);
                    (lo < hi)
                        .then(|| (sets[a].position(lo).expect("in set"), lo - r.start, hi - lo))
                })
                .collect()
        })
        .collect();
    let counts: Vec<usize> = pieces.iter().map(Vec::len).collect();
    for flat in 0..counts.iter().product() {
        let pick = unravel(flat, &counts);
        let piece = |a: usize| pieces[a][pick[a]];
        let to: Vec<usize> = (0..sets.len()).map(|a| piece(a).0).collect();
        let from: Vec<usize> = (0..sets.len()).map(|a| piece(a).1).collect();
        let shape: Vec<usize> = (0..sets.len()).map(|a| piece(a).2).collect();
        f(&shape, &from, &to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_lands_in_every_run_of_a_wrapped_footprint() {
        // Footprint rows {0, 1, 9} x columns {3, 4} of a 10x10 array; the chunk holds
        // rows 8..10 x columns 0..5 (values 10 * row + column).
        let sets = [
            AxisSet::from_ranges([0..2, 9..10]),
            AxisSet::from_range(3..5),
        ];
        let region = Region::new(vec![8, 0], vec![2, 5]);
        let src: Vec<u32> = (8..10)
            .flat_map(|r| (0..5).map(move |c| 10 * r + c))
            .collect();
        let mut data = vec![0u32; 6];
        copy_into(&mut data, &sets, &region, &src);
        assert_eq!(data, vec![0, 0, 0, 0, 93, 94]);
    }

    /// A 12x10 f32 array in chunks of 4x5: values `10 * row + column`, but chunk (1, 0)
    /// is all NaN and chunk (2, 1) all 7.
    struct Patchy;

    impl Patchy {
        fn value(r: usize, c: usize) -> f32 {
            match (r / 4, c / 5) {
                (1, 0) => f32::NAN,
                (2, 1) => 7.0,
                _ => (10 * r + c) as f32,
            }
        }
    }

    impl Source for Patchy {
        fn shape(&self) -> &[usize] {
            &[12, 10]
        }
        fn dtype(&self) -> crate::DType {
            crate::DType::F32
        }
        fn read_chunk_shape(&self) -> Vec<usize> {
            vec![4, 5]
        }
        fn read_region(&self, region: &Region) -> Result<BlockAny<'static>> {
            let data = region
                .range(0)
                .flat_map(|r| region.range(1).map(move |c| Patchy::value(r, c)))
                .collect();
            Ok(Block::new(region.sets(), std::borrow::Cow::Owned(data)).into_any())
        }
    }

    #[test]
    fn uniform_chunks_are_held_without_a_buffer_and_assemble_as_dense_ones() {
        assert!(uniform(&[f32::NAN; 6]).is_some_and(f32::is_nan));
        assert_eq!(uniform(&[3u16, 3, 4]), None);
        assert_eq!(uniform::<u8>(&[]), None);
        // Footprints with halos (one wrapping round), each over several chunks, the
        // uniform ones among them.
        let footprints = [
            vec![AxisSet::from_range(2..9), AxisSet::from_range(3..8)],
            vec![
                AxisSet::from_ranges([0..2, 9..12]),
                AxisSet::from_range(0..10),
            ],
            vec![AxisSet::from_range(4..8), AxisSet::from_range(0..5)],
            vec![AxisSet::from_range(8..12), AxisSet::from_range(4..10)],
        ];
        let jobs: Vec<Job> = footprints
            .iter()
            .enumerate()
            .map(|(index, sets)| Job {
                index,
                output: Region::bounding(sets),
                sets: vec![sets.clone()],
            })
            .collect();
        let cache = ChunkCache::new(&Patchy, &jobs).unwrap();
        for (j, sets) in footprints.iter().enumerate() {
            let got = cache.footprint(j).unwrap();
            let got = got.typed::<f32>();
            assert_eq!(got.sets, *sets);
            let want: Vec<f32> = sets[0]
                .iter()
                .flat_map(|r| sets[1].iter().map(move |c| Patchy::value(r, c)))
                .collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.data), bits(&want), "footprint {j}");
        }
        // Every chunk was let go of; the uniform ones never counted.
        assert_eq!(cache.held.load(Ordering::Relaxed), 0);
    }
}
