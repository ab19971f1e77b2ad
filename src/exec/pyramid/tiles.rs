//! A pyramid's tiles: each level's shape and step plan, the region a tile owns at
//! every level, what it must read, and whether tiles fit the memory budget.

use super::pieces::{Levels, OnePassPyramid, hull, union};
use crate::error::Result;
use crate::plan::Plan;
use crate::region::{Grid, Region};

impl OnePassPyramid<'_> {
    /// Each level's shape and the plan of the step from the level before (none for
    /// level 0).
    pub(super) fn plans(&self) -> Result<Levels> {
        let mut shapes = vec![self.source.shape().to_vec()];
        let mut dtype = self.source.dtype();
        let mut plans = vec![None];
        for k in 1..self.sinks.len() {
            let plan = Plan::new(
                &self.step,
                &shapes[k - 1],
                dtype,
                &self.chunks[k],
                &self.chunks[k],
            )?;
            shapes.push(plan.output_shape().to_vec());
            dtype = plan.output_dtype();
            plans.push(Some(plan));
        }
        Ok((shapes, plans))
    }

    /// Per level, the region a tile owns: its chunk of the coarsest level `top`, and at
    /// each finer level the windows that chunk comes from (scaled by the factor,
    /// clipped to the level).
    pub(super) fn owned(&self, shapes: &[Vec<usize>], top: &Region) -> Vec<Region> {
        let levels = self.sinks.len();
        let mut owned = vec![top.clone(); levels];
        for k in (0..levels - 1).rev() {
            let coarse = &owned[k + 1];
            let (start, shape) = (0..coarse.ndim())
                .map(|a| {
                    let f = self.factor[a];
                    let start = (coarse.start[a] * f).min(shapes[k][a]);
                    let end = ((coarse.start[a] + coarse.shape[a]) * f).min(shapes[k][a]);
                    (start, end - start)
                })
                .unzip();
            owned[k] = Region { start, shape };
        }
        owned
    }

    /// Whether every tile owns whole chunks at every level (each chunk-aligned, ending
    /// on a chunk boundary or the level's edge).
    pub(super) fn aligned(&self, shapes: &[Vec<usize>], grid: &Grid) -> bool {
        (0..grid.num_chunks()).all(|t| {
            let top = grid.chunk_region(&crate::region::unravel(t, &grid.grid_shape()));
            self.owned(shapes, &top).iter().enumerate().all(|(k, r)| {
                (0..r.ndim()).all(|a| {
                    let c = self.chunks[k][a];
                    let end = r.start[a] + r.shape[a];
                    r.start[a].is_multiple_of(c) && (end.is_multiple_of(c) || end == shapes[k][a])
                })
            })
        })
    }

    /// The bytes a tile holds at once at most, estimated on the first tile, the
    /// largest: every level's block from level 1 on, and of level 0 what streaming it
    /// holds (a slab of chunk rows, and the rows one level-1 row reads: the window of
    /// [`OnePassPyramid::stream_rows`]; the piece path holds less).
    pub(super) fn tile_bytes(
        &self,
        shapes: &[Vec<usize>],
        plans: &[Option<Plan>],
        top: &Region,
    ) -> u64 {
        let needs = self.needs(plans, &self.owned(shapes, top));
        let size = self.source.dtype().size().max(4) as u64;
        let level0 = &needs[0];
        let footprint = match (plans.get(1).and_then(Option::as_ref), needs.get(1)) {
            (Some(plan), Some(level1)) if !level1.is_empty() => {
                let mut row = level1.clone();
                row.shape[0] = 1;
                plan.sets_for(&row)[0][0].bounds().len()
            }
            _ => 0,
        };
        let rows = (self.chunks[0][0] + footprint).min(level0.shape[0]);
        let window = (rows * level0.shape[1..].iter().product::<usize>()) as u64 * size;
        window
            + needs[1..]
                .iter()
                .map(|r| r.len() as u64 * size)
                .sum::<u64>()
    }

    /// Per level, the region to compute: what it owns, and what the next level's
    /// step reads from it.
    pub(super) fn needs(&self, plans: &[Option<Plan>], owned: &[Region]) -> Vec<Region> {
        let levels = owned.len();
        let mut needs = owned.to_vec();
        for k in (0..levels - 1).rev() {
            let plan = plans[k + 1].as_ref().expect("a step");
            let sets = plan.sets_for(&needs[k + 1]);
            needs[k] = union(&owned[k], &hull(&sets[0]));
        }
        needs
    }
}
