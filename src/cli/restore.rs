//! The flags of the restoration ops: `deconvolve`, `denoise`, `anscombe` and
//! `inverse-anscombe`, each turned into its [`Op`].

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::ToOp;
use crate::{Kernel, NoiseModel, Op};

/// Flags of `deconvolve`.
#[derive(Args, Clone)]
pub(super) struct DeconvolveArgs {
    /// The point-spread function, a .npy file (its axes are the array's last ones).
    #[arg(
        long,
        conflicts_with = "psf_sigma",
        required_unless_present = "psf_sigma"
    )]
    pub(super) psf: Option<PathBuf>,
    /// A Gaussian PSF instead: sigma in pixels, one value or one per axis, normalised,
    /// over +-4 sigma.
    #[arg(long, value_delimiter = ',')]
    pub(super) psf_sigma: Option<Vec<f64>>,
    /// Richardson-Lucy iterations.
    #[arg(long)]
    pub(super) iterations: usize,
    /// Ratios where the blurred estimate is below this are 0 (scikit-image's
    /// filter_epsilon).
    #[arg(long)]
    pub(super) filter_epsilon: Option<f64>,
    /// Clip the result to [-1, 1] (scikit-image's default; off here, as microscopy
    /// intensities are not in [-1, 1]).
    #[arg(long)]
    pub(super) clip: bool,
    /// Approximate: deconvolve each block of output as an image of its own, grown by K
    /// pixels each side (as dask's map_overlap with depth K), instead of by the halo
    /// that makes the result exact (iterations x 2 x the PSF's radius); the error this
    /// causes is in BENCHMARKS.md.
    #[arg(long, value_name = "K")]
    pub(super) overlap: Option<usize>,
}

impl ToOp for DeconvolveArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let psf = self.psf.as_deref().map(Kernel::from_npy).transpose()?;
        Ok(Op::Deconvolve {
            psf,
            psf_sigma: self.psf_sigma.clone(),
            iterations: self.iterations,
            filter_epsilon: self.filter_epsilon,
            clip: self.clip,
            overlap: self.overlap,
        })
    }
}

/// Flags of `denoise`.
#[derive(Args, Clone)]
pub(super) struct DenoiseArgs {
    /// The patch's extent in pixels (an even one is made odd, as scikit-image does).
    #[arg(long, default_value_t = 7)]
    pub(super) patch_size: usize,
    /// The search window's radius in pixels.
    #[arg(long, default_value_t = 11)]
    pub(super) patch_distance: usize,
    /// The cut-off distance: the larger, the smoother (in the data's units, or the
    /// stabilized domain's with --noise poisson-gaussian).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) h: f64,
    /// The noise's standard deviation, subtracted from patch distances.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) sigma: f64,
    /// scikit-image's fast mode (uniform patch weights), or its classic mode (Gaussian
    /// patch weights, the search window clipped to the array; far slower).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub(super) fast_mode: OnOff,
    /// The noise model: poisson-gaussian denoises in the generalized Anscombe domain
    /// of --gain, --offset and --read-noise, and transforms back.
    #[arg(long, value_enum)]
    pub(super) noise: Option<NoiseArg>,
    /// The gain G with --noise poisson-gaussian: data units per photon (> 0).
    #[arg(long, allow_negative_numbers = true, requires = "noise")]
    pub(super) gain: Option<f64>,
    /// The offset O with --noise poisson-gaussian: the value of no light.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) offset: f64,
    /// The read noise's standard deviation S with --noise poisson-gaussian.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) read_noise: f64,
}

/// `--fast-mode on|off`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum OnOff {
    On,
    Off,
}

/// `--noise`: the noise model `denoise` stabilizes first.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum NoiseArg {
    /// Photon counts times a gain, plus an offset and Gaussian read noise.
    PoissonGaussian,
}

impl ToOp for DenoiseArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let noise = match (self.noise, self.gain) {
            (None, _) => None,
            (Some(NoiseArg::PoissonGaussian), Some(gain)) => Some(NoiseModel {
                gain,
                offset: self.offset,
                read_noise: self.read_noise,
            }),
            (Some(NoiseArg::PoissonGaussian), None) => {
                return Err(crate::Error::InvalidParameter {
                    op: "denoise",
                    message: "--noise poisson-gaussian needs the camera's --gain".into(),
                });
            }
        };
        Ok(Op::Denoise {
            patch_size: self.patch_size,
            patch_distance: self.patch_distance,
            h: self.h,
            sigma: self.sigma,
            fast_mode: self.fast_mode == OnOff::On,
            noise,
        })
    }
}

/// Flags of `anscombe` and `inverse-anscombe`: the camera's noise model.
#[derive(Args, Clone)]
pub(super) struct AnscombeArgs {
    /// The gain G: data units per photon (> 0).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub(super) gain: f64,
    /// The offset O: the value of no light.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) offset: f64,
    /// The standard deviation S of the Gaussian read noise, in data units.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(super) read_noise: f64,
}

impl ToOp for AnscombeArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::anscombe(self.gain, self.offset, self.read_noise))
    }
}

/// Flags of `inverse-anscombe`: the noise model the forward transform was given.
#[derive(Args, Clone)]
pub(super) struct InverseAnscombeArgs {
    #[command(flatten)]
    pub(super) model: AnscombeArgs,
}

impl ToOp for InverseAnscombeArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let m = &self.model;
        Ok(Op::inverse_anscombe(m.gain, m.offset, m.read_noise))
    }
}
