//! The options of a streaming run, and its progress callback.

use super::part::Part;
use crate::backend::Backend;

/// Options of a streaming run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Worker threads (jobs in flight).
    pub threads: usize,
    /// Memory budget in bytes for jobs in flight and decoded chunks.
    pub memory_limit: u64,
    /// This process's share of the jobs.
    pub part: Part,
    /// Redo jobs already written.
    pub overwrite: bool,
    /// Where jobs compute.
    pub backend: Backend,
    /// Why that backend (for the report), if it was chosen rather than given.
    pub device_reason: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_limit: default_memory_limit(),
            part: Part::ALL,
            overwrite: false,
            backend: Backend::Cpu,
            device_reason: None,
        }
    }
}

/// A quarter of the machine's memory (1 GiB if it cannot be read).
pub fn default_memory_limit() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024);
    total.map_or(1 << 30, |t| t / 4)
}

/// Called after every finished or skipped job with (jobs finished so far, bytes written).
pub type Progress<'a> = &'a (dyn Fn(usize, u64) + Sync);
