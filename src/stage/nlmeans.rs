//! Non-local means as one stage (scikit-image's `denoise_nl_means`): its parameters and
//! the input indices a block of output reads (the patch and the search window, with
//! NumPy's `reflect` padding, scipy's `mirror`).

use crate::boundary::Boundary;
use crate::region::AxisSet;

/// Non-local means on the trailing `axes` (2 or 3) axes, one image or volume per index
/// of the leading ones, as `skimage.restoration.denoise_nl_means(x, patch_size,
/// patch_distance, h, fast_mode, sigma, preserve_range=True)` on each.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NlMeans {
    /// The patch's extent, odd (scikit-image adds 1 to an even one).
    pub patch: usize,
    /// The search window's radius (`patch_distance`).
    pub distance: usize,
    /// The filter's cut-off distance `h`.
    pub h: f64,
    /// The noise's standard deviation (`sigma`), subtracted from patch distances.
    pub sigma: f64,
    /// scikit-image's fast mode (uniform patch weights, box sums); else its classic
    /// mode (Gaussian patch weights, the window clipped to the array).
    pub fast: bool,
    /// The number of trailing axes filtered, 2 or 3.
    pub axes: usize,
}

impl NlMeans {
    /// The distance an output index reads on a filtered axis: the search window's and
    /// the patch's radii.
    pub(crate) fn radius(&self) -> usize {
        self.distance + self.patch / 2
    }

    /// The input indices the output indices `out` of an array of `shape` read: on the
    /// filtered axes, the whole box around `out` (its bounds, grown by the radius,
    /// mirrored at the edges); on the leading axes, `out` itself.
    pub(crate) fn input_sets(&self, out: &[AxisSet], shape: &[usize]) -> Vec<AxisSet> {
        let lead = out.len() - self.axes;
        let r = self.radius() as i64;
        (0..out.len())
            .map(|a| {
                if a < lead || out[a].is_empty() {
                    return out[a].clone();
                }
                let b = out[a].bounds();
                let (lo, hi) = (b.start as i64 - r, b.end as i64 + r);
                let inside = lo.max(0) as usize..(hi.min(shape[a] as i64)) as usize;
                let outside = (lo..hi.min(0)).chain(lo.max(shape[a] as i64)..hi);
                AxisSet::from_ranges(std::iter::once(inside).chain(outside.map(|i| {
                    let j = Boundary::Mirror
                        .map(i, shape[a])
                        .expect("mirror maps every index");
                    j..j + 1
                })))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footprint_is_the_window_and_patch_mirrored() {
        let nl = NlMeans {
            patch: 5,
            distance: 3,
            h: 0.1,
            sigma: 0.0,
            fast: true,
            axes: 2,
        };
        // Radius 3 + 2 = 5. A leading axis is untouched; a gap in `out` is filled.
        let out = [
            AxisSet::from_range(1..2),
            AxisSet::from_ranges([2..3, 6..7]),
            AxisSet::from_range(10..12),
        ];
        let sets = nl.input_sets(&out, &[4, 20, 12]);
        assert_eq!(sets[0], AxisSet::from_range(1..2));
        // 2 - 5 = -3 mirrors to 3; 7 + 5 = 12: 0..12.
        assert_eq!(sets[1], AxisSet::from_range(0..12));
        // 5..12, and 12..17 mirrored on 12 elements to 10, 9, 8, 7, 6.
        assert_eq!(sets[2], AxisSet::from_range(5..12));
    }
}
