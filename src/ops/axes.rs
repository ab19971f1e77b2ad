//! Per-axis parameter lists, shared by the ops.

use crate::error::{Error, Result};

/// Expands a per-axis list (one value for all axes, or one per axis).
pub fn per_axis<T: Copy>(what: &'static str, values: &[T], ndim: usize) -> Result<Vec<T>> {
    match values.len() {
        1 => Ok(vec![values[0]; ndim]),
        n if n == ndim => Ok(values.to_vec()),
        got => Err(Error::AxisCount { what, ndim, got }),
    }
}
