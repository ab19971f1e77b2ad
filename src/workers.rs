//! The one worker loop, shared by the in-memory and the Zarr paths: a few workers,
//! each taking the next job until none is left or one has failed.
//! (Layer: backends; see the layer map in `docs/ARCHITECTURE.md`.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Which threads run the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workers {
    /// This many threads of their own (at most one per job). Workers that block (on
    /// reads, writes, a device) must not sit on rayon's pool, which decodes chunks.
    Threads(usize),
    /// Every thread of rayon's current pool: jobs that only compute on the CPU. The
    /// pool's threads outlive the call, and with them their buffer pools
    /// ([`take_buffer`](crate::block::take_buffer)), so repeated calls reuse memory
    /// instead of faulting fresh pages in.
    RayonPool,
}

/// Runs `run(i)` for every `i` in `0..jobs` on `workers`, each worker taking the next
/// job as it finishes one (so slow and fast jobs balance). Stops handing out jobs at
/// the first error, and returns it once the jobs already started have finished.
pub(crate) fn for_each_job(
    workers: Workers,
    jobs: usize,
    run: impl Fn(usize) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= jobs {
                break;
            }
            if let Err(e) = run(i) {
                failed.store(true, Ordering::Relaxed);
                first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        }
    };
    match workers {
        Workers::Threads(n) => std::thread::scope(|s| {
            for _ in 0..n.clamp(1, jobs.max(1)) {
                s.spawn(worker);
            }
        }),
        Workers::RayonPool => {
            rayon::broadcast(|_| worker());
        }
    }
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_once_on_either_kind_of_worker() {
        for workers in [Workers::Threads(3), Workers::RayonPool] {
            let done: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
            for_each_job(workers, done.len(), |i| {
                done[i].fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
            assert!(done.iter().all(|d| d.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn the_first_error_stops_the_run() {
        for workers in [Workers::Threads(2), Workers::RayonPool] {
            let started = AtomicUsize::new(0);
            // Each other job takes a little while: were the error not to stop the run,
            // the jobs left would take seconds, far longer than a worker preempted
            // between starting job 3 and reporting its error.
            let result = for_each_job(workers, 100_000, |i| {
                started.fetch_add(1, Ordering::Relaxed);
                if i == 3 {
                    Err(Error::Shape("job 3".into()))
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                    Ok(())
                }
            });
            assert!(matches!(result, Err(Error::Shape(m)) if m == "job 3"));
            assert!(started.load(Ordering::Relaxed) < 100_000);
        }
    }
}
