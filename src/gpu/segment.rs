//! One device segment: consecutive device stages of a job, run in four steps.
//!
//! 1. [`start`] builds every stage's dispatch, then *uploads*: the caller writes the
//!    input straight into mapped staging memory (its one host copy), and every
//!    stage's parameters and tables follow in the same staging buffer;
//! 2. it *encodes* the copies from staging into two device buffers (input; parameters
//!    and tables) and one compute pass per stage, each writing a fresh device buffer
//!    that the next stage reads;
//! 3. it *submits* under error scopes, and requests the readback's mapping;
//! 4. [`InFlight::finish`] waits for that mapping and hands the mapped results to the
//!    caller, who copies them to their destination (the other host copy).
//!
//! Between 3 and 4 the calling thread is free: the in-memory driver starts the next
//! jobs meanwhile.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::context::GpuContext;
use super::dispatch::{device_bytes, len};
use super::launch::{Reads, Writes, launches};
use super::placement::device_input;
use super::pool::PooledBuffer;
use crate::block::{Block, BlockAny};
use crate::dtype::{DType, with_dtype};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::region::AxisSet;

/// A binding of `bytes` bytes of `buffer` from `offset`.
fn binding(buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: std::num::NonZeroU64::new(bytes.max(4)),
    })
}

/// Where one stage's parameters and tables lie in the constants buffer.
struct Constants {
    params: Range<u64>,
    tables: Range<u64>,
}

/// Writes a segment's input into the staging bytes it is given.
pub(super) type Fill<'a> = Box<dyn FnOnce(wgpu::WriteOnly<'_, [u8]>) + 'a>;

/// Where a segment's input comes from.
pub(super) enum SegmentInput<'a> {
    /// Written by the closure into staging memory, as [`device_input`] elements in C
    /// order (the bytes it is given).
    Host(Fill<'a>),
    /// Already on the device (a resident array).
    Device(&'a PooledBuffer),
}

/// Where a segment's output goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SegmentOutput {
    /// Read back to the host ([`InFlight::finish`]).
    Host,
    /// Kept on the device ([`InFlight::into_device`]).
    Device,
}

/// A segment submitted to the device whose results are not read yet.
pub(super) struct InFlight {
    submission: wgpu::SubmissionIndex,
    /// The buffer the results are read back through (for [`SegmentOutput::Host`]).
    readback: Option<PooledBuffer>,
    /// The last stage's output (for [`SegmentOutput::Device`]).
    output: Option<PooledBuffer>,
    /// The timestamps' resolve and read buffers, and the stage of each pass.
    stamps: Option<(PooledBuffer, PooledBuffer, Vec<usize>)>,
    mapped: mpsc::Receiver<(usize, std::result::Result<(), wgpu::BufferAsyncError>)>,
    /// Device buffers the submission uses, returned to the pool when this is dropped
    /// (a later submission reusing one runs after this one on the queue).
    _held: Vec<PooledBuffer>,
    out_sets: Vec<AxisSet>,
    dtype: DType,
    count: usize,
}

/// Starts device stages `range` of `plan` over the index sets `sets` (one list per
/// stage input, then the output), reading the input over `sets[range.start]` from
/// `source` and sending the output to `sink`.
pub(super) fn start(
    ctx: &GpuContext,
    plan: &Plan,
    range: Range<usize>,
    sets: &[Vec<AxisSet>],
    source: SegmentInput<'_>,
    sink: SegmentOutput,
) -> Result<InFlight> {
    let k0 = range.start;
    let input_dtype = device_input(plan, k0);
    let input_len = len(&sets[k0]);

    // Every stage's launch, pipeline and place in the constants buffer.
    let align = u64::from(ctx.limits.min_storage_buffer_offset_alignment).max(4);
    let (launches, dtype) = launches(plan, range.clone(), sets, input_dtype);
    let mut stages = Vec::with_capacity(launches.len());
    let mut constants_bytes = 0u64;
    for launch in launches {
        let d = &launch.dispatch;
        let pipeline = ctx.pipeline(
            d.kernel,
            d.method,
            launch.in_dtype,
            launch.out_dtype,
            &d.compiled_in,
            &d.fused,
        )?;
        let params = constants_bytes..constants_bytes + (d.params.len() as u64).max(4);
        let tables_start = params.end.next_multiple_of(align);
        let tables = tables_start..tables_start + (4 * d.tables.len() as u64).max(4);
        constants_bytes = tables.end.next_multiple_of(align);
        stages.push((launch, pipeline, Constants { params, tables }));
    }

    // Upload: the input, then the constants, into one mapped staging buffer.
    let raw_input = (input_len * input_dtype.size()) as u64;
    let input_bytes = device_bytes(input_len, input_dtype).max(4);
    let (fill, resident) = match source {
        SegmentInput::Host(fill) => (Some(fill), None),
        SegmentInput::Device(buffer) => (None, Some(buffer)),
    };
    let staged_input = if fill.is_some() { input_bytes } else { 0 };
    let constants_at = staged_input.next_multiple_of(wgpu::MAP_ALIGNMENT.max(align));
    let staging = ctx.staging(constants_at + constants_bytes);
    let copying = Instant::now();
    if let Some(fill) = fill {
        // Mapped ranges are whole words: the input, then zeros to the word's end.
        staging.write(0..input_bytes, |dst| {
            let (input, mut tail) = dst.split_at(raw_input as usize);
            fill(input);
            tail.fill(0);
        })?;
    }
    let copy_in = copying.elapsed();
    let mut constants_host = vec![0u8; constants_bytes as usize];
    for (launch, _, c) in &stages {
        let d = &launch.dispatch;
        let (p, t) = (c.params.start as usize, c.tables.start as usize);
        constants_host[p..p + d.params.len()].copy_from_slice(&d.params);
        let tables: &[u8] = bytemuck::cast_slice(&d.tables);
        constants_host[t..t + tables.len()].copy_from_slice(tables);
    }
    staging.write(constants_at..constants_at + constants_bytes, |mut bytes| {
        bytes.copy_from_slice(&constants_host)
    })?;
    staging.unmap();

    let device = &ctx.device;
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);

    // Encode: the copies, one pass per stage, the readback copy. With memory shared
    // by host and device, kernels read staging memory and write the readback buffer
    // directly, and nothing is copied on the device.
    let unified = ctx.unified_memory();
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("haloflow job"),
    });
    let mut held = Vec::with_capacity(stages.len() + 3);
    let copied_constants = (!unified).then(|| {
        let buffer = ctx.device_buffer(constants_bytes);
        encoder.copy_buffer_to_buffer(
            staging.get(),
            constants_at,
            buffer.get(),
            0,
            constants_bytes,
        );
        buffer
    });
    let (constants, constants_offset) = match &copied_constants {
        Some(buffer) => (buffer.get(), 0),
        None => (staging.get(), constants_at),
    };
    let mut uploaded = None;
    if resident.is_none() && !unified {
        let buffer = ctx.device_buffer(input_bytes);
        encoder.copy_buffer_to_buffer(staging.get(), 0, buffer.get(), 0, input_bytes);
        uploaded = Some(buffer);
    }
    let out_sets = sets[range.end].clone();
    let count = len(&out_sets);
    let out_bytes = device_bytes(count, dtype).max(4);
    let mut readback = (sink == SegmentOutput::Host).then(|| ctx.readback_buffer(out_bytes));
    let passes = stages.len() as u32;
    let queries = ctx.profiling().then(|| {
        device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("haloflow timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * passes,
        })
    });
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    let mut current: Option<PooledBuffer> = None;
    // A sum of separable filters: its input (when an earlier launch wrote it) and its
    // accumulator.
    let mut stage_input: Option<PooledBuffer> = None;
    let mut accumulator: Option<PooledBuffer> = None;
    for (i, (launch, pipeline, c)) in stages.iter().enumerate() {
        let d = &launch.dispatch;
        if launch.reads == Reads::StageInput && stage_input.is_none() {
            // The first term's first pass: keep the stage's input for the other terms.
            stage_input = current.take();
        }
        let previous = match launch.reads {
            Reads::Previous => &current,
            Reads::StageInput => &stage_input,
        };
        let input = match (previous, &uploaded, resident) {
            (Some(b), _, _) | (None, Some(b), _) | (None, None, Some(b)) => b.get(),
            (None, None, None) => staging.get(),
        };
        let in_bytes = device_bytes(launch.in_len, launch.in_dtype).max(4);
        let out_bytes = device_bytes(d.count as usize, launch.out_dtype).max(4);
        let last = i + 1 == stages.len();
        let output = match launch.writes {
            Writes::Fresh => {
                (!(last && unified && readback.is_some())).then(|| ctx.device_buffer(out_bytes))
            }
            Writes::Accumulator { first, .. } => {
                if first {
                    accumulator = Some(ctx.device_buffer(out_bytes));
                }
                None
            }
        };
        let output_buffer = match (&output, launch.writes) {
            (Some(b), _) => b.get(),
            (None, Writes::Accumulator { .. }) => accumulator
                .as_ref()
                .expect("created by the first term")
                .get(),
            (None, Writes::Fresh) => readback.as_ref().expect("a readback").get(),
        };
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(d.kernel.name()),
            layout: &ctx.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: binding(
                        constants,
                        constants_offset + c.params.start,
                        c.params.end - c.params.start,
                    ),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: binding(
                        constants,
                        constants_offset + c.tables.start,
                        c.tables.end - c.tables.start,
                    ),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: binding(input, 0, in_bytes),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: binding(output_buffer, 0, out_bytes),
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
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind, &[]);
            let [x, y, z] = d.grid(launch.out_dtype, max);
            pass.dispatch_workgroups(x, y, z);
        }
        match (output, launch.writes) {
            (Some(output), _) => held.extend(current.replace(output)),
            // The last term's accumulation: the accumulator is the stage's output.
            (None, Writes::Accumulator { last: true, .. }) => {
                held.extend(current.take());
                held.extend(stage_input.take());
                current = accumulator.take();
            }
            // The last stage of a unified segment wrote the readback buffer itself; an
            // earlier term's accumulation is done with its pass's output.
            (None, _) => held.extend(current.take()),
        }
    }
    held.extend(uploaded);
    held.extend(copied_constants);
    let output = match (&readback, current) {
        (Some(readback), Some(current)) => {
            encoder.copy_buffer_to_buffer(current.get(), 0, readback.get(), 0, out_bytes);
            held.push(current);
            None
        }
        (None, current) => current,
        (Some(_), None) => None,
    };
    let mut stamps = queries.as_ref().map(|q| {
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
        (
            resolve,
            read,
            stages.iter().map(|s| s.0.stage).collect::<Vec<_>>(),
        )
    });

    // Submit, then ask for the mappings: they complete once the device is done.
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
    staging.recycle();
    let (tx, mapped) = mpsc::channel();
    let signal = tx.clone();
    if let Some(readback) = &mut readback {
        readback.map_read(out_bytes, move |r| {
            let _ = signal.send((0, r));
        });
    }
    if let Some((_, read, _)) = &mut stamps {
        let size = 8 * 2 * passes as u64;
        read.map_read(size, move |r| {
            let _ = tx.send((1, r));
        });
    }
    ctx.record(|t| {
        t.copy_in += copy_in;
        t.bytes_in += staged_input + constants_bytes;
        if sink == SegmentOutput::Host {
            t.bytes_out += out_bytes;
        }
        t.segments += 1;
    });
    Ok(InFlight {
        submission,
        readback,
        output,
        stamps,
        mapped,
        _held: held,
        out_sets,
        dtype,
        count,
    })
}

impl InFlight {
    /// Waits for the results, then calls `read` with them as a block borrowed from
    /// the mapped readback memory (copied first only if its address does not suit the
    /// element type), and returns the buffers to the pool.
    pub(super) fn finish<R>(
        mut self,
        ctx: &GpuContext,
        read: impl FnOnce(&BlockAny<'_>) -> R,
    ) -> Result<R> {
        self.wait(ctx)?;
        let (count, dtype, out_sets) = (self.count, self.dtype, &self.out_sets);
        let bytes = device_bytes(count, dtype).max(4);
        let copying = Instant::now();
        let readback = self
            .readback
            .as_mut()
            .expect("a segment read back to the host");
        let result = readback.read_mapped(bytes, |raw| {
            with_dtype!(dtype, T => {
                let raw = &raw[..count * std::mem::size_of::<T>()];
                let values: Cow<'_, [T]> = match bytemuck::try_cast_slice::<u8, T>(raw) {
                    Ok(v) => Cow::Borrowed(v),
                    Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec(raw)),
                };
                read(&Block::new(out_sets.clone(), values).into_any())
            })
        })?;
        let copy_out = copying.elapsed();
        self.record_stamps(ctx);
        ctx.record(|t| t.copy_out += copy_out);
        Ok(result)
    }

    /// Waits for a segment kept on the device ([`SegmentOutput::Device`]) and returns its
    /// output buffer (waiting makes its timestamps available while profiling).
    pub(super) fn into_device(mut self, ctx: &GpuContext) -> Result<PooledBuffer> {
        self.wait(ctx)?;
        self.record_stamps(ctx);
        Ok(self.output.take().expect("a segment kept on the device"))
    }

    /// Waits until the submission is done and the mappings asked for have completed.
    fn wait(&mut self, ctx: &GpuContext) -> Result<()> {
        let device = &ctx.device;
        device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(self.submission.clone()),
                timeout: None,
            })
            .map_err(|e| Error::Gpu {
                message: format!("waiting for the device: {e}"),
            })?;
        // The callbacks may run in another thread's poll that saw this submission
        // finish first, and only after our own poll returns: wait for them.
        let expected = usize::from(self.readback.is_some()) + usize::from(self.stamps.is_some());
        let mut done = 0;
        while done < expected {
            match self.mapped.recv_timeout(Duration::from_millis(5)) {
                Ok((which, Ok(()))) => {
                    done += 1;
                    match which {
                        0 => self.readback.as_mut().expect("readback").set_mapped(),
                        _ => self.stamps.as_mut().expect("stamps").1.set_mapped(),
                    }
                }
                Ok((_, Err(e))) => {
                    return Err(Error::Gpu {
                        message: format!("reading results back: {e}"),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = device.poll(wgpu::PollType::Poll);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Gpu {
                        message: "a buffer mapping was dropped".into(),
                    });
                }
            }
        }
        ctx.check_fault()
    }

    /// Adds the timestamps of a finished segment to the context's counters.
    fn record_stamps(&mut self, ctx: &GpuContext) {
        let mut stage_ns = Vec::new();
        if let Some((_, read, stages)) = &mut self.stamps {
            let size = 8 * 2 * stages.len() as u64;
            let period = f64::from(ctx.queue.get_timestamp_period());
            let ticks: Vec<u64> = read
                .read_mapped(size, |raw| {
                    raw.chunks_exact(16)
                        .map(|p| {
                            let begin = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
                            let end = u64::from_le_bytes(p[8..].try_into().expect("8 bytes"));
                            end.saturating_sub(begin)
                        })
                        .collect()
                })
                .unwrap_or_default();
            stage_ns = stages
                .iter()
                .zip(ticks)
                .map(|(&k, t)| (k, (t as f64 * period) as u64))
                .collect();
        }
        ctx.record(|t| {
            for (k, ns) in stage_ns {
                if t.stages.len() <= k {
                    t.stages.resize(k + 1, Duration::ZERO);
                }
                t.stages[k] += Duration::from_nanos(ns);
            }
        });
    }
}
