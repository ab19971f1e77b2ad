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

    /// The positions in `held` (an input block's indices on a filtered axis of length
    /// `n`) of the padded box around the output indices `bounds`: each index from the
    /// bounds' start minus the radius to their end plus it, mirrored into the array.
    /// Both backends read the padded box through them.
    pub(crate) fn padded_positions(
        &self,
        held: &AxisSet,
        bounds: &std::ops::Range<usize>,
        n: usize,
    ) -> Vec<usize> {
        let r = self.radius() as i64;
        (bounds.start as i64 - r..bounds.end as i64 + r)
            .map(|g| {
                let i = Boundary::Mirror.map(g, n).expect("mirror maps every index");
                held.position(i).expect("the input holds the footprint")
            })
            .collect()
    }

    /// Classic mode's patch weights, scikit-image's in float32 (C order over the
    /// patch: `s^axes` of them).
    pub(crate) fn classic_weights(&self) -> Vec<f32> {
        classic_kernel(self.patch, self.axes, self.h)
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

/// Classic mode's patch weights, scikit-image's in float32: a Gaussian of standard
/// deviation `(s - 1) / 4` over the patch, scaled to sum to `1 / h²`.
fn classic_kernel(s: usize, axes: usize, h: f64) -> Vec<f32> {
    let off = (s / 2) as i64;
    let a = (s as f32 - 1.0) / 4.0;
    let two_a2 = 2.0 * a * a;
    let range: Vec<f32> = (-off..=off).map(|v| v as f32).collect();
    let planes: &[f32] = if axes == 3 { &range } else { &[0.0] };
    let mut w = Vec::new();
    for &p in planes {
        for &r in &range {
            for &c in &range {
                // NumPy's `-(p*p + r*r + c*c) / (2*A*A)` (no plane term in 2-D).
                let squares = if axes == 3 {
                    p * p + r * r + c * c
                } else {
                    r * r + c * c
                };
                w.push((-squares / two_a2).exp());
            }
        }
    }
    let h = h as f32;
    let scale = 1.0 / (numpy_sum(&w) * h * h);
    for x in &mut w {
        *x *= scale;
    }
    w
}

/// NumPy's float32 sum (pairwise: eight running sums per block of 128, combined as
/// `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`, the remainder added in turn).
fn numpy_sum(v: &[f32]) -> f32 {
    if v.len() < 8 {
        return v.iter().fold(-0.0, |s, &x| s + x);
    }
    if v.len() <= 128 {
        let mut r = [0f32; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i + 8 <= v.len() {
            for j in 0..8 {
                r[j] += v[i + j];
            }
            i += 8;
        }
        let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &v[i..] {
            s += x;
        }
        return s;
    }
    let half = (v.len() / 2) / 8 * 8;
    numpy_sum(&v[..half]) + numpy_sum(&v[half..])
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

    #[test]
    fn numpy_sums_pairwise() {
        let v: Vec<f32> = (0..125).map(|i| 1.0 + i as f32 * 1e-3).collect();
        let pairwise = numpy_sum(&v);
        let exact: f64 = v.iter().map(|&x| f64::from(x)).sum();
        assert!((f64::from(pairwise) - exact).abs() < 1e-4);
    }
}
