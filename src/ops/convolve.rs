//! Dense N-D convolution kernels (`scipy.ndimage.convolve` semantics).

use serde::{Deserialize, Serialize};

use crate::boundary::Boundary;
use crate::error::{Error, Result};
use crate::stage::{Stage, Stencil};

/// A dense convolution kernel: weights in C order over `shape`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kernel {
    /// Extent per kernel axis (1 to the array's number of dimensions).
    pub shape: Vec<usize>,
    /// Weights in C order.
    pub data: Vec<f64>,
}

impl Kernel {
    /// A kernel from its shape and C-order weights (checked when the op is planned).
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Self {
        Kernel { shape, data }
    }

    /// Reads a kernel from a `.npy` file of any real numeric dtype.
    pub fn from_npy(path: &std::path::Path) -> Result<Self> {
        use ndarray::ArrayD;
        use ndarray_npy::ReadNpyExt;

        fn read<T: ndarray_npy::ReadableElement + Copy + Into<f64>>(
            path: &std::path::Path,
        ) -> std::result::Result<Kernel, String> {
            let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
            let a = ArrayD::<T>::read_npy(file).map_err(|e| e.to_string())?;
            Ok(Kernel::new(
                a.shape().to_vec(),
                a.iter().map(|&x| x.into()).collect(),
            ))
        }
        let attempts = [
            read::<f64>,
            read::<f32>,
            read::<i32>,
            read::<u8>,
            read::<i8>,
            read::<u16>,
            read::<i16>,
            read::<u32>,
            read::<bool>,
        ];
        let mut first_error = String::new();
        for attempt in attempts {
            match attempt(path) {
                Ok(k) => return Ok(k),
                Err(e) if first_error.is_empty() => first_error = e,
                Err(_) => {}
            }
        }
        Err(Error::InvalidParameter {
            op: "convolve",
            message: format!("cannot read kernel {}: {first_error}", path.display()),
        })
    }

    /// A Gaussian point-spread function of standard deviations `sigma` (one per axis,
    /// in pixels): `exp(-x²/2σ²)` over `±⌊4σ + 0.5⌋` on each axis (one tap where σ is
    /// 0), their product normalised to sum 1.
    pub fn gaussian(sigma: &[f64]) -> Result<Kernel> {
        if sigma.is_empty() || sigma.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(Error::InvalidParameter {
                op: "deconvolve",
                message: format!("psf-sigma must be finite and >= 0 on every axis, got {sigma:?}"),
            });
        }
        let axes: Vec<Vec<f64>> = sigma
            .iter()
            .map(|&s| {
                let r = (4.0 * s + 0.5) as i64;
                (-r..=r)
                    .map(|x| {
                        if s > 0.0 {
                            (-(x * x) as f64 / (2.0 * s * s)).exp()
                        } else {
                            1.0
                        }
                    })
                    .collect()
            })
            .collect();
        let shape: Vec<usize> = axes.iter().map(Vec::len).collect();
        let mut data = vec![1.0];
        for weights in &axes {
            data = data
                .iter()
                .flat_map(|d| weights.iter().map(move |w| d * w))
                .collect();
        }
        let total: f64 = data.iter().sum();
        Ok(Kernel::new(shape, data.iter().map(|w| w / total).collect()))
    }

    /// The kernel as a product of 1-D kernels, one per axis longer than 1 (each shaped
    /// as the kernel, 1 on every other axis), where it is one to within 1e-6 of its
    /// largest weight (a Gaussian PSF is): its marginal sums, scaled. `None` where it is
    /// not, or where its weights sum to 0.
    pub(crate) fn separable_factors(&self) -> Option<Vec<Kernel>> {
        let nd = self.shape.len();
        let axes: Vec<usize> = (0..nd).filter(|&a| self.shape[a] > 1).collect();
        if axes.len() < 2 || self.data.len() != self.shape.iter().product::<usize>() {
            return None;
        }
        let total: f64 = self.data.iter().sum();
        let largest = self.data.iter().fold(0f64, |m, w| m.max(w.abs()));
        if total.abs() <= 1e-12 * largest || !largest.is_finite() {
            return None;
        }
        // A rank-one tensor is its marginals' product over total^(axes - 1).
        let marginals: Vec<Vec<f64>> = axes
            .iter()
            .map(|&a| {
                let mut m = vec![0.0; self.shape[a]];
                for (flat, &w) in self.data.iter().enumerate() {
                    m[crate::region::unravel(flat, &self.shape)[a]] += w;
                }
                m
            })
            .collect();
        let scale = total.powi(axes.len() as i32 - 1);
        let rank_one = self.data.iter().enumerate().all(|(flat, &w)| {
            let index = crate::region::unravel(flat, &self.shape);
            let product: f64 = axes
                .iter()
                .zip(&marginals)
                .map(|(&a, m)| m[index[a]])
                .product();
            (product / scale - w).abs() <= 1e-6 * largest
        });
        if !rank_one {
            return None;
        }
        Some(
            axes.iter()
                .zip(marginals)
                .enumerate()
                .map(|(i, (&a, m))| {
                    let mut shape = vec![1; nd];
                    shape[a] = self.shape[a];
                    // All but the last factor carry 1 / total.
                    let div = if i + 1 < axes.len() { total } else { 1.0 };
                    Kernel::new(shape, m.iter().map(|w| w / div).collect())
                })
                .collect(),
        )
    }

    /// Richardson–Lucy's two correlation stencils on an `ndim`-D array: the kernel
    /// convolved as scipy.signal's `mode='same'` (centred at `n // 2`, zero outside the
    /// array), and the mirrored kernel likewise (its correlation weights are the
    /// kernel's as given).
    pub(crate) fn same_stencils(&self, ndim: usize) -> Result<(Stencil, Stencil)> {
        let stage = self
            .stage(ndim, Boundary::Constant, 0.0)
            .map_err(|e| match e {
                Error::InvalidParameter { message, .. } => Error::InvalidParameter {
                    op: "deconvolve",
                    message: message.replace("kernel", "PSF"),
                },
                other => other,
            })?;
        let Stage::Stencil(mut psf) = stage else {
            unreachable!("a kernel lowers to a stencil")
        };
        psf.centre = psf.shape.iter().map(|n| n / 2).collect();
        let mirror = psf.with_weights(self.data.clone());
        Ok((psf, mirror))
    }

    /// Lowers `convolve(x, kernel)` on an `ndim`-D array to a correlation stencil.
    ///
    /// scipy's convolution is `out[i] = Σ_j k[j] · x[i + n//2 - j]` per axis: a
    /// correlation with the flipped kernel whose centre is `n - 1 - n//2`.
    pub(crate) fn stage(&self, ndim: usize, mode: Boundary, cval: f64) -> Result<Stage> {
        self.stage_at(ndim, mode, cval, &vec![0; self.shape.len()])
    }

    /// The kernel's convolution as [`Kernel::stage`], placed by scipy's `origin` (one
    /// per kernel axis): the centre tap moves against the axis by each, within the
    /// kernel.
    pub(crate) fn stage_at(
        &self,
        ndim: usize,
        mode: Boundary,
        cval: f64,
        origin: &[i64],
    ) -> Result<Stage> {
        let invalid = |message: String| Error::InvalidParameter {
            op: "convolve",
            message,
        };
        let kd = self.shape.len();
        if kd == 0 || kd > ndim {
            return Err(invalid(format!(
                "the kernel has {kd} dimensions; it needs 1 to {ndim} (the array's)"
            )));
        }
        if self.shape.contains(&0) {
            return Err(invalid(format!(
                "the kernel shape {:?} is empty",
                self.shape
            )));
        }
        let len: usize = self.shape.iter().product();
        if len != self.data.len() {
            return Err(invalid(format!(
                "the kernel shape {:?} needs {len} weights, got {}",
                self.shape,
                self.data.len()
            )));
        }
        if self.data.iter().any(|w| !w.is_finite()) {
            return Err(invalid("the kernel holds a non-finite weight".into()));
        }
        let mut shape = vec![1; ndim - kd];
        shape.extend_from_slice(&self.shape);
        let mut centre: Vec<usize> = vec![0; ndim - kd];
        for (a, (&n, &o)) in self.shape.iter().zip(origin).enumerate() {
            // scipy flips the kernel and negates the origin (less one on even axes):
            // the correlation's centre tap is n - 1 - n // 2 - origin.
            let c = (n - 1 - n / 2) as i64 - o;
            if c < 0 || c >= n as i64 {
                return Err(invalid(format!(
                    "invalid origin {o} on kernel axis {a} of extent {n}"
                )));
            }
            centre.push(c as usize);
        }
        // Reversing the C-order weights flips every axis at once.
        let weights = self.data.iter().rev().copied().collect();
        Ok(Stage::Stencil(Stencil::new(
            shape, centre, weights, mode, cval,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gaussian_psf_factors_into_its_axes_and_a_skewed_one_does_not() {
        let g = Kernel::gaussian(&[1.0, 0.5, 2.0]).unwrap();
        let factors = g.separable_factors().unwrap();
        assert_eq!(factors.len(), 3);
        assert_eq!(factors[1].shape, vec![1, 5, 1]);
        // Their product is the kernel.
        for (flat, &w) in g.data.iter().enumerate() {
            let i = crate::region::unravel(flat, &g.shape);
            let product: f64 = (0..3).map(|a| factors[a].data[i[a]]).product();
            assert!((product - w).abs() < 1e-12, "{i:?}");
        }
        let mut skewed = g.clone();
        skewed.data[7] += 0.01;
        assert!(skewed.separable_factors().is_none());
        // A 1-D kernel, and one whose weights sum to 0, are not split.
        assert!(
            Kernel::new(vec![3], vec![1.0, 2.0, 1.0])
                .separable_factors()
                .is_none()
        );
        let edge = Kernel::new(vec![2, 2], vec![1.0, -1.0, 1.0, -1.0]);
        assert!(edge.separable_factors().is_none());
    }

    #[test]
    fn kernel_is_flipped_and_padded_to_the_array_rank() {
        let k = Kernel::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let Stage::Stencil(s) = k.stage(3, Boundary::Wrap, 0.0).unwrap() else {
            panic!("not a stencil")
        };
        assert_eq!(s.shape, vec![1, 2, 3]);
        assert_eq!(s.centre, vec![0, 0, 1]);
        assert_eq!(s.weights, vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn origin_moves_the_centre_tap_as_scipys_convolve() {
        // scipy's convolve(origin=o) is correlate with the flipped kernel and origin
        // -o (less one on even axes): its centre tap n - 1 - n // 2 - o.
        let k = Kernel::new(vec![2, 3], vec![1.0; 6]);
        let centre = |origin: &[i64]| match k.stage_at(2, Boundary::Reflect, 0.0, origin) {
            Ok(Stage::Stencil(s)) => Some(s.centre),
            _ => None,
        };
        assert_eq!(centre(&[0, 0]), Some(vec![0, 1]));
        assert_eq!(centre(&[-1, 1]), Some(vec![1, 0]));
        assert_eq!(centre(&[0, -1]), Some(vec![0, 2]));
        // Off the kernel: scipy's "invalid origin".
        assert_eq!(centre(&[1, 0]), None);
        assert_eq!(centre(&[0, 2]), None);
    }

    #[test]
    fn bad_kernels_are_rejected() {
        assert!(
            Kernel::new(vec![3, 3], vec![1.0; 9])
                .stage(1, Boundary::Reflect, 0.0)
                .is_err()
        );
        assert!(
            Kernel::new(vec![3], vec![1.0; 2])
                .stage(1, Boundary::Reflect, 0.0)
                .is_err()
        );
        assert!(
            Kernel::new(vec![0], vec![])
                .stage(1, Boundary::Reflect, 0.0)
                .is_err()
        );
    }
}
