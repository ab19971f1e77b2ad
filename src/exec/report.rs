//! What a run did: jobs, bytes, seconds per stage, peak memory.

use serde::Serialize;

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
    }
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
