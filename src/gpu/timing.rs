//! A segment's timestamps, when the context profiles.
//!
//! A segment asks for a [`Timestamps`] query set, writes a pair of timestamps around
//! each pass, resolves them into a buffer it reads back beside the results, and adds
//! each pass's device time to its stage's counter ([`Stamps::record`]).

use std::time::Duration;

use super::context::GpuContext;
use super::pool::PooledBuffer;

/// A query set with a begin and an end timestamp per pass.
pub(super) struct Timestamps {
    queries: wgpu::QuerySet,
    passes: u32,
}

impl Timestamps {
    /// Timestamps for `passes` passes, or `None` when the context does not profile.
    pub(super) fn new(ctx: &GpuContext, passes: u32) -> Option<Timestamps> {
        ctx.profiling().then(|| Timestamps {
            queries: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("haloflow timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * passes,
            }),
            passes,
        })
    }

    /// Where pass `i` writes its timestamps.
    pub(super) fn pass(&self, i: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * i as u32),
            end_of_pass_write_index: Some(2 * i as u32 + 1),
        }
    }

    /// Encodes the resolve and the copy into a buffer to read; `stages[i]` is the plan
    /// stage of pass `i`.
    pub(super) fn resolve(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        stages: Vec<usize>,
    ) -> Stamps {
        let size = bytes(self.passes);
        let resolve = ctx.buffer(
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            size,
        );
        let read = ctx.buffer(
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            size,
        );
        encoder.resolve_query_set(&self.queries, 0..2 * self.passes, resolve.get(), 0);
        encoder.copy_buffer_to_buffer(resolve.get(), 0, read.get(), 0, size);
        Stamps {
            _resolve: resolve,
            read,
            stages,
        }
    }
}

/// Bytes of `passes` pairs of timestamps.
fn bytes(passes: u32) -> u64 {
    8 * 2 * u64::from(passes)
}

/// A submitted segment's resolved timestamps, to be read once it is done.
pub(super) struct Stamps {
    /// Held until the submission is done.
    _resolve: PooledBuffer,
    read: PooledBuffer,
    /// The plan stage of each pass.
    stages: Vec<usize>,
}

impl Stamps {
    /// Asks for the read buffer's mapping; `done` is called when it completes.
    pub(super) fn map(
        &mut self,
        done: impl FnOnce(std::result::Result<(), wgpu::BufferAsyncError>) + Send + 'static,
    ) {
        let size = bytes(self.stages.len() as u32);
        self.read.map_read(size, done);
    }

    /// Records that the mapping asked for by [`Stamps::map`] has completed.
    pub(super) fn set_mapped(&mut self) {
        self.read.set_mapped();
    }

    /// Adds each pass's device time to its stage's counter.
    pub(super) fn record(&mut self, ctx: &GpuContext) {
        let size = bytes(self.stages.len() as u32);
        let period = f64::from(ctx.queue.get_timestamp_period());
        let ticks: Vec<u64> = self
            .read
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
        let stage_ns: Vec<(usize, u64)> = self
            .stages
            .iter()
            .zip(ticks)
            .map(|(&k, t)| (k, (t as f64 * period) as u64))
            .collect();
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
