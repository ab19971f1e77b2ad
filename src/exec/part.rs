//! Splitting a run across processes: `--part I/N`.

use crate::error::{Error, Result};

/// One of `count` processes sharing a run: `index` in `0..count` (`--part I/N`, e.g.
/// one task of a SLURM array). Not to be confused with Zarr sharding: a part is a
/// share of the jobs, not a storage unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// This process's share, from 0.
    pub index: usize,
    /// How many processes share the jobs.
    pub count: usize,
}

impl Part {
    /// The whole run in one process.
    pub const ALL: Part = Part { index: 0, count: 1 };

    /// A part, checked (`index < count`).
    pub fn new(index: usize, count: usize) -> Result<Part> {
        if count == 0 || index >= count {
            return Err(Error::InvalidParameter {
                op: "part",
                message: format!("part {index}/{count} is out of range (need 0 <= I < N)"),
            });
        }
        Ok(Part { index, count })
    }

    /// This part's jobs out of `total`: a contiguous range, so that neighbouring jobs
    /// (which share halo chunks) run in the same process.
    pub fn jobs(&self, total: usize) -> std::ops::Range<usize> {
        let start = total * self.index / self.count;
        let end = total * (self.index + 1) / self.count;
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_jobs_into_contiguous_disjoint_ranges() {
        let parts: Vec<_> = (0..3).map(|i| Part::new(i, 3).unwrap().jobs(10)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
        assert!(Part::new(3, 3).is_err());
        assert!(Part::new(0, 0).is_err());
    }
}
