//! Linear correlation by FFT, for large stencils that are not separable (Richardson–
//! Lucy's measured PSFs): a frame of fixed extent is zero-padded to lengths the FFT is
//! fast for, transformed (a real FFT along the last axis, complex FFTs along the
//! others), multiplied by the stencil's spectrum, and transformed back. Zero outside
//! the input's box is the constant-0 boundary scikit-image's `mode='same'` convolutions
//! use; the padding keeps the circular wrap off every output the frame holds.
//!
//! Passes skip what they need not compute: forward, the lines whose earlier axes lie
//! outside the input's box (they are zero); inverse, the lines whose earlier axes lie
//! outside the output's box (nothing reads them).

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use crate::stage::Stencil;

type C32 = Complex<f32>;

/// A complex FFT's forward and inverse plans.
type Plans = (Arc<dyn Fft<f32>>, Arc<dyn Fft<f32>>);

/// Columns gathered into one batch of a strided pass.
const BATCH: usize = 64;

/// The smallest length ≥ `n` with no prime factor above 7 (even where `even`).
fn fast_len(n: usize, even: bool) -> usize {
    (n.max(1)..)
        .find(|&m| {
            if even && m % 2 == 1 {
                return false;
            }
            let mut r = m;
            for p in [2, 3, 5, 7] {
                while r % p == 0 {
                    r /= p;
                }
            }
            r == 1
        })
        .expect("a 7-smooth length exists above any n")
}

/// One frame's transforms: a real array of `padded` extents whose first `frame`
/// elements per axis hold data, and its half spectrum.
pub(crate) struct FftFrame {
    frame: Vec<usize>,
    padded: Vec<usize>,
    /// The half spectrum's extents (the last axis `padded / 2 + 1`).
    half: Vec<usize>,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    /// Forward and inverse complex FFTs per axis but the last.
    axes: Vec<Plans>,
}

/// A stencil's spectrum on one frame, scaled by the inverse transform's `1 / N`.
pub(crate) struct Spectrum(Vec<C32>);

impl FftFrame {
    /// The transforms for data of extents `frame` correlated with the stencils of
    /// `stencils`: each axis padded to at least the frame plus the farthest any tap
    /// reaches from its centre either way, which keeps the circular wrap within the
    /// zeros.
    pub(crate) fn new(frame: &[usize], stencils: &[&Stencil]) -> Self {
        let nd = frame.len();
        let padded: Vec<usize> = (0..nd)
            .map(|a| {
                let reach = stencils
                    .iter()
                    .map(|s| s.centre[a].max(s.shape[a] - 1 - s.centre[a]))
                    .max()
                    .unwrap_or(0);
                fast_len(frame[a] + reach, a + 1 == nd)
            })
            .collect();
        let mut half = padded.clone();
        half[nd - 1] = padded[nd - 1] / 2 + 1;
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        let axes = padded[..nd - 1]
            .iter()
            .map(|&n| (complex.plan_fft_forward(n), complex.plan_fft_inverse(n)))
            .collect();
        FftFrame {
            frame: frame.to_vec(),
            r2c: real.plan_fft_forward(padded[nd - 1]),
            c2r: real.plan_fft_inverse(padded[nd - 1]),
            padded,
            half,
            axes,
        }
    }

    /// An estimate of the work one correlation takes, in the units of one stencil tap
    /// on one element (for choosing between this and the direct stencil).
    pub(crate) fn cost(&self) -> f64 {
        let n: usize = self.padded.iter().product();
        // Measured on a 2-core Xeon (AVX-512): a 40×140×140 correlation takes as long
        // as about 63 taps per element of the direct stencil, 3 × log2(n).
        3.0 * n as f64 * (n as f64).log2().max(1.0)
    }

    /// The spectrum of correlation stencil `s` (of zero boundary) on this frame.
    pub(crate) fn spectrum(&self, s: &Stencil) -> Spectrum {
        let nd = self.padded.len();
        let mut real = vec![0f32; self.padded.iter().product()];
        for (flat, &w) in s.weights.iter().enumerate() {
            let tap = crate::region::unravel(flat, &s.shape);
            // out[i] = Σ_j w[j] x[i + j - c] is x convolved with h[(c - j) mod n].
            let at: Vec<usize> = (0..nd)
                .map(|a| {
                    (s.centre[a] as i64 - tap[a] as i64).rem_euclid(self.padded[a] as i64) as usize
                })
                .collect();
            real[ravel(&at, &self.padded)] += w;
        }
        let all: Vec<Range<usize>> = self.padded.iter().map(|&n| 0..n).collect();
        let mut spec = vec![C32::default(); self.half.iter().product()];
        self.rows_forward(&real, &self.padded, &all, &mut spec);
        for a in (0..nd - 1).rev() {
            self.pass(&mut spec, a, &self.axes[a].0, &[], None);
        }
        let scale = 1.0 / self.padded.iter().product::<usize>() as f32;
        spec.iter_mut().for_each(|z| *z *= scale);
        Spectrum(spec)
    }

    /// Writes into `result` the correlation by `spectrum`'s stencil of `data`, which
    /// holds the box `held`, zero elsewhere, at the box `out`: both arrays of the
    /// frame's extents (C order), `result` untouched outside `out`; `spec` is the
    /// spectrum's buffer, reused between calls.
    pub(crate) fn correlate(
        &self,
        data: &[f32],
        held: &[Range<usize>],
        spectrum: &Spectrum,
        out: &[Range<usize>],
        result: &mut [f32],
        spec: &mut Vec<C32>,
    ) {
        let nd = self.padded.len();
        debug_assert!((0..nd).all(|a| held[a].end <= self.frame[a] && out[a].end <= self.frame[a]));
        spec.resize(self.half.iter().product(), C32::default());
        self.rows_forward(data, &self.frame, held, spec);
        for a in (1..nd - 1).rev() {
            self.pass(spec, a, &self.axes[a].0, &held[..a], None);
        }
        if nd == 1 {
            multiply(spec, spectrum);
        } else {
            let (forward, inverse) = &self.axes[0];
            self.pass(spec, 0, forward, &[], Some((spectrum, inverse)));
        }
        for a in 1..nd - 1 {
            self.pass(spec, a, &self.axes[a].1, &out[..a], None);
        }
        self.rows_inverse(spec, out, result);
    }

    /// Writes into `spec` the real FFTs along the last axis of `data`, an array of
    /// extents `layout` (C order, at most the padded extents) that holds the box
    /// `held`, zero elsewhere.
    fn rows_forward(
        &self,
        data: &[f32],
        layout: &[usize],
        held: &[Range<usize>],
        spec: &mut [C32],
    ) {
        let nd = self.padded.len();
        let (n, h) = (self.padded[nd - 1], self.half[nd - 1]);
        let last = held[nd - 1].clone();
        let r2c = &self.r2c;
        let at = row_offsets(&self.padded[..nd - 1], &held[..nd - 1], &layout[..nd - 1]);
        spec.par_chunks_mut(h).enumerate().for_each_init(
            || (r2c.make_scratch_vec(), vec![0f32; n]),
            |(scratch, line), (r, output)| {
                let Some(at) = at[r].filter(|_| !last.is_empty()) else {
                    output.fill(C32::default());
                    return;
                };
                let at = at * layout[nd - 1];
                line.fill(0.0);
                line[last.clone()].copy_from_slice(&data[at + last.start..at + last.end]);
                r2c.process_with_scratch(line, output, scratch)
                    .expect("the row lengths are the plan's");
            },
        );
    }

    /// Writes the inverse real FFTs along the last axis of `spec` into `result` (of
    /// the frame's extents) at the box `out`.
    fn rows_inverse(&self, spec: &mut [C32], out: &[Range<usize>], result: &mut [f32]) {
        let nd = self.padded.len();
        let (n, h) = (self.padded[nd - 1], self.half[nd - 1]);
        let last = out[nd - 1].clone();
        if last.is_empty() {
            return;
        }
        let c2r = &self.c2r;
        let rows = row_offsets(
            &self.frame[..nd - 1],
            &out[..nd - 1],
            &self.padded[..nd - 1],
        );
        let spec_rows = SharedSlice::new(spec);
        result
            .par_chunks_mut(self.frame[nd - 1])
            .enumerate()
            .for_each_init(
                || (c2r.make_scratch_vec(), vec![0f32; n]),
                |(scratch, line), (i, dst)| {
                    let Some(r) = rows[i] else {
                        return;
                    };
                    // SAFETY: each frame row reads its own spectrum row, once.
                    let input = unsafe { spec_rows.slice(r * h, h) };
                    // A real signal's spectrum has no imaginary part at 0 and n / 2;
                    // rounding leaves some, which the inverse refuses.
                    input[0].im = 0.0;
                    if n % 2 == 0 {
                        input[h - 1].im = 0.0;
                    }
                    c2r.process_with_scratch(input, line, scratch)
                        .expect("the row lengths are the plan's");
                    dst[last.clone()].copy_from_slice(&line[last.clone()]);
                },
            );
    }

    /// The complex FFT along `axis` of the half spectrum, on the columns whose earlier
    /// axes lie in `keep`; with `then`, each column is next multiplied by that
    /// spectrum's and transformed by that FFT (one gather for both transforms).
    fn pass(
        &self,
        spec: &mut [C32],
        axis: usize,
        fft: &Arc<dyn Fft<f32>>,
        keep: &[Range<usize>],
        then: Option<(&Spectrum, &Arc<dyn Fft<f32>>)>,
    ) {
        let n = self.half[axis];
        if n == 1 {
            if let Some((spectrum, _)) = then {
                multiply(spec, spectrum);
            }
            return;
        }
        let inner: usize = self.half[axis + 1..].iter().product();
        // The outer blocks whose indices on the first axes (as many as `keep` has)
        // lie in `keep`.
        let outer_shape = &self.half[..axis];
        let keep: Vec<Range<usize>> = (0..axis)
            .map(|a| keep.get(a).cloned().unwrap_or(0..outer_shape[a]))
            .collect();
        let outers: Vec<usize> = row_offsets(outer_shape, &keep, outer_shape)
            .into_iter()
            .flatten()
            .collect();
        let batches = inner.div_ceil(BATCH);
        let scratch_len = fft
            .get_inplace_scratch_len()
            .max(then.map_or(0, |(_, f)| f.get_inplace_scratch_len()));
        let shared = SharedSlice::new(spec);
        (0..outers.len() * batches).into_par_iter().for_each_init(
            || {
                (
                    vec![C32::default(); n * BATCH],
                    vec![C32::default(); scratch_len],
                )
            },
            |(buf, scratch), task| {
                let base = outers[task / batches] * n * inner;
                let c0 = (task % batches) * BATCH;
                let width = BATCH.min(inner - c0);
                let buf = &mut buf[..n * width];
                // The task's columns c0..c0 + width, one after another.
                for i in 0..n {
                    for k in 0..width {
                        // SAFETY: the task owns columns c0..c0 + width of its outer
                        // block, which no other task touches.
                        buf[k * n + i] = unsafe { shared.get(base + i * inner + c0 + k) };
                    }
                }
                fft.process_with_scratch(buf, scratch);
                if let Some((spectrum, inverse)) = then {
                    for i in 0..n {
                        let h = &spectrum.0[base + i * inner + c0..][..width];
                        for (k, &h) in h.iter().enumerate() {
                            buf[k * n + i] *= h;
                        }
                    }
                    inverse.process_with_scratch(buf, scratch);
                }
                for i in 0..n {
                    for k in 0..width {
                        // SAFETY: as above.
                        unsafe { shared.set(base + i * inner + c0 + k, buf[k * n + i]) };
                    }
                }
            },
        );
    }
}

/// `spec *= spectrum`, elementwise.
fn multiply(spec: &mut [C32], spectrum: &Spectrum) {
    spec.par_iter_mut()
        .zip(spectrum.0.par_iter())
        .for_each(|(z, h)| *z *= h);
}

/// For each row of an array of extents `shape` (C order), where its index lies in the
/// box `ranges`, its flat index in an array of extents `layout`.
pub(crate) fn row_offsets(
    shape: &[usize],
    ranges: &[Range<usize>],
    layout: &[usize],
) -> Vec<Option<usize>> {
    let count: usize = shape.iter().product();
    let mut index = vec![0usize; shape.len()];
    let mut all = Vec::with_capacity(count);
    for _ in 0..count {
        all.push(inside(&index, ranges).then(|| ravel(&index, layout)));
        // The next index, the last axis fastest.
        for a in (0..shape.len()).rev() {
            index[a] += 1;
            if index[a] < shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
    all
}

/// Whether `index` lies in the box `ranges` on each of its axes.
fn inside(index: &[usize], ranges: &[Range<usize>]) -> bool {
    index.iter().zip(ranges).all(|(i, r)| r.contains(i))
}

/// The flat offset of `index` in an array of `shape` (C order).
fn ravel(index: &[usize], shape: &[usize]) -> usize {
    index.iter().zip(shape).fold(0, |at, (&i, &n)| at * n + i)
}

/// A slice that parallel tasks write in disjoint parts of.
struct SharedSlice<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: the callers hand each task disjoint parts (see `slice`).
unsafe impl<T: Send> Send for SharedSlice<T> {}
unsafe impl<T: Send> Sync for SharedSlice<T> {}

impl<T> SharedSlice<T> {
    fn new(data: &mut [T]) -> Self {
        SharedSlice {
            ptr: data.as_mut_ptr(),
            len: data.len(),
        }
    }

    /// Element `i`.
    ///
    /// # Safety
    /// No other task may write element `i` meanwhile.
    unsafe fn get(&self, i: usize) -> T
    where
        T: Copy,
    {
        assert!(i < self.len, "an index inside the shared data");
        // SAFETY: in bounds (asserted); exclusive access is the caller's.
        unsafe { *self.ptr.add(i) }
    }

    /// Sets element `i` to `v`.
    ///
    /// # Safety
    /// No other task may read or write element `i` meanwhile.
    unsafe fn set(&self, i: usize, v: T) {
        assert!(i < self.len, "an index inside the shared data");
        // SAFETY: in bounds (asserted); exclusive access is the caller's.
        unsafe { *self.ptr.add(i) = v }
    }

    /// `len` elements from `start`.
    ///
    /// # Safety
    /// No two live slices may overlap where either is written, and the borrowed data
    /// must outlive them.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.len, "a slice inside the shared data");
        // SAFETY: in bounds (asserted); disjointness is the caller's.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::Boundary;

    /// Direct correlation with zero outside `held`, at `out`.
    fn direct(
        frame: &[usize],
        data: &[f32],
        held: &[Range<usize>],
        s: &Stencil,
        out: &[Range<usize>],
    ) -> Vec<f32> {
        let nd = frame.len();
        let lens: Vec<usize> = held.iter().map(ExactSizeIterator::len).collect();
        let value = |index: &[i64]| -> f64 {
            let mut at = 0;
            for a in 0..nd {
                if index[a] < held[a].start as i64 || index[a] >= held[a].end as i64 {
                    return 0.0;
                }
                at = at * lens[a] + (index[a] as usize - held[a].start);
            }
            data[at] as f64
        };
        let olens: Vec<usize> = out.iter().map(ExactSizeIterator::len).collect();
        (0..olens.iter().product::<usize>())
            .map(|flat| {
                let o = crate::region::unravel(flat, &olens);
                let mut sum = 0.0;
                for (t, &w) in s.weights.iter().enumerate() {
                    let tap = crate::region::unravel(t, &s.shape);
                    let at: Vec<i64> = (0..nd)
                        .map(|a| (out[a].start + o[a] + tap[a]) as i64 - s.centre[a] as i64)
                        .collect();
                    sum += w as f64 * value(&at);
                }
                sum as f32
            })
            .collect()
    }

    #[test]
    fn fast_lengths_are_7_smooth() {
        assert_eq!(fast_len(11, false), 12);
        assert_eq!(fast_len(11, true), 12);
        assert_eq!(fast_len(13, false), 14);
        assert_eq!(fast_len(25, true), 28);
        assert_eq!(fast_len(121, false), 125);
        assert_eq!(fast_len(1, false), 1);
    }

    #[test]
    fn equals_direct_correlation_on_boxes() {
        // Odd and even lengths, off-centre taps, a held box inside the frame and an
        // output box that reaches past it (where the zeros count).
        for (frame, taps, centre, held, out) in [
            (
                vec![7usize, 9, 10],
                vec![3usize, 4, 5],
                vec![1usize, 2, 0],
                vec![1..6, 0..9, 2..9],
                vec![0..7, 1..8, 0..10],
            ),
            (
                vec![5, 12],
                vec![5, 2],
                vec![2, 1],
                vec![0..5, 0..12],
                vec![1..4, 3..12],
            ),
            (
                vec![16],
                vec![9],
                vec![4],
                std::iter::once(3..13).collect(),
                std::iter::once(0..16).collect(),
            ),
            // Padded to exactly 10 + 6 = 16, where one less would wrap.
            (
                vec![10, 4],
                vec![7, 1],
                vec![6, 0],
                vec![0..10, 0..4],
                vec![0..10, 0..4],
            ),
            (
                vec![1, 6, 7],
                vec![1, 3, 3],
                vec![0, 1, 1],
                vec![0..1, 0..6, 0..7],
                vec![0..1, 2..4, 0..7],
            ),
        ] {
            let n_taps: usize = taps.iter().product();
            let weights: Vec<f64> = (0..n_taps)
                .map(|i| f64::from(((i * 37 % 11) as f32 - 4.0) / 7.0))
                .collect();
            let s = Stencil::new(taps.clone(), centre, weights, Boundary::Constant, 0.0);
            let n_held: usize = held.iter().map(ExactSizeIterator::len).product();
            let data: Vec<f32> = (0..n_held)
                .map(|i| ((i * 13 % 17) as f32).sin() * 3.0)
                .collect();
            // The frame's layout: the held box's values, and 99 (to be ignored) outside.
            let n_frame: usize = frame.iter().product();
            let lens: Vec<usize> = held.iter().map(ExactSizeIterator::len).collect();
            let mut framed = vec![99f32; n_frame];
            for (k, &v) in data.iter().enumerate() {
                let i = crate::region::unravel(k, &lens);
                let index: Vec<usize> = (0..frame.len()).map(|a| held[a].start + i[a]).collect();
                framed[ravel(&index, &frame)] = v;
            }
            let f = FftFrame::new(&frame, &[&s]);
            let mut result = vec![-7f32; n_frame];
            f.correlate(
                &framed,
                &held,
                &f.spectrum(&s),
                &out,
                &mut result,
                &mut Vec::new(),
            );
            let want = direct(&frame, &data, &held, &s, &out);
            let olens: Vec<usize> = out.iter().map(ExactSizeIterator::len).collect();
            for (flat, &got) in result.iter().enumerate() {
                let index = crate::region::unravel(flat, &frame);
                if !inside(&index, &out) {
                    assert_eq!(got, -7.0, "outside the output box, untouched");
                    continue;
                }
                let o: Vec<usize> = (0..frame.len()).map(|a| index[a] - out[a].start).collect();
                let w = want[ravel(&o, &olens)];
                assert!((got - w).abs() < 1e-4, "{got} vs {w} ({frame:?}, {taps:?})");
            }
        }
    }
}
