//! The in-memory path ([`Pipeline::apply`] and friends): the chunked path with the
//! chunks in RAM.
//! (Layer: backends; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! The input array is the source block of every job (no copy), the output is cut into
//! blocks by the same planner as a Zarr run, and jobs run in parallel on rayon's pool.

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD};

use crate::backend::Backend;
use crate::block::{Block, BlockElement, Placed, box_rows};
use crate::dtype::{ArrayAny, ArrayViewAny, DType, Element, match_any, with_dtype};
use crate::error::Result;
use crate::ops::Pipeline;
use crate::plan::Plan;
use crate::region::Region;

/// Output elements per job when the caller does not choose a block shape.
const TARGET_BLOCK_ELEMENTS: usize = 1 << 19;

/// On a GPU, a job is a slab of whole planes of at least this many elements (larger
/// slabs amortise each submission and the halo read twice at their faces) ...
const MIN_GPU_SLAB_ELEMENTS: usize = 1 << 22;

/// ... and the output is cut into this many slabs when it is large enough, so that
/// one slab's upload and readback overlap the others' compute.
const GPU_SLABS: usize = 8;

impl Pipeline {
    /// Applies the pipeline to an in-memory array (1 to 5 dimensions) on the CPU.
    ///
    /// ```
    /// use haloflow::{Op, Pipeline};
    /// use ndarray::{ArrayD, IxDyn};
    ///
    /// let x = ArrayD::from_shape_fn(IxDyn(&[20, 30]), |i| (i[0] * i[1]) as u16);
    /// let smoothed = Pipeline::from(Op::gaussian(&[1.5]))
    ///     .apply(x.view())?
    ///     .into_array::<f32>()?;
    /// assert_eq!(smoothed.shape(), &[20, 30]);
    /// # Ok::<(), haloflow::Error>(())
    /// ```
    pub fn apply<'a>(&self, input: impl Into<ArrayViewAny<'a>>) -> Result<ArrayAny> {
        self.apply_on(input, None, &Backend::Cpu)
    }

    /// Like [`Pipeline::apply`], with one job per output block of `block` elements
    /// (the result does not depend on it; the speed does).
    pub fn apply_blocks<'a>(
        &self,
        input: impl Into<ArrayViewAny<'a>>,
        block: &[usize],
    ) -> Result<ArrayAny> {
        self.apply_on(input, Some(block), &Backend::Cpu)
    }

    /// Applies the pipeline on `backend`, one job per output block of `block`
    /// elements (`None`: a default suited to the backend; a block of the result's
    /// shape where a final projection drops an axis).
    ///
    /// On a GPU the default block is a slab of whole planes (the input is then read
    /// as contiguous ranges, with no gather), and
    /// [`GpuContext::jobs_in_flight`](crate::GpuContext::jobs_in_flight) jobs run at
    /// once from one thread: each uploads its footprint (one host copy, into mapped
    /// staging memory), runs every stage on the device and is copied from mapped
    /// memory straight into the output array. For arrays used by several pipelines,
    /// [`DeviceArray`](crate::DeviceArray) keeps them on the device.
    ///
    /// ```
    /// use haloflow::{Backend, Device, Op, Pipeline};
    /// use ndarray::{ArrayD, IxDyn};
    ///
    /// // A GPU if there is one (else the CPU, with a notice on stderr).
    /// let backend = Backend::select(Device::Auto, None)?;
    /// let x = ArrayD::from_shape_fn(IxDyn(&[20, 30]), |i| (i[0] * i[1]) as u16);
    /// let pipeline = Pipeline::from(Op::clip(10.0, 200.0));
    /// let clipped = pipeline.apply_on(x.view(), None, &backend)?;
    /// assert_eq!(clipped, pipeline.apply(x.view())?);
    /// # Ok::<(), haloflow::Error>(())
    /// ```
    pub fn apply_on<'a>(
        &self,
        input: impl Into<ArrayViewAny<'a>>,
        block: Option<&[usize]>,
        backend: &Backend,
    ) -> Result<ArrayAny> {
        let input = input.into();
        // Thresholds and normalisations from the input's statistics get them first.
        let (resolved, _) = crate::stats::resolve::resolve_of(self, &input)?;
        let pipeline = &resolved;
        let block = match block {
            // A block of the written array: planned with a dropped axis at size 1.
            Some(b) => match pipeline.dropped_axis()? {
                Some(axis) if b.len() + 1 == input.shape().len() => {
                    let mut b = b.to_vec();
                    b.insert(axis, 1);
                    b
                }
                _ => b.to_vec(),
            },
            None => {
                let (out_shape, _) = pipeline.output(input.shape(), input.dtype())?;
                match backend {
                    Backend::Cpu => cpu_block(pipeline, input.shape(), &out_shape),
                    Backend::Gpu(_) => slab_of(&out_shape),
                }
            }
        };
        match_any!(input, ArrayViewAny, a => apply_typed(pipeline, a, &block, backend))
    }
}

fn apply_typed<T: BlockElement>(
    pipeline: &Pipeline,
    input: ArrayViewD<'_, T>,
    block: &[usize],
    backend: &Backend,
) -> Result<ArrayAny> {
    let plan = Plan::new(pipeline, input.shape(), T::DTYPE, block, block)?;
    let sets = Region::whole(input.shape()).sets();
    let source = match input.to_slice() {
        Some(slice) => Block::new(sets, Cow::Borrowed(slice)),
        None => Block::new(sets, Cow::Owned(input.iter().copied().collect())),
    }
    .into_any();
    with_dtype!(plan.output_dtype(), U => {
        let len: usize = plan.output_shape().iter().product();
        let mut buffer: Vec<U> = Vec::with_capacity(len);
        advise_huge_pages(&mut buffer);
        let dst = Destination {
            ptr: buffer.as_mut_ptr(),
            shape: plan.output_shape(),
        };
        // A float output's contiguous regions are written in place by the CPU's last
        // pass where it can.
        let place = |region: &Region| {
            matches!(U::DTYPE, DType::F32 | DType::F64)
                .then(|| dst.contiguous(region))?
                .map(|p| p.cast::<u8>())
        };
        // SAFETY: `place` points into the output buffer, which outlives the run, at a
        // region's own elements (contiguous, as checked); jobs write disjoint regions
        // (the planner's blocks tile the output) and nothing reads the buffer until
        // every job has finished.
        let direct = unsafe { crate::cpu::Direct::new(&place, U::DTYPE) };
        backend.run_in_memory(
            &plan,
            &source,
            &|region, result| dst.write(region, &result.typed::<U>().data),
            Some(&direct),
        )?;
        // SAFETY: the jobs' output blocks tile the whole output (the plan's grid covers
        // every index), and every job succeeded, so all `len` elements have been written.
        unsafe { buffer.set_len(len) };
        let out = ArrayD::from_shape_vec(plan.output_shape(), buffer)
            .expect("buffer length matches the output shape");
        // A final projection drops its axis (computed at size 1).
        Ok(match pipeline.dropped_axis()? {
            Some(axis) => out.index_axis_move(ndarray::Axis(axis), 0).into(),
            None => out.into(),
        })
    })
}

/// A default output block: the last axis whole (up to 4096), leading axes halved,
/// largest first, until the block holds about 512K (2^19) elements.
pub fn default_block(out_shape: &[usize]) -> Vec<usize> {
    block_of(out_shape, TARGET_BLOCK_ELEMENTS)
}

/// Like [`default_block`], for about `target` elements.
fn block_of(out_shape: &[usize], target: usize) -> Vec<usize> {
    let mut block = out_shape.to_vec();
    let last = block.len() - 1;
    block[last] = block[last].min(4096);
    while block.iter().product::<usize>() > target {
        let (axis, &n) = block[..last]
            .iter()
            .enumerate()
            .max_by_key(|&(a, n)| (*n, std::cmp::Reverse(a)))
            .unwrap_or((last, &block[last]));
        if n <= 1 {
            break;
        }
        block[axis] = n.div_ceil(2);
    }
    block
}

/// A CPU job's output block: for a pipeline that starts with separable passes streamed
/// plane by plane along a leading axis (a 3-D Gaussian's: [`crate::cpu::streamed_axis`]),
/// a tall block of up to [`STREAMED_PLANES`] planes along it, [`STREAMED_ROWS`] rows on each
/// later leading axis and the last axis whole (the halo along the streamed axis is
/// computed once per block, and one plane of the passes stays in cache); else
/// [`block_of`] the default size.
fn cpu_block(pipeline: &Pipeline, in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let streamed = (in_shape == out_shape)
        .then(|| pipeline.stages(in_shape.len()).ok())
        .flatten()
        .and_then(|stages| crate::cpu::streamed_axis(&stages));
    let Some(axis) = streamed else {
        return block_of(out_shape, TARGET_BLOCK_ELEMENTS);
    };
    let last = out_shape.len() - 1;
    let mut block: Vec<usize> = (0..out_shape.len())
        .map(|b| match b {
            _ if b < axis => 1,
            _ if b == axis => out_shape[b].min(STREAMED_PLANES),
            _ if b == last => out_shape[b].min(4096),
            _ => out_shape[b].min(STREAMED_ROWS),
        })
        .collect();
    // Enough jobs to keep every thread busy to the end: fewer planes where there are not.
    let jobs = |block: &[usize]| -> usize {
        out_shape
            .iter()
            .zip(block)
            .map(|(n, b)| n.div_ceil(*b))
            .product()
    };
    while jobs(&block) < JOBS_PER_THREAD * rayon::current_num_threads()
        && block[axis] >= 2 * MIN_STREAMED_PLANES
    {
        block[axis] = block[axis].div_ceil(2);
    }
    block
}

/// Planes along the streamed axis in a CPU job's block (the passes before the one
/// along it run once per plane and block: the fewer blocks along the axis, the fewer
/// planes they run on twice) ...
const STREAMED_PLANES: usize = 256;

/// ... halved, down to this many, while there are fewer than [`JOBS_PER_THREAD`] jobs
/// per thread ...
const MIN_STREAMED_PLANES: usize = 32;

/// ... jobs per thread wanted.
const JOBS_PER_THREAD: usize = 4;

/// ... and indices on each later leading axis.
const STREAMED_ROWS: usize = 32;

/// A GPU job's output block: whole planes (all axes but the first whole), about
/// [`GPU_SLABS`] slabs of at least [`MIN_GPU_SLAB_ELEMENTS`]; shapes whose single
/// plane is larger fall back to [`block_of`].
fn slab_of(out_shape: &[usize]) -> Vec<usize> {
    let total: usize = out_shape.iter().product();
    let plane: usize = out_shape[1..].iter().product::<usize>().max(1);
    if out_shape.len() < 2 || plane > MIN_GPU_SLAB_ELEMENTS {
        return block_of(out_shape, MIN_GPU_SLAB_ELEMENTS);
    }
    let slab = (total / GPU_SLABS).max(MIN_GPU_SLAB_ELEMENTS);
    let mut block = out_shape.to_vec();
    block[0] = (slab / plane).clamp(1, out_shape[0].max(1));
    block
}

/// Asks Linux to back a large buffer with transparent huge pages, as numpy does for
/// its arrays: first-touch page faults then cost 512 times less. A hint only.
pub(crate) fn advise_huge_pages<U>(buffer: &mut Vec<U>) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = buffer.capacity() * std::mem::size_of::<U>();
        if bytes < (4 << 20) {
            return;
        }
        let start = buffer.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (start + bytes - aligned) / PAGE * PAGE;
        // SAFETY: the range lies inside the buffer's allocation; MADV_HUGEPAGE changes
        // no data, only how the kernel backs the pages.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

/// Raw, shared access to the output array so that jobs write their disjoint blocks
/// in parallel.
struct Destination<'a, U> {
    ptr: *mut U,
    shape: &'a [usize],
}

// SAFETY: jobs write disjoint regions (the planner's blocks tile the output without
// overlap), and the array outlives the parallel loop that writes it.
unsafe impl<U: Send> Send for Destination<'_, U> {}
unsafe impl<U: Send> Sync for Destination<'_, U> {}

/// Elements per parallel task of a copy into the output.
const COPY_GRAIN: usize = 1 << 16;

impl<U: Element> Destination<'_, U> {
    /// Where `region`'s elements start in the array, if they are contiguous there.
    fn contiguous(&self, region: &Region) -> Option<*mut U> {
        let at = region.contiguous_offset(self.shape)?;
        // SAFETY: the region lies inside the array, and so does its first element.
        Some(unsafe { self.ptr.add(at) })
    }

    /// Copies the dense C-order `data` of `region` into the array (spread over
    /// rayon's pool when large: the GPU driver's copy-out runs on one thread).
    fn write(&self, region: &Region, data: &[U]) {
        use rayon::prelude::*;
        let zero = vec![0; region.ndim()];
        let from = Placed::at(&region.shape, &zero);
        let to = Placed::at(self.shape, &region.start);
        let mut rows = Vec::new();
        box_rows(&region.shape, from, to, |src, dst, n| {
            // Consecutive rows that are consecutive in both arrays copy as one.
            match rows.last_mut() {
                Some((s, d, m)) if *s + *m == src && *d + *m == dst => *m += n,
                _ => rows.push((src, dst, n)),
            }
        });
        let copy = |&(src, dst, n): &(usize, usize, usize)| {
            // SAFETY: `dst..dst + n` lies inside the array (the region does) and inside
            // this job's region, which no other job writes; tasks copy disjoint rows.
            unsafe {
                std::ptr::copy_nonoverlapping(data[src..src + n].as_ptr(), self.ptr.add(dst), n);
            }
        };
        if data.len() < 4 * COPY_GRAIN {
            rows.iter().for_each(copy);
            return;
        }
        // Cut long runs so that every task copies about COPY_GRAIN elements.
        let tasks: Vec<(usize, usize, usize)> = rows
            .into_iter()
            .flat_map(|(s, d, n)| {
                (0..n)
                    .step_by(COPY_GRAIN)
                    .map(move |o| (s + o, d + o, COPY_GRAIN.min(n - o)))
            })
            .collect();
        tasks.par_iter().with_min_len(1).for_each(copy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_between_integer_types_are_exact_and_saturate() {
        let big = (1i64 << 60) + 1;
        let x = ndarray::ArrayD::from_shape_vec(vec![4], vec![big, -5, i64::MAX, 7]).unwrap();
        let to = |d| Pipeline::new(vec![]).with_dtype(d).apply(x.view()).unwrap();
        let unsigned = to(DType::U64).into_array::<u64>().unwrap();
        assert_eq!(
            unsigned.as_slice().unwrap(),
            [big as u64, 0, i64::MAX as u64, 7]
        );
        let narrow = to(DType::I32).into_array::<i32>().unwrap();
        assert_eq!(narrow.as_slice().unwrap(), [i32::MAX, -5, i32::MAX, 7]);
        let back = Pipeline::new(vec![])
            .with_dtype(DType::I64)
            .apply(ndarray::ArrayD::from_elem(vec![2], u64::MAX).view())
            .unwrap()
            .into_array::<i64>()
            .unwrap();
        assert_eq!(back.as_slice().unwrap(), [i64::MAX, i64::MAX]);
        assert_eq!(to(DType::F64).into_array::<f64>().unwrap()[0], big as f64);
    }

    #[test]
    fn default_blocks_keep_rows_and_split_the_largest_leading_axis() {
        assert_eq!(default_block(&[256, 512, 512]), vec![32, 32, 512]);
        assert_eq!(default_block(&[7]), vec![7]);
        assert_eq!(default_block(&[3, 100_000]), vec![3, 4096]);
    }

    /// A streamed pipeline's CPU blocks: 256 planes by 32 rows by whole rows, with fewer
    /// planes where that leaves a thread fewer than four jobs (down to 32).
    #[test]
    fn streamed_blocks_are_tall_but_leave_every_thread_work() {
        use crate::ops::Op;
        let gauss = Pipeline::from(Op::gaussian(&[2.0, 2.0, 2.0]));
        let blocks = |threads: usize, shape: &[usize]| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool")
                .install(|| cpu_block(&gauss, shape, shape))
        };
        assert_eq!(blocks(2, &[256, 512, 512]), vec![256, 32, 512]);
        assert_eq!(blocks(16, &[256, 512, 512]), vec![64, 32, 512]);
        assert_eq!(blocks(2, &[64, 64, 64]), vec![32, 32, 64]);
        assert_eq!(blocks(2, &[600, 512, 512]), vec![256, 32, 512]);
        // A pipeline that does not stream gets the default block.
        let threshold = Pipeline::from(Op::threshold(1.0));
        assert_eq!(
            cpu_block(&threshold, &[256, 512, 512], &[256, 512, 512]),
            default_block(&[256, 512, 512])
        );
    }
}
