//! Which neighbours join voxels into one object: `scipy.ndimage.label`'s `structure`,
//! a centrosymmetric 3×…×3 mask, and the steps between rows (lines along the last
//! axis) that the run-based labelling follows.

use crate::error::{Error, Result};

/// Which voxels are objects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Foreground {
    /// Every voxel that is not zero (`scipy.ndimage.label` of a mask).
    NonZero,
    /// Every voxel above a threshold (`--above T`).
    Above(f64),
}

/// A structuring element for connected components: which of a voxel's 3^N − 1
/// neighbours belong to its object (`scipy.ndimage.label`'s `structure`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Structure {
    ndim: usize,
    /// The neighbour offsets (each in {−1, 0, 1}, not all zero), C order.
    offsets: Vec<Vec<i8>>,
}

/// The neighbours of a voxel on one row of a block (a line along the last axis): the
/// step to that row (all axes but the last) and the steps along the last axis allowed
/// there, ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowStep {
    /// The step on every axis but the last.
    pub row: Vec<i8>,
    /// The steps along the last axis, ascending, each in {−1, 0, 1}.
    pub dx: Vec<i8>,
}

impl RowStep {
    /// The allowed last-axis steps as contiguous ranges `(lo, hi)`, both inclusive:
    /// `{-1, 1}` without 0 gives two.
    pub fn pieces(&self) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        for &d in &self.dx {
            let d = i64::from(d);
            match out.last_mut() {
                Some(p) if p.1 + 1 == d => p.1 = d,
                _ => out.push((d, d)),
            }
        }
        out
    }

    /// Whether `row` comes before the zero step in C order.
    pub fn backward(&self) -> bool {
        self.row.iter().find(|&&d| d != 0).is_some_and(|&d| d < 0)
    }
}

impl Structure {
    /// `scipy.ndimage.generate_binary_structure(ndim, connectivity)`: the neighbours
    /// that differ from the voxel on at most `connectivity` axes (1: faces only, `ndim`:
    /// every neighbour).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `ndim` 0 or a connectivity outside `1..=ndim`.
    pub fn connectivity(ndim: usize, connectivity: usize) -> Result<Structure> {
        if ndim == 0 {
            return Err(Error::InvalidParameter {
                op: "label",
                message: "a 0-dimensional array has no neighbours to connect".into(),
            });
        }
        if !(1..=ndim).contains(&connectivity) {
            return Err(Error::InvalidParameter {
                op: "label",
                message: format!(
                    "connectivity {connectivity} is out of range for {ndim} dimensions (1 to {ndim})"
                ),
            });
        }
        let values: Vec<bool> = (0..3usize.pow(ndim as u32))
            .map(|i| offset_of(i, ndim).iter().filter(|&&d| d != 0).count() <= connectivity)
            .collect();
        Structure::from_mask(&vec![3; ndim], &values)
    }

    /// A structure from a boolean array of shape 3×…×3 in C order (`structure=` of
    /// `scipy.ndimage.label`). The centre is ignored, as scipy ignores it.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a shape that is not 3 on every axis, or a mask
    /// that is not centrosymmetric (a neighbour without its mirror image would make
    /// "connected" depend on the direction of the scan).
    pub fn from_mask(shape: &[usize], values: &[bool]) -> Result<Structure> {
        let ndim = shape.len();
        let bad = |message: String| Error::InvalidParameter {
            op: "label",
            message,
        };
        if ndim == 0 || shape.iter().any(|&n| n != 3) {
            return Err(bad(format!(
                "structure dimensions must be equal to 3, got shape {shape:?}"
            )));
        }
        if values.len() != 3usize.pow(ndim as u32) {
            return Err(bad(format!(
                "a structure of shape {shape:?} needs {} values, got {}",
                3usize.pow(ndim as u32),
                values.len()
            )));
        }
        let centre = values.len() / 2;
        if (0..values.len()).any(|i| values[i] != values[values.len() - 1 - i]) {
            return Err(bad("the structure must be centrosymmetric".into()));
        }
        let offsets = (0..values.len())
            .filter(|&i| i != centre && values[i])
            .map(|i| offset_of(i, ndim))
            .collect();
        Ok(Structure { ndim, offsets })
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// The neighbour offsets, C order.
    pub fn offsets(&self) -> &[Vec<i8>] {
        &self.offsets
    }

    /// Whether neighbours along the last axis connect (runs along it are then one
    /// object each).
    pub(crate) fn joins_along_rows(&self) -> bool {
        self.offsets
            .iter()
            .any(|o| o[..self.ndim - 1].iter().all(|&d| d == 0))
    }

    /// The neighbours grouped by row step, in C order of the step; the zero row step
    /// (neighbours on the same row) is left out.
    pub(crate) fn row_steps(&self) -> Vec<RowStep> {
        let mut steps: Vec<RowStep> = Vec::new();
        for o in &self.offsets {
            let (row, dx) = o.split_at(self.ndim - 1);
            if row.iter().all(|&d| d == 0) {
                continue;
            }
            match steps.iter_mut().find(|s| s.row == row) {
                Some(s) => s.dx.push(dx[0]),
                None => steps.push(RowStep {
                    row: row.to_vec(),
                    dx: vec![dx[0]],
                }),
            }
        }
        for s in &mut steps {
            s.dx.sort_unstable();
        }
        steps
    }

    /// The most axes a single neighbour step changes: chunks that differ on more axes
    /// than this never touch through the structure.
    pub(crate) fn reach(&self) -> usize {
        self.offsets
            .iter()
            .map(|o| o.iter().filter(|&&d| d != 0).count())
            .max()
            .unwrap_or(0)
    }
}

/// The offset of the `i`-th element of a 3×…×3 array (C order), centred.
fn offset_of(mut i: usize, ndim: usize) -> Vec<i8> {
    let mut o = vec![0i8; ndim];
    for a in (0..ndim).rev() {
        o[a] = (i % 3) as i8 - 1;
        i /= 3;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_counts_neighbours() {
        assert_eq!(Structure::connectivity(2, 1).unwrap().offsets().len(), 4);
        assert_eq!(Structure::connectivity(2, 2).unwrap().offsets().len(), 8);
        assert_eq!(Structure::connectivity(3, 1).unwrap().offsets().len(), 6);
        assert_eq!(Structure::connectivity(3, 2).unwrap().offsets().len(), 18);
        assert_eq!(Structure::connectivity(3, 3).unwrap().offsets().len(), 26);
        assert!(Structure::connectivity(3, 4).is_err());
        assert!(Structure::connectivity(3, 0).is_err());
    }

    #[test]
    fn row_steps_of_full_2d() {
        let s = Structure::connectivity(2, 2).unwrap();
        let steps = s.row_steps();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].row, vec![-1]);
        assert_eq!(steps[0].dx, vec![-1, 0, 1]);
        assert!(steps[0].backward() && !steps[1].backward());
        assert_eq!(steps[0].pieces(), vec![(-1, 1)]);
        assert!(s.joins_along_rows());
    }

    #[test]
    fn asymmetric_structures_are_refused() {
        let mut v = vec![false; 9];
        v[1] = true;
        assert!(Structure::from_mask(&[3, 3], &v).is_err());
        v[7] = true;
        let s = Structure::from_mask(&[3, 3], &v).unwrap();
        assert!(!s.joins_along_rows());
        assert!(Structure::from_mask(&[3, 2], &v[..6]).is_err());
    }
}
