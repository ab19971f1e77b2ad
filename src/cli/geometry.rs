//! The flags of the geometric ops: `affine`, `zoom`, `rotate` and `deskew`, each
//! turned into its [`Op`].

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::ToOp;
use crate::ops::Interp;
use crate::{InterpMode, Kernel, Op};

/// The interpolation flags every geometric op but `deskew` shares.
#[derive(Args, Clone)]
pub(super) struct InterpArgs {
    /// The spline's order: 0 nearest, 1 linear, 3 cubic (scipy's default), up to 5.
    /// Orders above 1 prefilter the input: near the edge of each block's footprint
    /// this is exact as scipy's; where a footprint is cut inside the array the
    /// footprint is widened by an overlap (29 samples at order 3) after which the
    /// difference is below 1e-12 of the data's magnitude.
    #[arg(long, default_value_t = 3)]
    pub(super) order: usize,
    /// How coordinates beyond the edge read (scipy's interpolation modes).
    #[arg(long, value_enum, default_value_t = InterpArg::Constant)]
    pub(super) mode: InterpArg,
    /// The value beyond the edge in the constant modes.
    #[arg(long, default_value_t = 0.0)]
    pub(super) cval: f64,
}

impl InterpArgs {
    fn interp(&self) -> Interp {
        Interp {
            order: self.order,
            mode: self.mode.into(),
            cval: self.cval,
            prefilter: true,
        }
    }
}

/// scipy's interpolation modes, as flags.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum InterpArg {
    Constant,
    GridConstant,
    Nearest,
    Reflect,
    GridMirror,
    Mirror,
    Wrap,
    GridWrap,
}

impl From<InterpArg> for InterpMode {
    fn from(m: InterpArg) -> InterpMode {
        match m {
            InterpArg::Constant => InterpMode::Constant,
            InterpArg::GridConstant => InterpMode::GridConstant,
            InterpArg::Nearest => InterpMode::Nearest,
            InterpArg::Reflect | InterpArg::GridMirror => InterpMode::Reflect,
            InterpArg::Mirror => InterpMode::Mirror,
            InterpArg::Wrap => InterpMode::Wrap,
            InterpArg::GridWrap => InterpMode::GridWrap,
        }
    }
}

/// Flags of `affine`.
#[derive(Args, Clone)]
pub(super) struct AffineArgs {
    /// The matrix mapping output coordinates to input coordinates: a .npy file or a
    /// .json one (a list of rows, or {"matrix": rows, "offset": [...]}); N×N, or
    /// (N+1)×(N+1) homogeneous with the offset in its last column.
    #[arg(long)]
    pub(super) matrix: PathBuf,
    /// The offset, one value or one per axis (with an N×N matrix).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub(super) offset: Vec<f64>,
    /// The output's shape (default: the input's).
    #[arg(long, value_delimiter = ',')]
    pub(super) output_shape: Vec<usize>,
    #[command(flatten)]
    pub(super) interp: InterpArgs,
}

/// The rows of a matrix file, and the offset a JSON file may hold.
fn read_matrix(path: &Path) -> crate::Result<(Vec<Vec<f64>>, Vec<f64>)> {
    let bad = |message: String| crate::Error::InvalidParameter {
        op: "affine",
        message: format!("--matrix {}: {message}", path.display()),
    };
    if path.extension().is_some_and(|e| e == "json") {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum MatrixFile {
            Rows(Vec<Vec<f64>>),
            Object {
                matrix: Vec<Vec<f64>>,
                #[serde(default)]
                offset: Vec<f64>,
            },
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: MatrixFile = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a matrix (a list of rows, or {{\"matrix\": ...}}): {e}"
            ))
        })?;
        return Ok(match file {
            MatrixFile::Rows(rows) => (rows, Vec::new()),
            MatrixFile::Object { matrix, offset } => (matrix, offset),
        });
    }
    let k = Kernel::from_npy(path)?;
    let [rows, cols] = k.shape[..] else {
        return Err(bad(format!(
            "a matrix has 2 dimensions, got shape {:?}",
            k.shape
        )));
    };
    Ok((
        (0..rows)
            .map(|r| k.data[r * cols..(r + 1) * cols].to_vec())
            .collect(),
        Vec::new(),
    ))
}

impl ToOp for AffineArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let (matrix, file_offset) = read_matrix(&self.matrix)?;
        let offset = if self.offset.is_empty() {
            file_offset
        } else {
            self.offset.clone()
        };
        Ok(Op::Affine {
            matrix,
            offset,
            output_shape: self.output_shape.clone(),
            interp: self.interp.interp(),
        })
    }
}

/// Flags of `zoom`.
#[derive(Args, Clone)]
pub(super) struct ZoomArgs {
    /// The factor, one value or one per axis (> 0; 0.5 halves, 1.7 enlarges).
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_hyphen_values = true
    )]
    pub(super) factor: Vec<f64>,
    /// Align the pixels' outer edges rather than the outermost pixels' centres
    /// (scipy's grid_mode).
    #[arg(long)]
    pub(super) grid_mode: bool,
    #[command(flatten)]
    pub(super) interp: InterpArgs,
}

impl ToOp for ZoomArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::Zoom {
            zoom: self.factor.clone(),
            grid_mode: self.grid_mode,
            interp: self.interp.interp(),
        })
    }
}

/// Flags of `rotate`.
#[derive(Args, Clone)]
pub(super) struct RotateArgs {
    /// The angle in degrees.
    #[arg(long, allow_hyphen_values = true)]
    pub(super) angle: f64,
    /// The plane's two axes (negative counts from the end); scipy's default 1,0.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        default_value = "1,0",
        allow_hyphen_values = true
    )]
    pub(super) axes: Vec<i64>,
    /// Grow the output to hold the whole rotated input (scipy's reshape=True; without
    /// it the output keeps the input's shape).
    #[arg(long)]
    pub(super) reshape: bool,
    #[command(flatten)]
    pub(super) interp: InterpArgs,
}

/// `rotate`'s flags as a command: its plane comes from the common `--axes`.
#[derive(Args, Clone)]
pub(super) struct RotateCommand {
    /// The angle in degrees.
    #[arg(long, allow_hyphen_values = true)]
    pub(super) angle: f64,
    /// Grow the output to hold the whole rotated input (scipy's reshape=True; without
    /// it the output keeps the input's shape).
    #[arg(long)]
    pub(super) reshape: bool,
    #[command(flatten)]
    pub(super) interp: InterpArgs,
}

impl RotateCommand {
    /// The op's flags with its plane (default 1,0).
    pub(super) fn with_plane(&self, plane: Option<[i64; 2]>) -> RotateArgs {
        RotateArgs {
            angle: self.angle,
            axes: plane.unwrap_or([1, 0]).to_vec(),
            reshape: self.reshape,
            interp: self.interp.clone(),
        }
    }
}

impl ToOp for RotateArgs {
    fn to_op(&self) -> crate::Result<Op> {
        let [a, b] = self.axes[..] else {
            return Err(crate::Error::InvalidParameter {
                op: "rotate",
                message: format!("--axes takes two axes (I,J), got {:?}", self.axes),
            });
        };
        Ok(Op::Rotate {
            angle: self.angle,
            axes: [a, b],
            reshape: self.reshape,
            interp: self.interp.interp(),
        })
    }
}

/// Flags of `deskew`.
#[derive(Args, Clone)]
pub(super) struct DeskewArgs {
    /// The light sheet's angle to the coverslip, degrees (0 to 90; 31.8 on a lattice
    /// light-sheet).
    #[arg(long, allow_hyphen_values = true)]
    pub(super) angle: f64,
    /// The step between planes (stage or scan mirror), in the pixel size's unit.
    #[arg(long, allow_hyphen_values = true)]
    pub(super) scan_step: f64,
    /// The camera pixel's size in the sample.
    #[arg(long, allow_hyphen_values = true)]
    pub(super) pixel_size: f64,
    /// Also rotate to the coverslip, in the same transform: the output is (h, y, u) on
    /// an isotropic grid of the pixel size, h the height and u the position along the
    /// coverslip: output (h, y, u) reads input x = h / sin(angle), z = (u − h·cot(angle))
    /// · pixel-size / scan-step.
    #[arg(long)]
    pub(super) rotate: bool,
    /// Also write the maximum projections along z, y and x, in the same pass, into a
    /// Zarr group [default: beside OUT, NAME_mip.zarr for NAME.zarr]: arrays `z`, `y`
    /// and `x`, each the maximum along that axis. A resumed run, or the last part of an
    /// array job to finish, reads back the chunks it did not compute to complete them.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub(super) mip: Option<Option<PathBuf>>,
}

impl ToOp for DeskewArgs {
    fn to_op(&self) -> crate::Result<Op> {
        Ok(Op::Deskew {
            angle: self.angle,
            scan_step: self.scan_step,
            pixel_size: self.pixel_size,
            rotate: self.rotate,
        })
    }
}
