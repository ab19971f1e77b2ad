//! Non-local means' classic mode (Gaussian patch weights, in f32 as scikit-image
//! computes a float32 image), a voxel at a time, its window clipped to the array and
//! its early exit checked before each patch plane (row, in 2-D).

use rayon::prelude::*;

use super::{CUTOFF, Geometry, fast_exp};

impl Geometry {
    /// Classic mode on `padded` (the padded box, f32): the output box's values.
    pub(super) fn classic(&self, padded: &[f32]) -> Vec<f32> {
        let pd = self.padded_dims();
        let kernel = &self.kernel;
        let var2 = self.var2 as f32;
        let off = self.patch.map(|s| s / 2);
        let [_, oy, ox] = self.out;
        let plane_len = oy * ox;
        let mut result = vec![0f32; self.out.iter().product()];
        result
            .par_chunks_mut(plane_len.max(1))
            .enumerate()
            .for_each(|(z, plane)| {
                for y in 0..oy {
                    for x in 0..ox {
                        let o = [z, y, x];
                        // The window in array indices, clipped to the array.
                        let lo = [0, 1, 2]
                            .map(|a| (self.origin[a] + o[a]).saturating_sub(self.distance[a]));
                        let hi = [0, 1, 2].map(|a| {
                            (self.origin[a] + o[a] + self.distance[a]).min(self.extent[a] - 1)
                        });
                        // Padded-box index of array index `g` on axis `a`, minus the patch radius.
                        let at = |a: usize, g: usize| g + self.pad[a] - self.origin[a] - off[a];
                        let centre = [0, 1, 2].map(|a| at(a, self.origin[a] + o[a]));
                        let (mut total, mut weight_sum) = (0f32, 0f32);
                        for qz in lo[0]..=hi[0] {
                            for qy in lo[1]..=hi[1] {
                                for qx in lo[2]..=hi[2] {
                                    let q = [at(0, qz), at(1, qy), at(2, qx)];
                                    let w = patch_weight(
                                        padded, pd, centre, q, self.patch, kernel, var2,
                                    );
                                    weight_sum += w;
                                    total += w * padded[((q[0] + off[0]) * pd[1] + q[1] + off[1])
                                        * pd[2]
                                        + q[2]
                                        + off[2]];
                                }
                            }
                        }
                        plane[y * ox + x] = total / weight_sum;
                    }
                }
            });
        result
    }
}

/// Classic mode's weight of the patch at `q` against the one at `centre` (each the
/// patch's first index in the padded box): `fast_exp(-max(0, Σ k · (d² - 2σ²)))`, 0
/// where the running sum passes the cut-off before a plane (a row, in 2-D) of the
/// patch.
fn patch_weight(
    padded: &[f32],
    pd: [usize; 3],
    centre: [usize; 3],
    q: [usize; 3],
    patch: [usize; 3],
    kernel: &[f32],
    var2: f32,
) -> f32 {
    let mut distance = 0f32;
    let cutoff = CUTOFF as f32;
    let mut k = 0;
    for i in 0..patch[0] {
        if patch[0] > 1 && distance > cutoff {
            return 0.0;
        }
        for j in 0..patch[1] {
            if patch[0] == 1 && distance > cutoff {
                return 0.0;
            }
            let a = ((centre[0] + i) * pd[1] + centre[1] + j) * pd[2] + centre[2];
            let b = ((q[0] + i) * pd[1] + q[1] + j) * pd[2] + q[2];
            for l in 0..patch[2] {
                let t = padded[a + l] - padded[b + l];
                distance += kernel[k] * (t * t - var2);
                k += 1;
            }
        }
    }
    let d = f64::from(distance);
    let d = if d > 0.0 { d } else { 0.0 };
    fast_exp(-d) as f32
}
