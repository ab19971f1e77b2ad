//! What a run did: jobs, bytes, seconds per stage, peak memory.

use serde::Serialize;

use crate::backend::Backend;
use crate::gpu::GpuTimes;

/// Seconds spent per stage, summed over workers.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StageSeconds {
    /// Reading and decoding input chunks, assembling footprints.
    pub read: f64,
    /// Running the kernels.
    pub compute: f64,
    /// Encoding and storing output chunks.
    pub write: f64,
}

/// What a run did, for the closing summary and `--report`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    /// Jobs in this process's part.
    pub jobs_total: usize,
    /// Jobs computed and written by this run.
    pub jobs_done: usize,
    /// Jobs found already written and skipped.
    pub jobs_skipped: usize,
    /// Decoded input bytes.
    pub bytes_read: u64,
    /// Output bytes written (before encoding).
    pub bytes_written: u64,
    /// Input chunks decoded.
    pub chunks_decoded: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Seconds per stage, summed over workers.
    pub stages: StageSeconds,
    /// The backend and adapter that computed.
    pub device: String,
    /// Why that device: asked for, or what `--device auto` weighed.
    pub device_reason: Option<String>,
    /// The process's peak resident memory so far (Linux `VmHWM`; 0 where unknown).
    pub peak_rss_bytes: u64,
    /// The statistics of the input that the pipeline's first op was computed from
    /// (Otsu's threshold, percentiles), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<serde_json::Value>,
    /// On a GPU: what crossed the link and how busy the device was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuReport>,
    /// With an object store (`s3://`, `https://`): the requests the run made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreTraffic>,
    /// With `--mip`: the maximum projections written beside the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mip: Option<MipReport>,
}

/// What `--mip` wrote, for the summary and `--report`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MipReport {
    /// The group holding the projections (one array per axis, named after it).
    pub path: std::path::PathBuf,
    /// The arrays written, each the maximum along the axis it is named after.
    pub arrays: Vec<String>,
    /// Whether every projection chunk is written: false while other parts of an array
    /// job have output chunks left to write (the last part to finish completes them).
    pub complete: bool,
    /// Output chunks read back (done before this run, or by other parts) to complete
    /// the projections.
    pub chunks_read_back: usize,
}

/// The requests a run made to object stores, and what they moved.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ObjectStoreTraffic {
    /// GET, HEAD, PUT, LIST and DELETE requests.
    pub requests: u64,
    /// Bytes received (encoded chunks and metadata).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Requests per second of the run.
    pub requests_per_s: f64,
    /// Megabytes (10^6) received and sent per second of the run.
    pub mb_per_s: f64,
}

impl ObjectStoreTraffic {
    /// The traffic of a run of `seconds`.
    pub fn over(requests: u64, bytes_in: u64, bytes_out: u64, seconds: f64) -> Self {
        let s = seconds.max(1e-9);
        ObjectStoreTraffic {
            requests,
            bytes_in,
            bytes_out,
            requests_per_s: requests as f64 / s,
            mb_per_s: (bytes_in + bytes_out) as f64 / 1e6 / s,
        }
    }
}

/// What a GPU run moved over the host link and how its time went: the device's
/// counters from the run's start to its end (runs sharing one `GpuContext` at the
/// same time see each other's figures).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GpuReport {
    /// The adapter's name.
    pub adapter: String,
    /// Bytes uploaded: the jobs' inputs (halos included), parameters and tables.
    pub bytes_uploaded: u64,
    /// Bytes read back.
    pub bytes_downloaded: u64,
    /// Compute passes (kernel launches).
    pub dispatches: usize,
    /// Queue submissions (one per device segment of a job).
    pub submits: usize,
    /// Device time in compute passes, from timestamp queries; `None` where the device
    /// has none.
    pub device_busy_s: Option<f64>,
    /// Host time threads spent blocked waiting for the device, summed over threads.
    pub driver_wait_s: f64,
    /// Slabs the run streamed through the device (rows of jobs whose input windows
    /// share their halo planes on the device); 0 where every job ran on its own.
    pub slabs: usize,
    /// Jobs that failed on the device and were computed on the CPU instead.
    pub cpu_fallback_jobs: usize,
    /// The first device error that sent a job to the CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

impl GpuReport {
    /// Starts counting a run on `backend`: on a GPU, resets its counters and times
    /// its compute passes until [`GpuReport::finish`].
    pub(crate) fn start(backend: &Backend) {
        if let Backend::Gpu(ctx) = backend {
            ctx.take_times();
            ctx.set_profiling(true);
        }
    }

    /// The figures since [`GpuReport::start`] on `backend`; `None` on the CPU.
    pub(crate) fn finish(backend: &Backend) -> Option<GpuReport> {
        let Backend::Gpu(ctx) = backend else {
            return None;
        };
        ctx.set_profiling(false);
        let t: GpuTimes = ctx.take_times();
        Some(GpuReport {
            adapter: ctx.adapter().name.clone(),
            bytes_uploaded: t.bytes_in,
            bytes_downloaded: t.bytes_out,
            dispatches: t.dispatches,
            submits: t.segments,
            device_busy_s: ctx.has_timestamps().then(|| t.compute().as_secs_f64()),
            driver_wait_s: t.driver_wait.as_secs_f64(),
            slabs: t.slabs,
            cpu_fallback_jobs: t.cpu_fallbacks,
            fault: t.fault,
        })
    }

    /// Adds the figures of `other`, a later run on the same device.
    fn add(&mut self, other: GpuReport) {
        self.bytes_uploaded += other.bytes_uploaded;
        self.bytes_downloaded += other.bytes_downloaded;
        self.dispatches += other.dispatches;
        self.submits += other.submits;
        self.device_busy_s = match (self.device_busy_s, other.device_busy_s) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.driver_wait_s += other.driver_wait_s;
        self.slabs += other.slabs;
        self.cpu_fallback_jobs += other.cpu_fallback_jobs;
        if self.fault.is_none() {
            self.fault = other.fault;
        }
    }
}

impl Report {
    /// Adds the figures of `other`, a run made after this one (the levels of a
    /// pyramid built one by one): jobs, bytes, chunks and stage seconds add up, the
    /// peak memory is the larger, the device is `other`'s. Wall seconds are the
    /// caller's to set.
    pub fn add(&mut self, other: Report) {
        self.jobs_total += other.jobs_total;
        self.jobs_done += other.jobs_done;
        self.jobs_skipped += other.jobs_skipped;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.chunks_decoded += other.chunks_decoded;
        self.stages.read += other.stages.read;
        self.stages.compute += other.stages.compute;
        self.stages.write += other.stages.write;
        self.peak_rss_bytes = self.peak_rss_bytes.max(other.peak_rss_bytes);
        self.device = other.device;
        self.device_reason = other.device_reason;
        self.gpu = match (self.gpu.take(), other.gpu) {
            (Some(mut a), Some(b)) => {
                a.add(b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
