//! [`Op`]'s constructors, one per operation with scipy's defaults, and the builders
//! that set a mode, an order, an origin or a footprint.

use crate::boundary::Boundary;
use crate::stage::{DownMethod, NoiseModel, UpMethod};

use super::{Edge, Neighborhood, Op};
use crate::ops::{Footprint, Kernel};

impl Op {
    /// `deconvolve`: `iterations` of Richardson–Lucy with `psf`, unclipped (see
    /// [`Op::Deconvolve`]).
    pub fn deconvolve(psf: Kernel, iterations: usize) -> Op {
        Op::Deconvolve {
            psf: Some(psf),
            psf_sigma: None,
            iterations,
            filter_epsilon: None,
            clip: false,
            overlap: None,
        }
    }

    /// `denoise`: non-local means in scikit-image's fast mode, `sigma = 0`, no noise
    /// model (see [`Op::Denoise`]).
    pub fn denoise(patch_size: usize, patch_distance: usize, h: f64) -> Op {
        Op::Denoise {
            patch_size,
            patch_distance,
            h,
            sigma: 0.0,
            fast_mode: true,
            noise: None,
        }
    }

    /// `anscombe`: the generalized Anscombe transform (see [`Op::Anscombe`]).
    pub fn anscombe(gain: f64, offset: f64, read_noise: f64) -> Op {
        Op::Anscombe {
            model: NoiseModel {
                gain,
                offset,
                read_noise,
            },
        }
    }

    /// `inverse_anscombe`: its closed-form unbiased inverse (see [`Op::InverseAnscombe`]).
    pub fn inverse_anscombe(gain: f64, offset: f64, read_noise: f64) -> Op {
        Op::InverseAnscombe {
            model: NoiseModel {
                gain,
                offset,
                read_noise,
            },
        }
    }

    /// `threshold`: `x > above`.
    pub fn threshold(above: f64) -> Op {
        Op::Threshold { above }
    }

    /// `clip` to `[min, max]`.
    pub fn clip(min: f64, max: f64) -> Op {
        Op::Clip { min, max }
    }

    /// A Gaussian with scipy's defaults (`reflect`, `truncate = 4`).
    pub fn gaussian(sigma: &[f64]) -> Op {
        Op::Gaussian {
            sigma: sigma.to_vec(),
            edge: Edge::default(),
            truncate: 4.0,
            modes: Vec::new(),
            order: Vec::new(),
        }
    }

    /// A uniform (box mean) filter with scipy's default mode (`reflect`).
    pub fn uniform(size: &[usize]) -> Op {
        Op::Uniform {
            size: size.to_vec(),
            edge: Edge::default(),
            origin: Vec::new(),
            modes: Vec::new(),
        }
    }

    /// A median filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn median(size: &[usize]) -> Op {
        Op::Median {
            neighborhood: Neighborhood::size(size),
            edge: Edge::default(),
            origin: Vec::new(),
        }
    }

    /// A percentile filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn percentile(percentile: f64, size: &[usize]) -> Op {
        Op::Percentile {
            percentile,
            neighborhood: Neighborhood::size(size),
            edge: Edge::default(),
            origin: Vec::new(),
        }
    }

    /// A minimum filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn minimum(size: &[usize]) -> Op {
        Op::Minimum {
            neighborhood: Neighborhood::size(size),
            edge: Edge::default(),
            origin: Vec::new(),
        }
    }

    /// A maximum filter over a box of `size`, with scipy's default mode (`reflect`).
    pub fn maximum(size: &[usize]) -> Op {
        Op::Maximum {
            neighborhood: Neighborhood::size(size),
            edge: Edge::default(),
            origin: Vec::new(),
        }
    }

    /// A rank filter's footprint, replacing its box (others unchanged).
    pub fn with_footprint(mut self, new: Footprint) -> Op {
        if let Op::Median { neighborhood, .. }
        | Op::Percentile { neighborhood, .. }
        | Op::Minimum { neighborhood, .. }
        | Op::Maximum { neighborhood, .. } = &mut self
        {
            neighborhood.footprint = Some(new);
        }
        self
    }

    /// A convolution with scipy's default mode (`reflect`).
    pub fn convolve(kernel: Kernel) -> Op {
        Op::Convolve {
            kernel,
            edge: Edge::default(),
            origin: Vec::new(),
        }
    }

    /// Downsampling by `factor` with `method`.
    pub fn downsample(factor: &[usize], method: DownMethod) -> Op {
        Op::Downsample {
            factor: factor.to_vec(),
            method,
        }
    }

    /// Upsampling by `factor` with `method`.
    pub fn upsample(factor: &[usize], method: UpMethod) -> Op {
        Op::Upsample {
            factor: factor.to_vec(),
            method,
        }
    }

    /// Sets the boundary mode and constant of a filter (others unchanged).
    pub fn with_mode(mut self, new_mode: Boundary, new_cval: f64) -> Op {
        if let Op::Gaussian { edge, .. }
        | Op::GaussianLaplace { edge, .. }
        | Op::GaussianGradientMagnitude { edge, .. }
        | Op::Convolve { edge, .. }
        | Op::Uniform { edge, .. }
        | Op::Median { edge, .. }
        | Op::Percentile { edge, .. }
        | Op::Minimum { edge, .. }
        | Op::Maximum { edge, .. } = &mut self
        {
            *edge = Edge::new(new_mode, new_cval);
        }
        self
    }

    /// The op with one boundary mode per axis (scipy's sequence of modes; one value:
    /// that mode on every axis), where it takes them (the Gaussian family and
    /// `uniform`); other ops are returned unchanged.
    pub fn with_modes(mut self, new_modes: &[Boundary]) -> Op {
        if let Op::Gaussian { modes, .. }
        | Op::GaussianLaplace { modes, .. }
        | Op::GaussianGradientMagnitude { modes, .. }
        | Op::Uniform { modes, .. } = &mut self
        {
            *modes = new_modes.to_vec();
        }
        self
    }

    /// A Gaussian with the derivative of `new_order` along each axis (one value for
    /// all), as scipy's `order`; other ops are returned unchanged.
    pub fn with_order(mut self, new_order: &[u32]) -> Op {
        if let Op::Gaussian { order, .. } = &mut self {
            *order = new_order.to_vec();
        }
        self
    }

    /// The op with scipy's `origin` (one value for all axes, or one per axis), where it
    /// has one (`convolve`, `uniform` and the rank filters); other ops are returned
    /// unchanged.
    pub fn with_origin(mut self, new_origin: &[i64]) -> Op {
        if let Op::Convolve { origin, .. }
        | Op::Uniform { origin, .. }
        | Op::Median { origin, .. }
        | Op::Percentile { origin, .. }
        | Op::Minimum { origin, .. }
        | Op::Maximum { origin, .. } = &mut self
        {
            *origin = new_origin.to_vec();
        }
        self
    }

    /// The operation's name (`"gaussian"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Threshold { .. } => "threshold",
            Op::Clip { .. } => "clip",
            Op::Gaussian { .. } => "gaussian",
            Op::GaussianLaplace { .. } => "gaussian_laplace",
            Op::GaussianGradientMagnitude { .. } => "gaussian_gradient_magnitude",
            Op::Convolve { .. } => "convolve",
            Op::Downsample { .. } => "downsample",
            Op::Upsample { .. } => "upsample",
            Op::Uniform { .. } => "uniform",
            Op::Median { .. } => "median",
            Op::Percentile { .. } => "percentile",
            Op::Minimum { .. } => "minimum",
            Op::Maximum { .. } => "maximum",
            Op::ThresholdOtsu { .. } => "threshold_otsu",
            Op::ThresholdPercentile { .. } => "threshold_percentile",
            Op::Normalize { .. } => "normalize",
            Op::Project { .. } => "project",
            Op::Deconvolve { .. } => "deconvolve",
            Op::Denoise { .. } => "denoise",
            Op::Anscombe { .. } => "anscombe",
            Op::InverseAnscombe { .. } => "inverse_anscombe",
            Op::Cast { .. } => "cast",
            Op::Affine { .. } => "affine",
            Op::Zoom { .. } => "zoom",
            Op::Rotate { .. } => "rotate",
            Op::Deskew { .. } => "deskew",
        }
    }
}
