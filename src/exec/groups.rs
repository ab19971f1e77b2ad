//! A run's jobs grouped by the sink's write unit (a shard), by index arithmetic over the
//! block grid: nothing is stored per job, so a part of a billion-job array is planned
//! in memory that grows with the part, not the array.

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::region::{Grid, unravel};

/// The jobs of a plan grouped by a write unit: without a unit every job is its own
/// group; with one (a shard), the jobs whose blocks lie in one unit form a group, units
/// in C order, the jobs of each in ascending order (C order of the block grid).
#[derive(Clone, Debug)]
pub struct JobGroups {
    /// The plan's block grid (a job per block).
    blocks: Grid,
    /// The unit grid, when jobs are grouped by unit.
    units: Option<Grid>,
}

impl JobGroups {
    /// The jobs of `plan` grouped by `unit` (none: one job a group).
    ///
    /// # Errors
    /// [`Error::BlockNotAligned`] if a job's block straddles two units.
    pub fn new(plan: &Plan, unit: Option<&[usize]>) -> Result<JobGroups> {
        JobGroups::of_blocks(plan.output_shape(), plan.block_shape(), unit)
    }

    /// The blocks of `block` over an output of `shape` grouped by `unit`.
    fn of_blocks(shape: &[usize], block: &[usize], unit: Option<&[usize]>) -> Result<JobGroups> {
        let blocks = Grid::new(shape, block)?;
        let Some(unit) = unit else {
            return Ok(JobGroups {
                blocks,
                units: None,
            });
        };
        if let Some(axis) =
            (0..block.len()).find(|&a| !unit[a].is_multiple_of(block[a]) && unit[a] < shape[a])
        {
            return Err(Error::BlockNotAligned {
                block: block.to_vec(),
                chunk: unit.to_vec(),
                axis,
            });
        }
        Ok(JobGroups {
            blocks,
            units: Some(Grid::new(shape, unit)?),
        })
    }

    /// The number of groups.
    pub fn len(&self) -> usize {
        self.units.as_ref().unwrap_or(&self.blocks).num_chunks()
    }

    /// Whether there is no group (an empty output).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The jobs of group `g`, ascending.
    pub fn jobs(&self, g: usize) -> impl Iterator<Item = usize> + '_ {
        // Per axis, the blocks of the group's unit: [lo, hi).
        let grid = self.blocks.grid_shape();
        let bounds: Vec<(usize, usize)> = match &self.units {
            None => unravel(g, &grid).into_iter().map(|b| (b, b + 1)).collect(),
            Some(units) => {
                let at = unravel(g, &units.grid_shape());
                (0..grid.len())
                    .map(|a| {
                        let (us, bs) = (
                            units.chunk_shape()[a] as u128,
                            self.blocks.chunk_shape()[a] as u128,
                        );
                        let edge = |u: u128| ((u * us).div_ceil(bs)).min(grid[a] as u128) as usize;
                        (edge(at[a] as u128), edge(at[a] as u128 + 1))
                    })
                    .collect()
            }
        };
        BoxIndices::new(bounds, grid)
    }

    /// The jobs of the groups `groups` (a part's), group by group.
    pub fn jobs_of(&self, groups: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        groups.flat_map(move |g| self.jobs(g))
    }

    /// The number of jobs in the groups `groups`.
    pub fn count(&self, groups: std::ops::Range<usize>) -> usize {
        match &self.units {
            None => groups.len(),
            Some(_) => groups.map(|g| self.jobs(g).count()).sum(),
        }
    }
}

/// The C-order indices (over a grid of `grid` extents) of the box `bounds`, ascending.
struct BoxIndices {
    bounds: Vec<(usize, usize)>,
    grid: Vec<usize>,
    /// The next multi-index, `None` once done.
    next: Option<Vec<usize>>,
}

impl BoxIndices {
    fn new(bounds: Vec<(usize, usize)>, grid: Vec<usize>) -> BoxIndices {
        let empty = bounds.iter().any(|&(lo, hi)| lo >= hi);
        let next = (!empty).then(|| bounds.iter().map(|&(lo, _)| lo).collect());
        BoxIndices { bounds, grid, next }
    }
}

impl Iterator for BoxIndices {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let at = self.next.as_mut()?;
        let index = at
            .iter()
            .zip(&self.grid)
            .fold(0usize, |i, (&x, &n)| i * n + x);
        // Advance: the last axis fastest.
        let mut a = at.len();
        loop {
            if a == 0 {
                self.next = None;
                break;
            }
            a -= 1;
            at[a] += 1;
            if at[a] < self.bounds[a].1 {
                break;
            }
            at[a] = self.bounds[a].0;
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Grid;

    /// The groups as a list of every job's unit, as the executor once built them.
    fn listed(shape: &[usize], block: &[usize], unit: &[usize]) -> Vec<Vec<usize>> {
        let blocks = Grid::new(shape, block).unwrap();
        let units = Grid::new(shape, unit).unwrap();
        let mut groups = vec![Vec::new(); units.num_chunks()];
        for i in 0..blocks.num_chunks() {
            let at: Vec<usize> = unravel(i, &blocks.grid_shape())
                .iter()
                .zip(block.iter().zip(unit))
                .map(|(&b, (&bs, &us))| b * bs / us)
                .collect();
            groups[units.ravel(&at)].push(i);
        }
        groups
    }

    #[test]
    fn groups_by_arithmetic_equal_the_listed_groups() {
        let cases: [(&[usize], &[usize], &[usize]); 6] = [
            (&[10, 9, 7], &[2, 3, 7], &[4, 9, 7]),
            (&[10, 9, 7], &[2, 3, 2], &[6, 3, 8]),
            (&[5], &[1], &[5]),
            (&[33, 17], &[4, 4], &[8, 40]),
            (&[3, 1, 64], &[1, 1, 16], &[3, 1, 32]),
            (&[], &[], &[]),
        ];
        for (shape, block, unit) in cases {
            let groups = JobGroups::of_blocks(shape, block, Some(unit)).unwrap();
            let want = listed(shape, block, unit);
            assert_eq!(groups.len(), want.len(), "{shape:?} {block:?} {unit:?}");
            for (g, jobs) in want.iter().enumerate() {
                assert_eq!(&groups.jobs(g).collect::<Vec<_>>(), jobs, "group {g}");
            }
            let all: Vec<usize> = groups.jobs_of(0..groups.len()).collect();
            assert_eq!(all, want.concat());
            assert_eq!(groups.count(1..groups.len()), want[1..].concat().len());
            let single = JobGroups::of_blocks(shape, block, None).unwrap();
            let n = Grid::new(shape, block).unwrap().num_chunks();
            assert_eq!(single.len(), n);
            assert_eq!(
                single.jobs_of(0..n).collect::<Vec<_>>(),
                (0..n).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_unit_that_cuts_a_block_is_refused() {
        assert!(matches!(
            JobGroups::of_blocks(&[10, 10], &[4, 5], Some(&[6, 5])),
            Err(Error::BlockNotAligned { axis: 0, .. })
        ));
    }
}
