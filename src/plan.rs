//! The planner: output blocks (whole numbers of output chunks) and, for each, the input
//! every stage needs, mapped backwards through the chain, halo included.
//! (Layer: the planner; see the layer map in `docs/ARCHITECTURE.md`.)

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::Pipeline;
use crate::region::{AxisSet, Grid, Region, unravel};
use crate::stage::Stage;

/// A pipeline planned over an input array of a given shape and element type.
#[derive(Clone, Debug)]
pub struct Plan {
    stages: Vec<Stage>,
    /// Array shape before each stage, then the output shape.
    shapes: Vec<Vec<usize>>,
    /// Element type before each stage, then the output type.
    dtypes: Vec<DType>,
    out_chunk: Vec<usize>,
    blocks: Grid,
}

/// One unit of work: an output block and the input footprint that produces it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Position in the plan's C-order job list.
    pub index: usize,
    /// The output block (a whole number of output chunks, clipped at the array's edge).
    pub output: Region,
    /// Per stage, the indices of that stage's input array it needs; last, the output.
    /// `sets[0]` is the job's input footprint.
    pub sets: Vec<Vec<AxisSet>>,
}

impl Plan {
    /// Plans `pipeline` over an input of `shape` and `dtype`, writing an output chunked
    /// by `out_chunk`, one job per output block of `block` elements.
    ///
    /// Every block extent must be a multiple of the output chunk extent (or cover the
    /// whole axis), so that no two jobs ever write one chunk.
    pub fn new(
        pipeline: &Pipeline,
        shape: &[usize],
        dtype: DType,
        out_chunk: &[usize],
        block: &[usize],
    ) -> Result<Plan> {
        let mut stages = pipeline.stages(shape.len())?;
        if stages.is_empty() {
            // An empty pipeline copies its input.
            stages.push(Stage::Cast(dtype));
        }
        if shape.contains(&0) {
            return Err(Error::Shape(format!("the input shape {shape:?} is empty")));
        }
        let mut shapes = vec![shape.to_vec()];
        let mut dtypes = vec![dtype];
        for st in &stages {
            shapes.push(st.out_shape(shapes.last().expect("non-empty")));
            dtypes.push(st.out_dtype(*dtypes.last().expect("non-empty")));
        }
        let out_shape = shapes.last().expect("non-empty").clone();
        let chunk_grid = Grid::new(&out_shape, out_chunk)?;
        let blocks = Grid::new(&out_shape, block)?;
        if let Some(axis) = (0..block.len())
            .find(|&a| !block[a].is_multiple_of(out_chunk[a]) && block[a] < out_shape[a])
        {
            return Err(Error::BlockNotAligned {
                block: block.to_vec(),
                chunk: chunk_grid.chunk_shape().to_vec(),
                axis,
            });
        }
        Ok(Plan {
            stages,
            shapes,
            dtypes,
            out_chunk: out_chunk.to_vec(),
            blocks,
        })
    }

    /// The input array's shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.shapes[0]
    }

    /// The output array's shape.
    pub fn output_shape(&self) -> &[usize] {
        self.shapes.last().expect("non-empty")
    }

    /// The input element type.
    pub fn input_dtype(&self) -> DType {
        self.dtypes[0]
    }

    /// The output element type.
    pub fn output_dtype(&self) -> DType {
        *self.dtypes.last().expect("non-empty")
    }

    /// The output chunk shape.
    pub fn output_chunk(&self) -> &[usize] {
        &self.out_chunk
    }

    /// The output block shape (one job each).
    pub fn block_shape(&self) -> &[usize] {
        self.blocks.chunk_shape()
    }

    /// Number of jobs.
    pub fn num_jobs(&self) -> usize {
        self.blocks.num_chunks()
    }

    /// The stages the pipeline lowered to.
    pub(crate) fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Array shape before stage `k` (`k = stages().len()` gives the output shape).
    pub(crate) fn shape_at(&self, k: usize) -> &[usize] {
        &self.shapes[k]
    }

    /// Element type before stage `k` (`k = stages().len()` gives the output type).
    pub(crate) fn dtype_at(&self, k: usize) -> DType {
        self.dtypes[k]
    }

    /// Per stage, the input indices that the output `region` (any box inside the
    /// output array) needs; last, the region's own sets. What [`Plan::job`] computes
    /// for a whole block, for any part of one.
    pub(crate) fn sets_for(&self, region: &Region) -> Vec<Vec<AxisSet>> {
        let mut sets = vec![region.sets()];
        for (k, st) in self.stages.iter().enumerate().rev() {
            let needed = st.input_sets(sets.last().expect("non-empty"), &self.shapes[k]);
            sets.push(needed);
        }
        sets.reverse();
        sets
    }

    /// The job at `index` (C order over the output blocks).
    pub fn job(&self, index: usize) -> Job {
        let grid = self.blocks.grid_shape();
        let output = self.blocks.chunk_region(&unravel(index, &grid));
        let sets = self.sets_for(&output);
        Job {
            index,
            output,
            sets,
        }
    }

    /// All jobs in C order.
    pub fn jobs(&self) -> impl Iterator<Item = Job> + '_ {
        (0..self.num_jobs()).map(|i| self.job(i))
    }

    /// For each stencil stage of `job`, the padding each side of every axis that its
    /// input needs beyond the array's edge (zero for other stages and inner jobs).
    pub fn edge_padding(&self, job: &Job) -> Vec<Vec<(usize, usize)>> {
        self.stages
            .iter()
            .enumerate()
            .map(|(k, st)| st.edge_padding(&job.sets[k + 1], &self.shapes[k]))
            .collect()
    }
}

impl Job {
    /// The input indices the job reads, per axis.
    pub fn footprint(&self) -> &[AxisSet] {
        &self.sets[0]
    }

    /// The smallest box holding the footprint (what a reader fetches when the
    /// footprint is one box, which it is unless `wrap` reaches across the array).
    pub fn footprint_bounds(&self) -> Region {
        Region::bounding(&self.sets[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::Boundary;
    use crate::ops::Op;
    use crate::stage::DownMethod;

    #[test]
    fn blocks_must_be_whole_chunks() {
        let p = Pipeline::from(Op::gaussian(&[1.0]));
        let err = Plan::new(&p, &[100, 50], DType::F32, &[10, 10], &[15, 10]).unwrap_err();
        assert!(matches!(err, Error::BlockNotAligned { axis: 0, .. }));
        // A block covering a whole axis is fine even if not a multiple.
        assert!(Plan::new(&p, &[100, 50], DType::F32, &[10, 10], &[20, 64]).is_ok());
        assert!(Plan::new(&p, &[100, 50], DType::F32, &[10, 0], &[20, 50]).is_err());
    }

    #[test]
    fn gaussian_footprint_is_the_block_grown_by_the_radius_and_clamped() {
        let p = Pipeline::from(Op::gaussian(&[1.0, 0.0]));
        let plan = Plan::new(&p, &[100, 50], DType::F32, &[10, 10], &[10, 50]).unwrap();
        assert_eq!(plan.num_jobs(), 10);
        let job = plan.job(3);
        assert_eq!(job.output, Region::new(vec![30, 0], vec![10, 50]));
        // radius int(4 * 1 + 0.5) = 4
        assert_eq!(
            job.footprint_bounds(),
            Region::new(vec![26, 0], vec![18, 50])
        );
        let first = plan.job(0);
        assert_eq!(
            first.footprint_bounds(),
            Region::new(vec![0, 0], vec![14, 50])
        );
        assert_eq!(plan.edge_padding(&first), vec![vec![(4, 0), (0, 0)]]);
    }

    #[test]
    fn chains_are_planned_backwards() {
        // gaussian (radius 2) then downsample by 2: output block 0..5 needs 0..10 of
        // the smoothed array, hence 0..12 of the input.
        let p = Pipeline::new(vec![
            Op::gaussian(&[0.5]).with_mode(Boundary::Nearest, 0.0),
            Op::downsample(&[2], DownMethod::Max),
        ]);
        let plan = Plan::new(&p, &[40], DType::U16, &[5], &[5]).unwrap();
        assert_eq!(plan.output_shape(), &[20]);
        assert_eq!(plan.output_dtype(), DType::F32);
        let job = plan.job(1);
        assert_eq!(job.sets[2][0], AxisSet::from_range(5..10));
        assert_eq!(job.sets[1][0], AxisSet::from_range(10..20));
        assert_eq!(job.sets[0][0], AxisSet::from_range(8..22));
    }
}
