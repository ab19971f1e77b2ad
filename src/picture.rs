//! Pictures of results for a person on a headless node: a 2-D image (a projection or a
//! slice) mapped through a contrast window and a colour map into a PNG, and a
//! histogram drawn with its percentiles marked.
//! (Layer: the foundations, beside [`stats`](crate::stats); the streamed projections
//! that feed it are in [`zarr::Preview`](crate::zarr::Preview).)

use std::io::BufWriter;
use std::path::Path;

use crate::error::{Error, Result};

/// How values become colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colormap {
    /// 8-bit grey levels.
    #[default]
    Gray,
    /// matplotlib's `magma`.
    Magma,
    /// matplotlib's `viridis`.
    Viridis,
}

impl std::str::FromStr for Colormap {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "gray" | "grey" => Ok(Colormap::Gray),
            "magma" => Ok(Colormap::Magma),
            "viridis" => Ok(Colormap::Viridis),
            other => Err(Error::InvalidParameter {
                op: "colormap",
                message: format!("'{other}' (expected gray, magma or viridis)"),
            }),
        }
    }
}

/// The contrast window: values at or below `lo` are black, at or above `hi` full.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Contrast {
    /// From the image's 0.1st and 99.9th percentiles.
    Auto,
    /// Given.
    Window {
        /// The value shown black.
        lo: f64,
        /// The value shown at full intensity.
        hi: f64,
    },
}

impl std::str::FromStr for Contrast {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |m: String| Error::InvalidParameter {
            op: "contrast",
            message: m,
        };
        if s.trim() == "auto" {
            return Ok(Contrast::Auto);
        }
        let (lo, hi) = s
            .split_once(',')
            .ok_or_else(|| bad(format!("'{s}' (expected auto or LO,HI)")))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("'{v}' is not a number")))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(bad(format!(
                "LO,HI must be finite with LO < HI, got {lo},{hi}"
            )));
        }
        Ok(Contrast::Window { lo, hi })
    }
}

/// A 2-D image of values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Image2 {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows × cols` values.
    pub values: Vec<f64>,
}

impl Image2 {
    /// The image resized so that its longer side is `size` pixels: means over each
    /// output pixel's box of input pixels when shrinking, the nearest pixel when
    /// enlarging.
    pub fn resized(&self, size: usize) -> Image2 {
        let long = self.rows.max(self.cols).max(1);
        let scale = size as f64 / long as f64;
        let rows = ((self.rows as f64 * scale).round() as usize).max(1);
        let cols = ((self.cols as f64 * scale).round() as usize).max(1);
        let span = |i: usize, n: usize, total: usize| {
            let lo = i * total / n;
            let hi = ((i + 1) * total).div_ceil(n).max(lo + 1).min(total);
            lo..hi
        };
        let mut values = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            let rs = span(r, rows, self.rows);
            for c in 0..cols {
                let cs = span(c, cols, self.cols);
                let (mut sum, mut n) = (0.0, 0usize);
                for y in rs.clone() {
                    for x in cs.clone() {
                        sum += self.values[y * self.cols + x];
                        n += 1;
                    }
                }
                values.push(sum / n as f64);
            }
        }
        Image2 { rows, cols, values }
    }

    /// The window `contrast` gives this image (auto: its 0.1st and 99.9th
    /// percentiles of the finite values; a window of one value is widened by 1).
    pub fn window(&self, contrast: Contrast) -> (f64, f64) {
        let (lo, hi) = match contrast {
            Contrast::Window { lo, hi } => return (lo, hi),
            Contrast::Auto => {
                let mut v: Vec<f64> = self
                    .values
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite())
                    .collect();
                if v.is_empty() {
                    return (0.0, 1.0);
                }
                v.sort_unstable_by(f64::total_cmp);
                (percentile(&v, 0.1), percentile(&v, 99.9))
            }
        };
        if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
    }

    /// Writes the image as a PNG at `path`: grey levels (8-bit) or RGB through
    /// `colormap`, the values mapped linearly from `window`; `notes` become the PNG's
    /// text chunks.
    ///
    /// # Errors
    /// [`Error::Store`] if the file cannot be written.
    pub fn write_png(
        &self,
        path: &Path,
        window: (f64, f64),
        colormap: Colormap,
        notes: &[(&str, String)],
    ) -> Result<()> {
        let (lo, hi) = window;
        let level = |v: f64| -> u8 {
            let t = if v.is_nan() {
                0.0
            } else {
                ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
            };
            (t * 255.0).round() as u8
        };
        let (color, data): (png::ColorType, Vec<u8>) = match colormap {
            Colormap::Gray => (
                png::ColorType::Grayscale,
                self.values.iter().map(|&v| level(v)).collect(),
            ),
            Colormap::Magma | Colormap::Viridis => {
                let map = match colormap {
                    Colormap::Magma => colorous::MAGMA,
                    _ => colorous::VIRIDIS,
                };
                let lut: Vec<[u8; 3]> = (0..256)
                    .map(|i| map.eval_rational(i, 256).as_array())
                    .collect();
                (
                    png::ColorType::Rgb,
                    self.values
                        .iter()
                        .flat_map(|&v| lut[level(v) as usize])
                        .collect(),
                )
            }
        };
        write_png(path, (self.cols, self.rows), color, &data, notes)
    }
}

/// numpy's `linear` percentile `q` (0 to 100) of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (sorted[j] - sorted[i]) * (pos - i as f64)
}

fn write_png(
    path: &Path,
    (width, height): (usize, usize),
    color: png::ColorType,
    data: &[u8],
    notes: &[(&str, String)],
) -> Result<()> {
    let failed = |m: String| Error::Store {
        path: path.to_path_buf(),
        message: m,
    };
    if crate::store::remote::is_url(path) {
        return Err(failed(
            "pictures are written to local files (the array may be a URL)".into(),
        ));
    }
    let file = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    for (key, value) in notes {
        encoder
            .add_text_chunk((*key).to_string(), value.clone())
            .map_err(|e| failed(e.to_string()))?;
    }
    let mut writer = encoder.write_header().map_err(|e| failed(e.to_string()))?;
    writer
        .write_image_data(data)
        .map_err(|e| failed(e.to_string()))?;
    writer.finish().map_err(|e| failed(e.to_string()))
}

/// Draws a histogram (`counts` over bins from `edges[0]` to the last edge) as a
/// `width × height` PNG at `path`: bars on a logarithmic count scale (`log(1 +
/// count)`, so that the tails of a microscope image's histogram show), and a red
/// line at each of `marks` (values, the percentiles). The range, the largest count
/// and the marks are written into the PNG's text chunks.
///
/// # Errors
/// [`Error::InvalidParameter`] for a histogram without bins; [`Error::Store`] if the
/// file cannot be written.
pub fn plot_histogram(
    path: &Path,
    counts: &[u64],
    edges: &[f64],
    marks: &[(f64, f64)],
    (width, height): (usize, usize),
) -> Result<()> {
    if counts.is_empty() || edges.len() != counts.len() + 1 {
        return Err(Error::InvalidParameter {
            op: "plot",
            message: "a histogram needs bins".into(),
        });
    }
    let (margin, axis) = (8usize, [0u8, 0, 0]);
    let (plot_w, plot_h) = (width - 2 * margin, height - 2 * margin);
    let mut px = vec![255u8; width * height * 3];
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        let i = (y * width + x) * 3;
        px[i..i + 3].copy_from_slice(&c);
    };
    let top = counts
        .iter()
        .map(|&c| (1.0 + c as f64).ln())
        .fold(0.0, f64::max)
        .max(1e-12);
    let bins = counts.len();
    for x in 0..plot_w {
        // The bins this column covers: the tallest shows.
        let b0 = x * bins / plot_w;
        let b1 = ((x + 1) * bins).div_ceil(plot_w).clamp(b0 + 1, bins);
        let c = counts[b0..b1].iter().copied().max().unwrap_or(0);
        let h = ((1.0 + c as f64).ln() / top * plot_h as f64).round() as usize;
        for y in 0..h.min(plot_h) {
            put(margin + x, margin + plot_h - 1 - y, [70, 70, 90]);
        }
    }
    let (lo, hi) = (edges[0], edges[bins]);
    for &(_, v) in marks {
        if hi > lo && (lo..=hi).contains(&v) {
            let x = (((v - lo) / (hi - lo)) * (plot_w - 1) as f64).round() as usize;
            for y in 0..plot_h {
                put(margin + x, margin + y, [220, 30, 30]);
            }
        }
    }
    for x in margin - 1..margin + plot_w {
        put(x, margin + plot_h, axis);
    }
    for y in margin..=margin + plot_h {
        put(margin - 1, y, axis);
    }
    let marks_text: Vec<String> = marks.iter().map(|(p, v)| format!("p{p}={v}")).collect();
    let notes = [
        ("Title", "haloflow histogram (log counts)".to_string()),
        ("Range", format!("{lo} to {hi}, {bins} bins")),
        (
            "Max count",
            counts.iter().max().copied().unwrap_or(0).to_string(),
        ),
        ("Percentiles", marks_text.join(" ")),
    ];
    write_png(path, (width, height), png::ColorType::Rgb, &px, &notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_averages_boxes_and_enlarging_repeats() {
        let img = Image2 {
            rows: 2,
            cols: 4,
            values: vec![0.0, 2.0, 4.0, 6.0, 2.0, 4.0, 6.0, 8.0],
        };
        let small = img.resized(2);
        assert_eq!((small.rows, small.cols), (1, 2));
        assert_eq!(small.values, vec![2.0, 6.0]);
        let big = img.resized(8);
        assert_eq!((big.rows, big.cols), (4, 8));
        assert_eq!(big.values[..8], [0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0]);
    }

    #[test]
    fn windows_come_from_percentiles_or_are_given() {
        let img = Image2 {
            rows: 1,
            cols: 1001,
            values: (0..=1000).map(f64::from).collect(),
        };
        let (lo, hi) = img.window(Contrast::Auto);
        assert!(
            (lo - 1.0).abs() < 1e-9 && (hi - 999.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert_eq!(
            "3,7".parse::<Contrast>().unwrap(),
            Contrast::Window { lo: 3.0, hi: 7.0 }
        );
        assert!("7,3".parse::<Contrast>().is_err());
        assert!("magma".parse::<Colormap>().is_ok() && "jet".parse::<Colormap>().is_err());
    }
}
