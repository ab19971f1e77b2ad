//! The dispatch vocabulary, a leaf of the GPU backend: per-axis padding to the shaders'
//! five axes, buffer sizes, and [`Dispatch`], one kernel launch with its parameters,
//! tables and grid. The kernel modules (`pointwise`, `stencil`, `resample`) build
//! dispatches; `segment` encodes them.

use crate::dtype::DType;
use crate::region::AxisSet;

pub(super) use super::shader::{AXES, WORKGROUP};
use super::shader::{Fused, Shader};

/// Outputs each invocation of a row-shaped grid computes along its row, at least: the
/// work of finding its row is shared by them.
const ROW_STEPS: u32 = 4;

/// Five per-axis values, as the shaders' `array<u32, 5>`.
pub(super) fn axes(values: impl Iterator<Item = usize>) -> [u32; AXES] {
    let values: Vec<u32> = values.map(|v| v as u32).collect();
    values.try_into().expect("five axes")
}

/// The mask of the axes whose extent in `values` is above 1 (bit `a` for axis `a`):
/// kernels get it in `METHOD`, so that loops over the other axes fold away.
pub(super) fn axes_above_one(values: &[usize]) -> u32 {
    (0..values.len())
        .filter(|&a| values[a] > 1)
        .fold(0u32, |m, a| m | 1 << a)
}

/// `values` with `fill` prepended up to [`AXES`] entries.
pub(super) fn pad<T: Clone>(values: &[T], fill: T) -> Vec<T> {
    let mut out = vec![fill; AXES - values.len()];
    out.extend_from_slice(values);
    out
}

/// Index sets padded to [`AXES`] axes with leading `{0}` sets.
pub(super) fn pad_sets(sets: &[AxisSet]) -> Vec<AxisSet> {
    pad(sets, AxisSet::from_range(0..1))
}

/// Bytes of `n` elements of `d` on the device, rounded up to whole 32-bit words.
pub(super) fn device_bytes(n: usize, d: DType) -> u64 {
    ((n * d.size()) as u64).next_multiple_of(4)
}

/// The number of indices a list of index sets spans.
pub(super) fn len(sets: &[AxisSet]) -> usize {
    sets.iter().map(AxisSet::len).product()
}

/// One kernel launch: which kernel, its parameter struct's bytes, its tables.
pub(super) struct Dispatch {
    pub(super) kernel: Shader,
    /// A method compiled into the pipeline as the constant `METHOD`.
    pub(super) method: u32,
    pub(super) params: Vec<u8>,
    pub(super) tables: Vec<u32>,
    /// Output elements.
    pub(super) count: u32,
    /// The grid: `None`, one invocation per output word over a flat index; or
    /// `(row length, rows)`, x along the last axis and one workgroup row per row.
    rows: Option<(u32, u32)>,
    /// Values compiled into the pipeline's code (see [`super::shader::source`]).
    pub(super) compiled_in: Vec<u32>,
    /// Pointwise stages fused into this launch's store (stencils only).
    pub(super) fused: Vec<Fused>,
}

impl Dispatch {
    /// A launch of `kernel` over `count` outputs with these parameters and tables.
    pub(super) fn new<P: bytemuck::Pod>(
        kernel: Shader,
        params: &P,
        tables: Vec<u32>,
        count: u32,
    ) -> Self {
        Dispatch {
            kernel,
            method: 0,
            params: bytemuck::bytes_of(params).to_vec(),
            tables,
            count,
            rows: None,
            compiled_in: Vec::new(),
            fused: Vec::new(),
        }
    }

    /// The same launch with `fused` applied before its store, writing elements of
    /// `output`: packed outputs (u8/u16, i8/i16) are written a word at a time, on a
    /// flat grid.
    pub(super) fn with_fused(mut self, fused: Vec<Fused>, output: DType) -> Self {
        self.fused = fused;
        if output.size() < 4 {
            self.rows = None;
        }
        self
    }

    /// The same launch with `values` compiled into the pipeline's code.
    pub(super) fn with_compiled_in(mut self, values: Vec<u32>) -> Self {
        self.compiled_in = values;
        self
    }

    /// The same launch on a grid shaped like the output: `rows` rows of `row`
    /// elements (the kernel's `main` reads its row from the workgroup's y and z).
    pub(super) fn with_rows(mut self, row: u32, rows: u32) -> Self {
        self.rows = Some((row, rows));
        self
    }

    /// The same launch with `METHOD = method` compiled in.
    pub(super) fn with_method(mut self, method: u32) -> Self {
        self.method = method;
        self
    }

    /// The workgroups to launch writing `output` elements, with at most `max` per
    /// dimension: one invocation per output word on a flat grid (x, then y), or on a
    /// row-shaped grid x along the row (the kernel loops past `max` groups) and one
    /// workgroup row per row on y, then z.
    pub(super) fn grid(&self, output: DType, max: u32) -> [u32; 3] {
        match self.rows {
            None => {
                let per_word = (4 / output.size()) as u32;
                let groups = self.count.div_ceil(per_word).div_ceil(WORKGROUP).max(1);
                let x = groups.min(max);
                [x, groups.div_ceil(x), 1]
            }
            Some((row, rows)) => {
                let x = row.div_ceil(WORKGROUP * ROW_STEPS).clamp(1, max);
                let y = rows.clamp(1, max);
                [x, y, rows.div_ceil(y).max(1)]
            }
        }
    }
}
