//! A segment's upload: its launches' pipelines and their places in one constants
//! buffer, and the one mapped staging buffer that carries the input (when it comes from
//! the host) and every launch's parameters and tables.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::context::GpuContext;
use super::launch::Launch;
use super::pool::Staging;
use crate::error::Result;

/// Writes a segment's input into the staging bytes it is given.
pub(super) type Fill<'a> = Box<dyn FnOnce(wgpu::WriteOnly<'_, [u8]>) + 'a>;

/// Where one launch's parameters and tables lie in the constants buffer.
pub(super) struct Constants {
    pub(super) params: Range<u64>,
    pub(super) tables: Range<u64>,
}

/// One launch ready to encode: what it runs, its pipeline and its constants.
pub(super) struct Prepared {
    pub(super) launch: Launch,
    pub(super) pipeline: Arc<wgpu::ComputePipeline>,
    pub(super) constants: Constants,
}

/// Each launch's pipeline (compiled on first use) and its place in the constants
/// buffer, whose size is returned beside them.
pub(super) fn prepare(ctx: &GpuContext, launches: Vec<Launch>) -> Result<(Vec<Prepared>, u64)> {
    let align = constants_alignment(ctx);
    let mut prepared = Vec::with_capacity(launches.len());
    let mut bytes = 0u64;
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
        let params = bytes..bytes + (d.params.len() as u64).max(4);
        let tables_start = params.end.next_multiple_of(align);
        let tables = tables_start..tables_start + (4 * d.tables.len() as u64).max(4);
        bytes = tables.end.next_multiple_of(align);
        prepared.push(Prepared {
            launch,
            pipeline,
            constants: Constants { params, tables },
        });
    }
    Ok((prepared, bytes))
}

/// The alignment of a binding's offset into the constants buffer.
fn constants_alignment(ctx: &GpuContext) -> u64 {
    u64::from(ctx.limits.min_storage_buffer_offset_alignment).max(4)
}

/// A segment's filled staging buffer, unmapped and ready to be read by the device.
pub(super) struct Staged {
    pub(super) staging: Staging,
    /// Bytes of input at its start (0 when the input is on the device already).
    pub(super) input_bytes: u64,
    /// Where the constants start in it.
    pub(super) constants_at: u64,
    /// The time spent writing the input.
    pub(super) copy_in: Duration,
}

/// Fills one staging buffer: the input from `fill` (its `raw_input` bytes, then zeros
/// to `input_bytes`, a whole number of words), then the constants of `prepared`.
pub(super) fn upload(
    ctx: &GpuContext,
    fill: Option<Fill<'_>>,
    raw_input: u64,
    input_bytes: u64,
    prepared: &[Prepared],
    constants_bytes: u64,
) -> Result<Staged> {
    let input_bytes = if fill.is_some() { input_bytes } else { 0 };
    let constants_at =
        input_bytes.next_multiple_of(wgpu::MAP_ALIGNMENT.max(constants_alignment(ctx)));
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
    let mut constants = vec![0u8; constants_bytes as usize];
    for p in prepared {
        let d = &p.launch.dispatch;
        let (at, t) = (
            p.constants.params.start as usize,
            p.constants.tables.start as usize,
        );
        constants[at..at + d.params.len()].copy_from_slice(&d.params);
        let tables: &[u8] = bytemuck::cast_slice(&d.tables);
        constants[t..t + tables.len()].copy_from_slice(tables);
    }
    staging.write(constants_at..constants_at + constants_bytes, |mut bytes| {
        bytes.copy_from_slice(&constants)
    })?;
    staging.unmap();
    Ok(Staged {
        staging,
        input_bytes,
        constants_at,
        copy_in,
    })
}
