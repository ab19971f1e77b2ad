//! Multiscale pyramids in one streamed pass over level 0.
//!
//! Level k + 1 is `step` applied to level k. The work is cut into tiles, one per
//! chunk of the coarsest level: a tile owns that chunk and, at every finer level, the
//! region it comes from (whole chunks when each level's chunk divides the factor times
//! the next one's). A tile reads level 0 once over the region its chain needs (its
//! own region plus the steps' halos), computes every level from the one before in
//! memory (in parallel pieces, on the run's backend), and writes its chunks of every
//! level: nothing is read back from disk, and each level equals the previous one
//! stepped down, whatever the tiling. A tile whose chunks all exist is skipped
//! (resume), and `--part` splits the tiles.

mod pieces;
mod rows;
mod run;
mod tiles;
mod window;

pub use pieces::{CopyEncoded, OnePassPyramid};
