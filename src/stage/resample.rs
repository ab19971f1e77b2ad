//! Resampling stages' parameters: the downsample and upsample methods, and where a
//! linear upsample's samples come from.

/// How `downsample` reduces each window.
///
/// The discriminants reach the shaders as the WGSL constants `DOWN_MEAN`, `DOWN_MAX`,
/// ... (see [`DownMethod::wgsl_name`]), and the chosen one as `METHOD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
pub enum DownMethod {
    /// Arithmetic mean (integers rounded to nearest, ties to even).
    Mean = 0,
    /// Largest value (NaN wins, as in numpy).
    Max = 1,
    /// Smallest value (NaN wins, as in numpy).
    Min = 2,
    /// The window's first element: `x[::f]`.
    Stride = 3,
    /// Most frequent value (the statistical mode), ties to the smallest: for label
    /// images.
    Mode = 4,
}

impl DownMethod {
    /// Every method.
    pub const ALL: [DownMethod; 5] = [
        DownMethod::Mean,
        DownMethod::Max,
        DownMethod::Min,
        DownMethod::Stride,
        DownMethod::Mode,
    ];

    /// The name of the method's constant in the shaders.
    pub fn wgsl_name(self) -> &'static str {
        match self {
            DownMethod::Mean => "DOWN_MEAN",
            DownMethod::Max => "DOWN_MAX",
            DownMethod::Min => "DOWN_MIN",
            DownMethod::Stride => "DOWN_STRIDE",
            DownMethod::Mode => "DOWN_MODE",
        }
    }
}

/// How `upsample` fills the new samples.
///
/// The discriminants reach the shaders as the WGSL constants `UP_NEAREST` and
/// `UP_LINEAR`, and the chosen one as `METHOD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
pub enum UpMethod {
    /// Each sample repeated `f` times (`np.repeat`).
    Nearest = 0,
    /// Linear interpolation with pixel centres aligned
    /// (`scipy.ndimage.zoom(order=1, grid_mode=True, mode='nearest')`).
    Linear = 1,
}

impl UpMethod {
    /// Every method.
    pub const ALL: [UpMethod; 2] = [UpMethod::Nearest, UpMethod::Linear];

    /// The name of the method's constant in the shaders.
    pub fn wgsl_name(self) -> &'static str {
        match self {
            UpMethod::Nearest => "UP_NEAREST",
            UpMethod::Linear => "UP_LINEAR",
        }
    }
}

/// The two input indices (clamped to the axis) a linear upsample reads for output `o`.
pub(crate) fn linear_source(o: usize, f: usize, n: usize) -> (usize, usize) {
    let (i0, _) = linear_weights(o, f);
    let last = n as i64 - 1;
    (i0.clamp(0, last) as usize, (i0 + 1).clamp(0, last) as usize)
}

/// For output index `o` of a linear upsample by `f`: the lower source index (may be
/// -1) and the weight numerator `m` of the upper one; weights are `(2f - m, m) / 2f`.
pub(crate) fn linear_weights(o: usize, f: usize) -> (i64, i64) {
    // Source coordinate of the output pixel centre: (o + 0.5) / f - 0.5 = (2o + 1 - f) / 2f.
    let num = 2 * o as i64 + 1 - f as i64;
    let den = 2 * f as i64;
    (num.div_euclid(den), num.rem_euclid(den))
}

/// The weight denominator of an upsample: the product of `2f` over the axes (its
/// per-axis weights are numerators over `2f`), saturated.
pub(crate) fn denominator(factor: &[usize]) -> u64 {
    factor
        .iter()
        .map(|&f| 2 * f as u64)
        .fold(1u64, u64::saturating_mul)
}
