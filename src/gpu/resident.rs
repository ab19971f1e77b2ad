//! Arrays kept on the device: [`DeviceArray`]. Upload once, run one or several
//! pipelines on the device, download once, so that repeated operations skip the host
//! link.

use std::sync::Arc;
use std::sync::mpsc;

use ndarray::{ArrayD, IxDyn};

use super::context::GpuContext;
use super::dispatch::device_bytes;
use super::placement::{all_on_device, fits};
use super::pool::PooledBuffer;
use super::segment::{self, SegmentInput, SegmentOutput};
use crate::dtype::{ArrayAny, ArrayViewAny, DType, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::ops::Pipeline;
use crate::plan::Plan;
use crate::region::Region;

/// An array in device memory (C order, one storage buffer), made by
/// [`GpuContext::upload`] or [`DeviceArray::apply`].
///
/// ```no_run
/// use std::sync::Arc;
/// use haloflow::{GpuContext, Op, Pipeline};
/// use ndarray::{ArrayD, IxDyn};
///
/// let ctx = Arc::new(GpuContext::new(None)?);
/// let x = ArrayD::<f32>::zeros(IxDyn(&[64, 256, 256]));
/// let on_device = ctx.upload(x.view())?;
/// let smoothed = on_device.apply(&Pipeline::from(Op::gaussian(&[2.0])))?;
/// let mask = smoothed.apply(&Pipeline::from(Op::threshold(0.5)))?;
/// let mask = mask.download()?.into_array::<u8>()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DeviceArray {
    ctx: Arc<GpuContext>,
    buffer: PooledBuffer,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for DeviceArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceArray")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

/// The reason an array cannot live on the device, if any.
fn too_large(ctx: &GpuContext, shape: &[usize], dtype: DType) -> Option<Error> {
    let bytes = device_bytes(shape.iter().product(), dtype);
    (bytes > ctx.max_binding_size()).then(|| Error::Gpu {
        message: format!(
            "an array of {bytes} bytes exceeds the device's largest storage binding ({} bytes); \
             run it through Pipeline::apply_on, which streams it in slabs",
            ctx.max_binding_size()
        ),
    })
}

impl GpuContext {
    /// Copies `array` (1 to 5 dimensions; not float64, which has no device type) into
    /// device memory: one host copy, into mapped staging memory.
    pub fn upload<'a>(self: &Arc<Self>, array: impl Into<ArrayViewAny<'a>>) -> Result<DeviceArray> {
        let array = array.into();
        let (shape, dtype) = (array.shape().to_vec(), array.dtype());
        if dtype == DType::F64 {
            return Err(Error::UnsupportedDType(
                "float64 arrays cannot live on the device; cast them to float32 first".into(),
            ));
        }
        if let Some(e) = too_large(self, &shape, dtype) {
            return Err(e);
        }
        self.check_fault()?;
        let bytes = device_bytes(shape.iter().product(), dtype).max(4);
        let staging = self.staging(bytes);
        let raw = (shape.iter().product::<usize>() * dtype.size()) as u64;
        staging.write(0..bytes, |dst| {
            let (mut dst, mut tail) = dst.split_at(raw as usize);
            match_any!(&array, ArrayViewAny, a => match a.as_slice() {
                Some(s) => dst.copy_from_slice(bytemuck::cast_slice(s)),
                None => {
                    let values: Vec<_> = a.iter().copied().collect();
                    dst.copy_from_slice(bytemuck::cast_slice(&values));
                }
            });
            tail.fill(0);
        })?;
        staging.unmap();
        let buffer = self.device_buffer(bytes);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("haloflow upload"),
            });
        encoder.copy_buffer_to_buffer(staging.get(), 0, buffer.get(), 0, bytes);
        self.queue.submit([encoder.finish()]);
        staging.recycle();
        self.record(|t| t.bytes_in += bytes);
        Ok(DeviceArray {
            ctx: self.clone(),
            buffer,
            shape,
            dtype,
        })
    }
}

impl DeviceArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs `pipeline` on the device, from this array to a new one, and waits for it.
    /// Fails if a stage needs the host (float64) or the result exceeds one storage
    /// binding.
    pub fn apply(&self, pipeline: &Pipeline) -> Result<DeviceArray> {
        let ctx = &self.ctx;
        let (out_shape, _) = pipeline.output(&self.shape, self.dtype)?;
        let plan = Plan::new(pipeline, &self.shape, self.dtype, &out_shape, &out_shape)?;
        if !all_on_device(&plan) {
            return Err(Error::UnsupportedDType(
                "a resident array's pipeline must run on the device (no float64 stage)".into(),
            ));
        }
        let job = plan.job(0);
        let mut sets = job.sets.clone();
        // The buffer holds the whole array, a superset of the footprint.
        sets[0] = Region::whole(&self.shape).sets();
        if !fits(ctx, &plan, &sets) {
            return Err(too_large(ctx, &out_shape, plan.output_dtype()).unwrap_or(Error::Gpu {
                message: "an intermediate of the pipeline exceeds the device's largest storage binding".into(),
            }));
        }
        let n = plan.stages().len();
        let flight = segment::start(
            ctx,
            &plan,
            0..n,
            &sets,
            SegmentInput::Device(&self.buffer),
            SegmentOutput::Device,
        )?;
        let buffer = flight.into_device(ctx)?;
        Ok(DeviceArray {
            ctx: ctx.clone(),
            buffer,
            shape: out_shape,
            dtype: plan.output_dtype(),
        })
    }

    /// Copies the array back to host memory.
    pub fn download(&self) -> Result<ArrayAny> {
        let ctx = &self.ctx;
        let count: usize = self.shape.iter().product();
        let bytes = device_bytes(count, self.dtype).max(4);
        let mut readback = ctx.buffer(
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            bytes,
        );
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("haloflow download"),
            });
        encoder.copy_buffer_to_buffer(self.buffer.get(), 0, readback.get(), 0, bytes);
        let submission = ctx.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        readback.map_read(bytes, move |r| {
            let _ = tx.send(r);
        });
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| Error::Gpu {
                message: format!("waiting for the device: {e}"),
            })?;
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(5)) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    return Err(Error::Gpu {
                        message: format!("reading results back: {e}"),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = ctx.device.poll(wgpu::PollType::Poll);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Gpu {
                        message: "a buffer mapping was dropped".into(),
                    });
                }
            }
        }
        readback.set_mapped();
        ctx.check_fault()?;
        let shape = IxDyn(&self.shape);
        let array = readback.read_mapped(bytes, |raw| {
            with_dtype!(self.dtype, T => {
                let values: Vec<T> = bytemuck::pod_collect_to_vec(&raw[..count * std::mem::size_of::<T>()]);
                ArrayAny::from(ArrayD::from_shape_vec(shape, values).expect("length matches the shape"))
            })
        })?;
        ctx.record(|t| t.bytes_out += bytes);
        Ok(array)
    }
}
