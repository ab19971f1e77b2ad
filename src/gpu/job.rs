//! Running a job's stages on the device: placement (device or host per stage),
//! splitting jobs too large for one binding, upload, one compute pass per stage with
//! intermediates kept on the device, readback.

use std::borrow::Cow;
use std::ops::Range;

use super::shader::Shader;
use super::{GpuContext, PooledBuffer, pointwise, resample, stencil};
use crate::block::{Block, BlockAny, Placed, copy_box};
use crate::cpu;
use crate::dtype::{DType, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::plan::{Job, Plan};
use crate::region::{AxisSet, Region};
use crate::stage::{DownMethod, Stage, Stencil, UpMethod};

pub(super) use super::shader::AXES;
use super::shader::WORKGROUP;

/// Outputs each invocation of a row-shaped grid computes along its row, at least: the
/// work of finding its row is shared by them.
const ROW_STEPS: u32 = 4;

/// Five per-axis values, as the shaders' `array<u32, 5>`.
pub(super) fn axes(values: impl Iterator<Item = usize>) -> [u32; AXES] {
    let values: Vec<u32> = values.map(|v| v as u32).collect();
    values.try_into().expect("five axes")
}

/// The mask of the axes whose extent in `values` is above 1 (bit `a` for axis `a`):
/// kernels get it in `METHOD`, so that loops over the other axes fold away.
pub(super) fn axes_above_one(values: &[usize]) -> u32 {
    (0..values.len())
        .filter(|&a| values[a] > 1)
        .fold(0u32, |m, a| m | 1 << a)
}

/// `values` with `fill` prepended up to [`AXES`] entries.
fn pad<T: Clone>(values: &[T], fill: T) -> Vec<T> {
    let mut out = vec![fill; AXES - values.len()];
    out.extend_from_slice(values);
    out
}

fn pad_sets(sets: &[AxisSet]) -> Vec<AxisSet> {
    pad(sets, AxisSet::from_range(0..1))
}

/// One kernel launch: which kernel, its parameter struct's bytes, its tables.
pub(super) struct Dispatch {
    kernel: Shader,
    /// A method compiled into the pipeline as the constant `METHOD`.
    method: u32,
    params: Vec<u8>,
    tables: Vec<u32>,
    count: u32,
    /// The grid: `None`, one invocation per output word over a flat index; or
    /// `(row length, rows)`, x along the last axis and one workgroup row per row.
    rows: Option<(u32, u32)>,
    /// Values compiled into the pipeline's code (see [`super::shader::source`]).
    compiled_in: Vec<u32>,
}

impl Dispatch {
    pub(super) fn new<P: bytemuck::Pod>(
        kernel: Shader,
        params: &P,
        tables: Vec<u32>,
        count: u32,
    ) -> Self {
        Dispatch {
            kernel,
            method: 0,
            params: bytemuck::bytes_of(params).to_vec(),
            tables,
            count,
            rows: None,
            compiled_in: Vec::new(),
        }
    }

    /// The same launch with `values` compiled into the pipeline's code.
    pub(super) fn with_compiled_in(mut self, values: Vec<u32>) -> Self {
        self.compiled_in = values;
        self
    }

    /// The same launch on a grid shaped like the output: `rows` rows of `row`
    /// elements (the kernel's `main` reads its row from the workgroup's y and z).
    pub(super) fn with_rows(mut self, row: u32, rows: u32) -> Self {
        self.rows = Some((row, rows));
        self
    }

    /// The same launch with `METHOD = method` compiled in.
    pub(super) fn with_method(mut self, method: u32) -> Self {
        self.method = method;
        self
    }
}

/// Bytes of `n` elements of `d` on the device, rounded up to whole 32-bit words.
fn device_bytes(n: usize, d: DType) -> u64 {
    ((n * d.size()) as u64).next_multiple_of(4)
}

fn len(sets: &[AxisSet]) -> usize {
    sets.iter().map(AxisSet::len).product()
}

/// Whether stage `k` of `plan` runs on the device. Float64 has no device type: stages
/// reading or writing it run on the host, except a stencil, which reads its input
/// as f32 on both backends. Exact integer means and linear weights need divisors
/// below 2^31.
fn on_device(plan: &Plan, k: usize) -> bool {
    let stage = &plan.stages()[k];
    let (input, output) = (plan.dtype_at(k), plan.dtype_at(k + 1));
    if output == DType::F64 || (input == DType::F64 && !matches!(stage, Stage::Stencil(_))) {
        return false;
    }
    match stage {
        Stage::Downsample {
            factor,
            method: DownMethod::Mean,
        } => factor.iter().map(|&f| f as u64).product::<u64>() <= resample::MAX_DIVISOR,
        // Exact linear weights need the denominator below 2^31.
        Stage::Upsample {
            factor,
            method: UpMethod::Linear,
        } => crate::stage::denominator(&pad(factor, 1)) <= resample::MAX_DIVISOR,
        // Nearest reads no weight, but its table holds 2f in 32 bits too.
        Stage::Upsample { factor, .. } => factor.iter().all(|&f| 2 * (f as u64) < u32::MAX as u64),
        _ => true,
    }
}

/// The element type a device stage reads (float64 stencil input is uploaded as f32).
fn device_input(plan: &Plan, k: usize) -> DType {
    match plan.dtype_at(k) {
        DType::F64 => DType::F32,
        d => d,
    }
}

/// Whether every device stage's input and output fit in one binding.
fn fits(ctx: &GpuContext, plan: &Plan, sets: &[Vec<AxisSet>]) -> bool {
    let max = ctx.max_binding_size();
    (0..plan.stages().len()).all(|k| {
        !on_device(plan, k)
            || (device_bytes(len(&sets[k]), device_input(plan, k)) <= max
                && device_bytes(len(&sets[k + 1]), plan.dtype_at(k + 1)) <= max)
    })
}

/// Cuts `region` (of the output) until every part fits in one binding: halves along
/// the longest axis. A single element that still does not fit is returned as is.
fn split(ctx: &GpuContext, plan: &Plan, region: Region, parts: &mut Vec<(Region, bool)>) {
    if fits(ctx, plan, &plan.sets_for(&region)) {
        parts.push((region, true));
        return;
    }
    let axis = (0..region.ndim())
        .max_by_key(|&a| region.shape[a])
        .expect("at least one axis");
    let n = region.shape[axis];
    if n <= 1 {
        parts.push((region, false));
        return;
    }
    let mut first = region.clone();
    first.shape[axis] = n / 2;
    let mut second = region;
    second.start[axis] += n / 2;
    second.shape[axis] = n - n / 2;
    split(ctx, plan, first, parts);
    split(ctx, plan, second, parts);
}

/// Runs every stage of `job` (device stages on the GPU, see [`on_device`]), starting
/// from `source` (a block holding at least the job's footprint); returns the dense
/// output block.
pub(crate) fn run_job(
    ctx: &GpuContext,
    plan: &Plan,
    job: &Job,
    source: &BlockAny<'_>,
) -> Result<BlockAny<'static>> {
    ctx.check_fault()?;
    if fits(ctx, plan, &job.sets) {
        return run_sets(ctx, plan, &job.sets, source, true);
    }
    let mut parts = Vec::new();
    split(ctx, plan, job.output.clone(), &mut parts);
    let shape = job.output.shape.clone();
    with_dtype!(plan.output_dtype(), U => {
        let mut data = vec![U::default(); shape.iter().product()];
        for (part, device) in parts {
            let sets = plan.sets_for(&part);
            let result = run_sets(ctx, plan, &sets, source, device)?;
            let values = &result.typed::<U>().data;
            let origin: Vec<usize> = (0..shape.len()).map(|a| part.start[a] - job.output.start[a]).collect();
            let zero = vec![0; shape.len()];
            copy_box(&part.shape, values, Placed::at(&part.shape, &zero), &mut data, Placed::at(&shape, &origin));
        }
        let sets = job.sets.last().expect("non-empty").clone();
        Ok(Block::new(sets, Cow::Owned(data)).into_any())
    })
}

/// Runs the stages over the index sets `sets` (one list per stage input, then the
/// output): runs of consecutive device stages as one device segment each, the other
/// stages on the host.
fn run_sets(
    ctx: &GpuContext,
    plan: &Plan,
    sets: &[Vec<AxisSet>],
    source: &BlockAny<'_>,
    device: bool,
) -> Result<BlockAny<'static>> {
    let n = plan.stages().len();
    let mut current: Option<BlockAny<'static>> = None;
    let mut k = 0;
    while k < n {
        let input = current.as_ref().unwrap_or(source);
        let (next, end) = if device && on_device(plan, k) {
            let end = (k..n).find(|&e| !on_device(plan, e)).unwrap_or(n);
            (run_segment(ctx, plan, k..end, sets, input)?, end)
        } else {
            let stage = &plan.stages()[k];
            (
                cpu::run_stage(stage, input, &sets[k + 1], plan.shape_at(k)),
                k + 1,
            )
        };
        if let Some(done) = current.replace(next) {
            crate::block::recycle(done);
        }
        k = end;
    }
    Ok(current.expect("a plan has at least one stage"))
}

/// The bytes of a block's values.
fn block_bytes<'b>(block: &'b BlockAny<'_>) -> &'b [u8] {
    match_any!(block, BlockAny, b => bytemuck::cast_slice(&b.data[..]))
}

/// Uploads `bytes` into a new storage buffer, padding the last word with zeros.
fn upload(ctx: &GpuContext, bytes: &[u8], usage: wgpu::BufferUsages) -> PooledBuffer {
    let padded = (bytes.len() as u64).next_multiple_of(4).max(4);
    let buffer = ctx.buffer(usage | wgpu::BufferUsages::COPY_DST, padded);
    let whole = bytes.len() / 4 * 4;
    if whole > 0 {
        ctx.queue.write_buffer(buffer.get(), 0, &bytes[..whole]);
    }
    if whole < bytes.len() || bytes.is_empty() {
        let mut tail = [0u8; 4];
        tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
        ctx.queue.write_buffer(buffer.get(), whole as u64, &tail);
    }
    buffer
}

/// The kernel launch for device stage `k`, reading a block over `sets[k]`; every
/// per-axis quantity is padded to [`AXES`] axes.
fn dispatch(plan: &Plan, k: usize, input: DType, sets: &[Vec<AxisSet>]) -> Dispatch {
    let count = len(&sets[k + 1]) as u32;
    let (in_sets, out) = (&pad_sets(&sets[k]), &pad_sets(&sets[k + 1]));
    let in_shape = &pad(plan.shape_at(k), 1);
    match &plan.stages()[k] {
        Stage::Threshold { above } => pointwise::threshold(input, *above, count),
        Stage::Clip { min, max } => pointwise::clip(input, *min, *max, count),
        Stage::Cast(_) => pointwise::cast(count),
        Stage::Stencil(st) => {
            let st = Stencil {
                shape: pad(&st.shape, 1),
                centre: pad(&st.centre, 0),
                ..st.clone()
            };
            stencil::stencil(&st, in_sets, out, in_shape)
        }
        Stage::Downsample { factor, method } => {
            resample::downsample(in_sets, out, in_shape, &pad(factor, 1), *method)
        }
        Stage::Upsample { factor, method } => {
            resample::upsample(in_sets, out, in_shape, &pad(factor, 1), *method)
        }
    }
}

/// Runs device stages `range` on `input` (a block holding at least `sets[range.start]`):
/// one upload, one compute pass per stage, one readback, all under error scopes.
fn run_segment(
    ctx: &GpuContext,
    plan: &Plan,
    range: Range<usize>,
    sets: &[Vec<AxisSet>],
    input: &BlockAny<'_>,
) -> Result<BlockAny<'static>> {
    let k0 = range.start;
    // The input over exactly the first stage's sets, in a device type.
    let gathered;
    let mut host = input;
    if match_any!(input, BlockAny, b => b.sets != sets[k0]) {
        gathered = cpu::gather(input, &sets[k0]);
        host = &gathered;
    }
    let converted;
    if host.dtype() == DType::F64 {
        converted = cpu::run_stage(&Stage::Cast(DType::F32), host, &sets[k0], plan.shape_at(k0));
        host = &converted;
    }

    let device = &ctx.device;
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);

    let storage = wgpu::BufferUsages::STORAGE;
    let mut held: Vec<PooledBuffer> = Vec::new();
    let mut current = upload(ctx, block_bytes(host), storage);
    let mut dtype = host.dtype();
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("haloflow job"),
    });
    let passes = range.len() as u32;
    let queries = ctx.profiling().then(|| {
        device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("haloflow timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * passes,
        })
    });
    for (i, k) in range.clone().enumerate() {
        let d = dispatch(plan, k, dtype, sets);
        let out_dtype = plan.dtype_at(k + 1);
        let pipeline = ctx.pipeline(d.kernel, d.method, dtype, out_dtype, &d.compiled_in)?;
        let params = upload(ctx, &d.params, storage);
        let tables = upload(ctx, bytemuck::cast_slice(&d.tables), storage);
        let in_bytes = device_bytes(len(&sets[k]), dtype);
        let out_bytes = device_bytes(d.count as usize, out_dtype).max(4);
        let output = ctx.buffer(storage | wgpu::BufferUsages::COPY_SRC, out_bytes);
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(d.kernel.name()),
            layout: &ctx.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.binding(d.params.len() as u64),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: tables.binding(4 * d.tables.len() as u64),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: current.binding(in_bytes),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: output.binding(out_bytes),
                },
            ],
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.kernel.name()),
                timestamp_writes: queries.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                    query_set: q,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            let max = ctx.limits.max_compute_workgroups_per_dimension;
            match d.rows {
                None => {
                    let per_word = (4 / out_dtype.size()) as u32;
                    let groups = d.count.div_ceil(per_word).div_ceil(WORKGROUP).max(1);
                    let x = groups.min(max);
                    pass.dispatch_workgroups(x, groups.div_ceil(x), 1);
                }
                Some((row, rows)) => {
                    // x along the row (the kernel loops past 65535 groups), a row per
                    // workgroup row on y, then z.
                    let x = row.div_ceil(WORKGROUP * ROW_STEPS).clamp(1, max);
                    let y = rows.clamp(1, max);
                    pass.dispatch_workgroups(x, y, rows.div_ceil(y).max(1));
                }
            }
        }
        held.extend([params, tables, std::mem::replace(&mut current, output)]);
        dtype = out_dtype;
    }

    let out_sets = &sets[range.end];
    let count = len(out_sets);
    let bytes = device_bytes(count, dtype).max(4);
    let readback = ctx.buffer(
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        bytes,
    );
    encoder.copy_buffer_to_buffer(current.get(), 0, readback.get(), 0, bytes);
    let stamps = queries.as_ref().map(|q| {
        let size = 8 * 2 * passes as u64;
        let resolve = ctx.buffer(
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            size,
        );
        let read = ctx.buffer(
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            size,
        );
        encoder.resolve_query_set(q, 0..2 * passes, resolve.get(), 0);
        encoder.copy_buffer_to_buffer(resolve.get(), 0, read.get(), 0, size);
        (resolve, read, size)
    });
    let submission = ctx.queue.submit([encoder.finish()]);
    let scoped = [
        pollster::block_on(validation.pop()),
        pollster::block_on(oom.pop()),
    ];
    if let Some(e) = scoped.into_iter().flatten().next() {
        // Nothing invalid was executed; wait for the valid rest before reusing buffers.
        let _ = device.poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        });
        return Err(Error::Gpu {
            message: e.to_string(),
        });
    }

    // Map the results (and timestamps), wait for this submission, then read.
    let mut readback = readback;
    let mut stamps = stamps;
    let mut mapped = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let targets = std::iter::once((0, bytes)).chain(stamps.as_ref().map(|(_, _, size)| (1, *size)));
    for (which, size) in targets {
        let buffer = if which == 0 {
            readback.get()
        } else {
            stamps.as_ref().expect("stamps").1.get()
        };
        let tx = tx.clone();
        buffer
            .slice(..size)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((which, r));
            });
    }
    drop(tx);
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .map_err(|e| Error::Gpu {
            message: format!("waiting for the device: {e}"),
        })?;
    // The callbacks may run in another thread's poll that saw this submission finish
    // first, and only after our own poll returns: wait for them.
    let expected = 1 + usize::from(stamps.is_some());
    let mut failure = None;
    while mapped.len() + usize::from(failure.is_some()) < expected {
        match rx.recv_timeout(std::time::Duration::from_millis(5)) {
            Ok((which, Ok(()))) => mapped.push(which),
            Ok((_, Err(e))) => failure = Some(format!("reading results back: {e}")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = device.poll(wgpu::PollType::Poll);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                failure = Some("a buffer mapping was dropped".into());
                break;
            }
        }
    }
    for &which in &mapped {
        match which {
            0 => readback.mapped = true,
            _ => stamps.as_mut().expect("stamps").1.mapped = true,
        }
    }
    if let Some(message) = failure {
        return Err(Error::Gpu { message });
    }
    ctx.check_fault()?;

    let result = readback.read_mapped(bytes, |raw| {
        with_dtype!(dtype, T => {
            let mut values = vec![T::default(); count];
            bytemuck::cast_slice_mut::<T, u8>(&mut values)
                .copy_from_slice(&raw[..count * std::mem::size_of::<T>()]);
            Block::new(out_sets.clone(), Cow::Owned(values)).into_any()
        })
    })?;
    if let Some((_, read, size)) = &mut stamps {
        let total: u64 = read.read_mapped(*size, |raw| {
            raw.chunks_exact(16)
                .map(|p| {
                    let begin = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
                    let end = u64::from_le_bytes(p[8..].try_into().expect("8 bytes"));
                    end.saturating_sub(begin)
                })
                .sum()
        })?;
        let ns = (total as f64 * ctx.queue.get_timestamp_period() as f64) as u64;
        ctx.compute_ns
            .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }
    drop(held);
    Ok(result)
}
