//! One device segment: consecutive device stages of a job, run in four steps.
//!
//! 1. [`start`] takes the stages' launches (`launch.rs`), then *uploads*
//!    (`upload.rs`): the caller writes the input straight into mapped staging memory
//!    (its one host copy), and every launch's parameters and tables follow in the same
//!    staging buffer;
//! 2. it *encodes* the copies from staging into two device buffers (input; parameters
//!    and tables) and one compute pass per launch (`encode.rs`), each writing a fresh
//!    device buffer that the next one reads, timed when profiling (`timing.rs`);
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
use super::encode::{Bound, Encoded, encode};
use super::launch::launches;
use super::placement::device_input;
use super::pool::PooledBuffer;
use super::timing::{Stamps, Timestamps};
use super::upload::{Fill, Staged, prepare, upload};
use crate::block::{Block, BlockAny};
use crate::dtype::{DType, with_dtype};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::region::AxisSet;

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

/// Which of a segment's buffers a mapping callback reports on.
#[derive(Clone, Copy)]
enum Mapping {
    Readback,
    Stamps,
}

/// A segment submitted to the device whose results are not read yet.
pub(super) struct InFlight {
    submission: wgpu::SubmissionIndex,
    /// The buffer the results are read back through (for [`SegmentOutput::Host`]).
    readback: Option<PooledBuffer>,
    /// The last stage's output (for [`SegmentOutput::Device`]).
    output: Option<PooledBuffer>,
    /// The passes' timestamps, while profiling.
    stamps: Option<Stamps>,
    mapped: mpsc::Receiver<(Mapping, std::result::Result<(), wgpu::BufferAsyncError>)>,
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
    let (launches, dtype) = launches(plan, range.clone(), sets, input_dtype);
    let (prepared, constants_bytes) = prepare(ctx, launches)?;

    // Upload: the input, then the constants, into one mapped staging buffer.
    let raw_input = (input_len * input_dtype.size()) as u64;
    let input_bytes = device_bytes(input_len, input_dtype).max(4);
    let (fill, resident) = match source {
        SegmentInput::Host(fill) => (Some(fill), None),
        SegmentInput::Device(buffer) => (None, Some(buffer)),
    };
    let Staged {
        staging,
        input_bytes: staged_input,
        constants_at,
        copy_in,
    } = upload(
        ctx,
        fill,
        raw_input,
        input_bytes,
        &prepared,
        constants_bytes,
    )?;

    let device = &ctx.device;
    let scoped = ctx.scoped();

    // Encode: the copies, one pass per launch, the readback copy. With memory shared
    // by host and device, kernels read staging memory and write the readback buffer
    // directly, and nothing is copied on the device.
    let unified = ctx.unified_memory();
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("haloflow job"),
    });
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
    let uploaded = (resident.is_none() && !unified).then(|| {
        let buffer = ctx.device_buffer(input_bytes);
        encoder.copy_buffer_to_buffer(staging.get(), 0, buffer.get(), 0, input_bytes);
        buffer
    });
    let out_sets = sets[range.end].clone();
    let count = len(&out_sets);
    let out_bytes = device_bytes(count, dtype).max(4);
    let mut readback = (sink == SegmentOutput::Host).then(|| ctx.readback_buffer(out_bytes));
    let timestamps = Timestamps::new(ctx, prepared.len() as u32);
    let bound = Bound {
        constants: match &copied_constants {
            Some(buffer) => (buffer.get(), 0),
            None => (staging.get(), constants_at),
        },
        input: match (&uploaded, resident) {
            (Some(b), _) | (None, Some(b)) => b.get(),
            (None, None) => staging.get(),
        },
        readback: readback.as_ref(),
        unified,
        timestamps: timestamps.as_ref(),
    };
    let Encoded { output, mut held } = encode(ctx, &mut encoder, &prepared, &bound);
    held.extend(uploaded);
    held.extend(copied_constants);
    let output = match (&readback, output) {
        (Some(readback), Some(current)) => {
            encoder.copy_buffer_to_buffer(current.get(), 0, readback.get(), 0, out_bytes);
            held.push(current);
            None
        }
        (None, current) => current,
        (Some(_), None) => None,
    };
    let passes = prepared.len();
    let stages = prepared.iter().map(|p| p.launch.stage).collect();
    let mut stamps = timestamps.map(|t| t.resolve(ctx, &mut encoder, stages));

    // Submit, then ask for the mappings: they complete once the device is done.
    let (submission, failure) = ctx.submit_scoped(scoped, encoder.finish());
    if let Some(message) = failure {
        // Nothing invalid was executed; wait for the valid rest before reusing buffers.
        let _ = device.poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: Some(ctx.timeout()),
        });
        return Err(Error::Gpu { message });
    }
    staging.recycle();
    let (tx, mapped) = mpsc::channel();
    let signal = tx.clone();
    if let Some(readback) = &mut readback {
        readback.map_read(out_bytes, move |r| {
            let _ = signal.send((Mapping::Readback, r));
        });
    }
    if let Some(stamps) = &mut stamps {
        stamps.map(move |r| {
            let _ = tx.send((Mapping::Stamps, r));
        });
    }
    ctx.record(|t| {
        t.copy_in += copy_in;
        t.bytes_in += staged_input + constants_bytes;
        if sink == SegmentOutput::Host {
            t.bytes_out += out_bytes;
        }
        t.segments += 1;
        t.dispatches += passes;
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

    /// Waits until the submission is done and the mappings asked for have completed,
    /// at most the context's timeout: a device that takes longer counts as hung, and
    /// is not used again.
    fn wait(&mut self, ctx: &GpuContext) -> Result<()> {
        let waiting = Instant::now();
        let waited = self.wait_for_device(ctx);
        ctx.record(|t| t.driver_wait += waiting.elapsed());
        waited
    }

    fn wait_for_device(&mut self, ctx: &GpuContext) -> Result<()> {
        let device = &ctx.device;
        let timeout = ctx.timeout();
        let hung = |ctx: &GpuContext| {
            let message = format!(
                "the device did not finish a submission within {} s (hung)",
                timeout.as_secs_f64()
            );
            ctx.set_fault(message.clone());
            Error::Gpu { message }
        };
        let started = Instant::now();
        match device.poll(wgpu::PollType::Wait {
            submission_index: Some(self.submission.clone()),
            timeout: Some(timeout),
        }) {
            Ok(_) => {}
            Err(wgpu::PollError::Timeout) => return Err(hung(ctx)),
            Err(e) => {
                return Err(Error::Gpu {
                    message: format!("waiting for the device: {e}"),
                });
            }
        }
        // The callbacks may run in another thread's poll that saw this submission
        // finish first, and only after our own poll returns: wait for them.
        let expected = usize::from(self.readback.is_some()) + usize::from(self.stamps.is_some());
        let mut done = 0;
        while done < expected {
            match self.mapped.recv_timeout(Duration::from_millis(5)) {
                Ok((which, Ok(()))) => {
                    done += 1;
                    match which {
                        Mapping::Readback => self.readback.as_mut().expect("readback").set_mapped(),
                        Mapping::Stamps => self.stamps.as_mut().expect("stamps").set_mapped(),
                    }
                }
                Ok((_, Err(e))) => {
                    return Err(Error::Gpu {
                        message: format!("reading results back: {e}"),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if started.elapsed() > timeout {
                        return Err(hung(ctx));
                    }
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
        if let Some(stamps) = &mut self.stamps {
            stamps.record(ctx);
        }
    }
}
