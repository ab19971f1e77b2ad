//! How many requests each object store keeps in flight (`--io-concurrency`), and the
//! requests this process made, for the progress bar and the run's report.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Requests in flight to an object store by default: enough to hide a cloud store's
/// latency (tens of milliseconds per request) behind a few compute threads.
pub const DEFAULT_IO_CONCURRENCY: usize = 32;

/// The requests in flight asked for (`--io-concurrency`); 0 means the default.
static IO_CONCURRENCY: AtomicUsize = AtomicUsize::new(0);

/// Sets how many requests each object store keeps in flight (`--io-concurrency`), for
/// the stores opened from now on.
pub fn set_io_concurrency(n: usize) {
    IO_CONCURRENCY.store(n, Ordering::Relaxed);
}

/// The requests each object store keeps in flight.
pub(crate) fn io_concurrency() -> usize {
    match IO_CONCURRENCY.load(Ordering::Relaxed) {
        0 => DEFAULT_IO_CONCURRENCY,
        n => n,
    }
}

/// Requests made to object stores by this process, and the bytes they moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// GET, HEAD, PUT, LIST and DELETE requests.
    pub requests: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

impl Traffic {
    /// The traffic since `before`, or `None` if there was none.
    pub fn since(self, before: Traffic) -> Option<Traffic> {
        let t = Traffic {
            requests: self.requests - before.requests,
            bytes_in: self.bytes_in - before.bytes_in,
            bytes_out: self.bytes_out - before.bytes_out,
        };
        (t.requests > 0).then_some(t)
    }
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static BYTES_IN: AtomicU64 = AtomicU64::new(0);
static BYTES_OUT: AtomicU64 = AtomicU64::new(0);

/// The object-store traffic of this process so far (all zero without a URL).
pub fn traffic() -> Traffic {
    Traffic {
        requests: REQUESTS.load(Ordering::Relaxed),
        bytes_in: BYTES_IN.load(Ordering::Relaxed),
        bytes_out: BYTES_OUT.load(Ordering::Relaxed),
    }
}

/// Counts requests made and bytes moved.
pub(super) fn count(requests: u64, bytes_in: u64, bytes_out: u64) {
    REQUESTS.fetch_add(requests, Ordering::Relaxed);
    BYTES_IN.fetch_add(bytes_in, Ordering::Relaxed);
    BYTES_OUT.fetch_add(bytes_out, Ordering::Relaxed);
}
