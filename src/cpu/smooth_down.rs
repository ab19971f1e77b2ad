//! One-dimensional stencil passes followed by a mean downsample (a Gaussian pyramid's
//! step, `gaussian` then `downsample --method mean`), computed as one strided pass per
//! axis.
//!
//! Both are linear and separable: the mean of `f` smoothed values along an axis is one
//! correlation of the input with the sum of the `f` shifted kernels over `f`, taken
//! only at the window starts. Each pass smooths and averages its axis at once, so it
//! computes `1/f` of the outputs, and the later passes work on the smaller array: a
//! σ = 2/3 Gaussian and a 2×2×2 mean cost about a quarter of the separate stages' work.
//! The boundary mode maps the same absolute indices as the separate stages do, and a
//! partial window at the array's edge averages the smoothed values it holds, so the
//! results equal the separate stages' up to rounding.

use std::borrow::Cow;

use super::simd::accumulate;
use crate::block::{Block, for_each_row, take_buffer};
use crate::region::AxisSet;
use crate::stage::{DownMethod, Stage, Stencil};

/// Elements of a leading-axis pass's rows computed for every output index before the
/// next: the few input rows that consecutive outputs share stay in cache.
const TILE: usize = 2048;

/// A run of stages that [`SmoothDown::compute`] computes at once: 1-D stencil passes on
/// distinct axes, then a mean downsample.
pub(crate) struct SmoothDown<'a> {
    /// Each pass: its axis and stencil (`None`: the mean alone, on a downsampled axis
    /// no stencil touches). Those come first (they shrink the array for free), then the
    /// stencils in their stages' order.
    passes: Vec<(usize, Option<&'a Stencil>)>,
    /// The downsample's factor per axis.
    factor: &'a [usize],
    /// How many stages the run replaces.
    pub stages: usize,
}

impl<'a> SmoothDown<'a> {
    /// The run at the start of `stages`, if they begin with one or more 1-D stencils on
    /// distinct axes followed by a mean downsample.
    pub(crate) fn starting(stages: &'a [Stage]) -> Option<Self> {
        let mut stencils: Vec<(usize, Option<&Stencil>)> = Vec::new();
        for stage in stages {
            match stage {
                Stage::Stencil(st) => {
                    let a = super::one_axis(st)?;
                    if stencils.iter().any(|&(b, _)| b == a) {
                        return None;
                    }
                    stencils.push((a, Some(st)));
                }
                Stage::Downsample {
                    factor,
                    method: DownMethod::Mean,
                } if !stencils.is_empty() => {
                    let mut passes: Vec<(usize, Option<&Stencil>)> = (0..factor.len())
                        .filter(|&a| factor[a] > 1 && stencils.iter().all(|&(b, _)| b != a))
                        .map(|a| (a, None))
                        .collect();
                    let stages = stencils.len() + 1;
                    passes.extend(stencils);
                    return Some(SmoothDown {
                        passes,
                        factor,
                        stages,
                    });
                }
                _ => return None,
            }
        }
        None
    }

    /// The run's output over `out` from `input` (an array of `in_shape`, holding at
    /// least `needs`, what the first stencil reads).
    ///
    /// A pass computes every index its input holds on the other axes, so an input
    /// holding more than `needs` (a whole array) is first cut down to it.
    pub(crate) fn compute(
        &self,
        input: &Block<'_, f32>,
        needs: &[AxisSet],
        out: &[AxisSet],
        in_shape: &[usize],
    ) -> Block<'static, f32> {
        let mut sets = needs.to_vec();
        let mut current: Option<Block<'static, f32>> = None;
        for (i, &(a, st)) in self.passes.iter().enumerate() {
            let from = match &current {
                Some(block) => block,
                // The first pass reads `input` where it reads whole rows of it (every
                // later axis as held), else a copy of `needs`.
                None if i == 0 && (a + 1..needs.len()).all(|b| input.sets[b] == needs[b]) => input,
                None => current.insert(super::pointwise::map(input, needs, |x| x)),
            };
            sets[a] = out[a].clone();
            let next = pass(from, &sets, a, st, in_shape[a], self.factor[a]);
            if let Some(done) = current.replace(next) {
                crate::block::recycle(done.into_any());
            }
        }
        let done = current.expect("a run has a stencil");
        if done.sets == out {
            done
        } else {
            // Axes no pass touched may hold more than the output.
            super::pointwise::map(&done, out, |x| x)
        }
    }
}

/// Per output index of one axis, the input offsets it reads ([`usize::MAX`]: `cval`)
/// and their weights: entries `starts[p]..starts[p + 1]`.
struct Table {
    starts: Vec<usize>,
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl Table {
    /// The runs of outputs that read the same weights as the one before, each at the
    /// offset `f` past its own (no `cval`): one weight reads every `f`-th value of the
    /// input along the run. Runs shorter than a few outputs are left out.
    fn uniform_runs(&self, f: usize) -> Vec<std::ops::Range<usize>> {
        let entries = |p: usize| self.starts[p]..self.starts[p + 1];
        let follows = |p: usize| {
            let (a, b) = (entries(p - 1), entries(p));
            a.len() == b.len()
                && a.zip(b).all(|(x, y)| {
                    self.weights[x] == self.weights[y]
                        && self.offsets[x] != usize::MAX
                        && self.offsets[y] == self.offsets[x] + f
                })
        };
        let n = self.starts.len() - 1;
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        let mut p = 0;
        while p < n {
            let mut q = p + 1;
            while q < n && follows(q) {
                q += 1;
            }
            if q - p >= 4 && self.offsets[entries(p)].iter().all(|&o| o != usize::MAX) {
                runs.push(p..q);
            }
            p = q;
        }
        runs
    }
}

/// The table of a pass along an axis of length `n` for the outputs `out`: output `o`
/// is the mean over its window `o·f .. min(o·f + f, n)` of the stencil's correlation
/// (the identity without one), each input index's weights summed (in f64) once the
/// boundary mode has mapped it. `held` is the input's index set on the axis, `stride`
/// its element stride.
fn table(
    st: Option<&Stencil>,
    axis: usize,
    held: &AxisSet,
    stride: usize,
    out: &AxisSet,
    n: usize,
    f: usize,
) -> Table {
    let mut table = Table {
        starts: vec![0],
        offsets: Vec::new(),
        weights: Vec::new(),
    };
    let mut sums: Vec<(Option<usize>, f64)> = Vec::new();
    for o in out.iter() {
        let start = o * f;
        let len = f.min(n - start);
        sums.clear();
        let mut add =
            |index: Option<usize>, w: f64| match sums.iter_mut().find(|(i, _)| *i == index) {
                Some((_, sum)) => *sum += w / len as f64,
                None => sums.push((index, w / len as f64)),
            };
        for j in start..start + len {
            match st {
                Some(st) => {
                    for (d, &w) in st.offsets(axis).zip(&st.weights) {
                        add(st.mode.map(j as i64 + d, n), f64::from(w));
                    }
                }
                None => add(Some(j), 1.0),
            }
        }
        for &(index, w) in &sums {
            table.offsets.push(index.map_or(usize::MAX, |i| {
                let p = held
                    .position(i)
                    .expect("planner bug: a stencil tap is missing from the footprint");
                p * stride
            }));
            table.weights.push(w as f32);
        }
        table.starts.push(table.offsets.len());
    }
    table
}

/// One pass: `input` smoothed by `st` (if any) and averaged over windows of `f` along
/// `axis`, over `sets`: its outputs on that axis, and on the others indices `input`
/// holds (all of them on later axes, whose rows are read whole).
fn pass(
    input: &Block<'_, f32>,
    sets: &[AxisSet],
    axis: usize,
    st: Option<&Stencil>,
    n: usize,
    f: usize,
) -> Block<'static, f32> {
    let stride = input.strides()[axis];
    let t = table(st, axis, &input.sets[axis], stride, &sets[axis], n, f);
    let cval = st.map_or(0.0, |s| s.cval);
    // Where each row of input along `axis` starts, for every index of the earlier axes.
    let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
    let offsets: Vec<Vec<usize>> = (0..axis).map(|b| input.offsets(b, &sets[b])).collect();
    let mut bases = Vec::with_capacity(lens[..axis].iter().product());
    for_each_row(&lens[..axis], |index, _| {
        bases.push((0..axis).map(|b| offsets[b][index[b]]).sum::<usize>());
    });
    let inner = stride;
    let len_out = lens[axis];
    let mut data = take_buffer::<f32>(bases.len() * len_out * inner);
    if inner == 1 {
        // The last axis. Where outputs read the same weights at offsets `f` apart (all
        // but a few at the array's edges), the row is split into its `f` phases
        // (every `f`-th value) and each weight reads one phase contiguously.
        let uniform = t.uniform_runs(f);
        let len_in = input.sets[axis].len();
        let mut phases: Vec<Vec<f32>> = vec![Vec::with_capacity(len_in.div_ceil(f)); f];
        for (row, &base) in data.chunks_exact_mut(len_out).zip(&bases) {
            let mut taps: Vec<(&[f32], &[f32])> = Vec::new();
            let src = &input.data[base..base + len_in];
            if !uniform.is_empty() && f > 1 {
                for (phi, phase) in phases.iter_mut().enumerate() {
                    phase.clear();
                    phase.extend(src.iter().skip(phi).step_by(f));
                }
            }
            let mut p = 0;
            for run in uniform
                .iter()
                .cloned()
                .chain(std::iter::once(len_out..len_out))
            {
                // Outputs before the run, one at a time.
                for (q, y) in row[p..run.start].iter_mut().enumerate() {
                    let mut sum = 0.0f32;
                    for e in t.starts[p + q]..t.starts[p + q + 1] {
                        let x = src.get(t.offsets[e]).copied().unwrap_or(cval);
                        // Fused, as the vector runs' sums are (`accumulate`).
                        sum = t.weights[e].mul_add(x, sum);
                    }
                    *y = sum;
                }
                if run.is_empty() {
                    break;
                }
                taps.clear();
                taps.extend((t.starts[run.start]..t.starts[run.start + 1]).map(|e| {
                    let (phase, at) = match f {
                        1 => (src, t.offsets[e]),
                        _ => (&phases[t.offsets[e] % f][..], t.offsets[e] / f),
                    };
                    (&phase[at..at + run.len()], &t.weights[e..e + 1])
                }));
                accumulate(&mut row[run.clone()], &taps);
                p = run.end;
            }
        }
    } else {
        let const_row = vec![cval; TILE.min(inner)];
        let mut taps: Vec<(&[f32], &[f32])> = Vec::new();
        for (q, &base) in bases.iter().enumerate() {
            let base_out = q * len_out * inner;
            for lo in (0..inner).step_by(TILE) {
                let m = TILE.min(inner - lo);
                for p in 0..len_out {
                    taps.clear();
                    taps.extend((t.starts[p]..t.starts[p + 1]).map(|e| {
                        let row = match t.offsets[e] {
                            usize::MAX => &const_row[..m],
                            off => &input.data[base + off + lo..base + off + lo + m],
                        };
                        (row, &t.weights[e..e + 1])
                    }));
                    let at = base_out + p * inner + lo;
                    accumulate(&mut data[at..at + m], &taps);
                }
            }
        }
    }
    Block::new(sets.to_vec(), Cow::Owned(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::Boundary;
    use crate::region::Region;

    /// The values of a test array at `sets`.
    fn values(sets: &[AxisSet]) -> Block<'static, f32> {
        let mut data = Vec::new();
        let lens: Vec<usize> = sets.iter().map(AxisSet::len).collect();
        let held: Vec<Vec<usize>> = sets.iter().map(|s| s.iter().collect()).collect();
        for_each_row(&[lens.iter().product()], |_, i| {
            let mut rest = i;
            let mut key = 0usize;
            for a in (0..lens.len()).rev() {
                key = key * 131 + held[a][rest % lens[a]] * (a + 3);
                rest /= lens[a];
            }
            data.push((key % 97) as f32 * 0.41 - 9.0);
        });
        Block::new(sets.to_vec(), Cow::Owned(data))
    }

    /// The fused run equals the separate stages (stencils, then the mean), within f32
    /// rounding: every boundary mode, odd lengths (partial windows), an axis with a
    /// stencil but no downsampling and one downsampled with no stencil, a last axis
    /// long enough for its phases, on the whole array and on a part of it, read from
    /// its footprint and from the whole array.
    #[test]
    fn equals_the_separate_stages() {
        let shape = [7usize, 9, 41];
        let factor = [2usize, 1, 3];
        let modes = [
            Boundary::Reflect,
            Boundary::Mirror,
            Boundary::Nearest,
            Boundary::Constant,
            Boundary::Wrap,
        ];
        for (mode, axes) in modes.iter().flat_map(|&m| [(m, [1, 0]), (m, [1, 2])]) {
            let stencil = |axis: usize, w: &[f64]| {
                let mut st_shape = vec![1; 3];
                let mut centre = vec![0; 3];
                st_shape[axis] = w.len();
                centre[axis] = w.len() / 2;
                Stage::Stencil(Stencil::new(st_shape, centre, w.to_vec(), mode, 2.5))
            };
            let stages = vec![
                stencil(axes[0], &[0.2, 0.5, 0.3]),
                stencil(axes[1], &[0.05, 0.25, 0.4, 0.25, 0.05]),
                Stage::Downsample {
                    factor: factor.to_vec(),
                    method: DownMethod::Mean,
                },
            ];
            let fused = SmoothDown::starting(&stages).expect("fusable");
            assert_eq!(fused.stages, 3);
            let plan_shape = [4usize, 9, 14];
            let whole = Region::whole(&plan_shape).sets();
            let mut part = whole.clone();
            part[0] = AxisSet::from_range(1..3);
            part[2] = AxisSet::from_range(2..12);
            for out in [whole, part] {
                // What the stages read, from the last back.
                let mut sets = vec![out.clone()];
                for stage in stages.iter().rev() {
                    let next = stage.input_sets(sets.last().unwrap(), &shape);
                    sets.push(next);
                }
                sets.reverse();
                // The footprint exactly, and the whole array.
                for input in [values(&sets[0]), values(&Region::whole(&shape).sets())] {
                    let mut separate = super::super::run_stage(
                        &stages[0],
                        &input.clone().into_any(),
                        &sets[0],
                        &sets[1],
                        &shape,
                    );
                    for k in 1..stages.len() {
                        separate = super::super::run_stage(
                            &stages[k],
                            &separate,
                            &sets[k],
                            &sets[k + 1],
                            &shape,
                        );
                    }
                    let separate = separate.typed::<f32>().data.to_vec();
                    let got = fused.compute(&input, &sets[0], &out, &shape);
                    assert_eq!(got.sets, out);
                    for (x, y) in got.data.iter().zip(&separate) {
                        assert!(
                            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                            "{mode:?}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    /// Only a run of 1-D stencils on distinct axes ending in a mean is fused.
    #[test]
    fn fuses_only_stencils_then_a_mean() {
        let st = |axis: usize| {
            let mut shape = vec![1; 2];
            shape[axis] = 3;
            Stage::Stencil(Stencil::new(
                shape,
                vec![0; 2],
                vec![0.25, 0.5, 0.25],
                Boundary::Reflect,
                0.0,
            ))
        };
        let down = |method| Stage::Downsample {
            factor: vec![2, 2],
            method,
        };
        assert!(SmoothDown::starting(&[st(0), st(1), down(DownMethod::Mean)]).is_some());
        assert!(SmoothDown::starting(&[st(0), st(1), down(DownMethod::Max)]).is_none());
        assert!(SmoothDown::starting(&[st(0), st(0), down(DownMethod::Mean)]).is_none());
        assert!(SmoothDown::starting(&[down(DownMethod::Mean)]).is_none());
        assert!(SmoothDown::starting(&[st(0), st(1)]).is_none());
    }
}
