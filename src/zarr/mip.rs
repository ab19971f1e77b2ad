//! Maximum-intensity projections of a run's output along each of its last three axes
//! ([`Options::mip`](super::Options::mip), `deskew --mip`), computed in the same pass:
//! every block the run writes is also reduced along each axis and folded into the
//! projections' chunks, and a projection's chunk is written as soon as every output
//! chunk along its axis has been folded into it.
//!
//! Chunks the run did not compute (found written when resuming, or written by the
//! other parts of an array job) are read back from the output afterwards, so the
//! projections are whole whenever the output is: a resumed run, and the last part of
//! an array job to finish, complete them. Until then, the projection chunks still
//! waiting for other parts are not written, and the report says so.
//!
//! Memory: a projection chunk is held from its first fold to its last. Jobs run in C
//! order, so at most about one plane of the output (the projection along its first
//! axis of the three) is held at once, beside the run's own budget.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::block::{Block, BlockAny, Placed, box_rows};
use crate::dtype::{DType, Element, match_any, with_dtype};
use crate::error::{Error, Result};
use crate::exec::{MipReport, Sink};
use crate::region::{Grid, Region};
use crate::store::{Input, Output, OutputSpec};
use crate::workers::{Workers, for_each_job};

/// The projections of one run's output, filled as its blocks are written.
pub(crate) struct Mips {
    path: PathBuf,
    /// The output's chunk grid.
    grid: Grid,
    dtype: DType,
    projections: Vec<Projection>,
}

/// The maximum along one axis of the output.
struct Projection {
    axis: usize,
    name: String,
    output: Output,
    /// The projection's chunk grid: the output's without `axis`.
    grid: Grid,
    /// Chunks folded into so far and not yet written, by chunk index.
    pending: Mutex<HashMap<Vec<usize>, Pending>>,
}

/// A projection chunk being filled.
struct Pending {
    /// The maximum so far, C order over the chunk's region.
    max: Vec<f64>,
    /// Per output chunk along the projection's axis: whether it is folded in.
    folded: Vec<bool>,
    /// Output chunks along the axis still to fold.
    left: usize,
}

/// The default place of an output's projections: beside it, `NAME_mip.zarr` for an
/// output `NAME.zarr` (or `NAME.ome.zarr`, or `NAME`).
pub fn default_mip_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".zarr")
        .map(|s| s.strip_suffix(".ome").unwrap_or(s))
        .unwrap_or(&name);
    output.with_file_name(format!("{stem}_mip.zarr"))
}

impl Mips {
    /// Creates (or reopens, when resuming) the projections of an output of `spec` in a
    /// Zarr group at `path`: along each of the last three axes (two for 2-D output),
    /// named after the axes (`names`, or `z`, `y`, `x`), each chunked as the output is
    /// without that axis.
    pub(crate) fn create(
        path: &Path,
        spec: &OutputSpec,
        names: Option<&[String]>,
        overwrite: bool,
    ) -> Result<Mips> {
        let ndim = spec.shape.len();
        if ndim < 2 {
            return Err(Error::InvalidParameter {
                op: "mip",
                message: format!("projections need an output of 2 or more axes, not {ndim}"),
            });
        }
        let names: Vec<String> = match names {
            Some(n) => n.to_vec(),
            None => (0..ndim)
                .map(|a| match ndim - a {
                    1 => "x".to_string(),
                    2 => "y".to_string(),
                    3 => "z".to_string(),
                    _ => format!("axis{a}"),
                })
                .collect(),
        };
        crate::store::write_group(path, spec.zarr_format, serde_json::Map::new())?;
        let projections = (ndim.saturating_sub(3)..ndim)
            .map(|axis| {
                let drop = |v: &[usize]| {
                    let mut v = v.to_vec();
                    v.remove(axis);
                    v
                };
                let mut dims = names.clone();
                dims.remove(axis);
                // The output's own record (its pipeline) too: projections of another
                // computation are refused when resuming, not mixed in.
                let mut attributes = serde_json::Map::new();
                attributes.insert(
                    "haloflow".into(),
                    serde_json::json!({
                        "maximum_along": names[axis],
                        "axis": axis,
                        "of": spec.attributes.get("haloflow"),
                    }),
                );
                let mip = OutputSpec::new(&drop(&spec.shape), spec.dtype, &drop(&spec.chunk))
                    .with_zarr_format(spec.zarr_format)
                    .with_compression(spec.compression)
                    .with_dimension_names(dims)
                    .with_attributes(attributes);
                let output = Output::create(&path.join(&names[axis]), &mip, overwrite)?;
                Ok(Projection {
                    axis,
                    name: names[axis].clone(),
                    grid: Grid::new(&mip.shape, &mip.chunk)?,
                    output,
                    pending: Mutex::new(HashMap::new()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mips {
            path: path.to_path_buf(),
            grid: Grid::new(&spec.shape, &spec.chunk)?,
            dtype: spec.dtype,
            projections,
        })
    }

    /// Folds `block`, dense over `region` (whole output chunks), into every projection,
    /// writing the projection chunks it completes.
    pub(crate) fn fold(&self, region: &Region, block: &BlockAny<'_>) -> Result<()> {
        for p in &self.projections {
            let reduced =
                match_any!(block, BlockAny, b => max_along(&b.data, &region.shape, p.axis));
            p.fold(&self.grid, region, &reduced, self.dtype)?;
        }
        Ok(())
    }

    /// Completes the projections after the run: folds in the output chunks the run
    /// did not compute, read back from `output` on `threads` threads, where every one
    /// of them is written; otherwise leaves the projection chunks that wait for them.
    pub(crate) fn finish(&self, output: &Output, threads: usize) -> Result<MipReport> {
        // The output chunks some unwritten projection chunk still lacks, in C order
        // (whether a projection chunk is written is asked of the store once).
        let mut wanted = Vec::new();
        let mut written = vec![HashMap::new(); self.projections.len()];
        let grid_shape = self.grid.grid_shape();
        for index in (0..self.grid.num_chunks()).map(|i| crate::region::unravel(i, &grid_shape)) {
            let mut needed = false;
            for (p, written) in self.projections.iter().zip(&mut written) {
                needed |= p.lacks(&index, written)?;
            }
            if needed {
                wanted.push(index);
            }
        }
        let mut complete = true;
        let mut readable = Vec::with_capacity(wanted.len());
        for index in wanted {
            let region = self.grid.chunk_region(&index);
            if output.region_done(&region)? {
                readable.push(region);
            } else {
                complete = false;
            }
        }
        let read_back = AtomicUsize::new(0);
        if complete && !readable.is_empty() {
            let input = Input::open(output.path())?;
            for_each_job(Workers::Threads(threads.max(1)), readable.len(), |i| {
                let block = input.read_region(&readable[i])?;
                self.fold(&readable[i], &block)?;
                read_back.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })?;
        }
        for p in &self.projections {
            p.output.flush()?;
        }
        Ok(MipReport {
            path: self.path.clone(),
            arrays: self.projections.iter().map(|p| p.name.clone()).collect(),
            complete,
            chunks_read_back: read_back.into_inner(),
        })
    }
}

impl Projection {
    /// The projection chunk index and the index along the axis of output chunk `index`.
    fn split(&self, index: &[usize]) -> (Vec<usize>, usize) {
        let mut k = index.to_vec();
        let along = k.remove(self.axis);
        (k, along)
    }

    /// Whether this projection still needs output chunk `index`: its projection chunk
    /// is neither written (by this run or an earlier one: `written` remembers what the
    /// store said) nor has it folded in.
    fn lacks(&self, index: &[usize], written: &mut HashMap<Vec<usize>, bool>) -> Result<bool> {
        let (k, along) = self.split(index);
        if let Some(p) = self.lock().get(&k) {
            return Ok(!p.folded[along]);
        }
        if let Some(&done) = written.get(&k) {
            return Ok(!done);
        }
        let done = self.output.region_done(&self.grid.chunk_region(&k))?;
        written.insert(k, done);
        Ok(!done)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<usize>, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Folds `reduced`, the maximum along the axis of a block over `region` of the
    /// output (`grid`), into the projection chunks it covers.
    fn fold(&self, grid: &Grid, region: &Region, reduced: &[f64], dtype: DType) -> Result<()> {
        let a = self.axis;
        let chunk = grid.chunk_shape()[a];
        let along = region.start[a] / chunk..(region.start[a] + region.shape[a]).div_ceil(chunk);
        let covered = region.without_axis(a);
        let n_along = grid.grid_shape()[a];
        let mut done = Vec::new();
        {
            let mut pending = self.lock();
            for k in self.grid.chunks_touching(&covered.sets()) {
                let target = self.grid.chunk_region(&k);
                let p = pending.entry(k.clone()).or_insert_with(|| Pending {
                    max: vec![f64::NEG_INFINITY; target.len()],
                    folded: vec![false; n_along],
                    left: n_along,
                });
                merge(&mut p.max, &target, reduced, &covered);
                for i in along.clone() {
                    if !std::mem::replace(&mut p.folded[i], true) {
                        p.left -= 1;
                    }
                }
                if p.left == 0 {
                    let p = pending.remove(&k).expect("just folded");
                    done.push((target, p.max));
                }
            }
        }
        for (target, max) in done {
            let block = with_dtype!(dtype, T => Block::<T>::new(
                target.sets(),
                Cow::Owned(max.iter().map(|&v| T::from_f64(v)).collect()),
            )
            .into_any());
            self.output.write(&target, &block)?;
        }
        Ok(())
    }
}

/// The maximum of `data` (C order over `lens`) along `axis`, NaN propagating as in
/// NumPy's `max`.
fn max_along<T: Element>(data: &[T], lens: &[usize], axis: usize) -> Vec<f64> {
    let n = lens[axis];
    let inner: usize = lens[axis + 1..].iter().product();
    let outer: usize = lens[..axis].iter().product();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        let slab = &data[o * n * inner..(o + 1) * n * inner];
        let mut m: Vec<T> = slab[..inner].to_vec();
        for row in slab.chunks_exact(inner).skip(1) {
            for (m, &v) in m.iter_mut().zip(row) {
                // `v != v` only for NaN: once NaN, the maximum stays NaN.
                #[allow(clippy::eq_op)]
                if v > *m || v != v {
                    *m = v;
                }
            }
        }
        out.extend(m.iter().map(|v| v.to_f64()));
    }
    out
}

/// Folds the part of `values` (dense over `from`) inside `into` into `max` (dense
/// over `into`), element by element, NaN propagating.
fn merge(max: &mut [f64], into: &Region, values: &[f64], from: &Region) {
    let both = into.intersect(from);
    let origin =
        |r: &Region| -> Vec<usize> { (0..r.ndim()).map(|d| both.start[d] - r.start[d]).collect() };
    let (at_from, at_into) = (origin(from), origin(into));
    box_rows(
        &both.shape,
        Placed::at(&from.shape, &at_from),
        Placed::at(&into.shape, &at_into),
        |f, i, n| {
            for (m, &v) in max[i..i + n].iter_mut().zip(&values[f..f + n]) {
                if v > *m || v.is_nan() {
                    *m = v;
                }
            }
        },
    );
}

/// A sink that also folds every block it stores into the projections.
pub(crate) struct Folding<'a> {
    /// Where the blocks go.
    pub sink: &'a dyn Sink,
    /// The projections they are folded into.
    pub mips: &'a Mips,
}

impl Sink for Folding<'_> {
    fn write(&self, region: &Region, block: &BlockAny<'_>) -> Result<()> {
        self.sink.write(region, block)?;
        self.mips.fold(region, block)
    }

    fn region_done(&self, region: &Region) -> Result<bool> {
        self.sink.region_done(region)
    }

    fn flush(&self) -> Result<()> {
        self.sink.flush()
    }

    fn write_unit(&self) -> Option<Vec<usize>> {
        self.sink.write_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_along_each_axis_equals_a_direct_maximum() {
        let lens = [3, 4, 5];
        let data: Vec<f32> = (0..60).map(|i| ((i * 37) % 23) as f32).collect();
        let at = |z: usize, y: usize, x: usize| data[(z * 4 + y) * 5 + x] as f64;
        let z = max_along(&data, &lens, 0);
        let y = max_along(&data, &lens, 1);
        let x = max_along(&data, &lens, 2);
        for a in 0..4 {
            for b in 0..5 {
                assert_eq!(
                    z[a * 5 + b],
                    (0..3).map(|i| at(i, a, b)).fold(f64::MIN, f64::max)
                );
            }
        }
        for a in 0..3 {
            for b in 0..5 {
                assert_eq!(
                    y[a * 5 + b],
                    (0..4).map(|i| at(a, i, b)).fold(f64::MIN, f64::max)
                );
            }
            for b in 0..4 {
                assert_eq!(
                    x[a * 4 + b],
                    (0..5).map(|i| at(a, b, i)).fold(f64::MIN, f64::max)
                );
            }
        }
    }

    #[test]
    fn nan_propagates_as_in_numpy() {
        let data = [1.0f32, f32::NAN, 3.0, 2.0];
        assert!(max_along(&data, &[4], 0)[0].is_nan());
        let mut max = vec![f64::NEG_INFINITY; 2];
        let r = Region::new(vec![0], vec![2]);
        merge(&mut max, &r, &[f64::NAN, 1.0], &r);
        merge(&mut max, &r, &[5.0, 2.0], &r);
        assert!(max[0].is_nan());
        assert_eq!(max[1], 2.0);
    }

    #[test]
    fn the_default_path_sits_beside_the_output() {
        assert_eq!(
            default_mip_path(Path::new("/d/cell.ome.zarr")),
            Path::new("/d/cell_mip.zarr")
        );
        assert_eq!(
            default_mip_path(Path::new("/d/out.zarr")),
            Path::new("/d/out_mip.zarr")
        );
        assert_eq!(
            default_mip_path(Path::new("out")),
            Path::new("out_mip.zarr")
        );
    }
}
