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
        // In u128: `total * index` may pass u64 on a petabyte of small chunks.
        let at = |i: usize| (total as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl Part {
    /// The part a scheduler's array task runs (`--part auto`), from its environment
    /// (`var` reads a variable), and which variables said so:
    /// - SLURM: `SLURM_ARRAY_TASK_ID`, counted from `SLURM_ARRAY_TASK_MIN` (0 if
    ///   unset) in steps of `SLURM_ARRAY_TASK_STEP` (1), of `SLURM_ARRAY_TASK_COUNT`
    ///   tasks (else `(MAX - MIN) / STEP + 1`);
    /// - SGE: `SGE_TASK_ID` from `SGE_TASK_FIRST` to `SGE_TASK_LAST` in steps of
    ///   `SGE_TASK_STEPSIZE`;
    /// - Kubernetes indexed jobs: `JOB_COMPLETION_INDEX`, of `count` tasks (which
    ///   Kubernetes does not tell: `--part auto/N`).
    ///
    /// A `count` given with SLURM or SGE must agree with theirs.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if no scheduler variable is set, one is not a
    /// number, or the part is out of range.
    pub fn from_environment(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<(Part, String)> {
        let bad = |message: String| Error::InvalidParameter {
            op: "part",
            message,
        };
        let number = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.trim() == "undefined" => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| bad(format!("{name}={v} is not a task number"))),
            }
        };
        // The array task `id_var` names, if set: its tasks run from `first_var`
        // (`first` if unset) in steps of `step_var`, up to `last_var`, or `count_var`
        // of them. (index, task count if known, description).
        let task = |id_var: &str,
                    first_var: &str,
                    first: usize,
                    step_var: &str,
                    last_var: &str,
                    count_var: Option<&str>| {
            let Some(id) = number(id_var)? else {
                return Ok::<_, Error>(None);
            };
            let first = number(first_var)?.unwrap_or(first);
            let step = number(step_var)?.unwrap_or(1).max(1);
            let index = id
                .checked_sub(first)
                .ok_or_else(|| bad(format!("{id_var}={id} is below {first_var}={first}")))?
                / step;
            let count = match count_var {
                Some(v) => number(v)?,
                None => None,
            };
            let found = count.or(number(last_var)?.map(|l| l.saturating_sub(first) / step + 1));
            let how = format!("{id_var}={id} ({first_var} {first}, step {step})");
            Ok(Some((index, found, how)))
        };
        let slurm = task(
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_MIN",
            0,
            "SLURM_ARRAY_TASK_STEP",
            "SLURM_ARRAY_TASK_MAX",
            Some("SLURM_ARRAY_TASK_COUNT"),
        )?;
        let (index, found, how) = if let Some(t) = slurm {
            t
        } else if let Some(t) = task(
            "SGE_TASK_ID",
            "SGE_TASK_FIRST",
            1,
            "SGE_TASK_STEPSIZE",
            "SGE_TASK_LAST",
            None,
        )? {
            t
        } else if let Some(id) = number("JOB_COMPLETION_INDEX")? {
            (id, None, format!("JOB_COMPLETION_INDEX={id}"))
        } else {
            return Err(bad(
                "--part auto found no array task: none of SLURM_ARRAY_TASK_ID, SGE_TASK_ID or \
                 JOB_COMPLETION_INDEX is set"
                    .into(),
            ));
        };
        let total = match (found, count) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(format!(
                    "the scheduler runs {a} tasks ({how}), but --part auto/{b} says {b}"
                )));
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(bad(format!(
                    "{how} gives no task count: give it with --part auto/N"
                )));
            }
        };
        let part = Part::new(index, total)?;
        Ok((part, format!("{how}, {total} tasks")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every job of a petabyte-scale run belongs to exactly one part, for up to a
    /// million parts: the parts' ranges tile `0..total` end to end, checked by
    /// arithmetic over every part (not by running them), their sizes within one.
    #[test]
    fn every_job_is_in_exactly_one_of_a_million_parts() {
        let totals = [
            0usize,
            1,
            999_999,
            16_777_216,
            134_217_728,
            2_147_483_648,
            1 << 40,
            usize::MAX,
        ];
        for total in totals {
            for count in [1usize, 7, 1000, 1_000_000] {
                let mut end = 0;
                let (mut least, mut most) = (usize::MAX, 0);
                for index in 0..count {
                    let jobs = Part::new(index, count).unwrap().jobs(total);
                    assert_eq!(jobs.start, end, "total {total}, part {index}/{count}");
                    end = jobs.end;
                    least = least.min(jobs.len());
                    most = most.max(jobs.len());
                }
                assert_eq!(end, total, "total {total}, {count} parts");
                assert!(
                    most - least <= 1,
                    "total {total}, {count} parts: {least}..{most}"
                );
            }
        }
    }

    #[test]
    fn parts_split_jobs_into_contiguous_disjoint_ranges() {
        let parts: Vec<_> = (0..3).map(|i| Part::new(i, 3).unwrap().jobs(10)).collect();
        assert_eq!(parts, vec![0..3, 3..6, 6..10]);
        assert!(Part::new(3, 3).is_err());
        assert!(Part::new(0, 0).is_err());
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parts_come_from_the_schedulers_environment() {
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        assert_eq!(
            Part::from_environment(env(&slurm), None).unwrap().0,
            Part::new(5, 8).unwrap()
        );
        // --array=1-16:5 runs tasks 1, 6, 11, 16.
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "16"),
            ("SLURM_ARRAY_TASK_STEP", "5"),
        ];
        assert_eq!(
            Part::from_environment(env(&stepped), None).unwrap().0,
            Part::new(2, 4).unwrap()
        );
        let sge = [
            ("SGE_TASK_ID", "3"),
            ("SGE_TASK_FIRST", "1"),
            ("SGE_TASK_LAST", "4"),
        ];
        assert_eq!(
            Part::from_environment(env(&sge), None).unwrap().0,
            Part::new(2, 4).unwrap()
        );
        let k8s = [("JOB_COMPLETION_INDEX", "2")];
        assert_eq!(
            Part::from_environment(env(&k8s), Some(3)).unwrap().0,
            Part::new(2, 3).unwrap()
        );
        assert!(Part::from_environment(env(&k8s), None).is_err());
        assert!(Part::from_environment(env(&slurm), Some(4)).is_err());
        assert!(Part::from_environment(env(&[("SGE_TASK_ID", "undefined")]), Some(2)).is_err());
        assert!(Part::from_environment(env(&[]), Some(2)).is_err());
        assert!(Part::from_environment(env(&[("SLURM_ARRAY_TASK_ID", "x")]), None).is_err());
    }
}
