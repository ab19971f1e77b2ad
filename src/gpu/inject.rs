//! Forced device faults, for tests of the recovery paths (the `fault-injection` cargo
//! feature; builds without it have no such hook).
//!
//! `HALOFLOW_INJECT_GPU_FAULT=oom@K` makes the K-th submission of the process (counted
//! from 1) fail as out of device memory: that one job fails. `lost@K` makes it fail
//! as a lost device: that job and every later one fail.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// The variable that asks for a fault.
pub(super) const VARIABLE: &str = "HALOFLOW_INJECT_GPU_FAULT";

/// Which fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Out of device memory: the submission fails, the device stays usable.
    OutOfMemory,
    /// The device is lost: this and every later submission fail.
    Lost,
}

/// A fault to force at one submission.
#[derive(Debug)]
pub(crate) struct Injection {
    fault: Fault,
    /// The submission (from 1) that fails.
    at: usize,
    /// Submissions so far.
    count: AtomicUsize,
}

impl Injection {
    /// The fault [`VARIABLE`] asks for, if it is set.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a value other than `oom@K` or `lost@K`, K ≥ 1.
    pub(super) fn from_env() -> Result<Option<Injection>> {
        let Ok(value) = std::env::var(VARIABLE) else {
            return Ok(None);
        };
        let invalid = || Error::InvalidParameter {
            op: "fault injection",
            message: format!("{VARIABLE} must be oom@K or lost@K (K >= 1), got {value:?}"),
        };
        let (kind, at) = value.split_once('@').ok_or_else(invalid)?;
        let fault = match kind {
            "oom" => Fault::OutOfMemory,
            "lost" => Fault::Lost,
            _ => return Err(invalid()),
        };
        let at: usize = at.parse().ok().filter(|&k| k >= 1).ok_or_else(invalid)?;
        Ok(Some(Injection {
            fault,
            at,
            count: AtomicUsize::new(0),
        }))
    }
}

/// Counts a submission just made, and returns the error it is to fail with where the
/// injection says so (as an error scope would report one), and whether that error
/// loses the device.
pub(super) fn submitted(injection: &Injection) -> Option<(String, bool)> {
    let k = injection.count.fetch_add(1, Ordering::Relaxed) + 1;
    if k != injection.at {
        return None;
    }
    Some(match injection.fault {
        Fault::OutOfMemory => (
            format!("out of device memory (injected at submission {k})"),
            false,
        ),
        Fault::Lost => (format!("device lost (injected at submission {k})"), true),
    })
}
