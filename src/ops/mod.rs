//! Operations users ask for, their parameters and validation, and chains of them.
//! (Layer: ops; see the layer map in `docs/ARCHITECTURE.md`.)

mod axes;
mod convolve;
mod gaussian;
mod lower;
mod op;
mod pipeline;
mod rank;

pub use axes::per_axis;
pub use convolve::Kernel;
pub use gaussian::{gaussian_kernel, gaussian_weights};
pub use op::{Edge, Interp, Neighborhood, Op};
pub use pipeline::{NeededStatistics, Pipeline};
pub use rank::{Footprint, RankOrder};
