//! A segment's encoding: one compute pass per launch, each binding its constants, the
//! buffer it reads and a buffer it writes (fresh, an accumulator, or the readback
//! buffer itself where host and device share memory).

use super::context::GpuContext;
use super::dispatch::device_bytes;
use super::launch::{Reads, Writes};
use super::pool::PooledBuffer;
use super::timing::Timestamps;
use super::upload::Prepared;

/// A binding of `bytes` bytes of `buffer` from `offset`.
pub(super) fn binding(buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: std::num::NonZeroU64::new(bytes.max(4)),
    })
}

/// The buffers a segment's passes are encoded against.
pub(super) struct Bound<'a> {
    /// The constants buffer and the offset of the constants in it.
    pub(super) constants: (&'a wgpu::Buffer, u64),
    /// The segment's input, what the first launch reads.
    pub(super) input: &'a wgpu::Buffer,
    /// The readback buffer, when the results go to the host.
    pub(super) readback: Option<&'a PooledBuffer>,
    /// Host and device share memory: the last launch writes the readback buffer.
    pub(super) unified: bool,
    pub(super) timestamps: Option<&'a Timestamps>,
}

/// What encoding left: the last stage's output (`None` when the last launch wrote the
/// readback buffer itself) and the buffers the passes used, held until the submission
/// is done.
pub(super) struct Encoded {
    pub(super) output: Option<PooledBuffer>,
    pub(super) held: Vec<PooledBuffer>,
}

/// Encodes one compute pass per launch of `prepared`.
pub(super) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    prepared: &[Prepared],
    bound: &Bound<'_>,
) -> Encoded {
    let device = &ctx.device;
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    let (constants, constants_offset) = bound.constants;
    let mut held = Vec::with_capacity(prepared.len() + 3);
    let mut current: Option<PooledBuffer> = None;
    // A sum of separable filters: its input (when an earlier launch wrote it) and its
    // accumulator.
    let mut stage_input: Option<PooledBuffer> = None;
    let mut accumulator: Option<PooledBuffer> = None;
    for (i, p) in prepared.iter().enumerate() {
        let (launch, c) = (&p.launch, &p.constants);
        let d = &launch.dispatch;
        if launch.reads == Reads::StageInput && stage_input.is_none() {
            // The first term's first pass: keep the stage's input for the other terms.
            stage_input = current.take();
        }
        let previous = match launch.reads {
            Reads::Previous => &current,
            Reads::StageInput => &stage_input,
        };
        let input = previous.as_ref().map_or(bound.input, PooledBuffer::get);
        let in_bytes = device_bytes(launch.in_len, launch.in_dtype).max(4);
        let out_bytes = device_bytes(d.count as usize, launch.out_dtype).max(4);
        let last = i + 1 == prepared.len();
        let output = match launch.writes {
            Writes::Fresh => (!(last && bound.unified && bound.readback.is_some()))
                .then(|| ctx.device_buffer(out_bytes)),
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
            (None, Writes::Fresh) => bound.readback.expect("a readback").get(),
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
                timestamp_writes: bound.timestamps.map(|t| t.pass(i)),
            });
            pass.set_pipeline(&p.pipeline);
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
    Encoded {
        output: current,
        held,
    }
}
