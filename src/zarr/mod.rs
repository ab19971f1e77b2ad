//! The whole-array API: what the `haloflow` command does, as typed specs a Rust program
//! builds and runs. (Layer: the whole-array API, above the executor and the store,
//! below the command and Python; see the layer map in `docs/ARCHITECTURE.md`.)
//!
//! - [`Run`]: a chain of ops ([`Chain`]: sigmas in pixels or lengths, [`Sigma`]) from a
//!   Zarr array or OME-Zarr image to a new one, with [`Options`] (chunks, shards, part,
//!   memory limit, device, compression, OME-Zarr output ...) → [`Report`];
//!   [`Run::init`] creates the output for an array job.
//! - [`Pyramid`]: a multiscale OME-Zarr pyramid in one pass over level 0.
//! - [`Stats`]: whole-array statistics, exact percentiles.
//! - [`Label`]: connected components, numbered as `scipy.ndimage.label` numbers them,
//!   in parts with a merge step; [`Objects`]: the table of their sizes, centroids,
//!   boxes and intensities.
//! - [`verify`]: which jobs of an output are done.
//!
//! Progress is reported through [`Progress`] (the command draws its bar from it,
//! [`ProgressBar`]). Whole-array statistics an op needs (Otsu's threshold, percentiles)
//! are computed inside [`Run::run`] and recorded with the output.
//!
//! ```no_run
//! use haloflow::zarr::{Options, Pyramid, PyramidMethod, Run, Stats};
//! use haloflow::{Op, Pipeline};
//!
//! let pipeline = Pipeline::new(vec![Op::gaussian(&[0.0, 2.0, 2.0]), Op::threshold(1200.0)]);
//! let report = Run::new("image.ome.zarr", "mask.ome.zarr", pipeline).run(None)?;
//! println!("{} of {} jobs written", report.jobs_done, report.jobs_total);
//!
//! let options = haloflow::stats::StatsOptions { percentiles: vec![1.0, 99.8], ..Default::default() };
//! let stats = Stats { options, ..Stats::new("image.ome.zarr") }.run()?;
//! println!("p99.8 = {}", stats.summaries[0].percentiles[1].value);
//!
//! let pyramid = Pyramid { method: PyramidMethod::Gaussian, ..Pyramid::new("image.zarr", "pyramid.ome.zarr") };
//! pyramid.run(None)?;
//! # Ok::<(), haloflow::Error>(())
//! ```

mod chain;
mod image;
mod label;
mod mip;
mod objects;
mod options;
mod preview;
mod progress;
mod pyramid;
mod run;
mod stats;
mod units;

pub use chain::{Chain, GaussianKind, Step};
pub use image::{OmeAxes, input_spacing, open_level, output_image, write_array};
pub use label::{LABEL_STATE_DIR, Label, LabelReport, LabelStep};
pub use mip::default_mip_path;
pub use objects::{Objects, ObjectsFound};
pub use options::{Options, resolve_statistics};
pub use preview::{Preview, PreviewMethod, PreviewReport};
pub use progress::{Phase, Progress, ProgressBar};
pub use pyramid::{Pyramid, PyramidMethod, PyramidReport};
pub(crate) use run::widened;
pub use run::{InitSummary, Run, plan};
pub use stats::Stats;
pub use units::{AxisSpacing, Sigma, Spacing, micrometers_per, parse_size};

pub use crate::exec::{Part, Report};
pub use crate::store::{Completion, NgffVersion};

use std::path::Path;

use crate::error::Result;

/// Which jobs of the output at `path` (an array, or every level of an OME-Zarr image)
/// are done: one [`Completion`] per array.
///
/// # Errors
/// [`crate::Error::Store`] if the output cannot be read.
pub fn verify(path: &Path) -> Result<Vec<Completion>> {
    crate::store::verify(path)
}
