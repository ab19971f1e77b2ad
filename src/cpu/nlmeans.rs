//! Non-local means on the CPU, scikit-image's `denoise_nl_means` on each image or
//! volume of a block: fast mode (uniform patch weights, as scikit-image's box sums)
//! tiled for the cache and vectorised in f32, distances near the cut-off decided in
//! f64 as scikit-image decides them, every core on its own tiles; classic mode
//! (Gaussian patch weights, in f32 as scikit-image computes a float32 image) a voxel
//! at a time.
//!
//! Both reproduce scikit-image's arithmetic where it shapes the result: its
//! `_fast_exp` (Schraudolph's approximation, not `exp`), its cut-off at a distance of
//! 5, fast mode's patch box of `(s - 1)^n` pixels from `-s/2 + 1` to `s/2` divided by
//! `s^n`, and classic mode's window clipped to the array and its early exit checked
//! before each patch plane (row, in 2-D).

use std::borrow::Cow;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx512;
mod classic;

use crate::block::Block;
use crate::region::{AxisSet, unravel};
use crate::stage::NlMeans;

/// scikit-image's cut-off: weights of patches farther than this are 0.
const CUTOFF: f64 = 5.0;

/// scikit-image's `_fast_exp` (`fast_exp.h`): Schraudolph's approximation of `exp(y)`,
/// the high 32 bits of a double from `y` scaled, the low ones 0 (`fast_exp(0)` is
/// 0.971). The cast truncates, and saturates as x86's conversion does.
#[inline(always)]
fn fast_exp(y: f64) -> f64 {
    let high = ((EXP_A * y) as i32).wrapping_add(EXP_BC);
    f64::from_bits(u64::from(high as u32) << 32)
}

/// `_fast_exp`'s constants: `2^20 / ln 2`, and `1023 · 2^20 - 60801`.
const EXP_A: f64 = 1_512_775.395_195_185_7;
const EXP_BC: i32 = 1_072_632_447;

/// The f32 weights' exponent rebase: a double's high word minus this, shifted left by
/// 3, is the same value as an f32 (the exponent biases differ by 896).
const REBASE: i32 = 896 << 20;

/// Output tiles of fast mode, per axis (plane, row, column): small enough that a
/// shift's sums and the data it reads stay in a core's L2 cache, deep enough across
/// planes and rows that the patch boxes' overhang (`s - 1` planes and rows) costs
/// little. On 32×128×128 (patch 5, distance 6) this shape was the fastest of
/// 16×32×64, 32×16×64, 32×64×16, 32×128×16 and 32×16×128 (the generic path's
/// shape before) by 5–12 %.
const TILE: [usize; 3] = [32, 32, 32];

/// The non-local means of `image` (holding at least the stage's input sets) at the
/// output indices `out` of an array of `shape`.
pub(crate) fn nl_means(
    image: &Block<'_, f32>,
    out: &[AxisSet],
    shape: &[usize],
    nl: &NlMeans,
) -> Block<'static, f32> {
    let ndim = out.len();
    let lead = ndim - nl.axes;
    // The filtered axes as three (a 2-D image is one plane): for each, the input
    // positions of the padded box (the output's bounds grown by the radius, mirrored),
    // the output's bounds, and which of those indices `out` holds.
    let mut padded_pos: Vec<Vec<usize>> = Vec::new();
    let mut bounds = Vec::new();
    for a in lead..ndim {
        let b = out[a].bounds();
        padded_pos.push(nl.padded_positions(&image.sets[a], &b, shape[a]));
        bounds.push(b);
    }
    if nl.axes == 2 {
        padded_pos.insert(0, vec![0]);
        bounds.insert(0, 0..1);
    }
    let strides = image.strides();
    let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
    let lead_lens = &lens[..lead];
    let volume: usize = lens[lead..].iter().product();
    let mut data = vec![0f32; lens.iter().product()];
    let geometry = Geometry::new(nl, &bounds, &shape[lead..]);
    for (v, dst) in data.chunks_mut(volume.max(1)).enumerate() {
        // The input offset of this image's leading indices.
        let index = unravel(v, lead_lens);
        let base: usize = (0..lead)
            .map(|a| {
                let i = out[a].iter().nth(index[a]).expect("within the set");
                image.sets[a].position(i).expect("the input holds it") * strides[a]
            })
            .sum();
        let at = |z: usize, y: usize, x: usize| {
            let k = strides.len();
            let zs = if nl.axes == 3 { strides[k - 3] } else { 0 };
            base + padded_pos[0][z] * zs
                + padded_pos[1][y] * strides[k - 2]
                + padded_pos[2][x] * strides[k - 1]
        };
        let dims = [
            padded_pos[0].len(),
            padded_pos[1].len(),
            padded_pos[2].len(),
        ];
        let mut padded = Vec::with_capacity(dims.iter().product());
        for z in 0..dims[0] {
            for y in 0..dims[1] {
                padded.extend((0..dims[2]).map(|x| image.data[at(z, y, x)]));
            }
        }
        let result = if nl.fast {
            geometry.fast(&padded)
        } else {
            geometry.classic(&padded)
        };
        // The bounding box's values at `out`'s indices.
        let ob: Vec<usize> = bounds.iter().map(ExactSizeIterator::len).collect();
        // Axis `j` of the box is array axis `lead + j - first` (none for an image's plane).
        let first = 3 - nl.axes;
        let trailing: Vec<Vec<usize>> = (0..3)
            .map(|j: usize| match j.checked_sub(first) {
                None => vec![0],
                Some(t) => out[lead + t].iter().map(|i| i - bounds[j].start).collect(),
            })
            .collect();
        let mut k = 0;
        for &z in &trailing[0] {
            for &y in &trailing[1] {
                for &x in &trailing[2] {
                    dst[k] = result[(z * ob[1] + y) * ob[2] + x];
                    k += 1;
                }
            }
        }
    }
    Block::new(out.to_vec(), Cow::Owned(data))
}

/// One image's (volume's) filtering: the output box, the padding, the patch and the
/// window, per axis (plane, row, column; a 2-D image has one plane and no window
/// across planes).
struct Geometry {
    /// The output box's extents.
    out: [usize; 3],
    /// The padding each side: the padded box is `out + 2 · pad`.
    pad: [usize; 3],
    /// The search window's radius.
    distance: [usize; 3],
    /// The patch's extent (1 across planes in 2-D).
    patch: [usize; 3],
    /// The output box's first index in the array, and the array's extents.
    origin: [usize; 3],
    extent: [usize; 3],
    /// `2 σ²`.
    var2: f64,
    h: f64,
    /// The number of filtered axes.
    axes: usize,
    /// Classic mode's patch weights (none in fast mode).
    kernel: Vec<f32>,
}

impl Geometry {
    fn new(nl: &NlMeans, bounds: &[std::ops::Range<usize>], extent: &[usize]) -> Geometry {
        let flat = nl.axes == 2;
        let pick = |on: usize, off: usize| [if flat { off } else { on }, on, on];
        let mut e = [1; 3];
        e[3 - nl.axes..].copy_from_slice(extent);
        Geometry {
            out: [bounds[0].len(), bounds[1].len(), bounds[2].len()],
            pad: pick(nl.radius(), 0),
            distance: pick(nl.distance, 0),
            patch: pick(nl.patch, 1),
            origin: [bounds[0].start, bounds[1].start, bounds[2].start],
            extent: e,
            var2: 2.0 * nl.sigma * nl.sigma,
            h: nl.h,
            axes: nl.axes,
            kernel: if nl.fast {
                Vec::new()
            } else {
                nl.classic_weights()
            },
        }
    }

    /// Whether box axis `a` is filtered (all but an image's plane axis).
    fn filtered(&self, a: usize) -> bool {
        a + self.axes >= 3
    }

    fn padded_dims(&self) -> [usize; 3] {
        [0, 1, 2].map(|a| self.out[a] + 2 * self.pad[a])
    }

    /// Fast mode on `padded` (the padded box, the f32 values the stage holds): the
    /// output box's values.
    fn fast(&self, padded: &[f32]) -> Vec<f32> {
        let tiles: Vec<[usize; 3]> = {
            let counts = [0, 1, 2].map(|a| self.out[a].div_ceil(TILE[a]));
            (0..counts.iter().product())
                .map(|t| {
                    let i = unravel(t, &counts);
                    [i[0] * TILE[0], i[1] * TILE[1], i[2] * TILE[2]]
                })
                .collect()
        };
        let done: Vec<([usize; 3], [usize; 3], Vec<f64>)> = tiles
            .into_par_iter()
            .map(|start| {
                let len = [0, 1, 2].map(|a| TILE[a].min(self.out[a] - start[a]));
                (start, len, fast_tile(self, padded, start, len))
            })
            .collect();
        let mut result = vec![0f32; self.out.iter().product()];
        for (start, len, values) in done {
            for z in 0..len[0] {
                for y in 0..len[1] {
                    let row =
                        ((start[0] + z) * self.out[1] + start[1] + y) * self.out[2] + start[2];
                    let from = (z * len[1] + y) * len[2];
                    for (d, &v) in result[row..row + len[2]]
                        .iter_mut()
                        .zip(&values[from..from + len[2]])
                    {
                        *d = v as f32;
                    }
                }
            }
        }
        result
    }
}

/// Fast mode on one output tile (`start`, `len` in the output box), compiled for the
/// widest vector unit the CPU has (the arithmetic, and so the bits, are the same).
fn fast_tile(g: &Geometry, padded: &[f32], start: [usize; 3], len: [usize; 3]) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(values) = avx512::fast_tile(g, padded, start, len) {
            return values;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { fast_tile_avx512(g, padded, start, len) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { fast_tile_avx2(g, padded, start, len) };
        }
    }
    fast_tile_lanes(g, padded, start, len)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fast_tile_avx512(g: &Geometry, padded: &[f32], start: [usize; 3], len: [usize; 3]) -> Vec<f64> {
    fast_tile_lanes(g, padded, start, len)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fast_tile_avx2(g: &Geometry, padded: &[f32], start: [usize; 3], len: [usize; 3]) -> Vec<f64> {
    fast_tile_lanes(g, padded, start, len)
}

/// Fast mode on one output tile: every shift of the window, each patch distance a box
/// sum of squared differences (along columns, then rows, then planes, each a direct
/// sum of `s - 1` terms), its weight and weighted value accumulated.
///
/// The box sums and weights are f32 (twice the lanes of f64); a distance within
/// rounding of the cut-off is decided again from its box summed in f64 (as scikit-image
/// decides it), and the sums accumulate in f32 one window plane at a time (a few
/// hundred terms), in f64 across them, each value taken relative to the output's own
/// (so that an offset in the data costs no precision).
#[inline(always)]
fn fast_tile_lanes(g: &Geometry, padded: &[f32], start: [usize; 3], len: [usize; 3]) -> Vec<f64> {
    let t = Tile::new(g, start, len);
    let Tile { pd, blen, .. } = t;
    let count = len[0] * len[1] * len[2];
    let row = len[2];
    let plane = len[1] * row;
    let centre = t.centres(padded);
    let (mut weights, mut sums) = (vec![0f64; count], vec![0f64; count]);
    let (mut weights32, mut sums32) = (vec![0f32; count], vec![0f32; count]);
    let empty = blen.contains(&0);
    let ext = [0, 1, 2].map(|a| len[a] + blen[a].max(1) - 1);
    let mut diff = vec![0f32; ext[2]];
    let mut bx = vec![0f32; ext[1] * row];
    let ring_len = blen[0].max(1);
    let mut ring = vec![0f32; ring_len * plane];
    let mut boxes = vec![0f32; row];
    let consts = &t.consts;
    let d = g.distance;
    for tz in -(d[0] as isize)..=d[0] as isize {
        for ty in -(d[1] as isize)..=d[1] as isize {
            for tx in -(d[2] as isize)..=d[2] as isize {
                let shift = (tz * pd[1] as isize + ty) * pd[2] as isize + tx;
                for ez in 0..ext[0] {
                    // The output plane whose boxes are complete with plane `ez`.
                    let z = (ez + 1).checked_sub(ring_len);
                    if !empty {
                        for ey in 0..ext[1] {
                            let a = t.box_at(ez, ey, 0);
                            let b = a.wrapping_add_signed(shift);
                            squares(&mut diff, &padded[a..a + ext[2]], &padded[b..b + ext[2]]);
                            box_sum(&mut bx[ey * row..(ey + 1) * row], &diff, 1, blen[2]);
                        }
                        let slot = ez % ring_len;
                        for y in 0..len[1] {
                            box_sum(
                                &mut ring[slot * plane + y * row..][..row],
                                &bx[y * row..],
                                row,
                                blen[1],
                            );
                        }
                    }
                    let Some(z) = z else { continue };
                    for y in 0..len[1] {
                        let o = (z * len[1] + y) * row;
                        let v = t.value_at(z, y, 0).wrapping_add_signed(shift);
                        let values = &padded[v..v + row];
                        let centres = &centre[o..o + row];
                        if empty {
                            let w = fast_exp(0.0) as f32;
                            for ((s, &v), &c) in
                                sums32[o..o + row].iter_mut().zip(values).zip(centres)
                            {
                                *s += w * (v - c);
                            }
                            for wt in &mut weights32[o..o + row] {
                                *wt += w;
                            }
                            continue;
                        }
                        // The boxes of this row: its planes' sums in turn.
                        sum_of(&mut boxes, ring_len, |k| {
                            &ring[((z + k) % ring_len) * plane + y * row..]
                        });
                        let unsure = accumulate(
                            &mut weights32[o..o + row],
                            &mut sums32[o..o + row],
                            &boxes,
                            values,
                            centres,
                            consts,
                        );
                        if unsure {
                            // Distances within rounding of the cut-off, decided in f64.
                            for (x, &b) in boxes.iter().enumerate() {
                                if consts.is_near(b) {
                                    t.decide(padded, [z, y, x], shift, &mut weights, &mut sums);
                                }
                            }
                        }
                    }
                }
            }
        }
        flush(&mut weights, &mut weights32);
        flush(&mut sums, &mut sums32);
    }
    finish(&sums, &weights, &centre)
}

/// A window plane's f32 sums added into the f64 totals, and cleared.
fn flush(total: &mut [f64], part: &mut [f32]) {
    for (t, p) in total.iter_mut().zip(part.iter_mut()) {
        *t += f64::from(std::mem::take(p));
    }
}

/// The tile's values from its sums and weights (relative to each output's own value).
fn finish(sums: &[f64], weights: &[f64], centre: &[f32]) -> Vec<f64> {
    sums.iter()
        .zip(weights)
        .zip(centre)
        .map(|((s, w), &c)| f64::from(c) + s / w)
        .collect()
}

/// One output tile of fast mode and what its shifts share: where its patch boxes lie
/// in the padded box, and the constants of the weights.
#[derive(Clone, Copy)]
struct Tile {
    /// The padded box's extents.
    pd: [usize; 3],
    /// The tile's first index in the output box, and its extents.
    start: [usize; 3],
    len: [usize; 3],
    /// The padding each side of the output box.
    pad: [usize; 3],
    /// The patch box's extent per axis, `s - 1` (1 across the planes of an image).
    blen: [usize; 3],
    /// Where the patch box of output index 0 starts in the padded box.
    bstart: [usize; 3],
    /// The box sum's offset (`(s - 1)^n · 2σ²`) and scale (`1 / (h² s^n)`), in f64.
    subtract: f64,
    inv: f64,
    /// The same in f32, with the band around the cut-off.
    consts: Weights,
}

impl Tile {
    fn new(g: &Geometry, start: [usize; 3], len: [usize; 3]) -> Tile {
        let off = g.patch.map(|s| s / 2);
        let blen = [0, 1, 2].map(|a| if g.filtered(a) { g.patch[a] - 1 } else { 1 });
        let bstart = [0, 1, 2].map(|a| {
            if g.filtered(a) {
                g.pad[a] + 1 - off[a]
            } else {
                0
            }
        });
        let bcount: usize = blen.iter().product();
        let subtract = bcount as f64 * g.var2;
        // scikit-image divides by `h² s^n` (the patch's size, not the box's).
        let inv = 1.0 / (g.h * g.h * (g.patch[0] * g.patch[1] * g.patch[2]) as f64);
        // How far from the cut-off an f32 distance may be off: its box's rounding (a few
        // parts in 10^7 of the box), with a wide margin.
        let margin = (1e-5 * (CUTOFF + 1.0 + subtract * inv)) as f32;
        Tile {
            pd: g.padded_dims(),
            start,
            len,
            pad: g.pad,
            blen,
            bstart,
            subtract,
            inv,
            consts: Weights {
                subtract: subtract as f32,
                inv: inv as f32,
                low: CUTOFF as f32 - margin,
                high: CUTOFF as f32 + margin,
            },
        }
    }

    /// The padded box's flat index of `(z, y, x)`.
    fn idx(&self, z: usize, y: usize, x: usize) -> usize {
        (z * self.pd[1] + y) * self.pd[2] + x
    }

    /// Where the patch box of tile index `(z, y, x)` starts in the padded box.
    fn box_at(&self, z: usize, y: usize, x: usize) -> usize {
        let [s, b] = [self.start, self.bstart];
        self.idx(s[0] + b[0] + z, s[1] + b[1] + y, s[2] + b[2] + x)
    }

    /// Where the value of tile index `(z, y, x)` lies in the padded box.
    fn value_at(&self, z: usize, y: usize, x: usize) -> usize {
        let [s, p] = [self.start, self.pad];
        self.idx(s[0] + p[0] + z, s[1] + p[1] + y, s[2] + p[2] + x)
    }

    /// Each output's own value, the reference its neighbours' values are taken from.
    fn centres(&self, padded: &[f32]) -> Vec<f32> {
        let [lz, ly, row] = self.len;
        let mut centre = Vec::with_capacity(lz * ly * row);
        for z in 0..lz {
            for y in 0..ly {
                let at = self.value_at(z, y, 0);
                centre.extend_from_slice(&padded[at..at + row]);
            }
        }
        centre
    }

    /// The weight of tile index `o` against its patch `shift` away, decided in f64 from
    /// its box summed in f64 (as scikit-image decides it), added into `weights` and
    /// `sums` (relative to the output's own value).
    fn decide(
        &self,
        padded: &[f32],
        o: [usize; 3],
        shift: isize,
        weights: &mut [f64],
        sums: &mut [f64],
    ) {
        let [z, y, x] = o;
        let p = self.box_at(z, y, x);
        let mut total = 0f64;
        for bz in 0..self.blen[0] {
            for by in 0..self.blen[1] {
                let a = p + (bz * self.pd[1] + by) * self.pd[2];
                let b = a.wrapping_add_signed(shift);
                for k in 0..self.blen[2] {
                    let t = f64::from(padded[a + k]) - f64::from(padded[b + k]);
                    total += t * t;
                }
            }
        }
        let dist = (total - self.subtract).max(0.0) * self.inv;
        if dist <= CUTOFF {
            let w = fast_exp(-dist);
            let at = self.value_at(z, y, x);
            let value = padded[at.wrapping_add_signed(shift)];
            let i = (z * self.len[1] + y) * self.len[2] + x;
            weights[i] += w;
            sums[i] += w * (f64::from(value) - f64::from(padded[at]));
        }
    }
}

/// The constants of a shift's weights in f32: the box sum's offset and scale, and the
/// band around the cut-off where an f32 distance is not trusted.
#[derive(Clone, Copy)]
struct Weights {
    subtract: f32,
    inv: f32,
    low: f32,
    high: f32,
}

impl Weights {
    /// The f32 distance of box sum `b`: `max(0, b − subtract) · inv`.
    #[inline(always)]
    fn distance(&self, b: f32) -> f32 {
        let x = b - self.subtract;
        if x > 0.0 { x * self.inv } else { 0.0 }
    }

    /// Whether an f32 distance lies within rounding of the cut-off.
    #[inline(always)]
    fn in_band(&self, distance: f32) -> bool {
        distance >= self.low && distance <= self.high
    }

    /// Whether the f32 distance of box sum `b` lies within rounding of the cut-off.
    fn is_near(&self, b: f32) -> bool {
        self.in_band(self.distance(b))
    }
}

/// `out[i] = (a[i] - b[i])²`.
#[inline(always)]
fn squares(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let t = x - y;
        *o = t * t;
    }
}

/// `out[i] = Σ_{k < n} src[i + k · stride]` (`n` ≥ 1), summed in `k` order.
#[inline(always)]
fn box_sum(out: &mut [f32], src: &[f32], stride: usize, n: usize) {
    sum_of(out, n, |k| &src[k * stride..]);
}

/// `out[i] = Σ_{k < n} row(k)[i]` (`n` ≥ 1), summed in `k` order: up to six rows in
/// one pass (the patch sizes of practice), any more added in turn.
#[inline(always)]
fn sum_of<'r>(out: &mut [f32], n: usize, row: impl Fn(usize) -> &'r [f32]) {
    let len = out.len();
    let at = |k: usize| &row(k)[..len];
    match n {
        1 => out.copy_from_slice(at(0)),
        2 => sum_rows::<2>(out, std::array::from_fn(at)),
        3 => sum_rows::<3>(out, std::array::from_fn(at)),
        4 => sum_rows::<4>(out, std::array::from_fn(at)),
        5 => sum_rows::<5>(out, std::array::from_fn(at)),
        _ => {
            sum_rows::<6>(out, std::array::from_fn(at));
            for k in 6..n {
                for (o, &r) in out.iter_mut().zip(at(k)) {
                    *o += r;
                }
            }
        }
    }
}

/// `out[i] = Σ_k rows[k][i]`, summed in `k` order: sixteen outputs at a time, each a
/// fixed-size array the compiler keeps in one vector register, then the rest one by
/// one.
#[inline(always)]
fn sum_rows<const N: usize>(out: &mut [f32], rows: [&[f32]; N]) {
    const LANES: usize = 16;
    let len = out.len();
    let whole = len / LANES * LANES;
    for (c, o) in out[..whole].chunks_exact_mut(LANES).enumerate() {
        let at = c * LANES;
        let mut acc: [f32; LANES] = rows[0][at..at + LANES].try_into().expect("16 lanes");
        for row in &rows[1..] {
            let r: &[f32; LANES] = row[at..at + LANES].try_into().expect("16 lanes");
            for j in 0..LANES {
                acc[j] += r[j];
            }
        }
        o.copy_from_slice(&acc);
    }
    for i in whole..len {
        let mut acc = rows[0][i];
        for row in &rows[1..] {
            acc += row[i];
        }
        out[i] = acc;
    }
}

/// One shift's weights and weighted values (relative to each output's own), along a
/// row, in f32; distances within rounding of the cut-off count 0 here. Returns whether
/// there were any (the caller decides them in f64).
#[inline(always)]
fn accumulate(
    weights: &mut [f32],
    sums: &mut [f32],
    boxes: &[f32],
    values: &[f32],
    centres: &[f32],
    c: &Weights,
) -> bool {
    let mut unsure = false;
    for ((((w, s), &b), &v), &centre) in weights
        .iter_mut()
        .zip(sums.iter_mut())
        .zip(boxes)
        .zip(values)
        .zip(centres)
    {
        let distance = c.distance(b);
        unsure |= c.in_band(distance);
        let weight = if distance < c.low {
            weight_of(distance)
        } else {
            0.0
        };
        *w += weight;
        *s += weight * (v - centre);
    }
    unsure
}

/// scikit-image's `fast_exp(-distance)` for a distance in `[0, CUTOFF]` (NaN counts as
/// `CUTOFF`), in f32: the double's high word, its exponent rebased to f32's.
#[inline(always)]
fn weight_of(distance: f32) -> f32 {
    let y = if distance < CUTOFF as f32 {
        -distance
    } else {
        -(CUTOFF as f32)
    };
    // SAFETY: `y` lies in `[-CUTOFF, 0]`, so `EXP_A * y` in `[-7.6e6, 0]`, within i32.
    let scaled = unsafe { (EXP_A as f32 * y).to_int_unchecked::<i32>() };
    let high = scaled.wrapping_add(EXP_BC);
    f32::from_bits(((high - REBASE) as u32) << 3)
}

#[cfg(test)]
mod tests;
