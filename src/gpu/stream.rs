//! A run streamed through the device in slabs: each slab's input window (the planes
//! along one axis that its stages read) is assembled on the device, the planes the
//! previous window already holds copied there, only the others uploaded; then the
//! slab's stages run as one segment and its output is read back once. Along the
//! streamed axis every decoded plane crosses the host link once, halos included.
//!
//! The executor (`exec/stream.rs`) plans the slabs, decodes the planes each one
//! lacks ([`missing_planes`]) and writes the results; this module owns the device
//! side: [`SlabStream::start`] and [`Slab::finish`].

use std::time::Instant;

use super::context::GpuContext;
use super::dispatch::len;
use super::launch::launches;
use super::placement::{all_on_device, device_input, fits};
use super::pool::PooledBuffer;
use super::segment::{self, InFlight, SegmentInput, SegmentOutput};
use super::upload::prepare;
use crate::block::BlockAny;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::region::AxisSet;

/// Whether slabs over the index sets `sets` (one list per stage input, then the
/// output) can stream along `axis`: every stage runs on the device, every stage's
/// input and output fits one binding, the window is one index wide on the axes before
/// `axis` (so that its planes are contiguous), and a plane of it is a whole number of
/// 32-bit words (what the device's buffer copies move).
pub(crate) fn streamable(
    ctx: &GpuContext,
    plan: &Plan,
    sets: &[Vec<AxisSet>],
    axis: usize,
) -> bool {
    let planes = sets[0][axis].len();
    // Planes are contiguous in the window only if it is one index wide before `axis`.
    all_on_device(plan)
        && planes > 0
        && sets[0][..axis].iter().all(|s| s.len() == 1)
        && fits(ctx, plan, sets)
        && plane_bytes(plan, &sets[0], axis).is_multiple_of(4)
}

/// The element type a streamed slab's window holds on the device.
pub(crate) fn window_dtype(plan: &Plan) -> crate::dtype::DType {
    device_input(plan, 0)
}

/// The bytes of one plane along `axis` of the window over `sets0`, on the device.
fn plane_bytes(plan: &Plan, sets0: &[AxisSet], axis: usize) -> u64 {
    let planes = sets0[axis].len().max(1);
    (len(sets0) / planes * device_input(plan, 0).size()) as u64
}

/// The planes along `axis` of the window `next` (a slab's input sets) that the window
/// `previous` (the slab before's, if any) does not hold: what must be uploaded. A
/// window holds planes only over the same sets on the other axes.
pub(crate) fn missing_planes(
    previous: Option<&[AxisSet]>,
    next: &[AxisSet],
    axis: usize,
) -> AxisSet {
    let held = previous.filter(|p| same_rest(p, next, axis));
    match held {
        None => next[axis].clone(),
        Some(p) => AxisSet::from_ranges(
            next[axis]
                .iter()
                .filter(|&i| p[axis].position(i).is_none())
                .map(|i| i..i + 1),
        ),
    }
}

/// Whether two windows have the same sets on every axis but `axis`.
fn same_rest(a: &[AxisSet], b: &[AxisSet], axis: usize) -> bool {
    a.len() == b.len() && (0..a.len()).all(|k| k == axis || a[k] == b[k])
}

/// The device side of a streamed run: the last slab's window, kept for the next.
pub(crate) struct SlabStream<'a> {
    ctx: &'a GpuContext,
    plan: &'a Plan,
    axis: usize,
    last: Option<Window>,
}

/// A slab's input on the device.
struct Window {
    buffer: PooledBuffer,
    sets: Vec<AxisSet>,
}

/// A slab submitted to the device whose output is not read yet.
pub(crate) struct Slab(InFlight);

impl<'a> SlabStream<'a> {
    /// A stream of `plan`'s slabs along `axis` on `ctx`.
    pub(crate) fn new(ctx: &'a GpuContext, plan: &'a Plan, axis: usize) -> Self {
        SlabStream {
            ctx,
            plan,
            axis,
            last: None,
        }
    }

    /// Compiles the pipelines of a slab over `sets` (the first's, while its rows
    /// decode), so that its start does not wait for them.
    pub(crate) fn warm(&self, sets: &[Vec<AxisSet>]) -> Result<()> {
        let n = self.plan.stages().len();
        let (launches, _) = launches(self.plan, 0..n, sets, device_input(self.plan, 0));
        prepare(self.ctx, launches).map(|_| ())
    }

    /// Starts a slab over `sets` (one list per stage input, then the output, as
    /// [`streamable`] accepted): assembles its window from the last one's planes and
    /// the [`missing_planes`], which `fill` writes (the planes in order, each over the
    /// window's sets on the other axes, as the device's input element type), then
    /// submits its stages.
    pub(crate) fn start(
        &mut self,
        sets: &[Vec<AxisSet>],
        fill: impl FnOnce(&AxisSet, wgpu::WriteOnly<'_, [u8]>),
    ) -> Result<Slab> {
        self.ctx.check_fault()?;
        let (ctx, axis) = (self.ctx, self.axis);
        let window_sets = &sets[0];
        let planes = &window_sets[axis];
        let plane = plane_bytes(self.plan, window_sets, axis);
        let last = self
            .last
            .take()
            .filter(|w| same_rest(&w.sets, window_sets, axis));
        let missing = missing_planes(last.as_ref().map(|w| &w.sets[..]), window_sets, axis);

        // Runs of planes: (from, to, count) in plane units.
        let mut kept: Vec<(usize, usize, usize)> = Vec::new();
        let mut uploaded: Vec<(usize, usize, usize)> = Vec::new();
        let mut staged = 0;
        for (to, p) in planes.iter().enumerate() {
            let (runs, from) = match last.as_ref().and_then(|w| w.sets[axis].position(p)) {
                Some(from) => (&mut kept, from),
                None => {
                    staged += 1;
                    (&mut uploaded, staged - 1)
                }
            };
            match runs.last_mut() {
                Some((f, t, n)) if *f + *n == from && *t + *n == to => *n += 1,
                _ => runs.push((from, to, 1)),
            }
        }

        let upload_bytes = plane * staged as u64;
        let staging = (upload_bytes > 0).then(|| ctx.staging(upload_bytes));
        let copying = Instant::now();
        if let Some(staging) = &staging {
            staging.write(0..upload_bytes, |dst| fill(&missing, dst))?;
            staging.unmap();
        }
        let copy_in = copying.elapsed();

        let device = &ctx.device;
        let scoped = ctx.scoped();
        let window = ctx.device_buffer((plane * planes.len() as u64).max(4));
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("haloflow window"),
        });
        let runs = last
            .as_ref()
            .map(|w| (w.buffer.get(), &kept))
            .into_iter()
            .chain(staging.as_ref().map(|s| (s.get(), &uploaded)));
        for (source, runs) in runs {
            for &(from, to, n) in runs {
                let (from, to, n) = (from as u64, to as u64, n as u64);
                encoder.copy_buffer_to_buffer(
                    source,
                    from * plane,
                    window.get(),
                    to * plane,
                    n * plane,
                );
            }
        }
        if let (_, Some(message)) = ctx.submit_scoped(scoped, encoder.finish()) {
            return Err(Error::Gpu { message });
        }
        if let Some(staging) = staging {
            staging.recycle();
        }
        ctx.record(|t| {
            t.copy_in += copy_in;
            t.bytes_in += upload_bytes;
            t.segments += 1;
        });
        // The last window returns to the pool here: a later submission reusing it runs
        // after the copies above on the queue.
        drop(last);
        let n = self.plan.stages().len();
        let flight = segment::start(
            ctx,
            self.plan,
            0..n,
            sets,
            SegmentInput::Device(&window),
            SegmentOutput::Host,
        )?;
        ctx.record(|t| t.slabs += 1);
        self.last = Some(Window {
            buffer: window,
            sets: window_sets.clone(),
        });
        Ok(Slab(flight))
    }
}

impl Slab {
    /// Waits for the slab's output and calls `read` with it, borrowed from mapped
    /// readback memory.
    pub(crate) fn finish<R>(
        self,
        ctx: &GpuContext,
        read: impl FnOnce(&BlockAny<'_>) -> R,
    ) -> Result<R> {
        self.0.finish(ctx, read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(planes: std::ops::Range<usize>, rest: usize) -> Vec<AxisSet> {
        vec![AxisSet::from_range(planes), AxisSet::from_range(0..rest)]
    }

    #[test]
    fn a_window_uploads_only_the_planes_the_last_one_lacks() {
        let first = sets(0..40, 8);
        assert_eq!(missing_planes(None, &first, 0), AxisSet::from_range(0..40));
        let second = sets(24..72, 8);
        assert_eq!(
            missing_planes(Some(&first), &second, 0),
            AxisSet::from_range(40..72)
        );
        // Other sets on the other axes: nothing is held.
        assert_eq!(
            missing_planes(Some(&sets(0..40, 9)), &second, 0),
            AxisSet::from_range(24..72)
        );
        // `wrap` windows: two runs, the far one held from before.
        let wrapped = vec![
            AxisSet::from_ranges([0..40, 90..100]),
            AxisSet::from_range(0..8),
        ];
        assert_eq!(
            missing_planes(Some(&sets(80..100, 8)), &wrapped, 0),
            AxisSet::from_range(0..40)
        );
    }
}
